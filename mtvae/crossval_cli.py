"""``python -m mtvae crossval`` and ``collect``: the command line of :mod:`mtvae.crossval`
(run here, ``--shard`` for any scheduler, ``--launcher`` through submitit, :mod:`mtvae.launch`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .crossval import Settings, job_config, parse_shard, plan, run_jobs, shard
from .grid import select_rows
from .protocol import add_protocol_argument, amp_option
from .store import collect, fold_file, load_record, missing

__all__ = ["add_crossval_parser", "add_collect_parser", "settings_from_args"]



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
