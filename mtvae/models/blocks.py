"""Building blocks shared by the Gaussian VAE and the VQ-VAE (thesis section 3.4.2).

Layer for layer these follow the thesis code (original_code.md sections 4.1 and 4.3); every
LeakyReLU uses PyTorch's default slope 0.01, as the thesis code did.
"""

from __future__ import annotations

import contextlib
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


# Largest share of m's columns for which the CPU multiplies only the observed ones (below).
# Measured on a 2-core EPYC with the MNIST Gaussian head (1,584 -> 12,544); docs/performance.md.
SPARSE_COLUMN_FRACTION = 0.4


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast gives matmuls on this device type (bf16 under the trainer's CUDA
    autocast), or None while autocast is off there."""
    with contextlib.suppress(TypeError, RuntimeError):  # torch < 2.4 has no per-device query
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
    return None


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(is_compiling and is_compiling())


def _observed_columns(m: torch.Tensor | None, n_features: int,
                      device: torch.device) -> torch.Tensor | None:
    """Columns of the flattened m that are non-zero somewhere in the batch, or None for "all".

    m is mostly zeros (the exact grid observes 16 of 784 MNIST pixels, so at most 32 of m's 1,568
    columns are ever non-zero), so on the CPU multiplying only those columns saves most of the
    layer's work. On a GPU the dense matmul is cheap and finding the columns would sync the
    device every step, so it stays dense there, as it does under torch.compile.
    """
    if m is None:  # no known pixels: no column of W_m contributes
        return torch.zeros(0, dtype=torch.long, device=device)
    if m.device.type != "cpu" or _compiling():  # compiled graphs want static shapes
        return None
    cols = m.any(0).nonzero().squeeze(1)
    return cols if len(cols) <= SPARSE_COLUMN_FRACTION * n_features else None


class _ConditionedLinear(torch.autograd.Function):
    """out = h W_z^T + m W_m^T + b for the stored weight W = [W_z, W_m], with hand-written
    gradients: W's gradient is computed in one piece and m gets none (it is data).

    Autograd on the slices W[:, :L] and W[:, L:] would instead allocate, zero-fill and add a
    full-size gradient per slice, which cost more than the matmuls themselves for the 20 M-weight
    MNIST head on a CPU (docs/performance.md). ``cols``: None multiplies all of m's columns,
    else only those (the others are zero in the whole batch, so the result is the same sum).
    """

    @staticmethod
    def forward(ctx, h, m, weight, bias, cols):
        lat = h.shape[1]
        out = torch.addmm(bias, h, weight[:, :lat].t())
        if cols is None:
            m_used = m
            out.addmm_(m, weight[:, lat:].t())
        else:
            m_used = m.index_select(1, cols) if len(cols) else None
            if m_used is not None:
                out.addmm_(m_used, weight.index_select(1, cols + lat).t())
        ctx.save_for_backward(h, m_used, weight)
        ctx.cols, ctx.lat = cols, lat
        return out

    @staticmethod
    def backward(ctx, grad):
        h, m_used, weight = ctx.saved_tensors
        cols, lat = ctx.cols, ctx.lat
        grad_h = grad @ weight[:, :lat] if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[2]:
            if cols is None:
                grad_w = grad.t() @ torch.cat([h, m_used], 1)
            else:
                grad_w = grad.new_zeros(weight.shape)
                grad_w[:, :lat] = grad.t() @ h
                if m_used is not None:
                    grad_w.index_copy_(1, cols + lat, grad.t() @ m_used)
        grad_b = grad.sum(0) if ctx.needs_input_grad[3] else None
        return grad_h, None, grad_w, grad_b, None


class ConditionedHead(DenseHead):
    """The thesis's conditioning (section 3.1): flatten m, concatenate it with the latent, one
    fully connected layer, then the transposed convolutions.

    One linear layer on ``cat(latent, m)`` equals ``W_z latent + W_m m + b`` with W = [W_z, W_m]:
    we store the two column blocks as one weight (same parameters, same count as the thesis) and
    multiply them separately (:class:`_ConditionedLinear`), so no gradient with respect to m is
    ever computed and, on the CPU, only m's observed columns are multiplied.
    """

    def __init__(self, latent_features: int, m_features: int, out_shape: tuple[int, int, int]):
        super().__init__(latent_features + m_features, out_shape)
        self.latent_features = latent_features
        self.m_features = m_features

    def forward(self, h: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        h = h.flatten(1)
        if m is not None:  # m = None means "no known pixels", the same as an all-zero m
            m = m.flatten(1)
            if m.shape[1] != self.m_features:
                raise ValueError(f"m has {m.shape[1]} values per image, this decoder was built "
                                 f"for {self.m_features}; build the model for this image size")
        cols = _observed_columns(m, self.m_features, h.device)
        # Autocast does not reach inside a custom Function: cast here, as it would have.
        dt = _autocast_dtype(h.device.type)
        amp_off = torch.autocast(h.device.type, enabled=False) if dt else contextlib.nullcontext()
        dt = dt or h.dtype
        with amp_off:
            out = _ConditionedLinear.apply(h.to(dt), None if m is None else m.to(dt),
                                           self.linear.weight.to(dt), self.linear.bias.to(dt),
                                           cols)
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
