"""Run files: atomic writes, checkpoints that fail clearly, loading a trained model, and the
environment record (library versions, device, git commit) stored with every result.

A run folder holds ``checkpoint.pt`` (everything needed to resume, rewritten every epoch),
``model.pt`` (the best epoch's weights and the run's config) and ``metrics.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import pathlib
import pickle
import platform
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ._version import __version__
from .config import RunConfig
from .models import build_model

__all__ = ["CHECKPOINT", "METRICS", "MODEL", "atomic_save", "atomic_write", "atomic_write_json",
           "check_metrics", "cpu_state", "environment", "ensure_writable_dir", "load_checkpoint",
           "load_model", "read_metrics", "rng_state", "set_aside", "set_rng_state"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
MODEL = "model.pt"


def environment(device: torch.device | None = None) -> dict:
    """Library versions, device and git commit, stored with every result."""
    env = {"mtvae": __version__, "torch": str(torch.__version__), "python": platform.python_version(),
           "platform": platform.platform(), "threads": torch.get_num_threads()}
    if device is not None:
        env["device"] = str(device)
        if device.type == "cuda":
            env["device_name"] = torch.cuda.get_device_name(device)
    with contextlib.suppress(Exception):
        import subprocess

        here = Path(__file__).resolve().parent
        env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here,
                                           capture_output=True, text=True,
                                           timeout=5).stdout.strip() or None
    return env


def cpu_state(module: torch.nn.Module) -> dict:
    """A detached CPU copy of ``module``'s weights (the best epoch's, kept while training goes on)."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def atomic_write(path: str | os.PathLike, write: Callable, mode: str = "wb") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it over
    ``path``: a crash never leaves half a file, and the temporary name is unique (pid and a
    random suffix), so two processes writing the same file never trip over each other's."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, mode.replace("w", "x")) as f:  # "x": never reuse someone else's file
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where supported
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file, fsync, then rename (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, default=str), mode="w")


def ensure_writable_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Create ``path`` if needed and check that files can be written there, so a bad output
    folder stops a run before its first epoch rather than after it (ValueError naming the fix)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".mtvae-write-test.{os.getpid()}.{secrets.token_hex(4)}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as err:
        what = "not a folder" if path.exists() and not path.is_dir() else "not writable"
        raise ValueError(f"{path} is {what} ({type(err).__name__}: {err.strerror or err}); "
                         f"choose another {option} folder") from None
    return path


def set_aside(run_dir: str | os.PathLike, names=(CHECKPOINT, MODEL, METRICS)) -> Path | None:
    """What ``--no-resume`` / ``resume=False`` does with a folder that holds a run (any of
    ``names``): move the whole folder to a sibling ``<name>.replaced-<time>`` and recreate it
    empty, so nothing is lost and the new run alone is there to resume. Returns the new place
    of the old run (None when there was none)."""
    run_dir = Path(run_dir)
    if not any((run_dir / n).exists() for n in names):
        return None
    here, resolved = Path.cwd().resolve(), run_dir.resolve()
    if here == resolved or resolved in here.parents:
        raise ValueError(f"--no-resume would move {run_dir} aside, but it holds the current "
                         "folder; run from elsewhere or give a run folder below it")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, k = resolved.with_name(f"{resolved.name}.replaced-{stamp}"), 1
    while target.exists():
        target, k = resolved.with_name(f"{resolved.name}.replaced-{stamp}-{k}"), k + 1
    os.rename(resolved, target)
    run_dir.mkdir()
    return target


def check_metrics(metrics, where, fix: str) -> dict:
    """``metrics`` ({split: {name: value}}) if every value is a finite number, else ValueError
    naming ``where`` (the file), the metric and ``fix``: a NaN is never taken as a result."""
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise ValueError(f"{where}: 'metrics' is not a {{split: {{name: value}}}} table; {fix}")
    for split, values in metrics.items():
        for name, v in values.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{where}: metric {split} {name} is {v!r}, not a finite number;"
                                 f" {fix}")
    return metrics


