"""Gaussian VAE (thesis sections 2.1.2, 3.2.2, 3.3.2; docs/thesis_code.md#gaussian-blocks).

Encoder: four Conv(k3, pad 1) -> BatchNorm -> LeakyReLU blocks with channels [32, 64, 128, 256]
and stride 2 while the side is even (MNIST [2, 2, 1, 1]: 28 -> 14 -> 7 -> 7 -> 7; CIFAR and
CelebA all 2). Then linear mu and log-variance heads (latent 16 or 64).
Decoder: a dense head (Linear -> ReLU -> BatchNorm1d) to a 256 x f x f map, three
ConvTranspose(k3) -> BN -> LeakyReLU blocks [256 -> 128 -> 64 -> 32] with the mirrored strides,
one more 32 -> 32 upsampling block, and a linear 3x3 conv to C channels (no output activation).
The conditioned decoder differs only in its head: it also reads the flattened m (or, with
``conditioning="spatial"``, m modulates the stack's feature maps: models/spatial.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .base import MethodModel
from .blocks import ConditionedHead, Decoder, DenseHead, encoder_strides
from .outputs import Outputs
from .spatial import SpatialConditioner

if TYPE_CHECKING:
    from . import ModelConfig

__all__ = ["GAUSSIAN_CONFIGS", "GaussianVAE"]

# Thesis section 3.4.2: "Configuration 1: latent 16 ... Configuration 2: latent 64, with hidden
# dimensions of 32, 64, 128, 256".
GAUSSIAN_CONFIGS = {
    1: {"latent_dim": 16, "hidden_dims": (32, 64, 128, 256)},
    2: {"latent_dim": 64, "hidden_dims": (32, 64, 128, 256)},
}


def _encoder(channels: int, hidden: tuple[int, ...], strides: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h, s in zip(hidden, strides):
        layers += [nn.Conv2d(channels, h, 3, stride=s, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()]
        channels = h
    return nn.Sequential(*layers, nn.Flatten())


def _decoder_stack(channels: int, hidden: tuple[int, ...], strides: list[int]) -> nn.Sequential:
    hidden = tuple(reversed(hidden))  # [256, 128, 64, 32]
    strides = list(reversed(strides))  # MNIST [1, 1, 2, 2]
    layers: list[nn.Module] = []
    for h_in, h_out, s in zip(hidden[:-1], hidden[1:], strides[:-1]):
        layers += [nn.ConvTranspose2d(h_in, h_out, 3, stride=s, padding=1, output_padding=s - 1),
                   nn.BatchNorm2d(h_out), nn.LeakyReLU()]
    s, h = strides[-1], hidden[-1]
    layers += [nn.ConvTranspose2d(h, h, 3, stride=s, padding=1, output_padding=s - 1),
               nn.BatchNorm2d(h), nn.LeakyReLU(),
               nn.Conv2d(h, channels, 3, padding=1)]  # linear output, as the thesis code
    return nn.Sequential(*layers)


class GaussianVAE(MethodModel):
    """Gaussian VAE with a baseline, multidecoder or single-decoder method (mtvae/methods.py)."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int]):
        super().__init__(config, image_shape)
        c, h, w = image_shape
        if h != w:
            raise ValueError(f"the thesis architectures take square images (any side for the "
                             f"Gaussian VAE, multiples of 4 for the VQ-VAE), got {h}x{w}; "
                             "resize or crop them (ImageData.from_folder(..., size=N, crop=True), "
                             "--size N --crop)")
        hp = config.hparams
        self.latent_dim = int(hp["latent_dim"])
        hidden = tuple(hp["hidden_dims"])
        strides = encoder_strides(h, len(hidden))
        f = h // math.prod(strides)
        feat = (hidden[-1], f, f)
        self.encoder = _encoder(c, hidden, strides)
        self.fc_mu = nn.Linear(math.prod(feat), self.latent_dim)
        self.fc_logvar = nn.Linear(math.prod(feat), self.latent_dim)
        # Evaluation decodes z = mu by default; True decodes a sampled z, as the thesis code did
        # in every mode (docs/thesis_code.md#evaluation), which adds the sampling noise to the
        # metric.
        self.eval_sample_z = False

        def cond_decoder() -> Decoder:
            # the head before the stack: the order the initial weights are drawn in, as before
            # spatial conditioning existed (same seed, same weights)
            if config.conditioning == "spatial":
                head = DenseHead(self.latent_dim, feat)
                stack = _decoder_stack(c, hidden, strides)
                spatial = SpatialConditioner(SpatialConditioner.probe(stack, feat), image_shape)
                return Decoder(head, stack, spatial)
            head = ConditionedHead(self.latent_dim, (c + 1) * h * w, feat)
            return Decoder(head, _decoder_stack(c, hidden, strides))

        self._build_decoders(
            lambda: Decoder(DenseHead(self.latent_dim, feat), _decoder_stack(c, hidden, strides)),
            cond_decoder)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.training and not self.eval_sample_z:
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ N(0, I), the Gaussian VAE's prior."""
        device = self.fc_mu.weight.device
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def forward(self, x: torch.Tensor, m: torch.Tensor | None = None) -> Outputs:
        self._check_images(x)
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)  # the same z feeds both decoders (section 3.2.2)
        return self._reconstruct(Outputs(mu=mu, logvar=logvar, z=z), z, m)
