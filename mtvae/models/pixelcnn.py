"""Gated PixelCNN: the autoregressive prior over a VQ-VAE's code maps.

The VQ-VAE is trained in two stages (thesis section 2.2.2): first the encoder, codebook and
decoder, then a prior p(z) over the integer code maps, z_1 ... z_N in raster order:

    p(z) = prod_i p(z_i | z_1, ..., z_{i-1})                       (thesis section 2.5.1)

van den Oord et al. 2017 use a Gated PixelCNN for that prior (van den Oord et al. 2016,
"Conditional image generation with PixelCNN decoders"); the thesis describes it (sections 2.2.2,
2.5.1, 3.2.3) but its code never had one (docs/thesis_code.md#prior). This is that network.

Two stacks run side by side, so the receptive field has no blind spot:

* the vertical stack sees every row strictly above the current one (across the full kernel
  width, right of the current column too);
* the horizontal stack sees the current row left of the current position, plus the vertical
  stack's features of the same row (which themselves only carry rows above).

Causality comes from kernel shapes and one-sided padding, not from multiplying weights by a mask:
the first layer ("mask A") never sees the current position, later layers ("mask B") see the
current position's *features* from the layer below, which never contained the current code.
Each unit is gated, tanh(a) * sigmoid(b), and the horizontal stack is residual after layer 1.

    net = GatedPixelCNN(PixelCNNConfig(num_classes=128))
    logits = net(codes)                       # (B, h, w) integers -> (B, K, h, w) logits
    codes = net.sample(16, (7, 7), temperature=1.0, generator=g)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PixelCNNConfig", "GatedLayer", "GatedPixelCNN"]


@dataclass
class PixelCNNConfig:
    """Architecture of the prior. Defaults: the PixelCNN papers' depth and first kernel.

    With ``first_kernel`` 7 and ``kernel`` 3 the receptive field reaches
    ``first_kernel // 2 + (n_layers - 1) * (kernel // 2)`` = 17 rows up and columns sideways,
    so 15 layers cover every earlier code of the thesis's 7x7, 8x8 and 16x16 grids.
    """

    num_classes: int = 128  # K, the VQ codebook size (thesis VQ configs 1-2: 128, config 3: 256)
    channels: int = 64  # width of both stacks; small grids (49-256 codes) need no more, as in
    #                     the common VQ-VAE PixelCNN priors (the 2016 paper used up to 384)
    n_layers: int = 15  # gated layers, the first (mask A) included: "a stack of fifteen ... layers"
    #                     (thesis section 2.5.1; PixelCNN, van den Oord et al. 2016)
    first_kernel: int = 7  # mask-A kernel side, 7x7 as in both PixelCNN papers
    kernel: int = 3  # mask-B kernel side; each layer grows the receptive field by kernel // 2
    head_channels: int = 256  # hidden 1x1 layer of the output head (paper: ReLU-1x1-ReLU-1x1)

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be the codebook size K >= 2, got {self.num_classes}")
        for name in ("channels", "n_layers", "head_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("first_kernel", "kernel"):
            k = getattr(self, name)
            if k < 3 or k % 2 == 0:
                raise ValueError(f"{name} must be an odd kernel side >= 3 (e.g. 3, 5, 7), got {k}")

    @property
    def receptive_field(self) -> int:
        """How many rows up (and columns left/right) the last layer reaches."""
        return self.first_kernel // 2 + (self.n_layers - 1) * (self.kernel // 2)

    def to_dict(self) -> dict:
        return asdict(self)


def gate(x: torch.Tensor) -> torch.Tensor:
    """tanh(a) * sigmoid(b) over the two channel halves (the paper's gated activation unit)."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One layer of both stacks (Figure 2 of van den Oord et al. 2016).

    With ``r = kernel // 2`` and output position (i, j):

    ================  ======================================  ==================================
    stack             mask A (first layer)                    mask B (later layers)
    ================  ======================================  ==================================
    vertical          rows i-r .. i-1, columns j-r .. j+r     rows i-r .. i, columns j-r .. j+r
    horizontal        row i, columns j-r .. j-1               row i, columns j-r .. j
    ================  ======================================  ==================================

    The vertical input of every layer after the first only carries rows above its own row, so
    "row i" in mask B still means "rows < i" in code space; the same holds for the horizontal
    stack and "column j". The vertical stack feeds the horizontal one through a 1x1 conv (no
    shift needed: its row-i features already exclude row i).
    """

    def __init__(self, channels: int, kernel: int, first: bool):
        super().__init__()
        r = kernel // 2
        see_self = 0 if first else 1
        self.first = first
        self.pad_v = (r, r, r, 0)  # F.pad order: left, right, top, bottom; nothing below
        self.pad_h = (r, 0, 0, 0)  # only the left
        self.v_conv = nn.Conv2d(channels, 2 * channels, (r + see_self, kernel))
        self.h_conv = nn.Conv2d(channels, 2 * channels, (1, r + see_self))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = v.shape[-2:]
        # Mask A's kernels are one shorter, so their outputs have one extra row / column at the
        # end; cropping to the input size keeps output (i, j) aligned with input (i, j).
        v_pre = self.v_conv(F.pad(v, self.pad_v))[:, :, :rows]
        h_pre = self.h_conv(F.pad(h, self.pad_h))[:, :, :, :cols]
        v_out = gate(v_pre)
        h_new = self.h_out(gate(h_pre + self.v_to_h(v_pre)))
        # No residual in the first layer: its input h is the current code's own embedding.
        return v_out, (h_new if self.first else h + h_new)


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN over integer code maps with K classes: embedding -> gated layers -> logits."""

    def __init__(self, config: PixelCNNConfig):
        super().__init__()
        self.config = config
        c = config.channels
        self.embed = nn.Embedding(config.num_classes, c)
        self.layers = nn.ModuleList(
            [GatedLayer(c, config.first_kernel, first=True)]
            + [GatedLayer(c, config.kernel, first=False) for _ in range(config.n_layers - 1)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, config.head_channels, 1), nn.ReLU(),
                                  nn.Conv2d(config.head_channels, config.num_classes, 1))

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, h, w) of p(z_i | z_<i) for every position of codes (B, h, w)."""
        if codes.dim() != 3 or codes.dtype.is_floating_point:
            raise ValueError(f"expected an integer code map (B, h, w), got {tuple(codes.shape)} "
                             f"{codes.dtype}; use model.encode(x) of a VQ-VAE")
        x = self.embed(codes.long()).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def nll(self, codes: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per code (the training loss)."""
        return F.cross_entropy(self(codes).float(), codes.long())

    @torch.no_grad()
    def sample(self, n: int, shape: tuple[int, int], temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` code maps of ``shape`` (h, w), drawn position by position in raster order.

        Runs on the network's device; ``generator`` (for a seeded draw) must live there too.
        ``temperature`` divides the logits: 1 samples the learned prior, < 1 sharpens it, 0 takes
        the most likely code. Row i only depends on rows <= i, so each step runs the network on
        the rows drawn so far (about half the work of running it on the whole map).
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = most likely code), got {temperature}")
        rows, cols = (int(s) for s in shape)
        device = self.embed.weight.device
        was_training = self.training
        self.eval()
        codes = torch.zeros(n, rows, cols, dtype=torch.long, device=device)
        for i in range(rows):
            for j in range(cols):
                logits = self(codes[:, : i + 1])[:, :, i, j].float()
                if temperature == 0:
                    codes[:, i, j] = logits.argmax(1)
                else:
                    probs = torch.softmax(logits / temperature, dim=1)
                    codes[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        self.train(was_training)
        return codes
