"""Building blocks shared by the Gaussian VAE and the VQ-VAE (thesis section 3.4.2).

Layer for layer these follow the thesis code (original_code.md sections 4.1 and 4.3); every
LeakyReLU uses PyTorch's default slope 0.01, as the thesis code did.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ConditionedHead", "Decoder", "DenseHead", "ResidualLayer", "encoder_strides"]


def encoder_strides(size: int, n_layers: int = 4) -> list[int]:
    """Stride 2 while the side is still even, else 1 (thesis ``get_encoder_stride_sizes``).

    28 -> [2, 2, 1, 1] (28 -> 14 -> 7), 32 -> [2, 2, 2, 2], 64 -> [2, 2, 2, 2].
    """
    strides = []
    for _ in range(n_layers):
        s = 2 if size % 2 == 0 else 1
        strides.append(s)
        size //= s
    return strides


class ResidualLayer(nn.Module):
    """x + Conv1x1(ReLU(Conv3x3(x))), both without bias and no activation after the sum
    (the thesis's VQ residual block, original_code.md section 4.3)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class DenseHead(nn.Module):
    """Linear -> ReLU -> BatchNorm1d -> reshape to a feature map (thesis ``ToFeatureMap``).

    The ReLU before the BatchNorm is the thesis code's order.
    """

    def __init__(self, in_features: int, out_shape: tuple[int, int, int]):
        super().__init__()
        self.out_shape = tuple(out_shape)
        n_out = math.prod(out_shape)
        self.linear = nn.Linear(in_features, n_out)
        self.norm = nn.BatchNorm1d(n_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.norm(torch.relu(self.linear(h.flatten(1))))
        return out.view(-1, *self.out_shape)


class ConditionedHead(DenseHead):
    """The thesis's conditioning (section 3.1): flatten m, concatenate it with the latent, one
    fully connected layer, then the transposed convolutions.

    One linear layer on ``cat(latent, m)`` equals ``W_z latent + W_m m + b`` with W = [W_z, W_m]:
    we store the two column blocks as one weight (same parameters, same count as the thesis) and
    multiply them separately, so autograd never computes the unused gradient with respect to m.
    """

    def __init__(self, latent_features: int, m_features: int, out_shape: tuple[int, int, int]):
        super().__init__(latent_features + m_features, out_shape)
        self.latent_features = latent_features
        self.m_features = m_features

    def forward(self, h: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        w = self.linear.weight
        out = nn.functional.linear(h.flatten(1), w[:, : self.latent_features], self.linear.bias)
        if m is not None:  # m = None means "no known pixels", the same as an all-zero m
            m = m.flatten(1)
            if m.shape[1] != self.m_features:
                raise ValueError(f"m has {m.shape[1]} values per image, this decoder was built "
                                 f"for {self.m_features}; build the model for this image size")
            out = out + m.to(out.dtype) @ w[:, self.latent_features:].t()
        out = self.norm(torch.relu(out))
        return out.view(-1, *self.out_shape)


class Decoder(nn.Module):
    """An optional dense head followed by a convolutional stack.

    ``head`` is a :class:`DenseHead` (Gaussian VAE: z -> feature map), a
    :class:`ConditionedHead` (the semi-conditional decoder p(x | z, m)) or ``None`` (VQ-VAE: the
    stack starts on z_q). Two decoders may share one ``stack`` object (the thesis code's VQ
    multidecoder, ``shared_decoder=True``).
    """

    def __init__(self, head: nn.Module | None, stack: nn.Module):
        super().__init__()
        self.head = head
        self.stack = stack

    @property
    def conditioned(self) -> bool:
        return isinstance(self.head, ConditionedHead)

    def forward(self, h: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditioned:
            h = self.head(h, m)
        elif m is not None:
            raise ValueError("this decoder is not conditioned; pass m only to a conditioned one")
        elif self.head is not None:
            h = self.head(h)
        return self.stack(h)
