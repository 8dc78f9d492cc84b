"""Evaluation: a model's metrics over a set of images in the units of the thesis's Table 4.1,
and the validation objective that picks the best epoch (thesis section 3.4.3)."""

from __future__ import annotations

import math

import torch

from .config import RunConfig
from .data import to_float
from .loop import autocast, batches
from .losses import MetricAccumulator
from .observations import Observer

__all__ = ["evaluate", "selection_loss"]


def selection_loss(metrics: dict, config: RunConfig, image_numel: int) -> float:
    """The training objective on the validation set with fixed weights (no SoftAdapt weights),
    per image: the quantity whose minimum picks the best epoch (thesis section 3.4.3). Its
    terms are the method's training terms (mtvae/methods.py): the single decoder's m = 0
    reconstruction is reported but not selected on."""
    lc, terms = config.loss, config.model.spec.terms
    scale = image_numel if config.model.family == "gaussian" else 1  # Gaussian: summed MSE
    latent = metrics["kl"] if config.model.family == "gaussian" else metrics["vq"]
    total = lc.beta * latent
    if "recon" in terms:
        total += lc.w1 * metrics["recon"] * scale
    if "recon_cond" in terms:
        total += lc.w2 * metrics["recon_cond"] * scale
    return total


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: torch.Tensor, config: RunConfig,
             observer: Observer | None = None, seed: int = 0, batch_size: int | None = None,
             device: torch.device | None = None) -> dict:
    """Metrics in Table 4.1 units over uint8 ``images``: recon (unconditioned), recon_cond,
    kl or vq, the selection loss, and for VQ models perplexity and codes used.

    Masks come from a generator seeded with ``seed``, so every epoch sees the same m.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    family = config.model.family
    acc = MetricAccumulator(family, config.loss.commitment,
                            getattr(model, "num_embeddings", 0) if family == "vq" else 0)
    gen = torch.Generator(device=device).manual_seed(seed)
    needs_m = config.model.spec.conditioned
    if needs_m and observer is None:
        observer = Observer(config.observation, tuple(images.shape[1:]))
    bs = batch_size or config.train.eval_batch_size
    for i, j in batches(len(images), bs, False):
        x = to_float(images[i:j].to(device, non_blocking=True))
        m = observer(x, gen) if needs_m else None
        with autocast(device, config.train.amp):
            out = model(x, m)
        acc.update(x, out)
    model.train(was_training)
    res = acc.compute()
    res["loss"] = selection_loss(res, config, math.prod(images.shape[1:]))
    return res
