"""The trainer: learning on real digits, determinism, resume, guards and clear errors."""

import json

import pytest
import torch

import mtvae
from mtvae.checkpoint import load_model
from mtvae.data import load_dataset, make_splits, to_float
from mtvae.train import TrainingDivergedError, fit


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist-sample")


def tiny(**kw):
    base = dict(model="vq", config=1, method="single", epochs=3, limit=384, progress=False,
                eval_batch_size=500)
    base.update(kw)
    return mtvae.make_config("mnist-sample", **base)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vq", "gaussian"])
def test_learns_real_digits_better_than_mean_image(sample, model):
    """A few epochs on 2,000 real digits push the per-pixel MSE well below the mean image's.

    Batch 32 gives enough steps: the VQ-VAE's codebook, initialised U(-0.05, 0.05) as in the
    thesis, needs ~100 steps before more than a few codes are in use.
    """
    epochs = 3 if model == "vq" else 2
    cfg = mtvae.make_config("mnist-sample", model=model, config=1, method="baseline",
                            epochs=epochs, limit=2000, batch_size=32, progress=False)
    result = fit(cfg, data=sample)
    splits = make_splits(sample, limit=2000)
    mean_image = to_float(sample.train[splits.train]).mean(0)
    val = to_float(sample.test[splits.val])
    mean_mse = ((val - mean_image) ** 2).mean().item()  # ~0.067 on MNIST
    assert result.metrics["val"]["recon"] < 0.6 * mean_mse
    # validation loss went down, and the best epoch is the minimum of the history
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.best_epoch == min(range(epochs), key=losses.__getitem__)


def test_same_seed_same_metrics(sample):
    a = fit(tiny(seed=3, epochs=2), data=sample)
    b = fit(tiny(seed=3, epochs=2), data=sample)
    c = fit(tiny(seed=4, epochs=2), data=sample)
    assert a.history == _without_time(b.history, a.history)
    assert a.metrics == b.metrics
    assert a.metrics != c.metrics


def _without_time(history, like):
    """Copy ``history`` with the wall-clock fields of ``like``."""
    return [{**h, "time_s": ref["time_s"], "images_per_s": ref["images_per_s"]}
            for h, ref in zip(history, like)]


class Stop(Exception):
    pass


@pytest.mark.parametrize("softadapt", [False, True])
def test_killed_and_resumed_equals_uninterrupted(sample, tmp_path, softadapt):
    kw = dict(method="multidecoder", sampler="uniform", softadapt=softadapt,
              softadapt_window=2, epochs=3)
    full = fit(tiny(**kw), tmp_path / "full", data=sample)

    def kill_after_epoch_1(epoch, record):
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        fit(tiny(**kw), tmp_path / "killed", data=sample, callback=kill_after_epoch_1)
    assert not (tmp_path / "killed" / "metrics.json").exists()
    resumed_epochs = []
    resumed = fit(tiny(**kw), tmp_path / "killed", data=sample,
                  callback=lambda e, r: resumed_epochs.append(e))
    assert resumed_epochs == [2]  # only the unfinished epoch ran
    assert resumed.metrics == full.metrics
    assert resumed.history == _without_time(full.history, resumed.history)
    if softadapt:
        assert full.history[-1]["softadapt_weights"] != {"recon": 1 / 3, "recon_cond": 1 / 3,
                                                         "latent": 1 / 3}


def test_finished_run_is_loaded_not_retrained(sample, tmp_path):
    first = fit(tiny(epochs=1), tmp_path, data=sample)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["best_epoch"] == 0 and saved["metrics"] == first.metrics
    assert saved["config"]["model"]["method"] == "single"
    calls = []
    again = fit(tiny(epochs=1), tmp_path, data=sample, callback=lambda e, r: calls.append(e))
    assert calls == [] and again.metrics == first.metrics
    # asking for more epochs continues the same run
    more = fit(tiny(epochs=2), tmp_path, data=sample, callback=lambda e, r: calls.append(e))
    assert calls == [1] and len(more.history) == 2
    model, cfg = load_model(tmp_path)
    assert cfg.model.method == "single" and sum(p.numel() for p in model.parameters()) > 0


def test_resume_refuses_a_different_run(sample, tmp_path):
    fit(tiny(epochs=1), tmp_path, data=sample)
    with pytest.raises(ValueError, match="different"):
        fit(tiny(epochs=1, exponent=60), tmp_path, data=sample)


def test_corrupt_checkpoint_names_the_fix(sample, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="delete it"):
        fit(tiny(epochs=1), tmp_path, data=sample)
    with pytest.raises(ValueError, match="not a readable mtvae checkpoint"):
        load_model(tmp_path / "checkpoint.pt")


def test_nan_guard(sample):
    with pytest.raises(TrainingDivergedError, match="lower the learning rate"):
        fit(tiny(model="gaussian", method="baseline", lr=1e6, epochs=2, check_every=1),
            data=sample)


def test_gaussian_single_decoder_metrics(sample):
    res = fit(tiny(model="gaussian", method="single", epochs=1, limit=256), data=sample)
    val = res.metrics["val"]
    assert {"recon", "recon_cond", "kl", "loss"} <= set(val)
    # selection loss = summed-MSE objective per image: 784 * recon_cond + KL
    assert val["loss"] == pytest.approx(784 * val["recon_cond"] + val["kl"], rel=1e-6)
    assert res.history[0]["val_loss"] == pytest.approx(val["loss"], rel=1e-6)


def test_fold_gives_held_out_metrics(sample):
    res = fit(tiny(epochs=1, fold=1, folds=4), data=sample)
    assert set(res.metrics) == {"val", "test"}
    assert {"recon", "recon_cond", "vq", "perplexity", "codes_used"} <= set(res.metrics["test"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(dataset="svhn"), "unknown dataset"),
    (dict(model="flow"), "unknown model family"),
    (dict(method="triple"), "unknown method"),
    (dict(sampler="stripes", method="single"), "unknown pixel sampler"),
    (dict(exponent=0, method="single"), "exponent"),
    (dict(config=7), "configs"),
    (dict(momentum=0.9), "unknown option"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mtvae.make_config(**kwargs)


def test_device_errors(sample):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        fit(tiny(device="cuda"), data=sample)
