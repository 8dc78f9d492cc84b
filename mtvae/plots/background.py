"""Figures of thesis chapters 2-3: the power-law pixel count (section 2.5.2), the conditioning
information m (Fig. 3.1) and the three pixel samplers (Fig. 3.6)."""

from __future__ import annotations

import numpy as np
import torch

from ..data import to_float
from ..observations import (
    fixed_count,
    make_m,
    power_law_counts,
    sample_mask,
)
from .style import image_array, masked_image, palette, show_image, styled

__all__ = ["power_law_pmf", "power_law_summary", "power_law_distribution", "count_histogram", "conditioning_information",
           "sampling_types", "exponent_panel"]


def power_law_pmf(n_pixels: int, exponent: float) -> np.ndarray:
    """P(count = k) for k = 0..N, count = floor(N (1 - X)), X ~ Power(a).

    Derived independently of the sampler: 1 - X ~ Beta(1, a), so P(1 - X >= y) = (1 - y)^a and
    P(count >= k) = P(1 - X >= k/N) = (1 - k/N)^a; the pmf is the difference of neighbours.
    """
    if n_pixels < 1 or not exponent > 0:
        raise ValueError(f"need n_pixels >= 1 and exponent > 0, got {n_pixels}, {exponent}")
    k = np.arange(n_pixels + 2, dtype=np.float64)
    survival = np.clip(1.0 - k / n_pixels, 0.0, 1.0) ** exponent
    survival[-1] = 0.0  # P(count >= N + 1) = 0
    return survival[:-1] - survival[1:]


def power_law_summary(n_pixels: int, exponents=(10, 40, 60), n_samples: int = 200_000,
                      seed: int = 0):
    """Per exponent: the pmf's mean, median, 90th/99th percentile and P(count = 0), beside the
    mean of ``n_samples`` seeded draws of :func:`mtvae.observations.power_law_counts`."""
    import pandas as pd

    g = torch.Generator().manual_seed(seed)
    rows = []
    for a in exponents:
        pmf = power_law_pmf(n_pixels, a)
        cdf = np.cumsum(pmf)
        draws = power_law_counts(n_samples, n_pixels, a, generator=g).double()
        rows.append({"exponent": a, "mean": float(np.arange(len(pmf)) @ pmf),
                     "median": int(np.searchsorted(cdf, 0.5)),
                     "q90": int(np.searchsorted(cdf, 0.9)), "q99": int(np.searchsorted(cdf, 0.99)),
                     "P(count=0)": float(pmf[0]), "sampled mean": float(draws.mean())})
    return pd.DataFrame(rows).set_index("exponent")


def count_histogram(ax, n_pixels: int, exponent: float, counts: np.ndarray, color=None,
                    xmax: int | None = None, label: bool = True) -> None:
    """Monte Carlo histogram of ``counts`` (bars) with the analytic pmf (line) on ``ax``."""
    pmf = power_law_pmf(n_pixels, exponent)
    xmax = xmax or int(np.searchsorted(np.cumsum(pmf), 0.995)) + 1
    freq = np.bincount(np.minimum(counts, xmax + 1), minlength=xmax + 2)[: xmax + 1] / len(counts)
    k = np.arange(xmax + 1)
    ax.bar(k, freq, width=1.0, color=color, alpha=0.35, linewidth=0)
    mean = float(np.arange(len(pmf)) @ pmf)  # ~ N / (a + 1) - 1/2: the floor drops ~half a pixel
    ax.plot(k, pmf[: xmax + 1], color=color, lw=1.5,
            label=f"a = {exponent:g}: mean {mean:.1f}, P(0) = {pmf[0]:.1%}" if label else None)
    ax.set_xlim(-0.5, xmax + 0.5)
    ax.set_xlabel("known pixels (count)")
    ax.set_ylabel("probability")


def power_law_distribution(n_pixels: int = 784, exponents=(10, 40, 60), n_samples: int = 200_000,
                           seed: int = 0):
    """Histogram of power-law pixel counts for several exponents with the analytic pmf."""
    import matplotlib.pyplot as plt

    exponents = list(exponents)
    with styled():
        fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
        g = torch.Generator().manual_seed(seed)
        xmax = int(np.searchsorted(np.cumsum(power_law_pmf(n_pixels, min(exponents))), 0.995)) + 1
        for a, color in zip(exponents, palette(len(exponents))):
            counts = power_law_counts(n_samples, n_pixels, a, generator=g).numpy()
            count_histogram(ax, n_pixels, a, counts, color, xmax)
        ax.legend(title="bars: Monte Carlo, lines: pmf")
        ax.set_title(f"count = floor(N (1 - X)), X ~ Power(a), N = {n_pixels} pixels "
                     f"({n_samples:,} draws each)")
    return fig


