"""The training loop the VAE trainer and the PixelCNN prior share (mtvae/loop.py): batches, the
best epoch, checkpoints, divergence and Ctrl-C / SIGTERM, on a toy model and on the prior (the
trainer's side is tests/test_train.py and tests/test_reliability.py)."""

import os
import signal

import pytest
import torch

from mtvae.loop import Loop, State, batches, resume_state
from mtvae.models import ModelConfig, build_model
from mtvae.prior import train_prior
from mtvae.recovery import RunInterrupted, TrainingDivergedError

CPU = torch.device("cpu")


def test_batches_cover_every_item_once():
    assert list(batches(10, 4, False)) == [(0, 4), (4, 8), (8, 10)]
    assert list(batches(10, 4, True)) == [(0, 4), (4, 8)]
    assert list(batches(3, 4, True)) == [(0, 3)]  # fewer items than a batch: one smaller batch


def toy_loop(out, scores, step=None, **kw):
    """10 items in batches of 4; epoch k validates to ``scores[k]``; a step's loss is its size."""
    net, scores = torch.nn.Linear(1, 1), iter(scores)
    step = step or (lambda indices: {"loss": torch.tensor(float(len(indices)))})
    kw.setdefault("lr", 1e-3)
    return Loop(net, step, lambda: {"loss": next(scores)}, lambda: {"config": {}, "model": net.state_dict()},
                n=10, batch_size=4, epochs=3, device=CPU, out=out, **kw)


def test_history_best_epoch_checkpoint_and_callbacks(tmp_path):
    loop, seen = toy_loop(tmp_path, [3.0, 1.0, 2.0]), []
    loop.callbacks.append(lambda epoch, record: seen.append(epoch))
    state = loop.run(State())
    assert seen == [0, 1, 2] and state.epochs == 3 and state.best["epoch"] == 1
    assert [r["train_loss"] for r in state.history] == [3.6] * 3  # (4 * 4 + 4 * 4 + 2 * 2) / 10
    assert [r["val_loss"] for r in state.history] == [3.0, 1.0, 2.0]
    restored = []
    again = resume_state(tmp_path, True, CPU, restored.append)
    assert again.epochs == 3 and again.history == state.history and again.best["epoch"] == 1
    assert len(restored) == 1 and "model" in restored[0]
    assert resume_state(tmp_path, False, CPU, restored.append).epochs == 0


def test_no_batches_is_refused_before_anything_is_written():
    with pytest.raises(ValueError, match="no training batches: 0 items"):
        Loop(torch.nn.Linear(1, 1), None, None, None, n=0, batch_size=4, epochs=1, device=CPU,
             lr=1e-3)


def test_a_non_finite_step_stops_the_run_naming_the_term(tmp_path):
    def step(indices):
        return {"loss": torch.tensor(float("inf")), "recon": torch.tensor(float("inf")),
                "latent": torch.tensor(1.0)}

    with pytest.raises(TrainingDivergedError, match=r"loss became inf at epoch 0, step 0 "
                       r"\(non-finite terms: \['recon'\]\).*No epoch finished"):
        toy_loop(tmp_path, [1.0], step, check_every=1).run(State())


def test_divergence_in_validation_says_what_was_kept(tmp_path):
    loop = toy_loop(tmp_path, [1.0, float("nan")], change_lr=False)
    with pytest.raises(TrainingDivergedError, match="validation loss is nan at epoch 1.*"
                       "Epochs 0-0 are kept in .*--no-resume"):
        loop.run(State())


def test_sigterm_keeps_the_last_finished_epoch(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    loop = toy_loop(tmp_path, [1.0, 2.0, 3.0])
    loop.callbacks.append(lambda epoch, record: epoch == 1 and os.kill(os.getpid(),
                                                                       signal.SIGTERM))
    with pytest.raises(RunInterrupted, match="SIGTERM: stopped; epochs 0-1 are kept") as err:
        loop.run(State())
    assert err.value.exit_code == 143 and err.value.epochs == 2
    assert err.value.checkpoint == tmp_path / "checkpoint.pt"
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back
    assert resume_state(tmp_path, True, CPU, lambda ckpt: None).epochs == 2


def test_prior_stopped_by_ctrl_c_resumes_to_the_same_numbers(tmp_path):
    """The prior gets the trainer's Ctrl-C handling: the finished epochs stay, and resuming
    gives the numbers of a run that was never stopped."""
    torch.manual_seed(0)
    vq = build_model(ModelConfig("vq", 1, "baseline"), (1, 28, 28))  # untrained: codes still
    kw = dict(data="mnist-sample", limit=128, epochs=3, n_layers=2, channels=8, head_channels=16,
              batch_size=64, device="cpu", progress=False)
    straight = train_prior(vq, tmp_path / "straight", **kw)

    def ctrl_c(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match="interrupted: stopped; epochs 0-1 are kept") as err:
        train_prior(vq, tmp_path / "stopped", callback=ctrl_c, **kw)
    assert err.value.exit_code == 130
    resumed = train_prior(vq, tmp_path / "stopped", **kw)

    def numbers(history):
        return [{k: v for k, v in r.items() if k not in ("time_s", "images_per_s")}
                for r in history]

    assert numbers(resumed.history) == numbers(straight.history)
    assert resumed.metrics == straight.metrics and resumed.best_epoch == straight.best_epoch
