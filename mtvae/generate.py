"""Generation, generation from a few known pixels, and uncertainty from sparse pixels.

A trained model generates by decoding latents drawn from its prior:

* Gaussian VAE: z ~ N(0, I) (thesis section 2.1.2), ``model.sample_latent``;
* VQ-VAE: code maps from the learned PixelCNN prior (sections 2.2.2, 2.5.1; :mod:`mtvae.prior`).

With a multidecoder or single-decoder model the conditioned decoder p(x | z, m) can decode the
same prior latents together with conditioning information m = [x * mask, mask] (section 3.1), so
the images agree with the known pixels. Decoding S prior latents with one m gives S plausible
images; their per-pixel mean is a reconstruction from the sparse pixels and their standard
deviation says where the known pixels leave the image undetermined. That is the
semi-conditional VAE's purpose (Gundersen et al. 2021: reconstruct a field from sparse
measurements with an uncertainty estimate), applied to the thesis's image models.

    images = generate(model, 64, prior=prior)                       # new images
    mask = sample_mask(len(x), 28, 28, "uniform", 40, generator=g)  # 40 known pixels per image
    result = uncertainty(model, x, mask, samples=32, prior=prior)   # mean, std, error maps
    plots.uncertainty_panels(result)                                 # (mtvae.plots)

``prior``: for a VQ-VAE a :class:`~mtvae.prior.Prior` or a ``GatedPixelCNN``; for either family
also any callable ``(n, generator) -> latents`` (e.g. latents of an encoder posterior, or codes
of training images), which replaces the model's own prior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .data import to_float
from .models.gaussian import GaussianVAE
from .models.pixelcnn import GatedPixelCNN
from .models.vq import VQVAE
from .observations import make_m
from .prior import Prior

__all__ = ["LatentSampler", "latent_sampler", "decode_latents", "generate",
           "generate_given_pixels", "Uncertainty", "uncertainty"]

LatentSampler = Callable[[int, "torch.Generator | None"], torch.Tensor]


def latent_sampler(model, prior=None, temperature: float = 1.0) -> LatentSampler:
    """``(n, generator) -> latents`` from the model's prior, or ``prior`` if it is a callable.

    ``temperature`` scales the Gaussian's standard deviation, or divides the PixelCNN's logits.
    """
    if callable(prior) and not isinstance(prior, (Prior, torch.nn.Module)):
        return prior
    if isinstance(model, GaussianVAE):
        if prior is not None:
            raise ValueError("a Gaussian VAE's prior is N(0, I); leave prior out, or pass a "
                             "callable (n, generator) -> z to replace it")
        return lambda n, g: model.sample_latent(n, g) * temperature
    if not isinstance(model, VQVAE):
        raise ValueError(f"expected a GaussianVAE or VQVAE, got {type(model).__name__}")
    if isinstance(prior, Prior):
        prior = prior.pixelcnn
    if not isinstance(prior, GatedPixelCNN):
        raise ValueError("a VQ-VAE generates from a learned prior: pass prior=mtvae.train_prior("
                         "...) (or a callable (n, generator) -> codes)")
    if prior.num_classes != model.num_embeddings:
        raise ValueError(f"the prior has {prior.num_classes} classes, the VQ-VAE's codebook "
                         f"{model.num_embeddings}; use the prior trained on this model")
    grid, net = tuple(model.latent_shape[1:]), prior.to(_device(model))  # one device for both
    return lambda n, g: net.sample(n, grid, temperature, g)


def decode_latents(model, latents: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
    """Images from prior latents: z for a Gaussian VAE, integer code maps for a VQ-VAE."""
    if isinstance(model, VQVAE):
        return model.decode_codes(latents, m)
    return model.decode(latents, m)


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def generate(model, n: int, *, prior=None, m: torch.Tensor | None = None,
             temperature: float = 1.0, seed: int | None = 0,
             batch_size: int = 1024) -> torch.Tensor:
    """``n`` new images (n, C, H, W). ``m`` (n or 1, C+1, H, W): decode with the conditioned
    decoder so the images agree with the known pixels (multidecoder / single decoder only)."""
    device, was_training = _device(model), model.training
    sampler = latent_sampler(model, prior, temperature)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    if m is not None:
        m = m.to(device)
        if m.shape[0] not in (1, n):
            raise ValueError(f"m holds {m.shape[0]} images; pass 1 (shared) or n = {n}")
        m = m.expand(n, *m.shape[1:])
    latents = sampler(n, gen)  # one draw, so batch_size (memory only) changes no sample
    out = [decode_latents(model.eval(), latents[i:i + batch_size], None if m is None else
                          m[i:i + batch_size]) for i in range(0, n, batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, *model.image_shape, device=device)


def _inputs(model, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x as floats in [0, 1] on the model's device and mask as (B, 1, H, W)."""
    device = _device(model)
    x = to_float(x)
    x = x.to(device)
    if x.dim() == 3:
        x = x[None]
    if tuple(x.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"the model takes images {tuple(model.image_shape)}, got "
                         f"{tuple(x.shape[1:])}")
    mask = mask.to(device).float()
    mask = mask.view(1, 1, *mask.shape[-2:]) if mask.dim() == 2 else mask
    if mask.dim() != 4 or mask.shape[0] not in (1, len(x)) or mask.shape[1] != 1 \
            or mask.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"mask must be (H, W) or (B, 1, H, W) with B = {len(x)} (or 1) and "
                         f"H, W = {tuple(x.shape[-2:])}, got {tuple(mask.shape)}")
    return x, mask.expand(len(x), 1, *x.shape[-2:])


