"""The VQ-VAE's second stage: a Gated PixelCNN prior over its code maps.

The thesis trains the VQ-VAE's encoder, codebook and decoder (first stage) and describes, but
never trained, the prior p(z) over the discrete codes (second stage: sections 2.2.2, 2.5.1,
3.2.3; docs/thesis_code.md#prior). Here the frozen VQ-VAE encodes its training split once, a
:class:`~mtvae.models.pixelcnn.GatedPixelCNN` learns those code maps with cross-entropy, and
the best epoch by validation NLL is kept. Samples from the prior decode to new images. The
epochs (checkpoints, resume, best epoch, Ctrl-C and SIGTERM, divergence checks) are the loop the
VAE trainer uses too (mtvae/loop.py).

    prior = mtvae.train_prior("runs/vq1", out="runs/vq1/prior", epochs=20)
    prior.metrics["test"]["nll_bits"]       # held-out bits per code; uniform would be log2 K
    images = mtvae.sample_images(prior, 64, temperature=1.0, seed=0)

Splits follow the VQ run's data settings: train = its training images, val (best epoch) = its
validation half of the official test pool, test (reported) = the other half, which neither the
VQ-VAE nor the prior ever saw.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from .checkpoint import (
    CHECKPOINT,
    METRICS,
    atomic_save,
    atomic_write_json,
    environment,
    load_checkpoint,
    load_model,
)
from .config import DataConfig, option
from .data import ImageData, load_dataset, make_splits, to_float
from .loop import Loop, autocast, resume_state, run_folder
from .models.pixelcnn import GatedPixelCNN, PixelCNNConfig
from .models.vq import VQVAE
from .train import resolve_device

__all__ = ["PriorConfig", "Prior", "extract_codes", "prior_nll", "train_prior", "load_prior",
           "sample_codes", "sample_images"]

PRIOR = "prior.pt"  # beside checkpoint.CHECKPOINT and METRICS, as a VAE run folder


@dataclass
class PriorConfig:
    """How the prior is trained. Optimiser settings are the VQ-VAE's (thesis section 3.4.3)."""

    pixelcnn: PixelCNNConfig = field(default_factory=PixelCNNConfig)  # K is set from the VQ-VAE
    # enough for 7x7 MNIST codes to converge; the best epoch is kept
    epochs: int = option(20, "training epochs; the epoch with the best validation NLL is kept")
    batch_size: int = option(128, "batch size (thesis section 3.4.3)")
    lr: float = option(1e-3, "AdamW learning rate (thesis section 3.4.3)")
    weight_decay: float = 0.01  # torch's AdamW default, as the thesis code
    seed: int = option(0, "training and sampling seed (initial weights, batch order)")
    # auto: cuda, then mps, then cpu (an in-memory VQ model stays put)
    device: str = option("auto", "auto | cpu | cuda | mps")
    limit: int | None = option(None, "train on a seeded subset of N images (None: the VQ run's "
                               "own)")
    # bf16 autocast on CUDA (the cross-entropy runs in float32)
    amp: bool = option(True, "bf16 autocast on CUDA", flag_help="no bf16 autocast on CUDA")
    progress: bool = option(True, "tqdm progress bar", flag_help="no progress bar")

    COSMETIC = ("epochs", "device", "progress")  # a resumed run may change these

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_options(cls, **options) -> PriorConfig:
        """From flat keywords: PriorConfig and PixelCNNConfig fields (``n_layers=4``), or a
        :meth:`to_dict` dictionary."""
        own, net = {f.name for f in fields(cls)}, {f.name for f in fields(PixelCNNConfig)}
        unknown = set(options) - own - net
        if unknown:
            raise ValueError(f"unknown prior option(s) {sorted(unknown)}; allowed: "
                             f"{sorted(own - {'pixelcnn'})} and {sorted(net)}")
        pixelcnn = options.pop("pixelcnn", None) or PixelCNNConfig()
        pixelcnn = PixelCNNConfig(**pixelcnn) if isinstance(pixelcnn, dict) else pixelcnn
        pixelcnn = replace(pixelcnn, **{k: options.pop(k) for k in net & set(options)})
        return cls(pixelcnn=pixelcnn, **options)

    def differences(self, other: PriorConfig) -> list[str]:
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if k not in self.COSMETIC and a[k] != b[k]]


@dataclass
class Prior:
    """A trained prior with the VQ-VAE it belongs to (what :func:`train_prior` returns)."""

    pixelcnn: GatedPixelCNN
    vq: VQVAE
    config: PriorConfig
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    metrics: dict = field(default_factory=dict)  # {"val": ..., "test": ...} NLL per code
    out_dir: Path | None = None

    @property
    def grid(self) -> tuple[int, int]:
        """The code map's (h, w): 7x7 for 28 px images, 8x8 for 32 px, 16x16 for 64 px."""
        return tuple(self.vq.latent_shape[1:])  # type: ignore[return-value]


