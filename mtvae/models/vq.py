"""VQ-VAE (van den Oord et al. 2017; thesis 2.2, 3.2.3, 3.3.3; docs/thesis_code.md#vq-blocks).

Encoder: per hidden width a stride-2 Conv(k3) -> LeakyReLU (so x4 downsampling: 28 -> 7,
32 -> 8, 64 -> 16), a Conv(k3) -> LeakyReLU, ``n_res`` residual blocks, LeakyReLU, and a 1x1
conv to the embedding dimension D followed by LeakyReLU (the thesis code quantises that).
Quantizer: a K x D codebook, U(-0.05, 0.05) initialisation, nearest-code lookup and the
straight-through estimator. Decoder: Conv(k3) -> LeakyReLU, residual blocks, LeakyReLU, stride-2
ConvTranspose(k4) -> LeakyReLU per width, and a last ConvTranspose(k4) to C channels with Tanh.
There is no BatchNorm in the VQ encoder or conv decoder (only in the conditioned dense head).
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from .base import MethodModel
from .blocks import ConditionedHead, Decoder, ResidualLayer
from .outputs import Outputs
from .spatial import SpatialConditioner

if TYPE_CHECKING:
    from . import ModelConfig

__all__ = ["VQ_CONFIGS", "VQVAE", "VectorQuantizer"]

# Thesis section 3.4.2 (configurations 1-3).
VQ_CONFIGS = {
    1: {"num_embeddings": 128, "embedding_dim": 16, "hidden_dims": (32, 64), "n_res": 0},
    2: {"num_embeddings": 128, "embedding_dim": 32, "hidden_dims": (128, 256), "n_res": 2},
    3: {"num_embeddings": 256, "embedding_dim": 64, "hidden_dims": (128, 256), "n_res": 4},
}
CODEBOOK_INIT = 0.05  # U(-0.05, 0.05), the thesis code's NewVectorQuantizer


class VectorQuantizer(nn.Module):
    """Nearest-neighbour lookup in a learned codebook, with the straight-through estimator.

    Runs in float32 even under bf16 autocast: distances between nearby codes are differences of
    large squared norms, and bf16's 8-bit mantissa would pick the wrong code.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.embed = nn.Parameter(torch.empty(num_embeddings, embedding_dim)
                                  .uniform_(-CODEBOOK_INIT, CODEBOOK_INIT))

    def codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each latent vector: (B, D, h, w) -> (B, h, w)."""
        b, d, h, w = z_e.shape
        flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, d)
        e = self.embed.float()
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is the same for every code: dropped
        dist = e.pow(2).sum(1)[None, :] - 2.0 * flat @ e.t()
        return dist.argmin(1).view(b, h, w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors for integer codes: (B, h, w) -> (B, D, h, w)."""
        return F.embedding(codes, self.embed).permute(0, 3, 1, 2).contiguous()

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        kind = z_e.device.type
        no_autocast = torch.autocast(kind, enabled=False) if kind in ("cuda", "cpu", "mps") \
            else contextlib.nullcontext()  # (the meta device has no autocast)
        with no_autocast:
            z_e = z_e.float()
            codes = self.codes(z_e)
            z_q = self.lookup(codes)
            # Straight-through: the forward pass sees z_q; the backward pass copies the decoder's
            # gradient from z_q onto z_e unchanged (the detached difference has no gradient).
            z_q_st = z_e + (z_q - z_e).detach()
        return z_q_st, z_q, codes


def _encoder(c: int, hidden: tuple[int, ...], n_res: int, dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Conv2d(c, h, 3, stride=2, padding=1), nn.LeakyReLU()]
        c = h
    layers += [nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU()]
    layers += [ResidualLayer(c) for _ in range(n_res)]
    layers += [nn.LeakyReLU(), nn.Conv2d(c, dim, 1), nn.LeakyReLU()]
    return nn.Sequential(*layers)


def _decoder_stack(dim: int, hidden: tuple[int, ...], n_res: int, c: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(dim, hidden[0], 3, padding=1), nn.LeakyReLU()]
    layers += [ResidualLayer(hidden[0]) for _ in range(n_res)]
    layers += [nn.LeakyReLU()]
    for h_in, h_out in zip(hidden[:-1], hidden[1:]):
        layers += [nn.ConvTranspose2d(h_in, h_out, 4, stride=2, padding=1), nn.LeakyReLU()]
    layers += [nn.ConvTranspose2d(hidden[-1], c, 4, stride=2, padding=1), nn.Tanh()]
    return nn.Sequential(*layers)


class VQVAE(MethodModel):
    """VQ-VAE with a baseline, multidecoder or single-decoder method (mtvae/methods.py)."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int]):
        super().__init__(config, image_shape)
        c, h, w = image_shape
        hp = config.hparams
        hidden = tuple(hp["hidden_dims"])
        scale = 2 ** len(hidden)
        if h % scale or w % scale:
            near = sorted({max(scale, scale * f(v / scale)) for v in (h, w)
                           for f in (math.floor, math.ceil)})  # the sizes either side
            raise ValueError(f"the VQ-VAE downsamples by {scale}: it takes image sides that are "
                             f"multiples of {scale} (e.g. {', '.join(map(str, near))}), got "
                             f"{h}x{w}; resize the images (ImageData.from_folder(..., size=N), "
                             "--size N)")
        dim, n_res = int(hp["embedding_dim"]), int(hp["n_res"])
        self.latent_shape = (dim, h // scale, w // scale)
        self.encoder = _encoder(c, hidden, n_res, dim)
        self.quantizer = VectorQuantizer(int(hp["num_embeddings"]), dim)

        mirrored = tuple(reversed(hidden))  # [256, 128]: the encoder mirrored
        # the thesis code's baseline decoder, un-mirrored (docs/thesis_code.md#vq-baseline)
        order = hidden if config.thesis_baseline_decoder and not self.spec.conditioned \
            else mirrored

        def cond_decoder() -> Decoder:
            # the dense head is drawn before the stack, as before spatial conditioning existed
            # (same seed, same initial weights)
            head = None if config.conditioning == "spatial" else ConditionedHead(
                math.prod(self.latent_shape), (c + 1) * h * w, self.latent_shape)
            stack = self.decoder.stack if config.shared_decoder \
                else _decoder_stack(dim, mirrored, n_res, c)
            spatial = SpatialConditioner(SpatialConditioner.probe(stack, self.latent_shape),
                                         image_shape) if head is None else None
            return Decoder(head, stack, spatial)

        self._build_decoders(lambda: Decoder(None, _decoder_stack(dim, order, n_res, c)),
                             cond_decoder)

    @property
    def num_embeddings(self) -> int:
        return self.quantizer.num_embeddings

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Integer code map (B, h, w) of images x."""
        return self.quantizer.codes(self.encoder(x))

    def decode_codes(self, codes: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        """Images from an integer code map (B, h, w), e.g. sampled from a PixelCNN prior."""
        return self.decode(self.quantizer.lookup(codes), m)

    def forward(self, x: torch.Tensor, m: torch.Tensor | None = None) -> Outputs:
        self._check_images(x)
        z_e = self.encoder(x)
        z_q_st, z_q, codes = self.quantizer(z_e)
        # the decoders read the straight-through z_q (its gradient flows to the encoder)
        return self._reconstruct(Outputs(z_e=z_e.float(), z_q=z_q, codes=codes), z_q_st, m)
