"""K-fold cross-validation of the thesis grid as resumable, shardable jobs (thesis section 4.3).

A *job* is one fold of one row on one dataset, ``(dataset, row, fold)``. It trains with
:func:`mtvae.train.fit` on the other k - 1 folds, keeps the epoch with the lowest validation loss
(validation = a seeded half of the official test split) and is evaluated on its held-out fold:
the numbers behind the thesis's Table 4.1 (docs/thesis_code.md#crossval-loop and
docs/thesis_code.md#tables). Each finished job is one JSON file in the results store
(:mod:`mtvae.store`), written atomically.

So a rerun skips finished jobs and a killed sweep resumes each unfinished fold from its last
finished epoch. ``shard=(i, n)`` takes every n-th job of the canonical job list, so n workers (a
SLURM array, one process per GPU, machines sharing a folder) cover the grid exactly once with no
coordinator; :func:`collect` merges stores that were written on separate machines.

    from mtvae import crossval
    crossval.run_rows("mnist", rows="all", results="results", epochs=100)
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from .checkpoint import atomic_write_json, ensure_writable_dir, environment
from .config import DataConfig, RunConfig, TrainConfig, check_fields, like, option
from .data import ImageData, dataset_key, load_dataset
from .grid import ROWS, select_rows
from .models import build_model
from .protocol import check_protocol
from .store import Job, claim, collect, fold_file, load_record, load_results, missing, release
from .train import fit, resolve_device

__all__ = ["Job", "Settings", "plan", "parse_shard", "shard", "job_config", "run_jobs",
           "run_rows", "collect", "load_results", "missing"]

logger = logging.getLogger("mtvae")
FORMAT = 1  # version of the fold-result JSON layout (see mtvae.store)
KEEP = ("all", "model", "none")  # what a finished fold's run folder may keep (Settings.keep)


@dataclass
class Settings:
    """What every job of a sweep shares. Workers of one sharded sweep must use the same.

    Each field with a command-line option (``python -m mtvae crossval``) is built from it; the
    defaults are those of the config fields they repeat (:func:`mtvae.config.like`)."""

    folds: int = like(DataConfig, "folds")  # thesis: 5-fold cross-validation (section 4.3)
    # thesis: 100 epochs per fold, best epoch by validation loss
    epochs: int = like(TrainConfig, "epochs", help="epochs per fold; the best validation epoch "
                       "is kept (thesis section 4.3: 100)")
    limit: int | None = like(DataConfig, "limit", help="k-fold over a seeded subset of N "
                             "training images (quick runs)")
    seed: int = like(TrainConfig, "seed", help="initial weights, batch order, masks (see "
                     "--per-fold-seeds)")
    # True: every fold starts from the weights the row's seed gives and trains with that seed,
    # as the thesis restored one initial checkpoint per fold (docs/thesis_code.md#crossval-loop).
    # False: fold k uses seed + k for everything, so the spread includes initialisation.
    same_init: bool = option(True, "every fold starts from the same initial weights (thesis)",
                             flag="--per-fold-seeds", flag_help="fold k uses seed + k (own "
                             "initial weights) instead of the same ones")
    protocol: str = like(TrainConfig, "protocol")  # 'thesis': the thesis code's switches
    device: str = like(TrainConfig, "device")
    data_root: str | None = like(DataConfig, "root")
    # Files kept in a finished fold's run folder: 'none' (the JSON result suffices; the
    # conditioned models are large: a VQ config 3 multidecoder on CelebA has 544 M parameters,
    # 2 GB per fold, docs/thesis_code.md#parameter-counts), the best-epoch 'model', or 'all'
    # (+ checkpoint).
    keep: str = option("none", "what stays in a finished fold's run folder: nothing (the JSON "
                       "has the results), the best-epoch model.pt, or all (with checkpoint.pt)",
                       choices=KEEP)
    options: dict = field(default_factory=dict)  # more make_config options: lr, progress, ...

    @classmethod
    def from_options(cls, **options) -> Settings:
        """Settings from flat keywords: its own fields by name, the rest into ``options``."""
        own = {f.name for f in fields(cls)} - {"options"}
        extra = {k: options.pop(k) for k in list(options) if k not in own}
        return cls(**options, options={**extra.pop("options", {}), **extra})

    def __post_init__(self) -> None:
        check_fields(self)  # folds="5" is a ValueError naming folds, not a TypeError
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {self.keep!r}")
        check_protocol(self.protocol)
        if self.folds < 2:
            raise ValueError(f"cross-validation needs at least 2 folds, got {self.folds}")


def plan(datasets: str | list[str], rows="all", folds: int = Settings.folds) -> list[Job]:
    """All jobs in canonical order: datasets sorted, rows in grid order, folds ascending."""
    names = sorted({dataset_key(d) for d in ([datasets] if isinstance(datasets, str)
                                              else datasets)})
    return [Job(d, r.name, k) for d in names for r in select_rows(rows) for k in range(folds)]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'i/n' (0 <= i < n) -> (i, n); 'slurm' reads the SLURM array task id and count."""
    if text is None:
        return None
    if text == "slurm":
        try:
            i = int(os.environ["SLURM_ARRAY_TASK_ID"]) - int(os.environ.get(
                "SLURM_ARRAY_TASK_MIN", 0))
            n = int(os.environ["SLURM_ARRAY_TASK_COUNT"])
        except KeyError as err:
            raise ValueError(f"--shard slurm needs ${err.args[0]}: run it inside "
                             "sbatch --array") from None
        return shard_range(i, n)
    i, sep, n = text.partition("/")
    if not sep or not i.strip().isdigit() or not n.strip().isdigit():
        raise ValueError(f"--shard takes i/n with 0 <= i < n (e.g. 0/8), got {text!r}")
    return shard_range(int(i), int(n))


