"""Cross-validation jobs on a cluster through submitit (``pip install 'mtvae[slurm]'``).

    python -m mtvae crossval --dataset mnist --rows all --results /shared/results \\
        --launcher slurm --partition gpu --gpus-per-task 1 --time 04:00:00 --array-parallelism 8

One SLURM array task per small batch of fold jobs (``--jobs-per-task``, default 1). A task that is
preempted or reaches its time limit gets submitit's signal (USR2, 90 s before the end), is
requeued by submitit's checkpointing hook (:meth:`FoldTask.checkpoint`) and, when it runs again,
skips the folds it finished and continues the unfinished one from its ``checkpoint.pt`` (every
fold saves one after each epoch). ``--launcher local`` runs the same tasks as processes on this
machine through submitit's local executor (``debug``: in this process, for stepping through).
Submitit keeps each task's pickles and logs in ``--launcher-folder`` (default
``<results>/submitit``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .crossval import Settings, run_jobs
from .store import Job

__all__ = ["FoldTask", "submit", "batches", "slurm_parameters", "LAUNCHERS"]

log = logging.getLogger("mtvae")
LAUNCHERS = ("slurm", "local", "debug")


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ValueError("--launcher needs the submitit package: pip install submitit (or pip "
                         "install 'mtvae[slurm]'); --shard works without it") from None
    return submitit


class FoldTask:
    """One array task: some fold jobs, run one after the other with :func:`run_jobs`.

    Everything it needs travels in its pickle, nothing in memory: a requeued task is the same
    object called again, and the results store tells it which folds are done.
    """

    def __init__(self, jobs: list[Job], settings: Settings, results: str):
        self.jobs, self.settings, self.results = list(jobs), settings, str(results)

    def __call__(self) -> dict:
        from .logs import show

        show()  # the fold lines, with timestamps, in the task's stderr log
        summary = run_jobs(self.jobs, self.settings, self.results, keep_going=True)
        if summary["failed"]:
            raise RuntimeError("failed folds: " + "; ".join(f"{j.row} fold {j.fold}: {why}"
                                                            for j, why in summary["failed"]))
        return {k: len(v) for k, v in summary.items()}

    def checkpoint(self, *args, **kwargs):
        """submitit's hook on preemption or time-out: resubmit this task as it is (its folds
        resume from their checkpoints, finished ones are skipped)."""
        return _submitit().helpers.DelayedSubmission(self, *args, **kwargs)


def batches(jobs: list[Job], per_task: int) -> list[list[Job]]:
    """Consecutive groups of ``per_task`` jobs (the last may be shorter)."""
    if per_task < 1:
        raise ValueError(f"--jobs-per-task must be at least 1, got {per_task}")
    return [jobs[i:i + per_task] for i in range(0, len(jobs), per_task)]


def slurm_parameters(*, partition: str | None = None, gpus_per_task: int = 1,
                     time: str = "04:00:00", array_parallelism: int | None = None,
                     cpus_per_task: int | None = None, mem_gb: float | None = None) -> dict:
    """submitit's AutoExecutor parameters for the crossval flags (``time`` as [D-]HH:MM:SS)."""
    params = {"timeout_min": _minutes(time), "slurm_gpus_per_task": gpus_per_task,
              "slurm_ntasks_per_node": 1}
    if partition:
        params["slurm_partition"] = partition
    if array_parallelism is not None:
        if array_parallelism < 1:
            raise ValueError(f"--array-parallelism must be at least 1, got {array_parallelism}")
        params["slurm_array_parallelism"] = array_parallelism
    if cpus_per_task is not None:
        params["cpus_per_task"] = cpus_per_task
    if mem_gb is not None:
        params["mem_gb"] = mem_gb
    return params


def _minutes(text: str) -> int:
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    try:
        if not 1 <= len(parts) <= 3 or (days and not days.isdigit()):
            raise ValueError
        h, m, s = ([0] * (3 - len(parts)) + [int(p) for p in parts])
    except ValueError:
        raise ValueError(f"--time takes HH:MM:SS or D-HH:MM:SS (e.g. 04:00:00), got {text!r}"
                         ) from None
    return max(1, (int(days or 0) * 24 + h) * 60 + m + (1 if s else 0))


def submit(jobs: list[Job], settings: Settings, results: str | os.PathLike, *,
           launcher: str = "slurm", folder: str | os.PathLike | None = None,
           jobs_per_task: int = 1, **slurm) -> list:
    """Submit ``jobs`` as submitit tasks (one per ``jobs_per_task`` jobs, an array on SLURM);
    returns the submitit jobs (``job.result()`` waits for one). ``slurm``: see
    :func:`slurm_parameters`; the local executor takes only the time limit."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"--launcher takes one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    submitit = _submitit()
    folder = Path(folder) if folder is not None else Path(results) / "submitit"
    params = slurm_parameters(**slurm)
    try:
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=launcher)
    except RuntimeError as err:  # no srun / sbatch here
        raise ValueError(f"--launcher slurm: {err} Submit from the cluster's login node; "
                         "--launcher local runs the same tasks on this machine") from None
    if launcher == "slurm":
        executor.update_parameters(name="mtvae-crossval", **params)
    else:  # local / debug: no partition, GPUs or array limit to honour
        executor.update_parameters(timeout_min=params["timeout_min"])
    tasks = [FoldTask(group, settings, str(results)) for group in batches(jobs, jobs_per_task)]
    if not tasks:
        return []
    with executor.batch():  # one SLURM array (and one sbatch call) for all tasks
        submitted = [executor.submit(task) for task in tasks]
    log.info("submitted %d task(s) for %d fold job(s) via %s; logs in %s", len(submitted),
             len(jobs), launcher, folder)
    return submitted
