"""The learned prior and what it makes possible (notebook 04; thesis sections 2.2.2, 2.5.1, 3.2.3).

The thesis describes the VQ-VAE's second stage, a PixelCNN prior over the code maps, but never
trained one (docs/thesis_code.md#prior); :mod:`mtvae.prior` adds it. These helpers draw its
training curve against the uniform prior, samples of several generators side by side, and the
uncertainty of decodings from sparse pixels (:mod:`mtvae.generate`) as the known pixels grow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from ..generate import Uncertainty, latent_sampler, uncertainty
from ..observations import sample_mask
from .reconstructions import _floats
from .style import BASELINE, frame, image_array, masked_image, palette, show_image, styled

__all__ = ["prior_nll_curve", "generated_samples", "given_pixels", "uncertainty_panels",
           "uncertainty_by_known_pixels", "uncertainty_vs_known_pixels", "uncertainty_maps"]


def prior_nll_curve(prior, title: str | None = None):
    """The prior's validation NLL per epoch in bits per code (nats on the right axis), the
    held-out test NLL of the kept epoch, and the uniform prior's log2 K: what a code costs
    without a learned prior."""
    import matplotlib.pyplot as plt

    if not prior.history:
        raise ValueError("the prior has no training history; train it with mtvae.train_prior")
    epochs = [h["epoch"] + 1 for h in prior.history]
    test, uniform = prior.metrics["test"]["nll_bits"], prior.metrics["test"]["uniform_bits"]
    with styled():
        fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
        ax.plot(epochs, [h["val_nll_bits"] for h in prior.history], marker="o",
                color=palette(1)[0], label="validation")
        ax.plot([prior.best_epoch + 1], [test], marker="*", markersize=12, linestyle="none",
                color=palette(2)[1], label=f"held-out test, epoch {prior.best_epoch + 1}")
        ax.axhline(uniform, **BASELINE, label=f"uniform prior, log2 K = {uniform:g}")
        ax.set_ylim(0, uniform * 1.08)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("NLL (bits per code)")
        nats = ax.secondary_yaxis("right", functions=(lambda b: b * math.log(2),
                                                      lambda n: n / math.log(2)))
        nats.set_ylabel("nats per code")
        ax.legend(fontsize=8, loc="center right")
        ax.set_title(title or f"PixelCNN prior over {prior.grid[0]}x{prior.grid[1]} code maps")
    return fig


def generated_samples(panels: Mapping[str, torch.Tensor], nrow: int = 8,
                      title: str | None = None):
    """One panel per generator: ``{label: images (N, C, H, W) in [0, 1]}`` as grids of
    ``nrow`` columns, side by side."""
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    if not panels:
        raise ValueError("give at least one panel: {'label': images}")
    with styled():
        fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.7),
                                 layout="constrained", squeeze=False)
        for ax, (label, images) in zip(axes[0], panels.items()):
            images = _floats(images).clamp(0, 1)
            grid = make_grid(images, nrow=min(nrow, len(images)), padding=2, pad_value=1.0)
            show_image(ax, image_array(grid), label)
        if title:
            fig.suptitle(title)
    return fig


def _shared_latents(model, prior, n: int, seed: int):
    """``n`` prior latents drawn once, handed out again on every call: decodings for different
    m then differ only in m (a paired comparison), and a PixelCNN samples only once."""
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        latents = latent_sampler(model, prior)(n, gen)

    def sampler(k: int, generator=None) -> torch.Tensor:
        if k > len(latents):
            raise ValueError(f"asked for {k} latents, {len(latents)} were drawn")
        return latents[:k]

    return latents, sampler


def _nested_masks(batch: int, h: int, w: int, sampler: str, counts, seed: int) -> list:
    """Masks with ``counts[i]`` known pixels per image, drawn from the same keys, so every
    count's pixels include those of each smaller count (mtvae.observations.sample_mask)."""
    if sampler == "exact":
        raise ValueError("the exact grid has a fixed number of pixels; use 'uniform' or "
                         "'gaussian' to vary the count")
    return [sample_mask(batch, h, w, sampler, int(k), generator=torch.Generator().manual_seed(seed))
            for k in counts]


def uncertainty_by_known_pixels(model, images, counts, *, prior=None, samples: int = 16,
                                sampler: str = "gaussian", seed: int = 0) -> pd.DataFrame:
    """Mean per-pixel std over ``samples`` decodings and MSE of their mean, averaged over
    ``images``, for each number of known pixels in ``counts`` (:func:`mtvae.generate.uncertainty`).

    The same prior latents serve every count and the masks are nested, so the rows differ only
    in the known pixels. ``prior``: the VQ-VAE's prior (a Gaussian VAE uses N(0, I)).
    """
    if getattr(model, "cond_decoder", None) is None:
        raise ValueError("the model has no conditioned decoder; train method='single' or "
                         "'multidecoder'")
    x = _floats(images)
    b, _, h, w = x.shape
    _, shared = _shared_latents(model, prior, b * samples, seed)
    rows = []
    for k, mask in zip(counts, _nested_masks(b, h, w, sampler, counts, seed)):
        s = uncertainty(model, x, mask, samples, prior=shared).summary()
        rows.append({"known_pixels": int(k), "mean_std": float(s["mean_std"].mean()),
                     "mse": float(s["mse"].mean())})
    return pd.DataFrame(rows)