def shard_range(i: int, n: int) -> tuple[int, int]:
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard i/n needs n >= 1 and 0 <= i < n, got {i}/{n}")
    return i, n


def shard(jobs: list[Job], i: int, n: int) -> list[Job]:
    """Every n-th job starting at i: disjoint for different i, and together all jobs. Round
    robin rather than blocks, so each worker gets a similar mix of cheap and costly rows."""
    shard_range(i, n)
    return jobs[i::n]


def job_config(job: Job, s: Settings) -> RunConfig:
    seed = s.seed if s.same_init else s.seed + job.fold
    return ROWS[job.row].run_config(
        job.dataset, protocol=s.protocol, epochs=s.epochs, fold=job.fold,
        folds=s.folds, limit=s.limit, seed=seed, device=s.device, data_root=s.data_root,
        **s.options)


def _initial_state(config: RunConfig, shape) -> dict:
    # The weights fit() would draw with this seed, built once per row and handed to every fold.
    torch.manual_seed(config.train.seed)
    return build_model(config.model, shape).state_dict()


def run_jobs(jobs: list[Job], settings: Settings, results: str | os.PathLike, *,
             data: ImageData | None = None, keep_going: bool = False, callback=None,
             log=logger.info) -> dict:
    """Run the unfinished ``jobs``; returns {'done': [...], 'skipped': [...], 'failed': [...],
    'running': [...]} (running: held by another worker's lock, see :func:`mtvae.store.claim`).

    data:       a preloaded dataset (else each dataset is loaded once, when first needed).
    keep_going: log a failed fold (e.g. a diverged loss, a corrupt fold file) and go on; else
                the error propagates.
    callback:   passed to fit, called as callback(epoch, record) after every epoch.
    """
    summary: dict[str, list] = {"done": [], "skipped": [], "failed": [], "running": []}
    resolve_device(settings.device)  # a bad --device or --results stops before the first job
    ensure_writable_dir(results, "--results")
    loaded: dict[str, ImageData] = {data.name: data} if data is not None else {}
    inits: dict[tuple[str, str], dict] = {}
    for n, job in enumerate(jobs, 1):
        tag = f"[{n}/{len(jobs)}] {job.dataset} {job.row} fold {job.fold}"
        path, config = fold_file(results, job), job_config(job, settings)
        lock = None
        if not path.exists() and (lock := claim(path)) is None:
            summary["running"].append(job)  # two workers given the same job: one trains it
            log(f"{tag}: being trained by another process, skipped")
            continue
        try:
            if path.exists():  # finished before, or meanwhile by another worker
                try:
                    load_record(path, config)  # a different or corrupt result is an error
                except ValueError as err:
                    if not keep_going:
                        raise
                    summary["failed"].append((job, str(err)))
                    log(f"{tag}: FAILED ({err})")
                    continue
                summary["skipped"].append(job)
                log(f"{tag}: done before, skipped")
                continue
            if job.dataset not in loaded:
                loaded[job.dataset] = load_dataset(job.dataset, settings.data_root)
            images = loaded[job.dataset]
            init = None
            if settings.same_init:
                key = (job.dataset, job.row)
                if key not in inits:
                    inits[key] = _initial_state(config, images.shape)
                init = inits[key]
            t0 = time.perf_counter()
            try:
                result = fit(config, path.with_suffix(""), data=images, init_state=init,
                             callback=callback)
            except Exception as err:  # noqa: BLE001 - KeyboardInterrupt still stops the sweep
                if not keep_going:
                    raise
                summary["failed"].append((job, f"{type(err).__name__}: {err}"))
                log(f"{tag}: FAILED ({type(err).__name__}: {err})")
                continue
            record = _record(job, settings, config, result, time.perf_counter() - t0)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(record, path)
            _tidy(path.with_suffix(""), settings.keep)
            summary["done"].append(job)
            test = record["metrics"]["test"]
            log(f"{tag}: " + ", ".join(f"{k} {test[k]:.4g}" for k in ("recon", "recon_cond",
                                                                      "kl", "vq") if k in test)
                + f" (best epoch {record['best_epoch']}, {record['seconds']:.0f} s)")
        finally:
            release(lock, path)
    return summary


