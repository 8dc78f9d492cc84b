"""The conditioning information m: which pixels are known (thesis sections 2.5.2, 3.1-3.3).

Two choices make a mask:

* how many pixels: ``fixed`` (5 % of the pixels: 39 / 51 / 204 for 28x28 / 32x32 / 64x64, the
  thesis's "exact count") or ``power-law`` (count = floor(N (1 - X)), X ~ Power(a) with density
  a x^(a-1) on [0, 1], drawn per image; a high exponent a gives few pixels, often none);
* which pixels: ``exact`` (the thesis's fixed grid, ignores the count), ``uniform`` (uniform over
  the image) or ``gaussian`` (each coordinate ~ N(H/2, H/6), more pixels near the centre).

``m = [x * mask, mask]``: the C colour channels at the known pixels (zero elsewhere) plus one
binary mask channel shared by all colours (docs/thesis_code.md#m-layout).

Everything is drawn for the whole batch at once on the batch's device. By default the ``count``
pixels are distinct; ``replacement=True`` repeats the thesis code's with-replacement draws
(uniform: ``randint`` pairs; gaussian: ``normal``, ``clamp``, truncate), where duplicates give
fewer distinct pixels than ``count``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "ObservationConfig",
    "exact_grid",
    "Observer",
    "PIXEL_SAMPLERS",
    "COUNT_SAMPLERS",
    "grid_coordinates",
    "fixed_count",
    "power_law_counts",
    "sample_mask",
    "make_m",
]

PIXEL_SAMPLERS = ("exact", "uniform", "gaussian")
COUNT_SAMPLERS = ("fixed", "power-law")

FIXED_RATE = 0.05  # ExactPixelCountSampler: int(H*W*0.05) pixels (docs/thesis_code.md#counts)
GAUSSIAN_STD_FRACTION = 1 / 6  # std = H/6 around the centre H/2 (docs/thesis_code.md#samplers)


def grid_coordinates(size: int) -> list[int]:
    """The thesis's exact-sampling grid along one axis (docs/thesis_code.md#samplers).

    28 -> [5, 10, 15, 20], 32 -> [6, 12, 18, 24], 64 -> [4, 10, ..., 58] (10 values).
    """
    if size < 7:
        raise ValueError(f"the exact grid needs images of at least 7 pixels per side, got {size}")
    rows = size // 7
    spacing = math.ceil((size - rows) / (rows + 1))
    sides = size - (spacing * (rows - 1) + rows)
    start = int(sides / 2) + 1
    stop = int(size - (sides - start))
    return list(range(start, stop, spacing))


def fixed_count(height: int, width: int, rate: float = FIXED_RATE) -> int:
    """int(H * W * rate): 39 for 28x28, 51 for 32x32, 204 for 64x64 at the thesis's 5 %."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be a fraction of the pixels in [0, 1], got {rate}")
    return int(height * width * rate)


