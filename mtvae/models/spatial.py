"""Spatial conditioning: m as feature maps inside the decoder (``ModelConfig.conditioning``).

The thesis feeds m (the known pixels and their mask) to the decoder through one dense layer on
the flattened m (:class:`~mtvae.models.blocks.ConditionedHead`). That layer is most of each
conditioned model (19.7 M of the MNIST Gaussian single decoder's 21.1 M parameters; 537 M for
CelebA VQ config 3), and each of its weight columns learns only on the steps where its pixel
happens to be observed (about 2 % of them at a = 40).

``conditioning="spatial"`` instead modulates the decoder's own feature maps, SPADE-style (Park
et al. 2019, "Semantic image synthesis with spatially-adaptive normalization"): after every
activation of the convolutional stack, at that stage's resolution r,

    h <- h * (1 + gamma_r(m)) + beta_r(m)

where gamma_r and beta_r come from a small convolutional network on m resampled to r x r. The
resampling is the partial-convolution idea (Liu et al. 2018, "Image inpainting for irregular
holes using partial convolutions"): average-pool the masked image and the mask separately and
divide, so each cell carries the *mean of its known pixels* and the *share of it that is known*,
not a value diluted by unknown zeros. As in VAEAC (Ivanov et al. 2019) the network sees the
masked image together with its mask, at every scale.

Why this design. The known pixels are sparse, located information; a convolution learns one
filter for every location (translation equivariance), so every observed pixel trains the same
weights, and the cost is independent of the image size. Every convolution of the m-network is
bias-free, so m = 0 (no known pixels) gives gamma = beta = 0 exactly: the spatially conditioned
decoder *is* the unconditioned decoder when nothing is known, which is what "unconditioned"
means for the single decoder (thesis 3.3). The last convolution of each branch starts at zero,
so training starts from the unconditioned decoder. The dense head then maps only z.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SpatialConditioner", "resample_m", "M_HIDDEN"]

M_HIDDEN = 32  # channels of each m-branch: small against the decoder's 32-256 (docs/methods.md)
EPS = 1e-6


def resample_m(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """m = [x * mask, mask] (B, C + 1, H, W) at ``size``: the mean of the known pixels in each
    cell (0 where none is known) and the share of the cell that is known."""
    if tuple(m.shape[-2:]) == tuple(size):
        return m
    values, mask = m[:, :-1], m[:, -1:]
    if m.shape[-1] % size[-1] == 0 and m.shape[-2] % size[-2] == 0:
        pool = lambda t: F.avg_pool2d(t, (m.shape[-2] // size[-2], m.shape[-1] // size[-1]))  # noqa: E731
    else:
        pool = lambda t: F.adaptive_avg_pool2d(t, size)  # noqa: E731
    known = pool(mask)
    return torch.cat([pool(values) / known.clamp_min(EPS) * (known > 0), known], 1)


class _Branch(nn.Module):
    """gamma and beta for one stage: 3x3 conv -> ReLU -> 1x1 conv, no biases. The 3x3 conv
    gathers each known pixel's neighbourhood; the 1x1 conv only maps it to the stage's channels
    (a 3x3 one there costs 9x the arithmetic at full resolution)."""

    def __init__(self, m_channels: int, channels: int, hidden: int):
        super().__init__()
        self.shared = nn.Conv2d(m_channels, hidden, 3, padding=1, bias=False)
        self.out = nn.Conv2d(hidden, 2 * channels, 1, bias=False)
        nn.init.zeros_(self.out.weight)  # start as the unconditioned decoder

    def forward(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.out(torch.relu(self.shared(m))).chunk(2, dim=1)


class SpatialConditioner(nn.Module):
    """Runs a decoder's convolutional stack with SPADE-style modulation by m after each
    activation. ``stages`` are the indices in the stack of the activations to modulate, with
    their channels and spatial size (:meth:`probe` finds them once)."""

    def __init__(self, stages: list[tuple[int, int, tuple[int, int]]], image_shape,
                 hidden: int = M_HIDDEN):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.stages = [(i, tuple(size)) for i, _, size in stages]
        self.branches = nn.ModuleList(_Branch(self.image_shape[0] + 1, c, hidden)
                                      for _, c, _ in stages)
        # stack index -> (branch, stage size), looked up once per layer in forward
        self._at = {i: (k, size) for k, (i, size) in enumerate(self.stages)}

    @staticmethod
    def probe(stack: nn.Sequential, in_shape: tuple[int, ...]) -> list[tuple[int, int, tuple]]:
        """(index, channels, (h, w)) after each activation of ``stack`` but the output's."""
        acts = (nn.LeakyReLU, nn.ReLU)
        stages, h = [], torch.zeros(2, *in_shape)
        was = stack.training
        stack.eval()
        with torch.no_grad():
            for i, layer in enumerate(stack):
                h = layer(h)
                if isinstance(layer, acts) and i < len(stack) - 1:
                    stages.append((i, int(h.shape[1]), (int(h.shape[2]), int(h.shape[3]))))
        stack.train(was)
        return stages

    def forward(self, stack: nn.Sequential, h: torch.Tensor, m: torch.Tensor | None
                ) -> torch.Tensor:
        if m is None:  # no known pixels: gamma = beta = 0, the plain stack
            return stack(h)
        c, height, width = self.image_shape
        if tuple(m.shape[1:]) != (c + 1, height, width):
            raise ValueError(f"m must be (B, {c + 1}, {height}, {width}) for this decoder, got "
                             f"{tuple(m.shape)}; build the model for this image size")
        pyramid: dict[tuple, torch.Tensor] = {}  # m at each stage size, resampled once
        for i, layer in enumerate(stack):
            h = layer(h)
            if i in self._at:
                k, size = self._at[i]
                if size not in pyramid:
                    pyramid[size] = resample_m(m, size)
                gamma, beta = self.branches[k](pyramid[size])
                h = h * (1 + gamma) + beta
        return h
