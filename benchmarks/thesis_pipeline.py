"""The thesis code's training pipeline, rebuilt for a speed comparison (docs/thesis_code.md).

The model is the same mtvae module the fast path trains, so the ratio between the two measures
the pipeline around it. Per training step the thesis code did:

* data (``ConditionalDataset``; docs/thesis_code.md#data, docs/thesis_code.md#samplers): a torch
  ``Dataset`` whose ``__getitem__`` turns one image into floats the way torchvision's
  MNIST/CIFAR10 with ``ToTensor`` did (a PIL round trip; CelebA came from a float32 memmap cache
  instead) and draws that image's mask in Python: the count (``int(0.05 H W)`` or
  ``int(N - np.random.power(a) N)``), then the pixels with replacement (the exact grid;
  ``torch.randint`` pairs; ``torch.normal(H/2, H/6)`` clamped and truncated), and returns
  ``(x, cat(x * mask, mask), y)``;
* loader (docs/thesis_code.md#folds): ``DataLoader(batch 128, no shuffle, num_workers,
  pin_memory)``, every batch copied to the device;
* step (docs/thesis_code.md#architectures to docs/thesis_code.md#training): the forward pass;
  for the conditioned methods also the logged-only output decoded with m = 0 under ``no_grad``
  in eval mode; the ``VAELoss``/``VQLoss`` dictionary with every logged key turned into a
  Python float (Lightning's ``log_dict({k: v.item()})``, one device sync each);
  ``AdamW(lr=1e-3)`` with torch's default implementation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from mtvae.models import Outputs
from mtvae.observations import GAUSSIAN_STD_FRACTION, ObservationConfig, grid_coordinates

__all__ = ["ThesisStyleDataset", "thesis_loader", "thesis_mask", "thesis_optimizer",
           "thesis_step"]


def thesis_mask(height: int, width: int, obs: ObservationConfig) -> torch.Tensor:
    """One image's (1, H, W) mask, drawn as the thesis's samplers drew it
    (docs/thesis_code.md#samplers)."""
    if obs.sampler == "exact":  # ExactPixelSampler: the fixed grid, the count is ignored
        rows, cols = grid_coordinates(height), grid_coordinates(width)
        idx = torch.tensor([(r, c) for r in rows for c in cols])
    else:
        n = height * width
        count = (int(n * obs.rate) if obs.count == "fixed"
                 else int(n - np.random.power(obs.exponent) * n))
        if obs.sampler == "uniform":  # UniformPixelSampler: randint pairs, duplicates kept
            idx = torch.stack([torch.randint(0, height, (count,)),
                               torch.randint(0, width, (count,))], 1)
        else:  # GaussianPixelSampler: normal(H/2, H/6), clamp, truncate
            idx = torch.normal(height / 2, height * GAUSSIAN_STD_FRACTION, size=(count, 2))
            idx = idx.clamp(0, height - 1).long()
    mask = torch.zeros(1, height, width)
    mask[0, idx[:, 0], idx[:, 1]] = 1.0
    return mask


class ThesisStyleDataset(Dataset):
    """``(x, m, 0)`` per image, converted and masked in Python on every access.

    ``pil=True`` converts through PIL and ``to_tensor`` (torchvision's MNIST/CIFAR10 datasets
    with ``ToTensor``); ``pil=False`` indexes a float32 array (the thesis's CelebA cache).
    """

    def __init__(self, images: torch.Tensor, obs: ObservationConfig, pil: bool = True):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        self.obs, self.pil = obs, pil
        array = images.cpu().numpy()
        if pil:  # torchvision keeps MNIST as (N, H, W) and CIFAR10 as (N, H, W, C) uint8
            self.array = array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1)
        else:
            self.array = array.astype(np.float32) / 255.0
        self.height, self.width = images.shape[2:]

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int):
        if self.pil:
            from PIL import Image
            from torchvision.transforms.functional import to_tensor

            x = to_tensor(Image.fromarray(self.array[i]))
        else:
            x = torch.from_numpy(self.array[i])
        mask = thesis_mask(self.height, self.width, self.obs)
        return x, torch.cat([x * mask, mask], 0), 0


def thesis_loader(dataset: Dataset, batch_size: int = 128, workers: int = 0,
                  device: torch.device | str = "cpu") -> DataLoader:
    """The thesis's cross-validation loader: unshuffled, pinned on CUDA, last batch kept."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=torch.device(device).type == "cuda", drop_last=False,
                      persistent_workers=workers > 0)


def thesis_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    """``AdamW(lr=1e-3)``, torch's defaults (foreach on CUDA, a per-tensor loop on CPU)."""
    return torch.optim.AdamW(model.parameters(), lr=1e-3)


def _masked_output(model: torch.nn.Module, out: Outputs, m: torch.Tensor) -> torch.Tensor:
    """The logged-only reconstruction with m = 0, in eval mode, without gradient (the thesis's
    SCVAE1D/2D and SCVQVAE1D/2D forward passes computed it in every training step)."""
    latent = out.z if out.z is not None else out.z_q
    decoder = model.cond_decoder
    decoder.eval()
    with torch.no_grad():
        masked = decoder(latent, torch.zeros_like(m))
    decoder.train()
    return masked


def _loss_dict(family: str, x: torch.Tensor, recons: list, masked: list, out: Outputs) -> dict:
    """The keys VAELoss / VQLoss logged (docs/thesis_code.md#losses); 'loss' is the unweighted
    objective."""
    reduction = "sum" if family == "gaussian" else "mean"
    d = {}
    for i, r in enumerate(recons):
        d[f"recon_loss_{i}"] = F.mse_loss(x, r, reduction=reduction)
    for i, r in enumerate(masked):
        if r is not None:
            d[f"recon_loss_{i}(MASKED)"] = F.mse_loss(x, r, reduction=reduction)
    if family == "gaussian":
        latent_key = "kl_loss"
        d[latent_key] = -0.5 * torch.sum(1 + out.logvar - out.mu.pow(2) - out.logvar.exp())
    else:
        latent_key = "vq_loss"
        d["embeddding_loss"] = F.mse_loss(out.z_q, out.z_e.detach())
        d["commitment_loss"] = 0.25 * F.mse_loss(out.z_q.detach(), out.z_e)
        d[latent_key] = d["embeddding_loss"] + d["commitment_loss"]
    first = "recon_loss_0(MASKED)" if "recon_loss_0(MASKED)" in d else "recon_loss_0"
    d[f"{first} + {latent_key}"] = d[first] + d[latent_key]
    d["loss_sum"] = sum(d[f"recon_loss_{i}"] for i in range(len(recons))) + d[latent_key]
    d["loss"] = d["loss_sum"]
    return d


def thesis_step(model: torch.nn.Module, batch, optimizer: torch.optim.Optimizer, family: str,
                method: str, device: torch.device) -> dict[str, float]:
    """One training step as the thesis code ran it; returns the logged values."""
    x, m, _ = batch
    x = x.to(device, non_blocking=True)
    m = m.to(device, non_blocking=True)
    out = model(x, m if method != "baseline" else None)
    if method == "baseline":
        recons, masked = [out.recon], []
    elif method == "multidecoder":
        recons, masked = [out.recon, out.recon_cond], [None, _masked_output(model, out, m)]
    else:
        recons, masked = [out.recon_cond], [_masked_output(model, out, m)]
    losses = _loss_dict(family, x, recons, masked, out)
    logged = {f"train_{k}": v.item() for k, v in losses.items()}
    optimizer.zero_grad()
    losses["loss"].backward()
    optimizer.step()
    return logged