def read_metrics(path: str | os.PathLike) -> tuple[dict, RunConfig]:
    """A finished run's metrics.json and its RunConfig; ValueError naming the file and the fix
    when it does not parse, lacks keys or holds a metric that is not a finite number."""
    path = Path(path)
    fix = (f"delete it and {path.parent / MODEL} and rerun (a run whose checkpoint.pt is there "
           "is finished from it), or use --no-resume to set the run aside and start over")
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON ({err}); {fix}") from None
    lacking = [k for k in ("config", "best_epoch", "metrics", "history")
               if not isinstance(saved, dict) or k not in saved]
    if lacking:
        raise ValueError(f"{path} is not an mtvae metrics file (no {', '.join(lacking)}); {fix}")
    check_metrics(saved["metrics"], path, fix)
    try:
        return saved, RunConfig.from_dict(saved["config"])
    except (TypeError, AttributeError, ValueError) as err:
        raise ValueError(f"{path} holds no readable run config ({err}); {fix}") from None


# Types besides tensors and plain containers that mtvae's own files hold: earlier versions
# stored torch.__version__ (a TorchVersion, a str subclass) in the environment record, and a
# data_root given as a pathlib path in the config. Building either runs no code of the file's.
SAFE_GLOBALS = [torch.torch_version.TorchVersion, pathlib.PosixPath, pathlib.WindowsPath,
                pathlib.PurePosixPath, pathlib.PureWindowsPath]


def _safe_load(path: Path, map_location):
    if hasattr(torch.serialization, "safe_globals"):
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    return torch.load(path, map_location=map_location, weights_only=True)


def load_checkpoint(path: str | os.PathLike, map_location="cpu", trusted: bool = False) -> dict:
    """Load a checkpoint, model or prior file, with a clear error for corrupt or foreign files.

    Files are read with ``weights_only=True``: tensors and plain containers only, so a file from
    someone else cannot run code. ``trusted=True`` unpickles anything (only for files whose
    source you trust, e.g. your own written by an older mtvae).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = (torch.load(path, map_location=map_location, weights_only=False) if trusted
                else _safe_load(path, map_location))
    except pickle.UnpicklingError as err:
        if "unsupported global" not in str(err).lower():  # garbage, not a refused type
            raise ValueError(f"{path} is not a readable mtvae checkpoint (UnpicklingError); "
                             "delete it to start the run over") from None
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        refused = f"a {found.group(1)}" if found else "objects other than tensors"
        raise ValueError(f"{path} holds more than weights ({refused}), so it is not loaded "
                         "(loading it could run code): it was written by an older mtvae or by "
                         "someone else. Retrain (delete the file), or, only if you trust its "
                         "source, load it once with mtvae.checkpoint.load_checkpoint(path, "
                         "trusted=True) and save it again") from None
    except Exception as err:  # truncated zip, pickle garbage, ...
        raise ValueError(f"{path} is not a readable mtvae checkpoint ({type(err).__name__}: "
                         f"{err}); delete it to start the run over") from err
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path} is not an mtvae checkpoint (no config/model entries); "
                         "delete it to start the run over")
    return ckpt


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """(model, RunConfig) from a run folder, ``model.pt`` or ``checkpoint.pt`` (best weights)."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL if (path / MODEL).exists() else path / CHECKPOINT
    ckpt = load_checkpoint(path)
    config = RunConfig.from_dict(ckpt["config"])
    shape = tuple(ckpt["image_shape"])
    model = build_model(config.model, shape)
    best = ckpt.get("best") or {}
    state = best["state"] if best.get("state") is not None else ckpt["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} holds weights that do not fit this version's {config.model.family}"
                         f" model ({str(err).splitlines()[0]}); retrain the run (delete its "
                         "folder) or load it with the mtvae version that wrote it") from err
    return model.to(device).eval(), config


def rng_state(gens: dict[str, torch.Generator]) -> dict:
    state = {"torch": torch.get_rng_state(), "gens": {k: g.get_state() for k, g in gens.items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, gens: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    for k, g in gens.items():
        g.set_state(state["gens"][k])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