def _record(job: Job, s: Settings, config: RunConfig, result, seconds: float) -> dict:
    env = result.extra.get("environment") or environment(resolve_device(s.device))
    return {"format": FORMAT, "dataset": job.dataset, "row": job.row, "fold": job.fold,
            "folds": s.folds, "seed": config.train.seed,
            "init": "shared" if s.same_init else "per-fold",
            "protocol": s.protocol, "thesis_protocol": s.protocol == "thesis",
            "best_epoch": result.best_epoch,
            "epochs": len(result.history), "n_params": result.extra.get("n_params"),
            "metrics": result.metrics, "history": result.history,
            "config": (result.config or config).to_dict(),  # as run (a limit may be clamped)
            "pool_size": result.extra.get("pool_size"), "environment": env,
            "seconds": round(seconds, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _tidy(run_dir: Path, keep: str) -> None:
    from .logs import CONFIG, CSV, TENSORBOARD

    if keep == "none" and (run_dir / TENSORBOARD).is_dir():
        # --log tensorboard asked for the logs: they stay (small), the weights go
        for p in run_dir.iterdir():
            if p.is_dir() and p.name != TENSORBOARD:
                shutil.rmtree(p, ignore_errors=True)
            elif p.is_file() and p.name not in (CSV, CONFIG):
                p.unlink(missing_ok=True)
    elif keep == "none":
        shutil.rmtree(run_dir, ignore_errors=True)
    elif keep == "model":
        (run_dir / "checkpoint.pt").unlink(missing_ok=True)  # optimizer state: 3x the model


def run_rows(dataset: str | list[str] = DataConfig.dataset, rows="all",
             results: str | os.PathLike = "results", *, thesis_protocol: bool = False,
             shard_spec=None, data: ImageData | None = None, keep_going: bool = False,
             callback=None, log=logger.info, **settings) -> dict:
    """Cross-validate ``rows`` (names, patterns, 'all', 'sweep'; see :func:`mtvae.grid.select_rows`)
    into the store ``results``: the one-line entry point for notebooks and the CLI.

    settings:   :class:`Settings` fields by name (``folds=5``, ``epochs=100``, ``seed``,
                ``same_init``, ``protocol``, ``device``, ``data_root``, ``keep``; their defaults)
                and further make_config options, e.g. ``lr=3e-4``, ``progress=False``.
    protocol:   'thesis' (what the thesis code ran; ``thesis_protocol=True`` is the older
                spelling) or 'mtvae' (our corrected defaults); see :mod:`mtvae.protocol`.
    shard_spec: (i, n) or 'i/n' to run only this worker's part of the jobs.
    """
    if thesis_protocol:
        settings["protocol"] = "thesis"
    settings = Settings.from_options(**settings)
    jobs = plan(dataset, rows, settings.folds)
    if isinstance(shard_spec, str):
        shard_spec = parse_shard(shard_spec)
    if shard_spec is not None:
        jobs = shard(jobs, *shard_spec)
    return run_jobs(jobs, settings, results, data=data, keep_going=keep_going,
                    callback=callback, log=log)
