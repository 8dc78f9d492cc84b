"""Decoder outputs: reconstructions with and without m (thesis Figs. 4.1, 4.3), the single
decoder's error as known pixels are added, and reconstruction against the exponent (section 4.2).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from ..data import to_float
from ..grid import FAMILY_NAMES
from ..known_pixels import known_pixel_curve
from ..observations import Observer, make_m, sample_mask
from .style import BASELINE, image_array, masked_image, palette, show_image, strip, styled

__all__ = ["reconstructions", "known_pixel_errors", "known_pixel_comparison",
           "reconstruction_vs_known_pixels",
           "exponent_table", "reconstruction_vs_exponent", "THESIS_EXPONENT_SWEEP"]

# The thesis's exponent figure for the VQ-VAE (CIFAR-10, VQ config 2, single decoder, Gaussian
# sampling; masked = m = 0 reconstruction, 5-fold means), decoded from its pgf
# (docs/thesis_code.md#sweep). The committed code trained every point with a = 40
# (docs/thesis_code.md#exponent-bug).
THESIS_EXPONENT_SWEEP = {
    "vq": {3: 0.00745, 5: 0.00759, 10: 0.00709, 20: 0.00724, 25: 0.00695, 30: 0.00606,
           35: 0.00585, 40: 0.00682, 45: 0.00636, 50: 0.00627, 55: 0.00577, 60: 0.00565,
           65: 0.00540, 70: 0.00532},
    "vq_baseline": 0.00607,
}


def _floats(images, n: int | None = None) -> torch.Tensor:
    x = torch.as_tensor(images)[:n]
    if x.dim() != 4:
        raise ValueError(f"expected a batch of images (B, C, H, W), got {tuple(x.shape)}")
    return to_float(x)


@torch.no_grad()
def _forward(model, x: torch.Tensor, m: torch.Tensor | None):
    device = next(model.parameters()).device
    model.eval()
    return model(x.to(device), None if m is None else m.to(device))


def reconstructions(model, images, observation=None, *, n: int = 8, seed: int = 0,
                    title: str | None = None):
    """Rows: input, known pixels, unconditioned output, conditioned output (Figs. 4.1, 4.3).

    ``observation``: the run's :class:`~mtvae.observations.ObservationConfig`
    (``result.config.observation``); masks are drawn with ``seed``.
    """
    import matplotlib.pyplot as plt

    x = _floats(images, n)
    conditioned = getattr(model, "cond_decoder", None) is not None
    if conditioned and observation is None:
        raise ValueError("a conditioned model needs the run's observation config to draw m "
                         "(pass result.config.observation)")
    m = Observer(observation, tuple(x.shape[1:]))(x, torch.Generator().manual_seed(seed)) \
        if conditioned else None
    out = _forward(model, x, m)
    single = conditioned and getattr(model, "decoder", None) is None
    rows = [("input x", [image_array(i) for i in x])]
    if conditioned:
        c = x.shape[1]
        rows.append(("known pixels", [masked_image(x[i], m[i, c:]) for i in range(len(x))]))
    rows.append(("decoder, m = 0" if single else "decoder 1: p(x | z)",
                 [image_array(i) for i in out.recon]))
    if conditioned:
        rows.append(("decoder, m" if single else "decoder 2: p(x | z, m)",
                     [image_array(i) for i in out.recon_cond]))
    with styled():
        fig, axes = plt.subplots(len(rows), 1, figsize=(1.0 * len(x) + 1.5, 1.15 * len(rows)),
                                 layout="constrained", squeeze=False)
        for ax, (label, images_row) in zip(axes[:, 0], rows):
            show_image(ax, strip(images_row))
            ax.set_ylabel(label, rotation=0, ha="right", va="center")
        if title:
            fig.suptitle(title)
    return fig


def known_pixel_errors(model, images, counts, *, sampler: str = "gaussian", seed: int = 0,
                       batch_size: int = 500) -> pd.DataFrame:
    """Per-pixel MSE of the conditioned decoder when exactly ``k`` pixels are known, for each k
    in ``counts`` (k = 0 is the unconditioned case m = 0): the ``recon`` column of
    :func:`mtvae.known_pixels.known_pixel_curve`."""
    rows = known_pixel_curve(model, _floats(images), counts, sampler=sampler, draws=False,
                             seed=seed, batch_size=batch_size)
    return pd.DataFrame(rows)[["known_pixels", "recon"]]


def known_pixel_comparison(curves: Mapping, *, baseline: float | None = None,
                           title: str | None = None):
    """Models side by side as the known pixels grow, one line each (``{label: rows}``, rows of
    :func:`mtvae.known_pixels.known_pixel_curve` or its DataFrame): the conditioned
    reconstruction error (left; ``baseline`` dashed) and, where the draws were measured, the
    share of true pixels inside the draws' central 95 % interval (right; 0.95 dotted)."""
    import matplotlib.pyplot as plt

    tables = {k: pd.DataFrame(v) for k, v in curves.items()}
    drawn = any(t.coverage.notna().any() for t in tables.values() if "coverage" in t)
    with styled():
        fig, axes = plt.subplots(1, 2 if drawn else 1, figsize=(9.5 if drawn else 5, 3.3),
                                 layout="constrained", squeeze=False)
        axes = axes[0]
        for (label, t), colour in zip(tables.items(), palette(len(tables))):
            axes[0].plot(t.known_pixels, t.recon, marker="o", color=colour, label=label)
            if drawn and "coverage" in t:
                axes[1].plot(t.known_pixels, t.coverage, marker="o", color=colour, label=label)
        if baseline is not None:
            axes[0].axhline(baseline, **BASELINE, label="baseline VAE (no m)")
        axes[0].set_yscale("log")
        axes[0].set_ylabel("recon (MSE per pixel), z from the encoder")
        if drawn:
            axes[1].axhline(0.95, color="0.5", linestyle=":", linewidth=1)
            axes[1].set_ylim(0, 1)
            axes[1].set_ylabel("coverage of the draws' 95 % interval")
        for ax in axes:
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlabel("known pixels")
        axes[0].legend(fontsize=8)
        if title:
            fig.suptitle(title)
    return fig


