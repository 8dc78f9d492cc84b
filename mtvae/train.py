"""Training: fit one run, validate every epoch, keep the best epoch, checkpoint, resume.

The loop is plain PyTorch (thesis section 3.4.3: AdamW, lr 1e-3, batch 128, 100 epochs, best
model by validation loss). Images live on the training device as uint8 and batches are slices of
that tensor; masks are drawn per batch on the device. Nothing per image runs in Python.

The epochs themselves (batch order, checkpoints, resume, the best epoch, Ctrl-C and SIGTERM,
divergence checks, the progress bar) are the loop the PixelCNN prior shares (mtvae/loop.py);
this module supplies what is the VAE's: data splits, model, optimiser, masks and SoftAdapt, one
training step on the method's loss terms (mtvae/methods.py), validation (mtvae/evaluate.py),
and what a checkpoint, model.pt and metrics.json hold.

    result = mtvae.train.fit(RunConfig(...), out_dir="runs/x")   # or mtvae.train_model(...)
    result.model, result.history, result.best_epoch, result.metrics
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
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
    environment,
    load_model,
    read_metrics,
    rng_state,
    set_rng_state,
)
from .config import RunConfig, TrainConfig
from .data import ImageData, dataset_key, load_dataset, make_splits, to_float
from .evaluate import evaluate
from .logs import RunLog
from .loop import Loop, State, autocast, resume_state, run_folder
from .losses import objective, training_terms
from .models import build_model, count_parameters
from .observations import Observer
from .recovery import RunInterrupted, TrainingDivergedError, check_final
from .softadapt import DEFAULT_BETA, SoftAdapt

__all__ = ["fit", "Result", "RunInterrupted", "TrainingDivergedError", "resolve_device",
           "build_optimizer"]


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
    device = resolve_device(config.train.device)
    out = run_folder(out_dir, resume, (CHECKPOINT, MODEL, METRICS))  # before any training
    if out is not None and resume and (out / METRICS).exists() and (out / MODEL).exists():
        finished = _load_finished(out, config, device, change_lr)
        if len(finished.history) >= config.train.epochs:
            return finished  # else: asked for more epochs, continue from the checkpoint
    dc = config.data
    if data is None:
        data = load_dataset(dc.dataset, dc.root, dc.download, dc.celeba_crop)
    elif dataset_key(data.name) != dataset_key(dc.dataset):  # the run records its data
        raise ValueError(f"data is {data.name!r} but the config names {dc.dataset!r}; make the "
                         "config with that dataset (train_model(data=...) does it)")
    config = _clamp_limit(config, len(data.train), data.name)
    tc, dc, mc = config.train, config.data, config.model
    splits = make_splits(data, dc.fold, dc.folds, dc.split_seed, dc.shuffle_folds,
                         dc.val_fraction, dc.limit)
    shape = data.shape
    train_x = data.train[splits.train].to(device)
    val_x = data.test[splits.val].to(device)
    test_x = data.train[splits.test].to(device) if len(splits.test) else None

    # the initial weights, then the batch-order and mask generators: a run's random numbers
    torch.manual_seed(tc.seed)
    model = build_model(mc, shape)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(device)
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)
    if mc.family == "gaussian":
        model.eval_sample_z = tc.eval_sample_z
    optimizer = build_optimizer(model, tc, device)
    observer = Observer(config.observation, shape) if mc.spec.conditioned else None
    softadapt = None
    if tc.softadapt:
        beta = tc.softadapt_beta if tc.softadapt_beta is not None else DEFAULT_BETA[mc.family]
        softadapt = SoftAdapt(list(mc.spec.softadapt), beta, tc.softadapt_window,
                              tc.softadapt_order, tc.softadapt_init)
    gens = {"data": torch.Generator(device=device).manual_seed(tc.seed + 1),
            "mask": torch.Generator(device=device).manual_seed(tc.seed + 2)}
    lr_changes: list[dict] = []

    def restore(ckpt: dict) -> None:  # resuming: the checkpoint's run must be this one
        diff = _differences(RunConfig.from_dict(ckpt["config"]), config, change_lr)
        if diff:
            raise ValueError(f"{out / CHECKPOINT} belongs to a different run ({'; '.join(diff)}); "
                             "use another output folder, or resume=False / --no-resume to "
                             "set it aside and start over" + _lr_hint(diff))
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        for group in optimizer.param_groups:  # the saved state carries the old learning rate
            group["lr"] = tc.lr
        lr_changes.extend(ckpt.get("lr_changes") or [])
        if ckpt["config"]["train"]["lr"] != tc.lr:
            lr_changes.append({"epoch": ckpt["epoch"], "from": ckpt["config"]["train"]["lr"],
                               "to": tc.lr})
        if softadapt is not None:
            softadapt.load_state_dict(ckpt["softadapt"])
        set_rng_state(ckpt["rng"], gens)

    state = resume_state(out, resume, device, restore)
    step_model = torch.compile(model) if tc.compile else model

    def step(indices: torch.Tensor) -> dict[str, torch.Tensor]:
        x = to_float(train_x.index_select(0, indices))
        if tc.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        m = observer(x, gens["mask"]) if observer is not None else None
        with autocast(device, tc.amp):
            outputs = step_model(x, m)
        terms = training_terms(mc.family, mc.method, x, outputs, config.loss)
        loss = objective(terms, config.loss, softadapt.weights if softadapt else None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if softadapt is not None:
            softadapt.record(terms)
        return {"loss": loss, **terms}

    def save() -> dict:
        return {"config": config.to_dict(), "image_shape": shape, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "softadapt": softadapt.state_dict() if softadapt else None,
                "rng": rng_state(gens), "environment": environment(device),
                "pool_size": len(data.train), "lr_changes": lr_changes}

    def validate() -> dict:  # the same masks every epoch (seeded)
        return evaluate(model, val_x, config, observer, seed=tc.seed + 3)

    loop = Loop(model, step, validate, save, n=len(train_x), batch_size=tc.batch_size,
                epochs=tc.epochs, device=device, out=out, drop_last=tc.drop_last,
                generator=gens["data"] if tc.shuffle else None, check_every=tc.check_every,
                label=f"{mc.family} c{mc.config} {mc.method}" if tc.progress else None,
                extra=(lambda: {"softadapt_weights": dict(softadapt.weights)}) if softadapt
                else None, resume=resume, lr=tc.lr)
    runlog = RunLog(out, config, state.history, start=state.epochs)  # config.json, metrics.csv
    loop.callbacks.append(lambda epoch, record: runlog.epoch(record, model, val_x, observer,
                                                             seed=tc.seed + 3))
    if callback is not None:
        loop.callbacks.append(callback)
    try:
        loop.run(state)
    finally:
        runlog.close()
    return _finish(model, config, state, shape, test_x, val_x, observer, out, device,
                   {"pool_size": len(data.train), **({"lr_changes": lr_changes} if lr_changes
                                                      else {})})


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


def _finish(model, config, state: State, shape, test_x, val_x, observer, out, device,
            info: dict | None = None) -> Result:
    """The best epoch's metrics on the validation set and the held-out fold; model.pt and
    metrics.json."""
    state.load_best(model)
    history, best, tc = state.history, state.best, config.train
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