@torch.no_grad()
def extract_codes(vq: VQVAE, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Code maps (N, h, w) of uint8 ``images`` (N, C, H, W), on the VQ-VAE's device."""
    device, was_training = next(vq.parameters()).device, vq.training
    codes = [vq.eval().encode(to_float(images[i:i + batch_size].to(device)))
             for i in range(0, len(images), batch_size)]
    vq.train(was_training)
    return torch.cat(codes)


@torch.no_grad()
def prior_nll(pixelcnn: GatedPixelCNN, codes: torch.Tensor, batch_size: int = 1000) -> dict:
    """Mean NLL of ``codes`` in nats and bits per code, beside the uniform prior's log2 K."""
    was_training, total = pixelcnn.training, 0.0
    for i in range(0, len(codes), batch_size):
        batch = codes[i:i + batch_size]
        total += float(pixelcnn.eval().nll(batch)) * batch.numel()
    pixelcnn.train(was_training)
    nats = total / max(codes.numel(), 1)
    return {"nll_nats": nats, "nll_bits": nats / math.log(2),
            "uniform_bits": math.log2(pixelcnn.num_classes), "images": len(codes)}


def _resolve_vq(vq, device: str):
    """(model, RunConfig or None, info) from a run folder or file, a train Result or a model.
    ``info`` ties a prior to its VQ-VAE: where to reload it and a fingerprint of its codebook."""
    path = run_config = None
    if isinstance(vq, (str, os.PathLike)):
        path = str(Path(vq).resolve())
        vq, run_config = load_model(vq, resolve_device(device))
    elif hasattr(vq, "model") and hasattr(vq, "config"):  # a mtvae.train.Result
        vq, run_config = vq.model, vq.config
    if not isinstance(vq, VQVAE):
        raise ValueError(f"the prior is learned for VQ-VAEs, got {type(vq).__name__}; a Gaussian "
                         "VAE's prior is N(0, I) already: use mtvae.generate.generate(model, n)")
    if device != "auto":
        vq.to(resolve_device(device))
    book = vq.quantizer.embed.detach().float().cpu().contiguous().numpy().tobytes()
    info = {"path": path, "num_embeddings": vq.num_embeddings, "grid": list(vq.latent_shape[1:]),
            "codebook_sha1": hashlib.sha1(book).hexdigest(),
            "run_config": run_config.to_dict() if run_config is not None else None}
    return vq.eval(), run_config, info


def _code_splits(vq: VQVAE, run_config, data, limit, data_root=None
                 ) -> dict[str, torch.Tensor]:
    """Codes of the VQ run's training images, its validation images and the unseen rest."""
    if data is None and run_config is None:
        raise ValueError("a VQ model alone does not say which images it was trained on; pass "
                         "data='mnist-sample' (a dataset name) or an ImageData")
    dc = run_config.data if run_config is not None else DataConfig()
    if not isinstance(data, ImageData):
        data = load_dataset(data or dc.dataset, dc.root if data_root is None else data_root,
                            dc.download, dc.celeba_crop)
    if tuple(data.shape) != tuple(vq.image_shape):
        raise ValueError(f"the VQ-VAE takes {tuple(vq.image_shape)} images, the data are "
                         f"{tuple(data.shape)}; pass the dataset it was trained on")
    splits = make_splits(data, dc.fold, dc.folds, dc.split_seed, dc.shuffle_folds,
                         dc.val_fraction, limit if limit is not None else dc.limit)
    unseen = torch.ones(len(data.test), dtype=torch.bool)
    unseen[splits.val] = False
    images = {"train": data.train[splits.train], "val": data.test[splits.val],
              "test": data.test[unseen]}
    return {k: extract_codes(vq, v) for k, v in images.items() if len(v)}


def train_prior(vq, out: str | os.PathLike | None = None, *, data=None, resume: bool = True,
                callback=None, data_root: str | os.PathLike | None = None, **options) -> Prior:
    """Train a Gated PixelCNN prior on the codes of a trained VQ-VAE; see the module docstring.

    vq:      a run folder or its model.pt / checkpoint.pt, a :class:`mtvae.train.Result`, or a
             VQVAE (then ``data`` must name its dataset).
    out:     folder for checkpoint.pt (every epoch, atomic), prior.pt and metrics.json; an
             unfinished run there resumes, a finished one is loaded.
    data_root: where the VQ run's dataset is (default: the folder the run was trained from).
    options: :class:`PriorConfig` and :class:`PixelCNNConfig` fields, e.g. ``epochs=5, n_layers=8``.
    """
    config = PriorConfig.from_options(**options)
    model, run_config, info = _resolve_vq(vq, config.device)
    device = next(model.parameters()).device
    if options.get("num_classes", model.num_embeddings) != model.num_embeddings:
        raise ValueError(f"num_classes must be the codebook size {model.num_embeddings}; leave "
                         "it out to take it from the VQ-VAE")
    config.pixelcnn = replace(config.pixelcnn, num_classes=model.num_embeddings)
    out = run_folder(out, resume, (CHECKPOINT, PRIOR, METRICS), "prior")
    if out is not None and resume and (out / PRIOR).exists():
        done = load_prior(out, vq=model, device=device)
        if len(done.history) >= config.epochs and not done.config.differences(config):
            return done  # else: more epochs (resumed from the checkpoint) or a clash below

    codes = _code_splits(model, run_config, data, config.limit, data_root)
    torch.manual_seed(config.seed)  # the initial weights, then the batch order
    net = GatedPixelCNN(config.pixelcnn).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator(device=device).manual_seed(config.seed + 1)

    def restore(ckpt: dict) -> None:  # resuming: the checkpoint must be this prior's
        clash = PriorConfig.from_options(**ckpt["config"]).differences(config)
        if ckpt["vq"]["codebook_sha1"] != info["codebook_sha1"]:
            clash.append("the VQ-VAE (its codebook differs)")
        if clash:
            raise ValueError(f"{out / CHECKPOINT} belongs to a different prior ({'; '.join(clash)})"
                             "; use another --out folder, or resume=False / --no-resume")
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"].cpu())  # the batch order continues where it stopped

    state = resume_state(out, resume, device, restore)
    train = codes["train"]

    def step(indices: torch.Tensor) -> dict[str, torch.Tensor]:
        with autocast(device, config.amp):  # the cross-entropy runs in float32
            loss = net.nll(train[indices])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"nll_nats": loss}

    def validate() -> dict:
        val = prior_nll(net, codes["val"])
        return {"nll_nats": val["nll_nats"], "nll_bits": val["nll_bits"]}

    def save() -> dict:
        return {"config": config.to_dict(), "model": net.state_dict(), "vq": info,
                "optimizer": opt.state_dict(), "generator": gen.get_state()}

    Loop(net, step, validate, save, n=len(train), batch_size=config.batch_size,
         epochs=config.epochs, device=device, out=out, generator=gen, metric="nll_nats",
         label=f"prior K={model.num_embeddings}" if config.progress else None,
         callbacks=[callback] if callback is not None else [], resume=resume, lr=config.lr,
         change_lr=False).run(state)
    state.load_best(net)
    metrics = {split: prior_nll(net, c) for split, c in codes.items() if split != "train"}
    if out is not None:
        saved = {"config": config.to_dict(), "vq": info, "best_epoch": state.best["epoch"],
                 "metrics": metrics, "history": state.history}
        atomic_save({**saved, "model": net.state_dict()}, out / PRIOR)
        atomic_write_json({**saved, "environment": environment(device)}, out / METRICS)
    return Prior(net.eval(), model, config, state.history, state.best["epoch"], metrics, out)


