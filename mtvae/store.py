"""The results store of a cross-validated sweep: one JSON file per fold run.

    <results>/<dataset>/<row>/fold<k>.json   metrics (val and held-out test), history, config,
                                             seeds, library versions, device, git commit
    <results>/<dataset>/<row>/fold<k>/       fit's run folder: checkpoint.pt while training
                                             (a killed fold resumes from it); removed when the
                                             fold finishes unless keep='model' (best weights)
                                             or 'all' was asked for
    <results>/<dataset>/<row>/fold<k>.lock   held while a worker trains that fold (see claim)
    <results>/folds.csv                      one line per fold run, written by :func:`collect`

Every file is written atomically (temporary file, fsync, rename), so a killed worker never leaves
half a result, and a fold result's presence means "finished". Workers on machines without a
shared folder each fill their own store; :func:`collect` merges them.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from .checkpoint import atomic_write, atomic_write_json, check_metrics
from .config import RunConfig
from .data import dataset_key
from .images import dataset_dir

__all__ = ["Job", "fold_file", "load_record", "missing", "load_results", "collect", "claim",
           "release", "single_protocol"]


class Job(NamedTuple):
    """One fold of one grid row on one dataset."""

    dataset: str
    row: str
    fold: int


def fold_file(results: str | os.PathLike, job: Job) -> Path:
    # your own images ('folder:/path:size=32') get a file-system-safe folder name
    return Path(results) / dataset_dir(job.dataset) / job.row / f"fold{job.fold}.json"


# What every fold result holds (mtvae.crossval._record writes more).
REQUIRED = ("dataset", "row", "fold", "folds", "seed", "epochs", "best_epoch", "metrics",
            "config")


def load_record(path: str | os.PathLike, config: RunConfig | None = None) -> dict:
    """A fold result; with ``config``, check that it is this run (else ValueError).

    A file that does not parse, lacks a key of :data:`REQUIRED`, has no test metrics or a metric
    that is null, NaN or not a number is a ValueError naming the file, never a result."""
    path = Path(path)
    fix = "delete it to rerun that fold"
    try:
        record = json.loads(path.read_text())
        lacking = [k for k in REQUIRED if k not in record] if isinstance(record, dict) else \
            ["anything (not a JSON object)"]
        if lacking:
            raise ValueError(f"{path} is not a fold result (no {', '.join(lacking)}); {fix}")
        check_metrics(record["metrics"], path, fix)
        if "test" not in record["metrics"]:
            raise ValueError(f"{path} has no held-out (test) metrics; {fix}")
        stored = RunConfig.from_dict(record["config"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
            AttributeError) as err:
        raise ValueError(f"{path} is not a readable fold result ({type(err).__name__}: {err}); "
                         f"{fix}") from err
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{path} is not a readable fold result ({err}); {fix}") from err
    if config is not None:
        limit, pool = config.data.limit, record.get("pool_size")
        if limit is not None and pool is not None and limit > pool:  # clamped when it ran
            config = replace(config, data=replace(config.data, limit=pool))
        diff = stored.differences(config)
        if stored.train.epochs != config.train.epochs:
            diff.append(f"train.epochs: {stored.train.epochs} != {config.train.epochs}")
        if diff:
            raise ValueError(f"{path} holds a different run ({'; '.join(diff)}); use another "
                             "--results folder for these settings, or delete the file to rerun")
    return record


def claim(path: str | os.PathLike) -> int | None:
    """Lock ``<fold>.lock`` beside a fold result before training it, so that two workers given
    the same job (the same shard by mistake) do not train and write it together: returns the
    lock's file descriptor, or None when another process holds it. The lock is the operating
    system's (flock), so a killed worker's lock goes with it; where there is none, no lock."""
    lock = Path(path).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except (ImportError, OSError):  # no flock here (Windows, some network file systems)
        pass
    return fd


def release(fd: int | None, path: str | os.PathLike) -> None:
    """Give up a :func:`claim`; the lock file goes once the fold result is there."""
    if fd is None:
        return
    if Path(path).exists():
        Path(path).with_suffix(".lock").unlink(missing_ok=True)
    os.close(fd)


def missing(jobs: list[Job], results: str | os.PathLike) -> list[Job]:
    """The jobs without a fold result in ``results``."""
    return [j for j in jobs if not fold_file(results, j).exists()]


def load_results(results: str | os.PathLike, dataset: str | None = None):
    """One row per finished fold: ids, seeds, test_* and val_* metrics, environment."""
    import pandas as pd

    root = Path(results)
    pattern = (f"{dataset_dir(dataset_key(dataset))}/*/fold*.json" if dataset
               else "*/*/fold*.json")
    rows = []
    for path in sorted(root.glob(pattern)):
        r = load_record(path)
        env = r.get("environment") or {}
        rows.append({"dataset": r["dataset"], "row": r["row"], "fold": r["fold"],
                     "folds": r["folds"], "seed": r["seed"], "init": r.get("init"),
                     "protocol": r.get("protocol") or ("thesis" if r.get("thesis_protocol")
                                                       else "mtvae"),
                     "epochs": r["epochs"],
                     "best_epoch": r["best_epoch"], "n_params": r.get("n_params"),
                     **{f"{split}_{k}": v for split, ms in r["metrics"].items()
                        for k, v in ms.items()},
                     "device": env.get("device"), "torch": env.get("torch"),
                     "git_commit": env.get("git_commit"), "seconds": r.get("seconds")})
    return pd.DataFrame(rows)


def collect(results: str | os.PathLike, sources=(), write_csv: bool = True):
    """Merge the fold results of other stores (``sources``, e.g. copied back from other machines)
    into ``results`` and return all of them as a DataFrame, also written to
    ``<results>/folds.csv``. A job present in both keeps the copy already in ``results``; the same
    job with different settings is a ValueError."""
    dest = Path(results)
    conflicts = []
    for src in map(Path, sources):
        if not src.is_dir():
            raise FileNotFoundError(f"no results folder at {src}")
        for path in sorted(src.glob("*/*/fold*.json")):
            record, target = load_record(path), dest / path.relative_to(src)
            if target.exists():
                try:
                    load_record(target, RunConfig.from_dict(record["config"]))
                except ValueError as err:
                    conflicts.append(str(err))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(record, target)
    if conflicts:
        raise ValueError("conflicting fold results: " + " | ".join(conflicts))
    frame = load_results(dest)
    if write_csv and len(frame):
        atomic_write(dest / "folds.csv", lambda f: frame.to_csv(f, index=False), mode="w")
    return frame


def single_protocol(folds, results) -> str:
    """The one protocol of a :func:`load_results` frame ('thesis' or 'mtvae'); ValueError when
    it mixes them, since numbers of two protocols are never averaged or paired."""
    protocols = sorted(set(folds["protocol"].fillna("mtvae")))
    if len(protocols) > 1:
        raise ValueError(f"{results} mixes protocols {protocols}: tables and claims show one "
                         "protocol; keep each in its own --results folder (and pass the other "
                         "as --compare)")
    return protocols[0]
