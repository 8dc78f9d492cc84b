"""The training loop that the VAE trainer (mtvae/train.py) and the PixelCNN prior
(mtvae/prior.py) share. Each passes in what is its own: one optimiser step, its validation
metrics and the model-specific part of a checkpoint; the loop does the rest the same way for
both.

Per epoch: batches in a seeded random order (or the fixed order of the thesis's
cross-validation, docs/thesis_code.md#folds), a NaN/inf check every ``check_every`` steps (one
host sync each), validation, the best epoch's weights kept on the CPU (the best model by
validation loss, thesis section 3.4.3), an atomic checkpoint of everything needed to resume,
then the callbacks. Ctrl-C and SIGTERM (what SLURM sends before preemption) stop with a
:class:`~mtvae.recovery.RunInterrupted` that keeps the last finished epoch; a divergence stops
with a :class:`~mtvae.recovery.TrainingDivergedError` that says what was kept
(mtvae/recovery.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import (
    CHECKPOINT,
    atomic_save,
    cpu_state,
    ensure_writable_dir,
    load_checkpoint,
    set_aside,
)
from .recovery import (
    RunInterrupted,
    Terminated,
    TrainingDivergedError,
    after_divergence,
    check_validation,
    interrupted,
    sigterm_as_interrupt,
)

__all__ = ["Loop", "State", "autocast", "batches", "resume_state", "run_folder"]

log = logging.getLogger("mtvae")


def batches(n: int, batch_size: int, drop_last: bool):
    """(start, stop) of each batch of ``n`` items; ``drop_last`` drops a smaller last batch."""
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield i, min(i + batch_size, n)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled`` (``amp``); other devices run in float32."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class State:
    """What every checkpoint holds besides the model's own parts: one record per finished
    epoch, the best epoch so far (number, validation score, CPU weights) and how many epochs
    have finished."""

    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": -1, "score": math.inf, "state": None})
    epochs: int = 0

    def load_best(self, net: torch.nn.Module) -> None:
        """Put the best epoch's weights into ``net`` (kept as they are if none finished)."""
        if self.best["state"] is not None:
            net.load_state_dict(self.best["state"])


def run_folder(out, resume: bool, names: tuple[str, ...], what: str = "run") -> Path | None:
    """``out`` as a Path, checked writable before any training (ValueError naming the fix);
    with ``resume=False`` a run already there (any of ``names``) is moved aside first."""
    if out is None:
        return None
    out = ensure_writable_dir(out, "--out")
    if not resume and (moved := set_aside(out, names)) is not None:
        log.warning("resume=False / --no-resume: moved the previous %s in %s to %s", what, out,
                    moved)
    return out


def resume_state(out: Path | None, resume: bool, device: torch.device,
                 restore: Callable[[dict], None]) -> State:
    """The :class:`State` in ``out/checkpoint.pt``, or a fresh one (no folder, no checkpoint,
    ``resume=False``). ``restore(checkpoint)`` first checks that it belongs to this run
    (ValueError otherwise) and loads the model's own parts: weights, optimiser, random state."""
    if out is None or not resume or not (out / CHECKPOINT).exists():
        return State()
    ckpt = load_checkpoint(out / CHECKPOINT, map_location=device)
    restore(ckpt)
    return State(ckpt["history"], ckpt["best"], ckpt["epoch"])


