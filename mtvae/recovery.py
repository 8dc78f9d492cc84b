"""Runs that stop early: SIGTERM handled like Ctrl-C, divergence, and the messages that say what
was kept and how to go on.

SLURM and most schedulers send SIGTERM before they preempt or time out a job. Around a training
loop, :func:`catch_sigterm` turns it into a :class:`Terminated` (a KeyboardInterrupt), so the
last finished epoch stays in the checkpoint and the process exits non-zero with the resume hint,
exactly as after Ctrl-C. The previous handler is restored afterwards, so notebooks, pytest and
the caller's own handlers are unaffected outside the loop.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from pathlib import Path

from .checkpoint import CHECKPOINT

__all__ = ["RunInterrupted", "Terminated", "TrainingDivergedError", "catch_sigterm",
           "sigterm_as_interrupt", "non_finite", "check_validation", "check_final",
           "after_divergence", "interrupted"]


class TrainingDivergedError(FloatingPointError):
    """The loss or a validation metric became NaN or infinite."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a training loop ran."""

    signum = signal.SIGTERM


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; the message says what was kept and how to resume."""

    def __init__(self, message: str, checkpoint: Path | None = None, epochs: int = 0,
                 signum: int = signal.SIGINT):
        super().__init__(message)
        self.checkpoint, self.epochs, self.signum = checkpoint, epochs, signum

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)  # 130 after Ctrl-C, 143 after SIGTERM, as shells report


def catch_sigterm():
    """Raise :class:`Terminated` on SIGTERM from now on (main thread only, and only where no
    Python handler is installed already); returns the function that puts the previous handler
    back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers can only be installed from the main thread
    previous = signal.getsignal(signal.SIGTERM)
    if callable(previous):
        # another library's handler stays: submitit's (mtvae.launch) ignores SIGTERM because it
        # checkpoints and requeues the task on its own signal (USR2) instead
        return lambda: None

    def handler(signum, frame):
        raise Terminated(f"received signal {signum} (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Raise :class:`Terminated` on SIGTERM inside the ``with`` block."""
    restore = catch_sigterm()
    try:
        yield
    finally:
        restore()


def non_finite(metrics: dict) -> list[str]:
    """'name is value' for each metric that is NaN or infinite."""
    return [f"{k} is {v}" for k, v in metrics.items()
            if isinstance(v, (int, float)) and not math.isfinite(v)]


def check_validation(metrics: dict, epoch: int) -> None:
    if bad := non_finite(metrics):
        raise TrainingDivergedError(
            f"the validation {', '.join(bad)} at epoch {epoch} (not finite); check the "
            "validation images (the official test pool) for NaN or infinite values, lower the "
            "learning rate (--lr) or turn off bf16 autocast (amp=False).")


def check_final(metrics: dict, out: Path | None) -> None:
    """The best epoch's metrics ({split: {...}}) must be finite before they become a result."""
    for split, values in metrics.items():
        if bad := non_finite(values):
            where = "held-out fold" if split == "test" else "validation"
            kept = f" (the trained epochs stay in {out / CHECKPOINT})" if out is not None else ""
            raise TrainingDivergedError(
                f"the best epoch's {split} metrics are not finite ({', '.join(bad)}); check the "
                f"{where} images for NaN or infinite values{kept}")


def after_divergence(out: Path | None, kept: int, lr: float, change_lr: bool = True) -> str:
    """What is left after a divergence, and how to go on from it. ``change_lr``: the run can
    continue from its checkpoint with another learning rate (the VAE trainer's --change-lr;
    the PixelCNN prior has none, so it starts over)."""
    if out is None:
        return "Nothing was saved (no run folder): retrain with a lower learning rate."
    if not kept:
        return (f"No epoch finished, so {out} holds no checkpoint of this run: rerun with a "
                f"lower learning rate (e.g. --lr {lr / 10:g}).")
    if not change_lr:
        return (f"Epochs 0-{kept - 1} are kept in {out / CHECKPOINT}, but they cannot continue "
                f"with another learning rate: rerun with a lower one and --no-resume (e.g. --lr "
                f"{lr / 10:g} --no-resume; Python: lr={lr / 10:g}, resume=False), which sets "
                "them aside and starts over.")
    return (f"Epochs 0-{kept - 1} are kept in {out / CHECKPOINT}: to continue from there with a "
            f"lower learning rate, rerun the same command with --lr {lr / 10:g} --change-lr "
            f"(Python: lr={lr / 10:g}, change_lr=True); the change is recorded. (--no-resume "
            "would set those epochs aside and start over.)")


def interrupted(out: Path | None, kept: int, resume: bool, signum: int) -> str:
    """The message of a :class:`RunInterrupted`: what was kept and the command that resumes."""
    why = "SIGTERM" if signum == signal.SIGTERM else "interrupted"
    if out is None:
        return f"{why}: stopped; nothing was saved (no run folder: pass out=... to resume later)"
    if not kept:
        return f"{why}: stopped before the first epoch finished; nothing to resume in {out}"
    how = ("run the same command again" if resume else
           "run the same command again without --no-resume (Python: resume=True)")
    return f"{why}: stopped; epochs 0-{kept - 1} are kept in {out / CHECKPOINT}: to resume, {how}"