@torch.no_grad()
def generate_given_pixels(model, x: torch.Tensor, mask: torch.Tensor, samples: int = 8, *,
                          prior=None, temperature: float = 1.0, seed: int | None = 0,
                          shared: bool = False, batch_size: int = 1024) -> torch.Tensor:
    """S images per image (B, S, C, H, W) conditioned on the pixels of ``x`` where ``mask`` is 1:
    prior latents decoded by the conditioned decoder with m = [x * mask, mask].

    ``shared``: draw the S latents once and decode every image with the same S. Each image's S
    draws are still independent prior draws (the prior does not see m), so per-image statistics
    keep their expectation; only different images' become correlated. A PixelCNN then samples
    S code maps instead of B x S (for 200 images, 200x fewer)."""
    x, mask = _inputs(model, x, mask)
    b = len(x)
    if shared:
        gen = torch.Generator(device=_device(model)).manual_seed(seed) if seed is not None else None
        drawn = latent_sampler(model, prior, temperature)(samples, gen)
        # generate() asks for b x S latents, image i's S in a block: tile the S
        prior = lambda n, g: drawn.repeat(b, *([1] * (drawn.dim() - 1)))  # noqa: E731
    m = make_m(x, mask).repeat_interleave(samples, dim=0)  # image 0's S copies first
    images = generate(model, b * samples, prior=prior, m=m, temperature=temperature, seed=seed,
                      batch_size=batch_size)
    return images.view(b, samples, *x.shape[1:])


@dataclass
class Uncertainty:
    """Per-pixel statistics of S decodings given sparse pixels; maps are (B, C, H, W)."""

    x: torch.Tensor  # the true images
    mask: torch.Tensor  # (B, 1, H, W), 1 at the known pixels
    mean: torch.Tensor  # the reconstruction: mean over the S samples
    std: torch.Tensor  # the uncertainty: standard deviation over the S samples
    error: torch.Tensor  # |mean - x|
    ess: torch.Tensor  # (B,) effective sample size: S, or less when weighted (``noise``)
    samples: torch.Tensor | None = None  # (B, S, C, H, W) when keep_samples=True

    def summary(self) -> dict[str, torch.Tensor]:
        """Per image: mean std, MSE of the mean, known-pixel count and effective sample size."""
        return {"mean_std": self.std.mean((1, 2, 3)), "mse": self.error.pow(2).mean((1, 2, 3)),
                "known_pixels": self.mask.sum((1, 2, 3)), "ess": self.ess}


@torch.no_grad()
def uncertainty(model, x: torch.Tensor, mask: torch.Tensor, samples: int = 32, *, prior=None,
                noise: float | None = None, temperature: float = 1.0, seed: int | None = 0,
                shared: bool = False, keep_samples: bool = False,
                batch_size: int = 1024) -> Uncertainty:
    """Reconstruction with uncertainty from the known pixels of ``x`` (see the module docstring).

    ``samples`` prior latents per image are decoded with the conditioned decoder; the result
    holds their per-pixel mean, standard deviation and the mean's absolute error against ``x``.
    ``shared``: the same ``samples`` latents for every image (:func:`generate_given_pixels`).

    ``noise`` (an extension, off by default): weight each decoding by how well it matches the
    known pixels, w ~ exp(-sum_known (x_hat - x)^2 / (2 noise^2)), i.e. self-normalised
    importance sampling of p(z | known pixels) with the prior as proposal (std is then the
    weighted, uncorrected one). It helps where the conditioned decoder follows z more than m;
    watch ``ess``: near 1 the maps rest on one draw, so draw more samples or raise ``noise``.
    """
    if samples < 2:
        raise ValueError(f"a standard deviation needs samples >= 2, got {samples}")
    if noise is not None and not noise > 0:
        raise ValueError(f"noise is a pixel standard deviation > 0 (e.g. 0.1), got {noise}")
    x, mask = _inputs(model, x, mask)
    draws = generate_given_pixels(model, x, mask, samples, prior=prior, temperature=temperature,
                                  seed=seed, shared=shared, batch_size=batch_size)
    if noise is None:
        mean, std = draws.mean(1), draws.std(1)
        ess = torch.full((len(x),), float(samples), device=draws.device)
    else:
        sq = ((draws - x[:, None]).pow(2) * mask[:, None]).sum((2, 3, 4))  # (B, S)
        w = torch.softmax(-sq / (2 * noise**2), dim=1)
        wide = w[:, :, None, None, None]
        mean = (wide * draws).sum(1)
        # The plain weighted variance: it stays bounded when one weight takes nearly all.
        std = (wide * (draws - mean[:, None]).pow(2)).sum(1).sqrt()
        ess = 1 / w.pow(2).sum(1)
    return Uncertainty(x, mask, mean, std, (mean - x).abs(), ess, draws if keep_samples else None)
