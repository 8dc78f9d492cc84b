"""K-fold cross-validation of the thesis grid as resumable, shardable jobs (thesis section 4.3).

A *job* is one fold of one row on one dataset, ``(dataset, row, fold)``. It trains with
:func:`mtvae.train.fit` on the other k - 1 folds, keeps the epoch with the lowest validation loss
(validation = a seeded half of the official test split) and is evaluated on its held-out fold:
the numbers behind the thesis's Table 4.1 (original_code.md sections 7.2 and 8). Each finished
job is one JSON file in the results store (:mod:`mtvae.store`), written atomically.

So a rerun skips finished jobs and a killed sweep resumes each unfinished fold from its last
finished epoch. ``shard=(i, n)`` takes every n-th job of the canonical job list, so n workers (a
SLURM array, one process per GPU, machines sharing a folder) cover the grid exactly once with no
coordinator; :func:`collect` merges stores that were written on separate machines.

    from mtvae import crossval
    crossval.run_rows("mnist", rows="all", results="results", epochs=100)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import atomic_write_json, ensure_writable_dir, environment
from .config import RunConfig, check_fields
from .data import ImageData, dataset_key, load_dataset
from .grid import ROWS, select_rows
from .models import build_model
from .protocol import add_protocol_argument, amp_option, check_protocol
from .store import Job, claim, collect, fold_file, load_record, load_results, missing, release
from .train import fit, resolve_device

__all__ = ["Job", "Settings", "plan", "parse_shard", "shard", "job_config", "run_jobs",
           "run_rows", "collect", "load_results", "missing"]

logger = logging.getLogger("mtvae")
FORMAT = 1  # version of the fold-result JSON layout (see mtvae.store)


@dataclass
class Settings:
    """What every job of a sweep shares. Workers of one sharded sweep must use the same."""

    folds: int = 5  # thesis: 5-fold cross-validation (section 4.3)
    epochs: int = 100  # thesis: 100 epochs per fold, best epoch by validation loss
    limit: int | None = None  # k-fold over a seeded subset of N training images (quick runs)
    seed: int = 0  # seeds initial weights, batch order, masks (see same_init)
    # True: every fold starts from the weights the row's seed gives and trains with that seed,
    # as the thesis restored one initial checkpoint per fold (original_code.md 7.2, step 3).
    # False: fold k uses seed + k for everything, so the spread includes initialisation.
    same_init: bool = True
    protocol: str = "mtvae"  # 'thesis': the thesis code's switches (mtvae.protocol); 'mtvae'
    device: str = "auto"
    data_root: str | None = None
    # Files kept in a finished fold's run folder: 'none' (the JSON result suffices; the
    # conditioned models are large: a VQ config 3 multidecoder on CelebA has 544 M parameters,
    # 2 GB per fold, original_code.md 4.5), the best-epoch 'model', or 'all' (+ checkpoint).
    keep: str = "none"
    options: dict = field(default_factory=dict)  # more make_config options: lr, progress, ...

    def __post_init__(self) -> None:
        check_fields(self)  # folds="5" is a ValueError naming folds, not a TypeError
        if self.keep not in ("all", "model", "none"):
            raise ValueError(f"keep must be 'all', 'model' or 'none', got {self.keep!r}")
        check_protocol(self.protocol)
        if self.folds < 2:
            raise ValueError(f"cross-validation needs at least 2 folds, got {self.folds}")


def plan(datasets: str | list[str], rows="all", folds: int = 5) -> list[Job]:
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


def run_rows(dataset: str | list[str] = "mnist-sample", rows="all",
             results: str | os.PathLike = "results", *, folds: int = 5, epochs: int = 100,
             limit: int | None = None, seed: int = 0, same_init: bool = True,
             protocol: str = "mtvae", thesis_protocol: bool = False, device: str = "auto",
             shard_spec=None,
             data: ImageData | None = None, keep: str = "none", keep_going: bool = False,
             data_root: str | None = None, callback=None, log=logger.info, **options) -> dict:
    """Cross-validate ``rows`` (names, patterns, 'all', 'sweep'; see :func:`mtvae.grid.select_rows`)
    into the store ``results``: the one-line entry point for notebooks and the CLI.

    protocol:   'thesis' (what the thesis code ran; ``thesis_protocol=True`` is the older
                spelling) or 'mtvae' (our corrected defaults); see :mod:`mtvae.protocol`.
    shard_spec: (i, n) or 'i/n' to run only this worker's part of the jobs.
    options:    further make_config options, e.g. ``lr=3e-4``, ``progress=False``.
    """
    settings = Settings(folds, epochs, limit, seed, same_init,
                        "thesis" if thesis_protocol else protocol, device, data_root, keep,
                        options)
    jobs = plan(dataset, rows, folds)
    if isinstance(shard_spec, str):
        shard_spec = parse_shard(shard_spec)
    if shard_spec is not None:
        jobs = shard(jobs, *shard_spec)
    return run_jobs(jobs, settings, results, data=data, keep_going=keep_going,
                    callback=callback, log=log)





# ------------------------------------------------------------------------------ command line


def add_crossval_parser(sub) -> None:
    p = sub.add_parser("crossval", help="k-fold cross-validate rows of the thesis grid "
                       "(Table 4.1, exponent sweep); resumable and shardable",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    from .images import add_image_arguments
    from .launch import add_launcher_arguments
    from .runfiles import add_config_arguments

    p.add_argument("--dataset", nargs="+", default=["mnist-sample"],
                   help="mnist | fashion-mnist | cifar10 | celeba | mnist-sample | folder:PATH "
                   "(your own PNG/JPEG images; k-fold over the folder's training pool)")
    add_image_arguments(p)
    add_config_arguments(p, "crossval")
    p.add_argument("--rows", nargs="+", default=["all"],
                   help="all (the 45 table rows) | sweep | grid | row names | patterns "
                   "such as 'vq1-*'")
    p.add_argument("--list-rows", action="store_true", help="print the row names and exit")
    p.add_argument("--folds", type=int, default=5, help="k of the k-fold split (thesis: 5)")
    p.add_argument("--epochs", type=int, default=100, help="per fold (thesis: 100)")
    p.add_argument("--limit", type=int, default=None, help="k-fold over N training images")
    p.add_argument("--seed", type=int, default=0, help="initial weights, batch order, masks")
    p.add_argument("--per-fold-seeds", action="store_true",
                   help="fold k uses seed + k (own initial weights) instead of the same ones")
    add_protocol_argument(p)
    p.add_argument("--shard", default=None,
                   help="i/n: run every n-th job from i (0-based); 'slurm': from the array task")
    p.add_argument("--results", default="results", help="results store (shared by workers)")
    p.add_argument("--keep", default="none", choices=["all", "model", "none"],
                   help="what stays in a finished fold's run folder: nothing (the JSON has the "
                   "results), the best-epoch model.pt, or all (with checkpoint.pt)")
    p.add_argument("--keep-going", action="store_true", help="log a failed fold and go on")
    p.add_argument("--dry-run", action="store_true", help="list this worker's jobs and exit")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--data-root", default=None)
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (thesis)")
    p.add_argument("--batch-size", type=int, default=128, help="(thesis: 128)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile each model")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (batch logs)")
    add_launcher_arguments(p)
    p.set_defaults(func=_cmd_crossval, _parser=p)


def settings_from_args(args) -> Settings:
    """The :class:`Settings` a parsed ``crossval`` command line stands for (with ``--config
    FILE``: the file's, the flags given on top, :func:`mtvae.runfiles.crossval_args`)."""
    from .runfiles import crossval_args

    args = crossval_args(args)
    options = dict(lr=args.lr, batch_size=args.batch_size, **amp_option(args),
                   compile=args.compile, progress=not args.no_progress)
    if args.log == "tensorboard":
        options["tensorboard"] = True
    options.update(getattr(args, "file_options", {}))
    return Settings(args.folds, args.epochs, args.limit, args.seed, not args.per_fold_seeds,
                    args.protocol, args.device, args.data_root, args.keep, options)


def _datasets(args) -> list[str]:
    from .images import with_options

    return [with_options(d, args.size, args.channels, args.crop) if d.lower().startswith(
        "folder:") else d for d in args.dataset]


def _cmd_crossval(args) -> int:
    from .runfiles import crossval_args, print_config

    if args.list_rows:
        print("\n".join(r.name for r in select_rows(args.rows)))
        return 0
    args = crossval_args(args)
    shard_spec = parse_shard(args.shard)
    jobs = plan(_datasets(args), args.rows, args.folds)
    if args.print_config:  # the first job's: what every job shares, the row aside
        if not jobs:
            raise ValueError("no jobs to print a config for (--rows, --shard)")
        print_config(job_config(jobs[0], settings_from_args(args)))
        return 0
    if shard_spec is not None:
        jobs = shard(jobs, *shard_spec)
    if args.dry_run:
        todo, bad = set(missing(jobs, args.results)), 0
        for job in jobs:
            state = "to run" if job in todo else "done"
            if job not in todo:
                try:
                    load_record(fold_file(args.results, job),
                                job_config(job, settings_from_args(args)))
                except ValueError as err:
                    why = "other settings" if "different run" in str(err) else "corrupt"
                    state, bad = f"{why} ({err})", bad + 1
            print(f"{job.dataset} {job.row} fold {job.fold}: {state}")
        print(f"{len(todo)} of {len(jobs)} jobs to run" + (
            f"; {bad} fold file(s) corrupt or from other settings: delete them to rerun those "
            "folds" if bad else ""))
        return 0
    settings = settings_from_args(args)
    if args.launcher is not None:
        from .launch import launch_from_args

        return launch_from_args(missing(jobs, args.results), settings, args)
    summary = run_jobs(jobs, settings, args.results, keep_going=args.keep_going)
    busy = f", {len(summary['running'])} being trained by another process" \
        if summary["running"] else ""
    print(f"{len(summary['done'])} run, {len(summary['skipped'])} skipped (done before), "
          f"{len(summary['failed'])} failed{busy}; results in {args.results}")
    return 1 if summary["failed"] else 0


def add_collect_parser(sub) -> None:
    p = sub.add_parser("collect", help="merge results stores and write <results>/folds.csv")
    p.add_argument("--results", default="results", help="the store to merge into")
    p.add_argument("--from", dest="sources", nargs="*", default=[],
                   help="other stores (e.g. copied back from other machines)")
    p.set_defaults(func=_cmd_collect)


def _cmd_collect(args) -> int:
    frame = collect(args.results, args.sources)
    if not len(frame):
        print(f"no fold results under {args.results}")
        return 1
    counts = frame.groupby(["dataset"]).agg(rows=("row", "nunique"), fold_runs=("fold", "size"))
    print(counts.to_string())
    print(f"wrote {Path(args.results) / 'folds.csv'}")
    return 0
