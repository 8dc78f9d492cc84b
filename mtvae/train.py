"""Training: fit one run, validate every epoch, keep the best epoch, checkpoint, resume.

The loop is plain PyTorch (thesis section 3.4.3: AdamW, lr 1e-3, batch 128, 100 epochs, best
model by validation loss). Images live on the training device as uint8 and batches are slices of
that tensor; masks are drawn per batch on the device. Nothing per image runs in Python.

    result = mtvae.train.fit(RunConfig(...), out_dir="runs/x")   # or mtvae.train_model(...)
    result.model, result.history, result.best_epoch, result.metrics
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import (
    CHECKPOINT,
    METRICS,
    MODEL,
    atomic_save,
    atomic_write_json,
    cpu_state,
    environment,
    load_checkpoint,
    load_model,
    rng_state,
    set_rng_state,
)
from .config import RunConfig, TrainConfig
from .data import ImageData, load_dataset, make_splits, to_float
from .evaluate import autocast, batches, evaluate
from .losses import objective, training_terms
from .models import build_model, count_parameters
from .observations import Observer
from .softadapt import DEFAULT_BETA, SoftAdapt

__all__ = ["fit", "Result", "TrainingDivergedError", "resolve_device", "build_optimizer"]

class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass
class Result:
    """What :func:`fit` returns. ``model`` holds the best epoch's weights."""

    model: torch.nn.Module
    config: RunConfig
    history: list[dict]
    best_epoch: int
    metrics: dict  # {"val": ..., "test": ... (held-out fold, when a fold was held out)}
    out_dir: Path | None = None
    extra: dict = field(default_factory=dict)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu; anything else is passed to torch."""
    if str(device) != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for but CUDA is not available; use --device cpu"
                             " or auto")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def build_optimizer(model: torch.nn.Module, tc: TrainConfig,
                    device: torch.device) -> torch.optim.Optimizer:
    """AdamW with the thesis's settings (section 3.4.3: lr 1e-3, torch's weight decay 0.01).

    ``fused=True`` updates all parameters in one kernel: on a 2-core CPU it took 14 ms instead of
    the default per-tensor loop's 131 ms for a 21 M-parameter conditioned model
    (docs/performance.md); on CUDA it is the fastest implementation. Devices or torch versions
    without a fused AdamW get the default.
    """
    kw = dict(lr=tc.lr, weight_decay=tc.weight_decay)
    if device.type in ("cuda", "cpu"):
        with contextlib.suppress(RuntimeError, TypeError):
            return torch.optim.AdamW(model.parameters(), fused=True, **kw)
    return torch.optim.AdamW(model.parameters(), **kw)


def fit(config: RunConfig, out_dir: str | os.PathLike | None = None, *,
        data: ImageData | None = None, init_state: dict | None = None, resume: bool = True,
        callback: Callable[[int, dict], None] | None = None) -> Result:
    """Train one run; see the module docstring.

    out_dir:    where checkpoint.pt (every epoch, atomic), model.pt and metrics.json go; with
                ``resume=True`` an unfinished run there continues where it stopped and a
                finished one is loaded instead of retrained. None keeps everything in memory.
    data:       an already loaded :class:`ImageData` (else loaded from ``config.data``).
    init_state: initial model weights (cross-validation starts every fold from the same ones).
    callback:   called as ``callback(epoch, record)`` after each epoch's checkpoint is written.
    """
    tc, dc = config.train, config.data
    device = resolve_device(tc.device)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if resume and (out / METRICS).exists() and (out / MODEL).exists():
            finished = _load_finished(out, config, device)
            if len(finished.history) >= config.train.epochs:
                return finished  # else: asked for more epochs, continue from the checkpoint
    if data is None:
        data = load_dataset(dc.dataset, dc.root, dc.download, dc.celeba_crop)
    splits = make_splits(data, dc.fold, dc.folds, dc.split_seed, dc.shuffle_folds,
                         dc.val_fraction, dc.limit)
    shape = data.shape
    train_x = data.train[splits.train].to(device)
    val_x = data.test[splits.val].to(device)
    test_x = data.train[splits.test].to(device) if len(splits.test) else None

    torch.manual_seed(tc.seed)
    model = build_model(config.model, shape)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)
    if config.model.family == "gaussian":
        model.eval_sample_z = tc.eval_sample_z
    optimizer = build_optimizer(model, tc, device)
    observer = Observer(config.observation, shape) if config.model.method != "baseline" else None
    softadapt = None
    if tc.softadapt:
        names = {"baseline": ["recon", "latent"], "multidecoder": ["recon", "recon_cond", "latent"],
                 "single": ["recon_cond", "latent"]}[config.model.method]
        beta = tc.softadapt_beta if tc.softadapt_beta is not None \
            else DEFAULT_BETA[config.model.family]
        softadapt = SoftAdapt(names, beta, tc.softadapt_window, tc.softadapt_order,
                              tc.softadapt_init)
    gens = {"data": torch.Generator(device=device).manual_seed(tc.seed + 1),
            "mask": torch.Generator(device=device).manual_seed(tc.seed + 2)}

    history: list[dict] = []
    best = {"epoch": -1, "score": math.inf, "state": None}
    start = 0
    if out is not None and resume and (out / CHECKPOINT).exists():
        ckpt = load_checkpoint(out / CHECKPOINT, map_location=device)
        diff = RunConfig.from_dict(ckpt["config"]).differences(config)
        if diff:
            raise ValueError(f"{out / CHECKPOINT} belongs to a different run ({'; '.join(diff)}); "
                             "use another output folder, or resume=False / --no-resume to "
                             "overwrite it")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if softadapt is not None:
            softadapt.load_state_dict(ckpt["softadapt"])
        history, best, start = ckpt["history"], ckpt["best"], ckpt["epoch"]
        set_rng_state(ckpt["rng"], gens)

    step_model = torch.compile(model) if tc.compile else model
    n = len(train_x)
    steps = len(list(batches(n, tc.batch_size, tc.drop_last)))
    if steps == 0:
        raise ValueError(f"no training batches: {n} images with batch_size {tc.batch_size} and "
                         "drop_last; lower the batch size or use more data")
    bar = _progress(tc, start, steps, config)
    try:
        for epoch in range(start, tc.epochs):
            t0 = time.perf_counter()
            model.train()
            order = (torch.randperm(n, generator=gens["data"], device=device) if tc.shuffle
                     else torch.arange(n, device=device))
            sums: dict[str, torch.Tensor] = {}
            reported = 0
            for k, (i, j) in enumerate(batches(n, tc.batch_size, tc.drop_last)):
                x = to_float(train_x.index_select(0, order[i:j]))
                if tc.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                m = observer(x, gens["mask"]) if observer is not None else None
                with autocast(device, tc.amp):
                    outputs = step_model(x, m)
                terms = training_terms(config.model.family, config.model.method, x, outputs,
                                       config.loss)
                loss = objective(terms, config.loss, softadapt.weights if softadapt else None)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if softadapt is not None:
                    softadapt.record(terms)
                for key, v in (("loss", loss), *terms.items()):
                    v = v.detach() * (j - i)
                    sums[key] = sums[key] + v if key in sums else v
                if (k + 1) % tc.check_every == 0 or k + 1 == steps:
                    _check_finite(loss, terms, epoch, k)
                    if bar is not None:
                        bar.update(k + 1 - reported)
                        reported = k + 1
                        bar.set_postfix(loss=f"{float(loss):.4g}", refresh=False)
            seconds = time.perf_counter() - t0
            record = {"epoch": epoch}
            record.update({f"train_{k}": float(v) / n for k, v in sums.items()})
            val = evaluate(model, val_x, config, observer, seed=tc.seed + 3)
            record.update({f"val_{k}": v for k, v in val.items()})
            record.update(time_s=seconds, images_per_s=n / seconds)
            if softadapt is not None:
                record["softadapt_weights"] = dict(softadapt.weights)
            history.append(record)
            if val["loss"] < best["score"]:
                best = {"epoch": epoch, "score": val["loss"], "state": cpu_state(model)}
            if bar is not None:
                bar.set_postfix(val_loss=f"{val['loss']:.4g}", best=best["epoch"], refresh=True)
            if out is not None:
                atomic_save({"config": config.to_dict(), "image_shape": shape,
                             "epoch": epoch + 1, "model": model.state_dict(),
                             "optimizer": optimizer.state_dict(),
                             "softadapt": softadapt.state_dict() if softadapt else None,
                             "history": history, "best": best, "rng": rng_state(gens),
                             "environment": environment(device)}, out / CHECKPOINT)
            if callback is not None:
                callback(epoch, record)
    except KeyboardInterrupt:
        if out is not None:
            print(f"\ninterrupted; finished epochs are in {out / CHECKPOINT}: run the same "
                  "command again to resume")
        raise
    finally:
        if bar is not None:
            bar.close()
    return _finish(model, config, history, best, shape, test_x, val_x, observer, out, device)


def _check_finite(loss, terms, epoch, step):
    if not torch.isfinite(loss):
        bad = [k for k, v in terms.items() if not torch.isfinite(v)]
        raise TrainingDivergedError(
            f"the loss became {float(loss.detach())} at epoch {epoch}, step {step} (non-finite terms: "
            f"{bad or 'the weighted sum'}); lower the learning rate (--lr), turn off bf16 "
            "autocast (amp=False) or check the data for NaNs. The last good epoch is in the "
            "checkpoint.")


def _progress(tc, start, steps, config):
    if not tc.progress:
        return None
    from tqdm.auto import tqdm

    m = config.model
    return tqdm(total=tc.epochs * steps, initial=start * steps, unit="step", mininterval=1.0,
                desc=f"{m.family} c{m.config} {m.method}")


def _finish(model, config, history, best, shape, test_x, val_x, observer, out, device) -> Result:
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    tc = config.train
    metrics = {"val": evaluate(model, val_x, config, observer, seed=tc.seed + 3)}
    if test_x is not None:
        metrics["test"] = evaluate(model, test_x, config, observer, seed=tc.seed + 4)
    extra = {"n_params": count_parameters(model), "image_shape": list(shape),
             "environment": environment(device)}
    if out is not None:
        atomic_save({"config": config.to_dict(), "image_shape": shape, "model": best["state"]
                     or model.state_dict(), "best_epoch": best["epoch"]}, out / MODEL)
        atomic_write_json({"config": config.to_dict(), "best_epoch": best["epoch"],
                           "metrics": metrics, "history": history, **extra}, out / METRICS)
    return Result(model.eval(), config, history, best["epoch"], metrics, out, extra)


def _load_finished(out: Path, config: RunConfig, device) -> Result:
    saved = json.loads((out / METRICS).read_text())
    diff = RunConfig.from_dict(saved["config"]).differences(config)
    if diff:
        raise ValueError(f"{out} holds a finished, different run ({'; '.join(diff)}); use "
                         "another output folder or resume=False / --no-resume")
    model, _ = load_model(out / MODEL, device)
    extra = {k: saved[k] for k in ("n_params", "image_shape", "environment") if k in saved}
    return Result(model, config, saved["history"], saved["best_epoch"], saved["metrics"], out,
                  extra)