def uncertainty_vs_known_pixels(tables: Mapping[str, pd.DataFrame], *, sampler: str = "gaussian",
                                title: str | None = None):
    """Left: the mean std of the decodings; right: the MSE of their mean; against the number of
    known pixels, one line per model (``{label: uncertainty_by_known_pixels(...)}``)."""
    import matplotlib.pyplot as plt

    with styled():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.3), layout="constrained")
        for (label, t), colour in zip(tables.items(), palette(len(tables))):
            for ax, col in zip(axes, ("mean_std", "mse")):
                ax.plot(t.known_pixels, t[col], marker="o", color=colour, label=label)
        for ax, name in zip(axes, ("mean std of the decodings", "MSE of their mean")):
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlabel(f"known pixels ({sampler} locations)")
            ax.set_ylabel(name)
            ax.set_ylim(bottom=0)
        axes[0].legend(fontsize=8)
        if title:
            fig.suptitle(title)
    return fig


def uncertainty_maps(model, image, counts=(5, 25, 100), *, prior=None, samples: int = 32,
                     sampler: str = "gaussian", seed: int = 0, title: str | None = None):
    """One image with more and more known pixels (one row per count): the true image, its
    known pixels, the mean of ``samples`` decodings, their std and the mean's |error|. Every
    row decodes the same prior latents with nested masks."""
    image = torch.as_tensor(image)
    x = _floats(image[None] if image.dim() == 3 else image[:1])  # one image (1, C, H, W)
    _, _, h, w = x.shape
    latents, _ = _shared_latents(model, prior, samples, seed)
    rows = len(counts)
    # uncertainty() asks for rows * samples latents, image i's S draws in a block
    repeated = latents.repeat(rows, *([1] * (latents.dim() - 1)))
    masks = torch.cat(_nested_masks(1, h, w, sampler, counts, seed))
    result = uncertainty(model, x.expand(rows, -1, -1, -1), masks, samples,
                         prior=lambda n, g: repeated[:n])
    return uncertainty_panels(result, max_images=rows, title=title)


def given_pixels(x, mask, samples, max_images: int = 4, max_samples: int = 8,
                 title: str | None = None):
    """Per row: the true image, its known pixels, then images generated from those pixels
    (``samples``: (B, S, C, H, W) from :func:`mtvae.generate.generate_given_pixels`)."""
    import matplotlib.pyplot as plt

    x = _floats(x)
    mask = torch.as_tensor(mask).float()
    if mask.dim() == 2:  # one (H, W) mask shared by all images
        mask = mask.expand(len(x), 1, *mask.shape)
    b, s = min(len(samples), max_images), min(samples.shape[1], max_samples)
    with styled():
        fig, axes = plt.subplots(b, s + 2, figsize=(1.3 * (s + 2), 1.4 * b), squeeze=False,
                                 layout="constrained")
        for i in range(b):
            show_image(axes[i, 0], image_array(x[i]), "true" if i == 0 else None)
            show_image(axes[i, 1], masked_image(x[i], mask[i]), f"{int(mask[i].sum())} known")
            for k in range(s):
                show_image(axes[i, k + 2], image_array(samples[i, k].clamp(0, 1)),
                           "generated" if i == 0 and k == 0 else None)
        if title:
            fig.suptitle(title)
    return fig


def uncertainty_panels(result: Uncertainty, max_images: int = 4, title: str | None = None):
    """Per row: true image, known pixels, mean, std and |error| of the decodings (channels
    averaged), std and error on one colour scale per row so they can be compared."""
    import matplotlib.pyplot as plt

    b = min(len(result.x), max_images)
    with styled():
        fig, axes = plt.subplots(b, 5, figsize=(8.5, 1.8 * b), squeeze=False,
                                 layout="constrained")
        for i in range(b):
            std = result.std[i].mean(0).cpu().numpy()
            err = result.error[i].mean(0).cpu().numpy()
            top = float(max(std.max(), err.max(), 1e-6))
            show_image(axes[i, 0], image_array(result.x[i]), "true" if i == 0 else None)
            show_image(axes[i, 1], masked_image(result.x[i], result.mask[i]),
                       f"{int(result.mask[i].sum())} known")
            show_image(axes[i, 2], image_array(result.mean[i].clamp(0, 1)),
                       "mean" if i == 0 else None)
            for ax, img, name in ((axes[i, 3], std, "std"), (axes[i, 4], err, "|error|")):
                im = ax.imshow(img, cmap="magma", vmin=0, vmax=top)
                frame(ax, name if i == 0 else None)
            fig.colorbar(im, ax=axes[i, 3:].tolist(), fraction=0.05)
        if title:
            fig.suptitle(title)
    return fig
