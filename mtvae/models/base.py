"""What the Gaussian VAE and the VQ-VAE share: the decoders a method has (mtvae/methods.py) and
how ``decode`` and a forward pass dispatch to them. Each model keeps its own encoder, latent and
decoder architecture; z below is the latent its decoders read (Gaussian: z, VQ: z_q)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from .outputs import Outputs

if TYPE_CHECKING:
    from . import ModelConfig

__all__ = ["MethodModel"]


class MethodModel(nn.Module):
    """Base of both model families: ``decoder`` p(x | z) and/or ``cond_decoder`` p(x | z, m)."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        self.config, self.image_shape, self.method = config, image_shape, config.method
        self.spec = config.spec  # the method's declaration (mtvae/methods.py)

    def _build_decoders(self, decoder: Callable[[], nn.Module],
                        cond_decoder: Callable[[], nn.Module]) -> None:
        """Build the decoders the method has, p(x | z) first: the order in which the initial
        weights are drawn and the state_dict is laid out (same seed, same weights, checkpoints
        load). ``cond_decoder`` may reuse ``self.decoder`` (the VQ shared decoder)."""
        self.decoder = self.cond_decoder = None
        if self.spec.decoder:
            self.decoder = decoder()
        if self.spec.cond_decoder:
            self.cond_decoder = cond_decoder()

    def _check_images(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(f"expected images (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}")

    def decode(self, z: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        """p(x | z) for ``m=None``, else the conditioned p(x | z, m).

        The single decoder has only the conditioned decoder; ``m=None`` there means m = 0.
        """
        if m is None and self.decoder is not None:
            return self.decoder(z)
        if self.cond_decoder is None:
            raise ValueError("a baseline model has no conditioned decoder; train with "
                             "method='multidecoder' or 'single' to decode with m")
        return self.cond_decoder(z, m)

    def _reconstruct(self, out: Outputs, z: torch.Tensor, m: torch.Tensor | None) -> Outputs:
        """Fill ``out.recon`` and ``out.recon_cond`` from one z, which feeds every decoder
        (section 3.2.2). The single decoder's recon is its m = 0 output, computed in eval mode
        or without m only: training never uses it (mtvae/methods.py)."""
        if self.decoder is not None:
            out.recon = self.decoder(z)
        if self.cond_decoder is not None:
            if m is not None:
                out.recon_cond = self.cond_decoder(z, m)
            if self.spec.unconditioned == "cond_decoder" and (not self.training or m is None):
                out.recon = self.cond_decoder(z, None)  # m = 0
        return out