@dataclass
class Loop:
    """One run's epochs. ``step(indices)`` takes one optimiser step on the training items at
    ``indices`` and returns its values ({metric: loss, term: value, ...}, tensors; the epoch's
    record gets their means as ``train_<name>``); ``validate()`` returns the validation metrics
    (recorded as ``val_<name>``; the lowest ``metric`` picks the best epoch); ``save()`` returns
    the model's own checkpoint entries."""

    net: torch.nn.Module  # its weights are the ones the best epoch keeps
    step: Callable[[torch.Tensor], dict[str, torch.Tensor]]
    validate: Callable[[], dict]
    save: Callable[[], dict]
    n: int  # training items (images or code maps)
    batch_size: int
    epochs: int  # train until this many have finished
    device: torch.device
    out: Path | None = None  # None: nothing is saved
    generator: torch.Generator | None = None  # the batch order; None: the same order every epoch
    drop_last: bool = False
    check_every: int = 25  # steps between NaN/inf checks and progress updates
    metric: str = "loss"
    label: str | None = None  # the progress bar's; None: no progress bar
    extra: Callable[[], dict] | None = None  # more fields for each epoch's record
    callbacks: list[Callable[[int, dict], None]] = field(default_factory=list)  # (epoch, record)
    resume: bool = True  # for the messages: how to resume
    # the run's learning rate, for the messages: what to lower it to after a divergence
    lr: float = field(kw_only=True)
    change_lr: bool = True  # whether a run can continue with another lr (--change-lr)

    def __post_init__(self) -> None:
        self.steps = len(list(batches(self.n, self.batch_size, self.drop_last)))
        if self.steps == 0:  # before anything is written
            raise ValueError(f"no training batches: {self.n} items with batch_size "
                             f"{self.batch_size}{' and drop_last' if self.drop_last else ''}; "
                             "lower the batch size or use more data")

    def run(self, state: State) -> State:
        """Train from ``state`` (a fresh one, or :func:`resume_state`'s) to ``epochs``; the
        history, best epoch and epoch count are updated in place after every epoch."""
        if state.epochs and self.out is not None:
            log.info("%s: resuming from epoch %d of %d", self.out, state.epochs, self.epochs)
        bar = None
        if self.label is not None:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.epochs * self.steps, initial=state.epochs * self.steps,
                       unit="step", mininterval=1.0, desc=self.label)
        kept = state.epochs  # epochs in the checkpoint on disk
        try:
            with sigterm_as_interrupt():  # SIGTERM before preemption: like Ctrl-C
                for epoch in range(state.epochs, self.epochs):
                    record = self._epoch(epoch, bar)
                    state.history.append(record)
                    score = record[f"val_{self.metric}"]
                    if score < state.best["score"]:
                        state.best = {"epoch": epoch, "score": score,
                                      "state": cpu_state(self.net)}
                    state.epochs = epoch + 1
                    if bar is not None:
                        bar.set_postfix({f"val_{self.metric}": f"{score:.4g}",
                                         "best": state.best["epoch"]}, refresh=True)
                    if self.out is not None:
                        atomic_save({**self.save(), "epoch": epoch + 1, "history": state.history,
                                     "best": state.best}, self.out / CHECKPOINT)
                        kept = epoch + 1
                    for callback in self.callbacks:
                        callback(epoch, record)
        except TrainingDivergedError as err:
            hint = after_divergence(self.out, kept, self.lr, self.change_lr)
            raise TrainingDivergedError(f"{err} {hint}") from None
        except KeyboardInterrupt as err:
            signum = err.signum if isinstance(err, Terminated) else signal.SIGINT
            raise RunInterrupted(interrupted(self.out, kept, self.resume, signum),
                                 self.out / CHECKPOINT if self.out is not None and kept else None,
                                 kept, signum) from err
        finally:
            if bar is not None:
                bar.close()
        return state

    def _epoch(self, epoch: int, bar) -> dict:
        """Train one epoch and validate: the epoch's record."""
        t0 = time.perf_counter()
        self.net.train()
        order = (torch.randperm(self.n, generator=self.generator, device=self.device)
                 if self.generator is not None else torch.arange(self.n, device=self.device))
        sums: dict[str, torch.Tensor] = {}
        reported = 0
        for k, (i, j) in enumerate(batches(self.n, self.batch_size, self.drop_last)):
            values = self.step(order[i:j])
            for key, v in values.items():  # summed on the device: no sync per step
                v = v.detach() * (j - i)
                sums[key] = sums[key] + v if key in sums else v
            if (k + 1) % self.check_every == 0 or k + 1 == self.steps:
                self._check_finite(values, epoch, k)
                if bar is not None:
                    bar.update(k + 1 - reported)
                    reported = k + 1
                    loss = float(values[self.metric].detach())
                    bar.set_postfix({self.metric: f"{loss:.4g}"}, refresh=False)
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch, **{f"train_{k}": float(v) / self.n for k, v in sums.items()}}
        val = self.validate()
        check_validation(val, epoch)  # a NaN never becomes a result (or the best epoch)
        record.update({f"val_{k}": v for k, v in val.items()})
        record.update(time_s=seconds, images_per_s=self.n / seconds)
        if self.extra is not None:
            record.update(self.extra())
        return record

    def _check_finite(self, values: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        loss = values[self.metric]
        if not torch.isfinite(loss):
            terms = [k for k in values if k != self.metric]
            bad = [k for k in terms if not torch.isfinite(values[k])]
            which = f" (non-finite terms: {bad or 'the weighted sum'})" if terms else ""
            raise TrainingDivergedError(
                f"the loss became {float(loss.detach())} at epoch {epoch}, step {step}{which}; "
                "lower the learning rate (--lr), turn off bf16 autocast (amp=False) or check the "
                "data for NaNs.")
