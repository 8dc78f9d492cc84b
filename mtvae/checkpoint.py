"""Run files: atomic writes, checkpoints that fail clearly, loading a trained model, and the
environment record (library versions, device, git commit) stored with every result.

A run folder holds ``checkpoint.pt`` (everything needed to resume, rewritten every epoch),
``model.pt`` (the best epoch's weights and the run's config) and ``metrics.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path

import torch

from . import __version__
from .config import RunConfig
from .models import build_model

__all__ = ["CHECKPOINT", "METRICS", "MODEL", "atomic_save", "atomic_write_json", "cpu_state",
           "environment", "load_checkpoint", "load_model", "rng_state", "set_rng_state"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
MODEL = "model.pt"


def environment(device: torch.device | None = None) -> dict:
    """Library versions, device and git commit, stored with every result."""
    env = {"mtvae": __version__, "torch": torch.__version__, "python": platform.python_version(),
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


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file, fsync, then rename: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(obj, path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint or model file, with a clear error for corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated zip, pickle garbage, ...
        raise ValueError(f"{path} is not a readable mtvae checkpoint ({type(err).__name__}: "
                         f"{err}); delete it to start the run over") from err
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path} is not an mtvae checkpoint (no config/model entries)")
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