def conditioning_information(image, mask):
    """Fig. 3.1: x, the mask, the masked image and the C + 1 channels of m = [x * mask, mask]."""
    import matplotlib.pyplot as plt

    x, mask = _as_batch(image), _as_batch(mask)
    m = make_m(x, mask)[0]
    n = 3 + m.shape[0]
    with styled():
        fig, axes = plt.subplots(1, n, figsize=(1.7 * n, 2.2), layout="constrained")
        show_image(axes[0], image_array(x[0]), "image x")
        show_image(axes[1], image_array(mask[0]), "mask")
        show_image(axes[2], masked_image(x[0], mask[0]), "masked image")
        names = ["R", "G", "B"] if x.shape[1] == 3 else [f"channel {i}" for i in range(x.shape[1])]
        for i, ax in enumerate(axes[3:]):
            title = "m: mask" if i == m.shape[0] - 1 else f"m: x*mask {names[i]}"
            show_image(ax, m[i].numpy(), title)
        fig.suptitle(f"m = [x * mask, mask]: {m.shape[0]} channels, "
                     f"{int(mask.sum())} known pixels")
    return fig


def sampling_types(image, count: int | None = None, seed: int = 0, replacement: bool = False):
    """Fig. 3.6: original / mask / result rows for exact, uniform and Gaussian sampling.

    ``count`` defaults to the thesis's 5 % (39 pixels on 28x28); the exact grid ignores it.
    """
    import matplotlib.pyplot as plt

    x = _as_batch(image)
    _, _, h, w = x.shape
    count = fixed_count(h, w) if count is None else count
    g = torch.Generator().manual_seed(seed)
    with styled():
        fig, axes = plt.subplots(3, 3, figsize=(5.4, 5.6), layout="constrained")
        for row, sampler in zip(axes, ("exact", "uniform", "gaussian")):
            mask = sample_mask(1, h, w, sampler, count, replacement=replacement, generator=g)
            show_image(row[0], image_array(x[0]))
            show_image(row[1], image_array(mask[0]))
            show_image(row[2], masked_image(x[0], mask[0]))
            row[0].set_ylabel(f"{sampler}\n({int(mask.sum())} pixels)")
        for ax, title in zip(axes[0], ("original", "mask", "result")):
            ax.set_title(title)
    return fig


def exponent_panel(image, exponent: float, *, model=None, sampler: str = "gaussian",
                   draw: int = 0, n_samples: int = 20_000, seed: int = 0,
                   limits: tuple[int, float] | None = None):
    """The slider's view for one exponent: the count histogram, one mask drawn with a power-law
    count (draw ``draw``), the masked image and, given a single decoder ``model``, its outputs
    with m = 0 and with this m. ``limits`` = (largest count, largest probability) fixes the
    histogram's axes, so that views of several exponents compare by eye
    (:func:`histogram_limits`); None fits them to this exponent."""
    import matplotlib.pyplot as plt

    x = _as_batch(image)
    _, _, h, w = x.shape
    n_pixels = h * w
    g = torch.Generator().manual_seed(seed)
    counts = power_law_counts(n_samples, n_pixels, exponent, generator=g).numpy()
    g.manual_seed(seed + 1000 + draw)
    count = power_law_counts(1, n_pixels, exponent, generator=g)
    mask = sample_mask(1, h, w, sampler, count, generator=g)
    n = 3 + (2 if model is not None else 0)
    with styled():
        fig = plt.figure(figsize=(2.2 * n + 1.5, 2.6), layout="constrained")
        grid = fig.add_gridspec(1, n + 1)
        ax = fig.add_subplot(grid[0, :2])
        count_histogram(ax, n_pixels, exponent, counts, palette(1)[0],
                        xmax=limits[0] if limits else None)
        if limits:
            ax.set_ylim(0, limits[1])
        ax.axvline(int(count), color="0.15", lw=1, ls=":", label=f"this draw: {int(count)}")
        ax.legend(fontsize=7)
        axes = [fig.add_subplot(grid[0, i + 2]) for i in range(n - 1)]
        show_image(axes[0], image_array(mask[0]), f"mask ({int(count)} pixels)")
        show_image(axes[1], masked_image(x[0], mask[0]), "known pixels")
        if model is not None:
            device = next(model.parameters()).device
            model.eval()
            with torch.no_grad():
                out = model(x.to(device), make_m(x, mask).to(device))
            show_image(axes[2], image_array(out.recon[0]), "decoder, m = 0")
            show_image(axes[3], image_array(out.recon_cond[0]), "decoder, this m")
        fig.suptitle(f"power-law exponent a = {exponent:g}, {sampler} pixel locations")
    return fig


def histogram_limits(n_pixels: int, exponents) -> tuple[int, float]:
    """Axes that hold the count histogram of every exponent in ``exponents``: the widest
    distribution's 99.5th percentile (the lowest exponent) and the highest pmf, P(count = 0)
    at the highest exponent, with room for the Monte Carlo bars' noise."""
    low, high = min(exponents), max(exponents)
    xmax = int(np.searchsorted(np.cumsum(power_law_pmf(n_pixels, low)), 0.995)) + 1
    return xmax, 1.15 * float(power_law_pmf(n_pixels, high).max())


def _as_batch(image) -> torch.Tensor:
    """One image (C, H, W) or (1, C, H, W), uint8 or float -> float (1, C, H, W) on the CPU."""
    x = to_float(image)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image (C, H, W), got shape {tuple(x.shape)}")
    return x.cpu()
