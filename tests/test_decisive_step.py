"""The decisive test: one step of mtvae's trainer equals one step of the thesis-style pipeline.

Both sides start from the same initial weights, see the same 8 real digits and the same mask,
and take one AdamW step. The loss, its terms, the gradients (AdamW's first moment after one
step is 0.1 x the gradient) and every updated weight and BatchNorm buffer must agree. If either
path computed a different loss (units, reduction, which terms) or a different update, this fails.

* mtvae side: :func:`mtvae.train.fit` itself, one epoch of one batch (uint8 images on the device,
  ``to_float``, masks drawn on the device by its ``Observer``, the optimizer ``build_optimizer``
  makes: fused AdamW where torch has it, the two-block conditioned head).
* thesis side: benchmarks/thesis_pipeline.py: a ``Dataset`` that converts each image through PIL
  and ``to_tensor`` and builds ``m = cat(x * mask, mask)`` per image, the thesis's ``DataLoader``,
  its per-step loss dictionary (``VAELoss``/``VQLoss``, the logged-only m = 0 pass included) and
  torch's default ``AdamW(lr=1e-3)``.

The mask is drawn once, by mtvae's trainer (captured at the model's input), and handed to the
thesis-style Dataset in place of its own per-image draw (``thesis_mask`` is replaced by a
function returning the captured masks in order). The Gaussian VAE's reparameterisation noise is
recorded on the mtvae side (``torch.randn_like`` wrapped) and replayed on the thesis side.

Runs: Gaussian VAE and VQ-VAE config 1, single decoder (power-law count at Gaussian-distributed
pixels, a = 40) and multidecoder (the exact grid), ``make_config``'s defaults otherwise, on the
CPU, with ``shuffle=False`` (the thesis's loader did not shuffle, so both see the digits in the
same order). The thesis side trains the same mtvae module, as the benchmark does; that the
two-block conditioned head equals the thesis's one Linear on ``cat(z, m)`` is
tests/test_benchmarks.py::test_conditioned_head_matches_linear_on_concatenation.

Tolerances (float32): forward outputs and loss terms rtol 1e-5 / atol 1e-6; gradients rtol 1e-5
/ atol 1e-8; updated weights and buffers rtol 1e-6 / atol 1e-7, tighter than the first because
one AdamW step moves a weight by ~lr = 1e-3 and the two optimizers (fused or foreach here, the
per-tensor loop there) should differ by rounding only, a few ulps of the weight. Measured on a
2-core x86 CPU with torch 2.14: forward, loss and gradients bit for bit equal; weights at most
1.5e-8 apart (Gaussian and VQ multidecoder), 3.7e-9 (Gaussian single), 7.5e-9 (VQ single).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import mtvae.train
from mtvae.api import make_config
from mtvae.data import ImageData, load_dataset
from mtvae.models import build_model

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("thesis_pipeline_for_decisive_test",
                                               ROOT / "benchmarks" / "thesis_pipeline.py")
thesis_pipeline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(thesis_pipeline)

BATCH = 8
RTOL, ATOL = 1e-5, 1e-6  # forward outputs and loss terms
GRAD_ATOL = 1e-8  # gradients (AdamW's exp_avg / 0.1)
WEIGHT_RTOL, WEIGHT_ATOL = 1e-6, 1e-7  # weights after the step (the step itself is ~1e-3)
# mtvae's training terms -> the keys the thesis code logged (benchmarks/thesis_pipeline.py)
TERMS = {
    ("gaussian", "single"): {"recon_cond": "recon_loss_0", "latent": "kl_loss"},
    ("gaussian", "multidecoder"): {"recon": "recon_loss_0", "recon_cond": "recon_loss_1",
                                   "latent": "kl_loss"},
    ("vq", "single"): {"recon_cond": "recon_loss_0", "latent": "vq_loss"},
    ("vq", "multidecoder"): {"recon": "recon_loss_0", "recon_cond": "recon_loss_1",
                             "latent": "vq_loss"},
}


@pytest.fixture(scope="module")
def digits() -> ImageData:
    """8 real digits to train on and 8 more for fit's validation (4 of them used)."""
    sample = load_dataset("mnist-sample")
    return ImageData("mnist-sample", sample.train[:BATCH].clone(), sample.test[:BATCH].clone())


def _watch_training_calls(model: torch.nn.Module, calls: list) -> torch.nn.Module:
    """Record (inputs, outputs) of every forward pass the model runs in training mode."""
    def pre(module, args):
        if module.training:
            calls.append({"x": args[0].detach().clone(), "m": args[1].detach().clone()})

    def post(module, args, out):
        if module.training:
            calls[-1]["out"] = out

    model.register_forward_pre_hook(pre)
    model.register_forward_hook(post)
    return model


def _mtvae_step(config, digits, init_state, monkeypatch):
    """One step of mtvae.train.fit; returns what it saw, drew and produced."""
    calls, noise, optimizers = [], [], []
    real_build_model, real_build_optimizer = mtvae.train.build_model, mtvae.train.build_optimizer
    real_randn_like = torch.randn_like
    models = []

    def build_model_watched(*args, **kwargs):
        models.append(_watch_training_calls(real_build_model(*args, **kwargs), calls))
        return models[-1]

    def build_optimizer_kept(*args, **kwargs):
        optimizers.append(real_build_optimizer(*args, **kwargs))
        return optimizers[-1]

    def randn_like_recorded(*args, **kwargs):
        noise.append(real_randn_like(*args, **kwargs))
        return noise[-1]

    with monkeypatch.context() as patch:
        patch.setattr(mtvae.train, "build_model", build_model_watched)
        patch.setattr(mtvae.train, "build_optimizer", build_optimizer_kept)
        patch.setattr(torch, "randn_like", randn_like_recorded)
        result = mtvae.train.fit(config, data=digits, init_state=init_state)
    assert len(calls) == 1, "one epoch of one batch is one training forward pass"
    assert result.model is models[0] and len(result.history) == 1
    return result, calls[0], noise, optimizers[0]