def reconstruction_vs_known_pixels(model, images, errors: pd.DataFrame | None = None, *,
                                   counts=None, show=None, sampler: str = "gaussian",
                                   seed: int = 0, baseline: float | None = None,
                                   example: int = 0, title: str | None = None):
    """Left: the conditioned decoder's error against the number of known pixels (baseline
    dashed). Right: one image's known pixels (top) and reconstruction (bottom) for a few counts.
    """
    import matplotlib.pyplot as plt

    x = _floats(images)
    _, _, h, w = x.shape
    n = h * w
    if counts is None:
        counts = [k for k in (0, 1, 2, 5, 10, 20, 50, 100, 200, 400) if k < n] + [n]
    if errors is None:
        errors = known_pixel_errors(model, x, counts, sampler=sampler, seed=seed)
    show = list(show) if show is not None else [0, 10, 50, 200, n]
    one = x[example:example + 1].expand(len(show), -1, -1, -1)
    g = torch.Generator().manual_seed(seed)
    masks = torch.cat([sample_mask(1, h, w, sampler, min(k, n), generator=g) for k in show])
    out = _forward(model, one, make_m(one, masks))
    blank = np.ones((h, w, 3))
    top = strip([image_array(x[example])] + [masked_image(one[i], masks[i])
                                             for i in range(len(show))])
    bottom = strip([blank] + [image_array(r) for r in out.recon_cond])
    with styled():
        fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(11, 3.2), layout="constrained",
                                         width_ratios=[1, 1.5])
        ax.plot(errors.known_pixels, errors.recon, marker="o", color=palette(1)[0],
                label="single decoder, p(x | z, m)")
        if baseline is not None:
            ax.axhline(baseline, **BASELINE, label="baseline VAE")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(-0.1, n * 1.3)
        ax.set_yscale("log")  # errors far outside the training counts would flatten the rest
        ax.set_xlabel(f"known pixels ({sampler} locations; of {n})")
        ax.set_ylabel("recon (MSE per pixel)")
        ax.legend(fontsize=8)
        show_image(ax_img, np.concatenate([top, np.ones((1, top.shape[1], 3)), bottom]))
        ax_img.set_xticks([i * (w + 1) + (w - 1) / 2 for i in range(len(show) + 1)],
                          ["original"] + [f"{k} known" for k in show], fontsize=8)
        ax_img.set_yticks([(h - 1) / 2, h + 1 + (h - 1) / 2], ["known\npixels", "output"],
                          fontsize=8)
        if title:
            fig.suptitle(title)
    return fig


def exponent_table(results: Mapping, split: str = "val") -> pd.DataFrame:
    """Rows per exponent from ``{exponent: Result}``: recon (m = 0), recon_cond, kl or vq."""
    rows = []
    for a, run in sorted(results.items()):
        m = run.metrics[split]
        rows.append({"exponent": a, **{k: m[k] for k in ("recon", "recon_cond", "kl", "vq")
                                       if k in m}})
    return pd.DataFrame(rows)


def reconstruction_vs_exponent(sweeps: Mapping[str, pd.DataFrame],
                               baselines: Mapping[str, float] | None = None, *,
                               thesis: bool = True, ours_label: str = "ours",
                               title: str | None = None):
    """Single decoder reconstruction with m = 0 against the power-law exponent, one axes per
    model family (``{family: exponent_table(...)}``), the baseline dashed; ``thesis`` adds the
    thesis's VQ sweep (CIFAR-10, config 2) in its own axes."""
    import matplotlib.pyplot as plt

    baselines = baselines or {}
    n = len(sweeps) + (1 if thesis else 0)
    with styled():
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.2), layout="constrained",
                                 squeeze=False)
        axes = list(axes[0])
        for ax, (family, table) in zip(axes, sweeps.items()):
            ax.plot(table.exponent, table.recon, marker="o", color=palette(1)[0],
                    label="single decoder, m = 0")
            if family in baselines:
                ax.axhline(baselines[family], **BASELINE, label="baseline")
            ax.set_title(f"{ours_label}: {FAMILY_NAMES[family]}", fontsize=9)
        if thesis:
            ax = axes[-1]
            sweep = THESIS_EXPONENT_SWEEP["vq"]
            ax.plot(list(sweep), list(sweep.values()), marker="o", color=palette(2)[1],
                    label="single decoder, m = 0")
            ax.axhline(THESIS_EXPONENT_SWEEP["vq_baseline"], **BASELINE, label="baseline")
            ax.set_title("thesis (CIFAR-10, VQ config 2, 5-fold mean)", fontsize=9)
        for ax in axes:
            ax.set_xlabel("power-law exponent a")
            ax.set_ylabel("recon (MSE per pixel)")
            ax.legend(fontsize=8)
        if title:
            fig.suptitle(title)
    return fig
