"""Run the notebooks in order with papermill: ``python -m mtvae reproduce --profile quick``.

Each notebook runs in its own ``papermill`` process (kernel ``python3``) with the parameters
PROFILE, SEED, DEVICE, RESULTS_DIR and FIGURES_DIR (plus DATASET, EPOCHS, PROTOCOL and DATA_ROOT
when given). The
executed notebooks and a log per notebook go to the output folder, figures to FIGURES_DIR; per
notebook the wall time, the CPU time and the peak memory (max RSS of the papermill process and
its kernel) are printed. The first failing notebook stops the run with its error and a non-zero
exit status.

``update_notebooks=True`` also writes the executed notebooks back into the notebook folder with
images and widget state removed and text outputs kept: what the repository commits, so that
``pytest --nbval-lax`` has the outputs of the ``# NBVAL_CHECK_OUTPUT`` cells to compare.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NotebookRun", "find_notebooks", "run_notebooks", "strip_outputs"]

KERNEL = "python3"
_KEEP_MIMES = ("text/plain", "text/html", "text/markdown")  # small, diff-able outputs


@dataclass
class NotebookRun:
    notebook: str
    output: Path
    log: Path
    seconds: float
    peak_mib: float | None
    returncode: int
    cpu_seconds: float | None = None  # user + system time of papermill and its kernel

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def default_notebook_dir() -> Path:
    """``./notebooks`` if it exists, else the repository's (next to the installed package)."""
    for candidate in (Path.cwd() / "notebooks", Path(__file__).resolve().parents[1] / "notebooks"):
        if candidate.is_dir() and any(candidate.glob("[0-9][0-9]_*.ipynb")):
            return candidate
    raise FileNotFoundError("no notebooks folder found (looked in ./notebooks and next to the "
                            "mtvae package); run from the repository root or pass --notebook-dir")


def find_notebooks(folder: str | os.PathLike, select: list[str] | None = None) -> list[Path]:
    """The numbered notebooks (``01_background.ipynb``, ...) of ``folder`` in order; ``select``
    keeps those whose name starts with one of its entries (``["01", "03_single"]``)."""
    folder = Path(folder)
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {folder}")
    if select:
        chosen = [nb for nb in notebooks if any(nb.name.startswith(s) for s in select)]
        unknown = [s for s in select if not any(nb.name.startswith(s) for nb in notebooks)]
        if unknown:
            raise ValueError(f"no notebook matches {unknown}; have "
                             f"{[nb.name for nb in notebooks]}")
        notebooks = chosen
    return notebooks


def _run_one(notebook: Path, output: Path, log: Path, parameters: dict):
    """papermill in a child process; returns its exit status, peak RSS in MiB and CPU seconds.

    os.wait4 gives the child's resource usage including its waited-for children (the kernel),
    so each notebook's peak is its own, not the maximum over the whole run.
    """
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-k", KERNEL,
           "--cwd", str(notebook.parent), "-y", json.dumps(parameters), "--log-output",
           "--no-progress-bar"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
        if hasattr(os, "wait4"):
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            # ru_maxrss is in KiB on Linux, bytes on macOS
            scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
            return proc.returncode, usage.ru_maxrss * scale, usage.ru_utime + usage.ru_stime
        return proc.wait(), None, None


def strip_outputs(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy an executed notebook keeping only small text outputs: no images, no widget views or
    widget state, no papermill parameters cell or timing metadata (what the repository
    commits)."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    # papermill's cell with this run's parameters (absolute paths): the defaults stay
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if not cell.metadata.get("tags", True):
            cell.metadata.pop("tags")  # papermill adds an empty list to every cell
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.output_type in ("display_data", "execute_result"):
                data = {k: v for k, v in out.data.items() if k in _KEEP_MIMES}
                if not data or set(out.data) - set(_KEEP_MIMES):
                    continue  # a figure or widget (its text/plain is only a placeholder)
                out.data = data
                out.metadata = {}
            kept.append(out)
        cell.outputs = kept
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    nbformat.write(nb, target)


def run_notebooks(profile: str, output: str | os.PathLike, *, notebooks: list[str] | None = None,
                  notebook_dir: str | os.PathLike | None = None,
                  figures_dir: str | os.PathLike = "figures",
                  results_dir: str | os.PathLike | None = None, dataset: str | None = None,
                  epochs: int | None = None, seed: int = 0, device: str = "auto",
                  protocol: str | None = None, data_root: str | os.PathLike | None = None,
                  update_notebooks: bool = False, echo=None) -> list[NotebookRun]:
    """Execute the notebooks in order; stops at the first failure (see the module docstring)."""
    from .profiles import PROFILES

    echo = echo or (lambda text: print(text, flush=True))
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    folder = Path(notebook_dir) if notebook_dir is not None else default_notebook_dir()
    chosen = find_notebooks(folder, notebooks)
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    parameters = {"PROFILE": profile, "SEED": seed, "DEVICE": device,
                  "RESULTS_DIR": str(Path(results_dir or output / "results").resolve()),
                  "FIGURES_DIR": str(Path(figures_dir).resolve())}
    if dataset is not None:
        parameters["DATASET"] = dataset
    if epochs is not None:
        parameters["EPOCHS"] = epochs
    if protocol is not None:
        parameters["PROTOCOL"] = protocol
    if data_root is not None:
        parameters["DATA_ROOT"] = str(Path(data_root).resolve())
    echo(f"reproduce: profile {profile}, {len(chosen)} notebook(s) from {folder} -> {output}; "
         f"figures -> {parameters['FIGURES_DIR']}")
    runs: list[NotebookRun] = []
    for nb in chosen:
        out, log = output / nb.name, output / f"{nb.stem}.log"
        t0 = time.perf_counter()
        code, peak, cpu = _run_one(nb, out, log, parameters)
        run = NotebookRun(nb.name, out, log, time.perf_counter() - t0, peak, code, cpu)
        runs.append(run)
        echo(f"  {nb.name:<28} {'ok' if run.ok else 'FAILED':<6} {_usage(run)}")
        if not run.ok:
            echo(f"\n{nb.name} failed (exit {code}); the executed notebook with the error is "
                 f"{out}, the log {log}. Its last lines:\n")
            echo("\n".join(log.read_text(errors="replace").splitlines()[-30:]))
            break
        if update_notebooks:
            strip_outputs(out, nb)
    peaks = [r.peak_mib for r in runs if r.peak_mib is not None]
    cpus = [r.cpu_seconds for r in runs if r.cpu_seconds is not None]
    total = NotebookRun("total", output, output, sum(r.seconds for r in runs),
                        max(peaks) if peaks else None, 0, sum(cpus) if cpus else None)
    echo(f"  {'total':<28} {'':<6} {_usage(total)}")
    return runs


def _usage(run: NotebookRun) -> str:
    text = f"wall {run.seconds:7.1f} s"
    if run.cpu_seconds is not None:
        text += f"   cpu {run.cpu_seconds:7.1f} s"
    if run.peak_mib is not None:
        text += f"   peak {run.peak_mib:,.0f} MiB"
    return text
