"""How much the known pixels help: error, spread and calibration as their number grows.

The semi-conditional decoder is only useful if it uses m. This module measures that for one
trained model on a set of images, at each number k of known pixels (drawn uniformly, without
replacement, the same k pixels for every measure of an image):

- ``recon``: the conditioned reconstruction, z from the encoder (its mean for a Gaussian VAE,
  the quantised code for a VQ-VAE) decoded with m = [x * mask, mask]; per-pixel MSE. At k = 0
  this is m = 0 (for the single decoder the unconditioned output, thesis 3.3).
- ``draws_mse``, ``spread``, ``coverage``: S latents from the prior (N(0, I), or a PixelCNN for
  a VQ-VAE) decoded with the same m, i.e. generation given the pixels (thesis 3.2.3).
  ``draws_mse`` is the MSE of the draws' mean, ``spread`` the mean per-pixel standard deviation
  over the draws, and ``coverage`` the share of true pixel values inside the draws' central 95 %
  interval (their 2.5 % and 97.5 % quantiles, widened by half a grey level, 0.5 / 255, because
  the images are quantised: most MNIST pixels are exactly 0, and draws of 0.001 and 0.003 do
  cover a true 0): a calibrated spread covers about 0.95; far less means overconfident draws. With few draws the empirical interval is narrow (S = 32 draws
  cover a new value from the same distribution with probability 31/33 = 0.94 at best), so
  compare coverages at the same S.

``shared_draws=True`` draws the S latents once per count and decodes every image with the same
S (:func:`mtvae.generate.uncertainty`, ``shared``): each image's draws are still S independent
prior draws, since the prior does not see m. It is how to afford a VQ-VAE's curve on a CPU: the PixelCNN samples S code maps per count instead of
N x S (200 x 32 x 7 = 44,800 autoregressive samples for the default 200 images, over an hour on
one thread, against 224 with shared draws).

Used by notebook 03 and benchmarks/known_pixels.py; see docs/methods.md, "Spatial conditioning".
"""

from __future__ import annotations

import torch

from .data import to_float
from .generate import uncertainty
from .observations import make_m, sample_mask

__all__ = ["KNOWN_PIXELS", "known_pixel_curve"]

# The counts of issue 12's measurement: none, the few a single decoder mostly sees at a = 40
# (the power law's median count is 1-2), up to about the multidecoder's 5 % of 28 x 28 (39).
KNOWN_PIXELS = (0, 5, 10, 20, 50, 100, 200)
HALF_LEVEL = 0.5 / 255  # half a uint8 grey level: the data's own resolution


@torch.no_grad()
def _encode_decode(model, x: torch.Tensor, m: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = []
    for i in range(0, len(x), batch_size):
        xb, mb = x[i:i + batch_size], m[i:i + batch_size]
        if hasattr(model, "decode_codes"):  # VQ-VAE: the quantised code of x
            out.append(model.decode_codes(model.encode(xb), mb).float())
        else:  # Gaussian VAE: the posterior mean, as at evaluation (thesis 3.4.3)
            out.append(model.decode(model.encode(xb)[0], mb).float())
    return torch.cat(out)


def _quantiles(draws: torch.Tensor, qs) -> list[torch.Tensor]:
    """Quantiles over dim 1 with linear interpolation, as torch.quantile (which refuses inputs
    over 16 M elements, i.e. a few hundred CelebA images' draws)."""
    ordered = draws.sort(dim=1).values
    out = []
    for q in qs:
        pos = q * (draws.shape[1] - 1)
        i, frac = int(pos), pos - int(pos)
        j = min(i + 1, draws.shape[1] - 1)
        out.append(ordered[:, i] * (1 - frac) + ordered[:, j] * frac)
    return out


@torch.no_grad()
def known_pixel_curve(model, images: torch.Tensor, counts=KNOWN_PIXELS, *, samples: int = 32,
                      prior=None, sampler: str = "uniform", draws: bool = True, seed: int = 0,
                      shared_draws: bool = False, batch_size: int = 512) -> list[dict]:
    """One row per count in ``counts``: ``known_pixels``, ``recon``, ``draws_mse``, ``spread``,
    ``coverage`` (see the module docstring), averaged over ``images`` (uint8 or floats in
    [0, 1], (N, C, H, W)). ``sampler``: where the known pixels are ("uniform" or "gaussian",
    thesis 3.3.1). ``prior``: a VQ-VAE's trained prior (:func:`mtvae.train_prior`); without one,
    or with ``draws=False``, only ``recon`` is measured (the draws' columns are NaN).
    ``shared_draws``: the same S prior latents for every image of a count (module docstring)."""
    if samples < 2:
        raise ValueError(f"a spread needs samples >= 2, got {samples}")
    if sampler == "exact":
        raise ValueError("the exact grid has a fixed number of pixels; use 'uniform' or "
                         "'gaussian' to vary the count")
    if getattr(model, "cond_decoder", None) is None:
        raise ValueError("the model has no conditioned decoder; train method='single' or "
                         "'multidecoder'")
    device = next(model.parameters()).device
    x = to_float(images).to(device)
    h, w = x.shape[-2:]
    counts = [int(k) for k in counts]
    if any(k < 0 or k > h * w for k in counts):
        raise ValueError(f"known-pixel counts must lie in [0, {h * w}], got {counts}")
    was_training = model.training
    model.eval()
    gen = torch.Generator(device).manual_seed(seed)
    can_draw = draws and (prior is not None or not hasattr(model, "decode_codes"))
    rows = []
    for k in counts:
        mask = sample_mask(len(x), h, w, sampler, k, generator=gen, device=device)
        recon = (_encode_decode(model, x, make_m(x, mask), batch_size) - x).pow(2).mean()
        row = {"known_pixels": k, "recon": float(recon), "draws_mse": float("nan"),
               "spread": float("nan"), "coverage": float("nan")}
        if can_draw:
            u = uncertainty(model, x, mask, samples, prior=prior, seed=seed + k,
                            shared=shared_draws, keep_samples=True, batch_size=batch_size)
            lo, hi = _quantiles(u.samples.float(), (0.025, 0.975))
            inside = (x >= lo - HALF_LEVEL) & (x <= hi + HALF_LEVEL)
            row.update(draws_mse=float(u.error.pow(2).mean()), spread=float(u.std.mean()),
                       coverage=float(inside.float().mean()))
        rows.append(row)
    model.train(was_training)
    return rows