def _thesis_step(config, digits, init_state, masks, noise, monkeypatch):
    """One step of benchmarks/thesis_pipeline.py with mtvae's masks and noise."""
    shape = tuple(digits.train.shape[1:])
    model = build_model(config.model, shape)
    model.load_state_dict(init_state)
    model.train()
    calls = []
    _watch_training_calls(model, calls)
    handed = iter(masks)

    def captured_mask(height, width, obs):  # instead of the per-image draw in __getitem__
        assert (height, width) == shape[1:] and obs == config.observation
        return next(handed)

    replay = iter(noise)

    def randn_like_replayed(like, *args, **kwargs):
        eps = next(replay)
        assert eps.shape == like.shape and eps.dtype == like.dtype
        return eps.clone()

    with monkeypatch.context() as patch:
        patch.setattr(thesis_pipeline, "thesis_mask", captured_mask)
        dataset = thesis_pipeline.ThesisStyleDataset(digits.train, config.observation, pil=True)
        batch = next(iter(thesis_pipeline.thesis_loader(dataset, batch_size=BATCH)))
        assert next(handed, None) is None, "every captured mask went into the batch"
        optimizer = thesis_pipeline.thesis_optimizer(model)
        patch.setattr(torch, "randn_like", randn_like_replayed)
        logged = thesis_pipeline.thesis_step(model, batch, optimizer, config.model.family,
                                             config.model.method, torch.device("cpu"))
    assert next(replay, None) is None, "the thesis side used all of mtvae's noise"
    assert len(calls) == 1
    return model, batch, calls[0], logged, optimizer


def _assert_close(label: str, a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float):
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda text: f"{label}: {text}")


@pytest.mark.parametrize("family", ["gaussian", "vq"])
@pytest.mark.parametrize("method", ["single", "multidecoder"])
def test_one_step_equals_the_thesis_pipeline(family, method, digits, monkeypatch):
    config = make_config("mnist-sample", model=family, config=1, method=method, epochs=1,
                         batch_size=BATCH, shuffle=False, device="cpu", progress=False)
    torch.manual_seed(0)
    init_state = {k: v.clone() for k, v in
                  build_model(config.model, tuple(digits.train.shape[1:])).state_dict().items()}

    result, seen, noise, fast_opt = _mtvae_step(config, digits, init_state, monkeypatch)
    assert len(noise) == (1 if family == "gaussian" else 0)  # z = mu + sigma * eps, once
    mask = seen["m"][:, -1:]
    assert mask.sum() > 0 and set(mask.unique().tolist()) <= {0.0, 1.0}
    model, (x, m, _), thesis_seen, logged, thesis_opt = _thesis_step(
        config, digits, init_state, list(mask), noise, monkeypatch)

    # the same batch: uint8 -> float on the device equals PIL + to_tensor, bit for bit, and the
    # thesis Dataset's m = cat(x * mask, mask) equals the m the trainer built from its mask
    assert torch.equal(seen["x"], x) and torch.equal(seen["m"], m)

    # the same forward pass (same weights, input, mask and noise)
    fast_out, thesis_out = seen["out"], thesis_seen["out"]
    for name in ("recon", "recon_cond", "mu", "logvar", "z", "z_e", "z_q"):
        a, b = getattr(fast_out, name), getattr(thesis_out, name)
        assert (a is None) == (b is None), name
        if a is not None:
            _assert_close(name, a, b, RTOL, ATOL)

    # the same loss, term by term, in the same units
    record = result.history[0]
    for ours, theirs in TERMS[family, method].items():
        assert record[f"train_{ours}"] == pytest.approx(logged[f"train_{theirs}"], rel=RTOL,
                                                        abs=ATOL), (ours, theirs)
    assert record["train_loss"] == pytest.approx(logged["train_loss"], rel=RTOL, abs=ATOL)

    # the same gradients: after one step AdamW's exp_avg is (1 - beta1) g, exp_avg_sq
    # (1 - beta2) g^2; the parameters come in the same order from the same module tree
    fast_params = [p for g in fast_opt.param_groups for p in g["params"]]
    thesis_params = [p for g in thesis_opt.param_groups for p in g["params"]]
    assert len(fast_params) == len(thesis_params) == len(list(model.parameters()))
    for group_a, group_b in zip(fast_opt.param_groups, thesis_opt.param_groups):
        for key in ("lr", "weight_decay", "betas", "eps", "amsgrad", "maximize"):
            assert group_a[key] == group_b[key], key
    beta1 = fast_opt.param_groups[0]["betas"][0]
    names = [name for name, _ in model.named_parameters()]
    for name, p, q in zip(names, fast_params, thesis_params):
        _assert_close(f"gradient of {name}", fast_opt.state[p]["exp_avg"] / (1 - beta1),
                      thesis_opt.state[q]["exp_avg"] / (1 - beta1), RTOL, GRAD_ATOL)

    # the same updated weights and BatchNorm statistics
    fast_state, thesis_state = result.model.state_dict(), model.state_dict()
    assert fast_state.keys() == thesis_state.keys() == init_state.keys()
    moved = 0.0
    for key, value in fast_state.items():
        _assert_close(key, value, thesis_state[key], WEIGHT_RTOL, WEIGHT_ATOL)
        if value.is_floating_point():
            moved = max(moved, float((value - init_state[key]).abs().max()))
    assert moved > 5e-4  # the step did change the weights (AdamW's first step: ~lr = 1e-3)