def power_law_counts(batch: int, n_pixels: int, exponent: float,
                     generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """Pixel counts floor(N (1 - X)), X ~ Power(a), one per image (thesis section 3.3.1).

    1 - X ~ Beta(1, a), so the mean count is N / (a + 1) and P(count = 0) = 1 - (1 - 1/N)^a.
    X is drawn by inversion: X = U^(1/a), U ~ U[0, 1).
    """
    _check_exponent(exponent)
    u = torch.rand(batch, generator=generator, device=device, dtype=torch.float64)
    x = u.pow(1.0 / exponent)
    return torch.floor(n_pixels * (1.0 - x)).long().clamp_(0, n_pixels)


def _check_exponent(exponent: float) -> None:
    if not (isinstance(exponent, (int, float)) and math.isfinite(exponent) and exponent > 0):
        raise ValueError(f"the power-law exponent must be a finite number > 0, got {exponent!r} "
                         "(the thesis used 40 and 60; higher means fewer known pixels)")


def _gaussian_log_weights(height: int, width: int, device) -> torch.Tensor:
    """log P(pixel) for N(H/2, H/6) x N(W/2, W/6) integrated over each pixel's cell [i, i+1),
    truncated to the image: centred on the true image centre, no pile-up at the border."""

    def axis(size: int) -> torch.Tensor:
        edges = torch.arange(size + 1, dtype=torch.float64, device=device)
        cdf = torch.special.ndtr((edges - size / 2) / (size * GAUSSIAN_STD_FRACTION))
        return (cdf[1:] - cdf[:-1]).clamp_min(1e-300).log()

    return (axis(height)[:, None] + axis(width)[None, :]).reshape(-1)


def exact_grid(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The exact-sampling grid as a float mask (1, 1, H, W)."""
    rows, cols = grid_coordinates(height), grid_coordinates(width)
    grid = torch.zeros(height, width)
    grid[torch.tensor(rows)[:, None], torch.tensor(cols)] = 1
    return grid.view(1, 1, height, width).to(device)


def _first_k_mask(keys: torch.Tensor, counts: torch.Tensor, kmax: int) -> torch.Tensor:
    """For each row, a boolean mask of the ``counts[b]`` positions with the largest keys
    (``kmax`` >= every count bounds the work).

    With i.i.d. uniform keys this is a uniform draw of ``count`` distinct pixels; with keys
    log w + Gumbel noise it is a draw without replacement proportional to w (Gumbel-top-k).
    """
    b, n = keys.shape
    mask = torch.zeros(b, n, dtype=torch.bool, device=keys.device)
    if kmax == 0:
        return mask
    top = keys.topk(kmax, dim=1, sorted=True).indices
    keep = torch.arange(kmax, device=keys.device)[None, :] < counts[:, None]
    return mask.scatter_(1, top, keep)


def _kmax(counts: torch.Tensor, n: int) -> int:
    """An upper bound of the counts without a device sync: on a GPU all n pixels (a full sort
    of the keys is cheap there, a host sync per step is not), on the CPU the largest count."""
    if len(counts) == 0:
        return 0
    return n if counts.device.type != "cpu" else int(counts.max())


def sample_mask(batch: int, height: int, width: int, sampler: str,
                counts: torch.Tensor | int | None = None, *, replacement: bool = False,
                generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """A float mask ``(batch, 1, H, W)`` with ones at the sampled pixels.

    ``counts``: an int or a ``(batch,)`` tensor of pixel counts (ignored by ``exact``).
    """
    if sampler not in PIXEL_SAMPLERS:
        raise ValueError(f"unknown pixel sampler {sampler!r}; choose one of {PIXEL_SAMPLERS}")
    n = height * width
    if sampler == "exact":
        return exact_grid(height, width, device).expand(batch, 1, height, width).clone()
    if counts is None:
        raise ValueError(f"the {sampler!r} sampler needs pixel counts (a fixed or power-law count)")
    counts = torch.as_tensor(counts, device=device).long()
    if counts.dim() == 0:
        counts = counts.expand(batch)
    if counts.shape != (batch,):
        raise ValueError(f"counts must be an int or a ({batch},) tensor, got {tuple(counts.shape)}")
    if batch and (int(counts.max()) > n or int(counts.min()) < 0):
        raise ValueError(f"pixel counts must lie in [0, H*W] = [0, {n}], got "
                         f"[{int(counts.min())}, {int(counts.max())}]; lower the count or rate")
    kmax = int(counts.max()) if batch else 0
    log_w = _gaussian_log_weights(height, width, device) if sampler == "gaussian" else None
    return _draw(batch, height, width, sampler, counts, kmax, replacement, generator, log_w)


def _draw(batch, height, width, sampler, counts, kmax, replacement, generator, log_w):
    """The mask for valid ``counts`` (on their device); no checks, no host syncs on a GPU."""
    device = counts.device
    if replacement:
        return _sample_with_replacement(batch, height, width, sampler, counts, kmax, generator)
    n = height * width
    if sampler == "uniform":
        keys = torch.rand(batch, n, generator=generator, device=device)
    else:
        u = torch.rand(batch, n, generator=generator, device=device, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
        keys = log_w[None, :] + gumbel
    return _first_k_mask(keys, counts, kmax).view(batch, 1, height, width).float()


def _sample_with_replacement(batch, height, width, sampler, counts, kmax, generator):
    """The thesis code's draws: ``count`` coordinate pairs with replacement, duplicates kept."""
    device = counts.device
    mask = torch.zeros(batch, height * width, device=device)
    if kmax == 0:
        return mask.view(batch, 1, height, width)
    if sampler == "uniform":
        r = torch.randint(0, height, (batch, kmax), generator=generator, device=device)
        c = torch.randint(0, width, (batch, kmax), generator=generator, device=device)
    else:  # torch.normal(H/2, H/6).clamp(0, H-1).long(), as gaussian_pixel_sampler.py
        z = torch.randn(batch, kmax, 2, generator=generator, device=device)
        size = torch.tensor([height, width], dtype=z.dtype).to(device)
        pos = (size / 2 + z * size * GAUSSIAN_STD_FRACTION).clamp(min=0)
        pos = torch.minimum(pos, size - 1).long()
        r, c = pos[..., 0], pos[..., 1]
    flat = r * width + c
    valid = (torch.arange(kmax, device=device)[None, :] < counts[:, None]).float()
    # amax: a pixel drawn twice stays 1; padding draws (beyond this image's count) add nothing
    mask.scatter_reduce_(1, flat, valid, reduce="amax")
    return mask.view(batch, 1, height, width)


def make_m(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """m = [x * mask, mask]: C masked colour channels plus one binary mask channel."""
    if x.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"expected x (B, C, H, W) and mask (B, 1, H, W), got {tuple(x.shape)} "
                         f"and {tuple(mask.shape)}")
    mask = mask.to(x.dtype)
    return torch.cat([x * mask, mask], dim=1)


@dataclass(frozen=True)
class ObservationConfig:
    """How m is drawn. Defaults: the multidecoder's exact grid (thesis section 3.2.1).

    The single decoder in the thesis uses ``count="power-law"`` with ``sampler`` uniform or
    gaussian and ``exponent`` 40 or 60 (section 3.3.1).
    """

    sampler: str = "exact"  # exact | uniform | gaussian (thesis Fig. 3.6)
    count: str = "fixed"  # fixed (5 % of pixels) | power-law
    exponent: float = 40.0  # power-law exponent a; the thesis ran 40 and 60 (section 4.3)
    rate: float = FIXED_RATE  # fraction of pixels for the fixed count (thesis: 0.05)
    replacement: bool = False  # True: the thesis code's with-replacement draws (duplicates kept)

    def __post_init__(self) -> None:
        if self.sampler not in PIXEL_SAMPLERS:
            raise ValueError(f"unknown pixel sampler {self.sampler!r}; "
                             f"choose one of {PIXEL_SAMPLERS}")
        if self.count not in COUNT_SAMPLERS:
            raise ValueError(f"unknown count sampler {self.count!r}; choose one of {COUNT_SAMPLERS}")
        if self.count == "power-law":
            _check_exponent(self.exponent)
            if self.sampler == "exact":
                raise ValueError("the exact grid has a fixed set of pixels and takes no count; "
                                 "use sampler='uniform' or 'gaussian' with a power-law count")
        if not 0 <= self.rate <= 1:
            raise ValueError(f"rate must be a fraction of the pixels in [0, 1], got {self.rate}")


class Observer:
    """Draws masks and m for batches of images of one shape ``(C, H, W)``.

    >>> obs = Observer(ObservationConfig("gaussian", "power-law", exponent=40), (1, 28, 28))
    >>> m = obs(x, generator=g)          # (B, 2, 28, 28)
    """

    def __init__(self, config: ObservationConfig, image_shape: tuple[int, int, int]):
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape}")
        self.config = config
        self.image_shape = tuple(int(s) for s in image_shape)
        self._cache: dict = {}
        _, h, w = self.image_shape
        if config.sampler == "exact":
            grid_coordinates(h), grid_coordinates(w)  # validates the size
        n = h * w
        if config.count == "fixed" and fixed_count(h, w, config.rate) > n:
            raise ValueError(f"rate {config.rate} asks for more pixels than the image has ({n})")

    @property
    def n_pixels(self) -> int:
        return self.image_shape[1] * self.image_shape[2]

    def counts(self, batch: int, generator=None, device="cpu") -> torch.Tensor:
        _, h, w = self.image_shape
        if self.config.count == "fixed":
            return torch.full((batch,), fixed_count(h, w, self.config.rate), device=device,
                              dtype=torch.long)
        return power_law_counts(batch, h * w, self.config.exponent, generator, device)

    def mask(self, batch: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
        """Masks (batch, 1, H, W) for one batch, drawn on ``device``; the fixed parts (grid,
        Gaussian weights) are built once per device, so a step copies nothing from the host."""
        device = torch.device(device)
        _, h, w = self.image_shape
        cfg = self.config
        if cfg.sampler == "exact":
            grid = self._per_device("grid", device, lambda: exact_grid(h, w, device))
            return grid.expand(batch, 1, h, w).clone()
        counts = self.counts(batch, generator, device)
        kmax = fixed_count(h, w, cfg.rate) if cfg.count == "fixed" else _kmax(counts, h * w)
        log_w = None if cfg.sampler != "gaussian" else self._per_device(
            "log_w", device, lambda: _gaussian_log_weights(h, w, device))
        return _draw(batch, h, w, cfg.sampler, counts, kmax, cfg.replacement, generator, log_w)

    def _per_device(self, name: str, device: torch.device, build):
        key = (name, str(device))
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images of shape (B, {', '.join(map(str, self.image_shape))})"
                             f", got {tuple(x.shape)}; build the Observer for this image size")
        return make_m(x, self.mask(x.shape[0], generator, x.device))
