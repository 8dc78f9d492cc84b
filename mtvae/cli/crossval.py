"""``python -m mtvae crossval``, ``collect``, ``table`` and ``claims``: the command line of
:mod:`mtvae.crossval` (run here, ``--shard`` for any scheduler, ``--launcher`` through submitit,
:mod:`mtvae.launch`) and of the tables built from a results store.

The options that set a :class:`~mtvae.crossval.Settings` field are built from the field, so
:func:`settings_from_args` and its inverse :func:`crossval_command` (the command line that a
notebook profile prints) read and write the same options.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import shlex
from dataclasses import fields
from pathlib import Path

from ..config import DataConfig, TrainConfig
from ..crossval import Settings, job_config, parse_shard, plan, run_jobs, shard
from ..grid import select_rows
from ..store import collect, fold_file, load_record, missing
from .commands import TRAIN_OPTIONS
from .options import (
    add_field,
    add_image_arguments,
    add_protocol,
    command_words,
    dataset_names,
    field_dest,
    field_value,
    field_values,
    flag_value,
)

__all__ = ["add_crossval", "add_collect", "add_table", "add_claims", "settings_from_args",
           "settings_args", "crossval_command"]

log = logging.getLogger("mtvae")
SETTINGS = [f.name for f in fields(Settings) if f.name != "options"]  # each has an option


def add_crossval(sub) -> argparse.ArgumentParser:
    from ..runfiles import add_config_arguments

    p = sub.add_parser("crossval", help="k-fold cross-validate rows of the thesis grid "
                       "(Table 4.1, exponent sweep); resumable and shardable",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_field(p, DataConfig, "dataset", nargs="+", help="mnist | fashion-mnist | cifar10 | "
              "celeba | mnist-sample | folder:PATH (your own PNG/JPEG images; k-fold over the "
              "folder's training pool)")
    add_image_arguments(p)
    add_config_arguments(p, "crossval")
    p.add_argument("--rows", nargs="+", default=["all"],
                   help="all (the 45 table rows) | sweep | grid | row names | patterns "
                   "such as 'vq1-*'")
    p.add_argument("--list-rows", action="store_true", help="print the row names and exit")
    for name in ("folds", "epochs", "limit", "seed", "same_init"):
        add_field(p, Settings, name)
    add_protocol(p, Settings)
    p.add_argument("--shard", default=None,
                   help="i/n: run every n-th job from i (0-based); 'slurm': from the array task")
    p.add_argument("--results", default="results", help="results store (shared by workers)")
    add_field(p, Settings, "keep")
    p.add_argument("--keep-going", action="store_true", help="log a failed fold and go on")
    p.add_argument("--dry-run", action="store_true", help="list this worker's jobs and exit")
    add_field(p, Settings, "device")
    add_field(p, Settings, "data_root")
    for name in TRAIN_OPTIONS:
        add_field(p, TrainConfig, name)
    _add_launcher_arguments(p)
    p.set_defaults(func=_cmd_crossval, _parser=p)
    return p


def settings_from_args(args) -> Settings:
    """The :class:`Settings` a parsed ``crossval`` command line stands for (with ``--config
    FILE``: the file's, the flags given on top, :func:`mtvae.runfiles.crossval_args`)."""
    from ..runfiles import crossval_args

    args = crossval_args(args)
    options = field_values(args, TrainConfig, TRAIN_OPTIONS, changed=True)
    if args.log == "tensorboard":
        options["tensorboard"] = True
    options.update(getattr(args, "file_options", {}))
    return Settings(**{name: field_value(args, Settings, name) for name in SETTINGS},
                    options=options)


def settings_args(settings: Settings) -> dict:
    """The inverse of :func:`settings_from_args`: {dest: value} of the options that give
    ``settings``; ValueError for an option the command line cannot set (use --config FILE)."""
    values = {field_dest(Settings, n): flag_value(Settings, n, getattr(settings, n))
              for n in SETTINGS}
    options = dict(settings.options)
    if options.pop("tensorboard", False):
        values["log"] = "tensorboard"
    for name in TRAIN_OPTIONS:
        if name in options:
            values[field_dest(TrainConfig, name)] = flag_value(TrainConfig, name,
                                                               options.pop(name))
    if options:
        raise ValueError(f"crossval has no option for {sorted(options)}; put them in a "
                         "RunConfig file (--config)")
    return values


def crossval_command(datasets: list[str], rows: list[str], results, settings: Settings,
                     leave_out: tuple[str, ...] = ()) -> str:
    """``python -m mtvae crossval ...``: the command that runs ``rows`` on ``datasets`` with
    ``settings`` into the store ``results``, written with the parser's own options (the
    Settings fields in ``leave_out``, e.g. ``device``, are left to the command's defaults)."""
    values = {"dataset": list(datasets), "rows": list(rows), **settings_args(settings)}
    for name in leave_out:
        values.pop(field_dest(Settings, name))
    parser = add_crossval(argparse.ArgumentParser(prog="mtvae").add_subparsers())
    words = command_words(parser, values) + command_words(parser, {"results": str(results)})
    return "python -m mtvae " + shlex.join(["crossval", *words])


def _cmd_crossval(args) -> int:
    from ..runfiles import crossval_args, print_config

    if args.list_rows:
        print("\n".join(r.name for r in select_rows(args.rows)))
        return 0
    args = crossval_args(args)
    shard_spec = parse_shard(args.shard)
    jobs = plan(dataset_names(args), args.rows, args.folds)
    if args.print_config:  # the first job's: what every job shares, the row aside
        if not jobs:
            raise ValueError("no jobs to print a config for (--rows, --shard)")
        print_config(job_config(jobs[0], settings_from_args(args)))
        return 0
    if shard_spec is not None:
        jobs = shard(jobs, *shard_spec)
    if args.dry_run:
        return _dry_run(jobs, args)
    settings = settings_from_args(args)
    if args.launcher is not None:
        return _launch(missing(jobs, args.results), settings, args)
    summary = run_jobs(jobs, settings, args.results, keep_going=args.keep_going)
    busy = f", {len(summary['running'])} being trained by another process" \
        if summary["running"] else ""
    print(f"{len(summary['done'])} run, {len(summary['skipped'])} skipped (done before), "
          f"{len(summary['failed'])} failed{busy}; results in {args.results}")
    return 1 if summary["failed"] else 0


def _dry_run(jobs, args) -> int:
    todo, bad, settings = set(missing(jobs, args.results)), 0, settings_from_args(args)
    for job in jobs:
        state = "to run" if job in todo else "done"
        if job not in todo:
            try:
                load_record(fold_file(args.results, job), job_config(job, settings))
            except ValueError as err:
                why = "other settings" if "different run" in str(err) else "corrupt"
                state, bad = f"{why} ({err})", bad + 1
        print(f"{job.dataset} {job.row} fold {job.fold}: {state}")
    print(f"{len(todo)} of {len(jobs)} jobs to run" + (
        f"; {bad} fold file(s) corrupt or from other settings: delete them to rerun those "
        "folds" if bad else ""))
    return 0


def _add_launcher_arguments(p) -> None:
    """The flags of :func:`mtvae.launch.submit` (defaults: its and slurm_parameters')."""
    from ..launch import LAUNCHERS, slurm_parameters, submit

    default = {name: a.default for f in (submit, slurm_parameters)
               for name, a in inspect.signature(f).parameters.items()}
    g = p.add_argument_group("cluster (submitit; pip install 'mtvae[slurm]')")
    g.add_argument("--launcher", default=None, choices=LAUNCHERS,
                   help="submit the jobs as submitit tasks instead of running them here: slurm "
                   "(an array), local (processes on this machine) or debug (this process)")
    g.add_argument("--partition", default=None, help="SLURM partition")
    g.add_argument("--gpus-per-task", type=int, default=default["gpus_per_task"],
                   help="GPUs per array task")
    g.add_argument("--cpus-per-task", type=int, default=None, help="CPUs per array task")
    g.add_argument("--mem-gb", type=float, default=None, help="memory per array task")
    g.add_argument("--time", default=default["time"],
                   help="time limit per task (HH:MM:SS); a task that hits it is requeued and "
                   "resumes from its checkpoint")
    g.add_argument("--array-parallelism", type=int, default=None, metavar="K",
                   help="at most K array tasks at once")
    g.add_argument("--jobs-per-task", type=int, default=default["jobs_per_task"],
                   help="fold jobs per array task (run one after the other)")
    g.add_argument("--launcher-folder", default=None,
                   help="submitit's pickles and logs (default <results>/submitit)")
    g.add_argument("--wait", action="store_true",
                   help="wait for the tasks to finish (always, for local and debug)")


def _launch(jobs, settings: Settings, args) -> int:
    """``crossval --launcher ...``: submit, and for local / debug (or --wait) wait."""
    from .. import launch

    submitted = launch.submit(jobs, settings, args.results, launcher=args.launcher,
                              folder=args.launcher_folder, jobs_per_task=args.jobs_per_task,
                              partition=args.partition, gpus_per_task=args.gpus_per_task,
                              time=args.time, array_parallelism=args.array_parallelism,
                              cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb)
    if args.launcher == "slurm" and not args.wait:
        print(f"submitted {len(submitted)} task(s); follow them with squeue, then "
              f"`python -m mtvae table --results {args.results}`")
        return 0
    failed = 0
    for job in submitted:
        try:
            job.result()
        except Exception as err:  # noqa: BLE001 - report every task, then fail
            failed += 1
            log.error("task %s failed: %s", job.job_id, str(err).strip().splitlines()[-1])
    print(f"{len(submitted) - failed} of {len(submitted)} task(s) finished; results in "
          f"{args.results}")
    return 1 if failed else 0


def add_collect(sub) -> None:
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


def add_table(sub) -> None:
    from ..report import DDOF

    p = sub.add_parser("table", help="Table 4.1 from a results store, beside the thesis")
    add_field(p, DataConfig, "dataset")
    p.add_argument("--results", default="results")
    p.add_argument("--rows", nargs="+", default=["all"], help="all | sweep | names | patterns")
    p.add_argument("--out", default="figures", help="folder for the .md, .tex and .csv files")
    p.add_argument("--ddof", type=int, default=DDOF, help="delta degrees of freedom of the std")
    p.add_argument("--compare", default=None, metavar="STORE2",
                   help="a second store (the other protocol): its means and the change per row")
    p.set_defaults(func=_cmd_table)


def _cmd_table(args) -> int:
    from ..report import export, table, to_markdown

    df = table(args.results, args.dataset, args.rows, args.ddof, compare=args.compare)
    paths = export(df, args.out)
    print(to_markdown(df))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def add_claims(sub) -> None:
    p = sub.add_parser("claims", help="check the thesis's directional claims (chapters 4-5) "
                       "on a results store, paired per fold")
    add_field(p, DataConfig, "dataset", help="a dataset the thesis has numbers for: mnist (or "
              "mnist-sample), cifar10, celeba")
    p.add_argument("--results", default="results", help="the store to check")
    p.add_argument("--compare", default=None, metavar="STORE2",
                   help="a second store (usually the other protocol), shown beside it")
    p.add_argument("--out", default="figures", help="folder for claims_<dataset>.md/.tex/.csv")
    p.set_defaults(func=_cmd_claims)


def _cmd_claims(args) -> int:
    from ..claims import claims, export, to_markdown

    df = claims(args.results, args.dataset, compare=args.compare)
    paths = export(df, args.out)
    print(to_markdown(df))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