def load_prior(path: str | os.PathLike, vq=None, device: str | torch.device = "cpu") -> Prior:
    """A :class:`Prior` from a prior folder or its prior.pt; ``vq`` (a model or run folder)
    defaults to the VQ-VAE the prior was trained on, reloaded from its recorded path."""
    path = Path(path)
    ckpt = load_checkpoint(path / PRIOR if path.is_dir() else path)
    config = PriorConfig.from_options(**ckpt["config"])
    if vq is None and ckpt["vq"]["path"] is None:
        raise ValueError(f"{path} was trained from an in-memory VQ model; pass vq=model")
    vq, _, info = _resolve_vq(ckpt["vq"]["path"] if vq is None else vq, str(device))
    if info["codebook_sha1"] != ckpt["vq"]["codebook_sha1"]:
        raise ValueError(f"this VQ-VAE is not the one the prior in {path} was trained on (its "
                         "codebook differs); pass the VQ run the prior was trained from")
    net = GatedPixelCNN(config.pixelcnn)
    net.load_state_dict(ckpt["model"])
    return Prior(net.to(device).eval(), vq, config, ckpt["history"], ckpt["best_epoch"],
                 ckpt["metrics"], path)


def sample_codes(prior: Prior | GatedPixelCNN, n: int, *, temperature: float = 1.0,
                 seed: int | None = 0, shape: tuple[int, int] | None = None,
                 batch_size: int | None = None) -> torch.Tensor:
    """``n`` code maps (n, h, w) from the prior in raster order, on the prior's device.

    ``seed`` makes the draw repeatable (None: torch's global generator); ``batch_size`` bounds
    the memory of a large draw. A bare GatedPixelCNN needs ``shape`` (h, w).
    """
    net = prior.pixelcnn if isinstance(prior, Prior) else prior
    shape = shape or (prior.grid if isinstance(prior, Prior) else None)
    if shape is None:
        raise ValueError("a bare GatedPixelCNN does not know its grid; pass shape=(h, w)")
    device = next(net.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    step = batch_size or max(n, 1)
    return torch.cat([net.sample(min(step, n - i), shape, temperature, gen)
                      for i in range(0, max(n, 1), step)])[:n]


@torch.no_grad()
def sample_images(prior: Prior, n: int, *, m: torch.Tensor | None = None,
                  temperature: float = 1.0, seed: int | None = 0) -> torch.Tensor:
    """New images (n, C, H, W): prior codes decoded by the VQ-VAE (conditioned on m if given)."""
    codes = sample_codes(prior, n, temperature=temperature, seed=seed)
    return prior.vq.eval().decode_codes(codes, m)
