"""What mtvae writes while it works: messages, and the live logs of each run folder.

Messages go to the ``mtvae`` logger (the library never prints them). The command line shows
INFO and above on stderr with timestamps (:func:`show`; ``MTVAE_LOG_LEVEL=DEBUG|WARNING|...``
changes the level); a script or notebook calls :func:`show` too, or configures ``logging``
itself. Without any configuration, warnings still reach stderr (Python's last-resort handler).

A run folder's live logs (:class:`RunLog`, written by :func:`mtvae.train.fit`):

    <out>/config.json        the RunConfig, written when training starts (``--config`` reads it)
    <out>/metrics.csv        one row per finished epoch, appended as soon as the epoch ends
                             (``tail -f``, pandas, a spreadsheet); rewritten from the checkpoint's
                             history when a run resumes, so it always matches checkpoint.pt
    <out>/tensorboard/       with ``--log tensorboard`` (``TrainConfig.tensorboard``): the same
                             scalars per epoch and a small reconstruction grid of validation
                             images (rows: input, decoder with m = 0 or p(x | z), decoder with m);
                             needs the ``tensorboard`` package (``pip install 'mtvae[logs]'``)
"""

from __future__ import annotations

import csv
import logging
import math
import os
import sys
from pathlib import Path

import torch

from .checkpoint import atomic_write, atomic_write_json

__all__ = ["logger", "show", "RunLog", "CSV", "CONFIG", "TENSORBOARD", "flatten"]

logger = logging.getLogger("mtvae")
FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
CSV = "metrics.csv"
CONFIG = "config.json"
TENSORBOARD = "tensorboard"
GRID_IMAGES = 8  # validation images in the TensorBoard reconstruction grid


class _Stream(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a message comes (pytest and notebooks swap it)."""

    def __init__(self, stream=None):
        super().__init__(stream or sys.stderr)
        self._fixed = stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        if not self._fixed:
            self.stream = sys.stderr
        super().emit(record)


def show(level: int | str | None = None, stream=None) -> logging.Handler:
    """Print the ``mtvae`` messages (default: INFO and above, or ``$MTVAE_LOG_LEVEL``) with
    timestamps to ``stream`` (default stderr). Calling it again replaces the earlier handler."""
    level = level or os.environ.get("MTVAE_LOG_LEVEL", "INFO")
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            level = logging.INFO
    for old in [h for h in logger.handlers if getattr(h, "_mtvae", False)]:
        logger.removeHandler(old)
    handler = _Stream(stream)
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    handler._mtvae = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


# ----------------------------------------------------------------------- run folders


def flatten(record: dict) -> dict:
    """One epoch record as flat scalar columns (SoftAdapt's weights as softadapt_<term>)."""
    row = {}
    for key, value in record.items():
        if isinstance(value, dict):
            row.update({f"{key.removesuffix('_weights')}_{k}": v for k, v in value.items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            row[key] = value
    return row


class RunLog:
    """config.json, metrics.csv and (optionally) TensorBoard for the run folder ``out``."""

    def __init__(self, out: Path | None, config, history: list[dict], *, start: int = 0):
        self.out, self.writer = out, None
        self.rows = [flatten(r) for r in history]
        self.columns = _columns(self.rows)
        if out is None:
            if config.train.tensorboard:
                logger.warning("tensorboard logging needs a run folder (out=... / --out); skipped")
            return
        atomic_write_json(config.to_dict(), out / CONFIG)
        self._rewrite()
        if config.train.tensorboard:
            self.writer = _summary_writer(out / TENSORBOARD, start)

    def epoch(self, record: dict, model=None, images=None, observer=None, seed: int = 0) -> None:
        """Append one finished epoch (and, for TensorBoard, its reconstruction grid)."""
        if self.out is None:
            return
        row = flatten(record)
        self.rows.append(row)
        if set(row) - set(self.columns):
            self.columns = _columns(self.rows)
            self._rewrite()
        else:
            with open(self.out / CSV, "a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)
        if self.writer is not None:
            step = int(record["epoch"])
            for key, value in row.items():
                if key != "epoch" and math.isfinite(value):
                    self.writer.add_scalar(_tag(key), value, step)
            if model is not None and images is not None and len(images):
                self.writer.add_image("reconstructions", reconstruction_grid(
                    model, images[:GRID_IMAGES], observer, seed), step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _rewrite(self) -> None:
        def write(f):
            w = csv.DictWriter(f, self.columns)
            w.writeheader()
            w.writerows(self.rows)

        atomic_write(self.out / CSV, write, mode="w")


def _columns(rows: list[dict]) -> list[str]:
    columns = ["epoch"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def _tag(key: str) -> str:
    """'train_loss' -> 'train/loss', 'val_recon' -> 'val/recon', 'time_s' -> 'speed/time_s'."""
    head, _, tail = key.partition("_")
    return f"{head}/{tail}" if head in ("train", "val", "softadapt") and tail else f"speed/{key}"


def _summary_writer(folder: Path, start: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ValueError("--log tensorboard needs the tensorboard package: pip install "
                         "tensorboard (or pip install 'mtvae[logs]')") from err
    # purge_step: events of epochs after the checkpoint (a killed run's) are dropped on resume
    return SummaryWriter(str(folder), purge_step=start if start else None)


@torch.no_grad()
def reconstruction_grid(model, images, observer=None, seed: int = 0) -> torch.Tensor:
    """(3, H', W') in [0, 1]: the images, then each decoder's output below them (clipped: the
    decoders are linear)."""
    from torchvision.utils import make_grid

    from .data import to_float

    x = to_float(images)
    m = None
    if observer is not None:
        m = observer(x, torch.Generator(device=x.device).manual_seed(seed))
    was_training = model.training
    model.eval()
    try:
        out = model(x, m)
    finally:
        model.train(was_training)
    rows = [x] + [r for r in (getattr(out, "recon", None), getattr(out, "recon_cond", None))
                  if r is not None]
    grid = torch.cat([r.float().reshape(x.shape) for r in rows]).clamp(0, 1).cpu()
    if grid.shape[1] == 1:
        grid = grid.expand(-1, 3, -1, -1)
    return make_grid(grid, nrow=len(x), padding=1, pad_value=1.0)
