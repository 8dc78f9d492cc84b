"""Training: fit one run, validate every epoch, keep the best epoch, checkpoint, resume.

The loop is plain PyTorch (thesis section 3.4.3: AdamW, lr 1e-3, batch 128, 100 epochs, best
model by validation loss). Images live on the training device as uint8 and batches are slices of
that tensor; masks are drawn per batch on the device. Nothing per image runs in Python.

    result = mtvae.train.fit(RunConfig(...), out_dir="runs/x")   # or mtvae.train_model(...)
    result.model, result.history, result.best_epoch, result.metrics
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import time
import warnings
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
    ensure_writable_dir,
    environment,
    load_checkpoint,
    load_model,
    read_metrics,
    rng_state,
    set_aside,
    set_rng_state,
)
from .config import RunConfig, TrainConfig
from .data import ImageData, dataset_key, load_dataset, make_splits, to_float
from .evaluate import autocast, batches, evaluate
from .logs import RunLog
from .losses import objective, training_terms
from .models import build_model, count_parameters
from .observations import Observer
from .recovery import (
    RunInterrupted,
    Terminated,
    TrainingDivergedError,
    after_divergence,
    catch_sigterm,
    check_final,
    check_validation,
    interrupted,
)
from .softadapt import DEFAULT_BETA, SoftAdapt

__all__ = ["fit", "Result", "RunInterrupted", "TrainingDivergedError", "resolve_device",
           "build_optimizer"]

log = logging.getLogger("mtvae")


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
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            dev = None
        if dev is None or dev.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"unknown device {device!r}; use --device auto, cpu, cuda, cuda:N "
                             "or mps")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for but CUDA is not available; use --device cpu"
                             " or auto")
        if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for but only {torch.cuda.device_count()} "
                             "CUDA device(s) are visible; use --device cuda:0 or auto")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                      and torch.backends.mps.is_available()):
            raise ValueError("device 'mps' asked for but MPS (Apple GPU) is not available here; "
                             "use --device cpu or auto")
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
        callback: Callable[[int, dict], None] | None = None, change_lr: bool = False) -> Result:
    """Train one run; see the module docstring.

    out_dir:    where checkpoint.pt (every epoch, atomic), model.pt and metrics.json go; with
                ``resume=True`` an unfinished run there continues where it stopped and a
                finished one is loaded instead of retrained; ``resume=False`` moves a run that
                is there aside (``<out>.replaced-<time>``) and starts over. None keeps
                everything in memory.
    change_lr:  resume the run in ``out_dir`` with ``config.train.lr`` although it was trained
                with another one (after a divergence); recorded as ``lr_changes``.
    data:       an already loaded :class:`ImageData` (else loaded from ``config.data``).
    init_state: initial model weights (cross-validation starts every fold from the same ones).
    callback:   called as ``callback(epoch, record)`` after each epoch's checkpoint is written.
    """
    tc, dc = config.train, config.data
    device = resolve_device(tc.device)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        ensure_writable_dir(out, "--out")  # before any training, not after the first epoch
        if not resume and (moved := set_aside(out)) is not None:
            log.warning("resume=False / --no-resume: moved the previous run in %s to %s", out,
                        moved)
        if resume and (out / METRICS).exists() and (out / MODEL).exists():
            finished = _load_finished(out, config, device, change_lr)
            if len(finished.history) >= config.train.epochs:
                return finished  # else: asked for more epochs, continue from the checkpoint
    if data is None:
        data = load_dataset(dc.dataset, dc.root, dc.download, dc.celeba_crop)
    elif dataset_key(data.name) != dataset_key(dc.dataset):  # the run records its data
        raise ValueError(f"data is {data.name!r} but the config names {dc.dataset!r}; make the "
                         "config with that dataset (train_model(data=...) does it)")
    config = _clamp_limit(config, len(data.train), data.name)
    tc, dc = config.train, config.data
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
    start, lr_changes = 0, []
    if out is not None and resume and (out / CHECKPOINT).exists():
        ckpt = load_checkpoint(out / CHECKPOINT, map_location=device)
        diff = _differences(RunConfig.from_dict(ckpt["config"]), config, change_lr)
        if diff:
            raise ValueError(f"{out / CHECKPOINT} belongs to a different run ({'; '.join(diff)}); "
                             "use another output folder, or resume=False / --no-resume to "
                             "set it aside and start over" + _lr_hint(diff))
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        for group in optimizer.param_groups:  # the saved state carries the old learning rate
            group["lr"] = tc.lr
        lr_changes = list(ckpt.get("lr_changes") or [])
        if ckpt["config"]["train"]["lr"] != tc.lr:
            lr_changes.append({"epoch": ckpt["epoch"], "from": ckpt["config"]["train"]["lr"],
                               "to": tc.lr})
        if softadapt is not None:
            softadapt.load_state_dict(ckpt["softadapt"])
        history, best, start = ckpt["history"], ckpt["best"], ckpt["epoch"]
        set_rng_state(ckpt["rng"], gens)
        log.info("%s: resuming from epoch %d of %d", out, start, tc.epochs)

    step_model = torch.compile(model) if tc.compile else model
    n = len(train_x)
    steps = len(list(batches(n, tc.batch_size, tc.drop_last)))
    if steps == 0:
        raise ValueError(f"no training batches: {n} images with batch_size {tc.batch_size} and "
                         "drop_last; lower the batch size or use more data")
    runlog = RunLog(out, config, history, start=start)  # config.json, metrics.csv, tensorboard
    bar = _progress(tc, start, steps, config)
    restore_sigterm = catch_sigterm()  # SLURM's SIGTERM before preemption: like Ctrl-C
    kept = start  # epochs in the checkpoint on disk
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
                        bar.set_postfix(loss=f"{float(loss.detach()):.4g}", refresh=False)
            seconds = time.perf_counter() - t0
            record = {"epoch": epoch}
            record.update({f"train_{k}": float(v) / n for k, v in sums.items()})
            val = evaluate(model, val_x, config, observer, seed=tc.seed + 3)
            check_validation(val, epoch)  # a NaN never becomes a result (or the best epoch)
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
                             "environment": environment(device), "pool_size": len(data.train),
                             "lr_changes": lr_changes}, out / CHECKPOINT)
                kept = epoch + 1
            runlog.epoch(record, model, val_x, observer, seed=tc.seed + 3)
            if callback is not None:
                callback(epoch, record)
    except TrainingDivergedError as err:
        raise TrainingDivergedError(f"{err} {after_divergence(out, kept, tc.lr)}") from None
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Terminated) else signal.SIGINT
        raise RunInterrupted(interrupted(out, kept, resume, signum),
                             out / CHECKPOINT if out is not None and kept else None, kept,
                             signum) from err
    finally:
        restore_sigterm()
        runlog.close()
        if bar is not None:
            bar.close()
    return _finish(model, config, history, best, shape, test_x, val_x, observer, out, device,
                   {"pool_size": len(data.train), **({"lr_changes": lr_changes} if lr_changes
                                                      else {})})


def _check_finite(loss, terms, epoch, step):
    if not torch.isfinite(loss):
        bad = [k for k, v in terms.items() if not torch.isfinite(v)]
        raise TrainingDivergedError(
            f"the loss became {float(loss.detach())} at epoch {epoch}, step {step} (non-finite terms: "
            f"{bad or 'the weighted sum'}); lower the learning rate (--lr), turn off bf16 "
            "autocast (amp=False) or check the data for NaNs.")


def _clamp_limit(config: RunConfig, pool: int | None, name: str = "the dataset") -> RunConfig:
    """A ``limit`` above the training pool uses the whole pool: warn, and store what was used,
    so the same command later is recognised as the same run."""
    limit = config.data.limit
    if pool is None or limit is None or limit <= pool:
        return config
    warnings.warn(f"limit {limit} is larger than the {pool}-image training pool of {name}; "
                  f"using all {pool} images (stored as limit={pool})", stacklevel=3)
    return dataclasses.replace(config, data=dataclasses.replace(config.data, limit=pool))


def _differences(stored: RunConfig, config: RunConfig, change_lr: bool) -> list[str]:
    diff = stored.differences(config)
    return [d for d in diff if not d.startswith("train.lr:")] if change_lr else diff


def _lr_hint(diff: list[str]) -> str:
    if any(d.startswith("train.lr:") for d in diff):
        return ("; to continue it with another learning rate on purpose, add --change-lr "
                "(Python: change_lr=True)")
    return ""


def _progress(tc, start, steps, config):
    if not tc.progress:
        return None
    from tqdm.auto import tqdm

    m = config.model
    return tqdm(total=tc.epochs * steps, initial=start * steps, unit="step", mininterval=1.0,
                desc=f"{m.family} c{m.config} {m.method}")


def _finish(model, config, history, best, shape, test_x, val_x, observer, out, device,
            info: dict | None = None) -> Result:
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    tc = config.train
    metrics = {"val": evaluate(model, val_x, config, observer, seed=tc.seed + 3)}
    if test_x is not None:
        metrics["test"] = evaluate(model, test_x, config, observer, seed=tc.seed + 4)
    check_final(metrics, out)
    extra = {"n_params": count_parameters(model), "image_shape": list(shape),
             "environment": environment(device), **(info or {})}
    if out is not None:
        atomic_save({"config": config.to_dict(), "image_shape": shape, "model": best["state"]
                     or model.state_dict(), "best_epoch": best["epoch"]}, out / MODEL)
        atomic_write_json({"config": config.to_dict(), "best_epoch": best["epoch"],
                           "metrics": metrics, "history": history, **extra}, out / METRICS)
    return Result(model.eval(), config, history, best["epoch"], metrics, out, extra)


def _load_finished(out: Path, config: RunConfig, device, change_lr: bool = False) -> Result:
    saved, stored = read_metrics(out / METRICS)
    config = _clamp_limit(config, saved.get("pool_size"))
    diff = _differences(stored, config, change_lr)
    if diff:
        raise ValueError(f"{out} holds a finished, different run ({'; '.join(diff)}); use "
                         "another output folder or resume=False / --no-resume to set it aside"
                         + _lr_hint(diff))
    model, _ = load_model(out / MODEL, device)
    extra = {k: saved[k] for k in ("n_params", "image_shape", "environment", "pool_size",
                                   "lr_changes") if k in saved}
    return Result(model, config, saved["history"], saved["best_epoch"], saved["metrics"], out,
                  extra)
