"""Building blocks shared by the Gaussian VAE and the VQ-VAE (thesis section 3.4.2).

Layer for layer these follow the thesis code (docs/thesis_code.md#gaussian-blocks and
docs/thesis_code.md#vq-blocks); every LeakyReLU uses PyTorch's default slope 0.01, as the thesis
code did.
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
    (the thesis's VQ residual block, docs/thesis_code.md#vq-blocks)."""

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


# Largest share of m's columns for which the CPU multiplies only the observed ones (below).
# Measured on a 2-core EPYC with the MNIST Gaussian head (1,584 -> 12,544): exact grid (32 of
# 1,568 columns) 79 ms instead of 217 ms per forward + backward; docs/performance.md.
SPARSE_COLUMN_FRACTION = 0.4


class ConditionedHead(DenseHead):
    """The thesis's conditioning (section 3.1): flatten m, concatenate it with the latent, one
    fully connected layer, then the transposed convolutions.

    One linear layer on ``cat(latent, m)`` is ``W_z latent + W_m m + b``. We keep its two column
    blocks as two parameters, ``linear`` (W_z and b) and ``from_m`` (W_m), initialised as the one
    layer would be (U(+-1/sqrt(fan_in)) with fan_in = latent + m features): the same function,
    the same parameter count as the thesis. Kept apart, autograd never computes a gradient for m
    (it is data), and on the CPU only the columns of m that are non-zero somewhere in the batch
    are multiplied (the exact grid observes 16 of 784 MNIST pixels). GPUs and torch.compile keep
    the dense product: finding the columns would sync the device and break static shapes.
    """

    def __init__(self, latent_features: int, m_features: int, out_shape: tuple[int, int, int]):
        super().__init__(latent_features, out_shape)
        self.m_features = m_features
        self.from_m = nn.Linear(m_features, self.linear.out_features, bias=False)
        bound = 1.0 / math.sqrt(latent_features + m_features)
        for p in (self.linear.weight, self.linear.bias, self.from_m.weight):
            nn.init.uniform_(p, -bound, bound)

    def _m_term(self, m: torch.Tensor) -> torch.Tensor:
        w = self.from_m.weight
        compiling = getattr(torch.compiler, "is_compiling", lambda: False)()
        if m.device.type == "cpu" and not compiling:
            cols = m.any(0).nonzero().squeeze(1)
            if len(cols) <= SPARSE_COLUMN_FRACTION * self.m_features:
                return nn.functional.linear(m.index_select(1, cols), w.index_select(1, cols))
        return nn.functional.linear(m, w)

    def forward(self, h: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        out = self.linear(h.flatten(1))
        if m is not None:  # m = None means "no known pixels", the same as an all-zero m
            m = m.flatten(1)
            if m.shape[1] != self.m_features:
                raise ValueError(f"m has {m.shape[1]} values per image, this decoder was built "
                                 f"for {self.m_features}; build the model for this image size")
            out = out + self._m_term(m)
        out = self.norm(torch.relu(out))
        return out.view(-1, *self.out_shape)


class Decoder(nn.Module):
    """An optional dense head followed by a convolutional stack.

    ``head`` is a :class:`DenseHead` (Gaussian VAE: z -> feature map), a
    :class:`ConditionedHead` (the semi-conditional decoder p(x | z, m), the thesis's dense
    conditioning) or ``None`` (VQ-VAE: the stack starts on z_q); with ``spatial`` (a
    :class:`~mtvae.models.spatial.SpatialConditioner`) m modulates the stack's feature maps
    instead and the head maps only z. Two decoders may share one ``stack`` object (the thesis code's VQ
    multidecoder, ``shared_decoder=True``).
    """

    def __init__(self, head: nn.Module | None, stack: nn.Module, spatial: nn.Module | None = None):
        super().__init__()
        self.head = head
        self.stack = stack
        self.spatial = spatial  # a SpatialConditioner: m modulates the stack (models/spatial.py)

    @property
    def conditioned(self) -> bool:
        return isinstance(self.head, ConditionedHead) or self.spatial is not None

    def forward(self, h: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        if self.spatial is not None:
            if self.head is not None:
                h = self.head(h)
            return self.spatial(self.stack, h, m)
        if self.conditioned:
            h = self.head(h, m)
        elif m is not None:
            raise ValueError("this decoder is not conditioned; pass m only to a conditioned one")
        elif self.head is not None:
            h = self.head(h)
        return self.stack(h)
