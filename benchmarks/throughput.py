"""Training throughput: mtvae's trainer against the thesis code's pipeline, per config and method.

    python benchmarks/throughput.py --quick                # MNIST, configs gaussian1 and vq1
    python benchmarks/throughput.py --datasets mnist       # every config x method on MNIST
    python benchmarks/throughput.py --device cuda --json gpu.json

For every dataset shape x model config x method it measures, in interleaved rounds (so a load
change on a shared machine hits all three alike), training images per second of

* fit:    :func:`mtvae.train.fit`'s training epoch (the epoch after a warm-up epoch);
* bare:   the same model step in a bare loop over the same device-resident data;
* thesis: the same model fed and stepped as the thesis code did (``thesis_pipeline.py``);

and prints (as a markdown table) the median with [min-max] over the rounds, fit / thesis (the
speed-up over the thesis pipeline), 1 - fit / bare (the trainer's overhead) and the peak memory
of each (CUDA ``max_memory_allocated``; on a CPU the process's peak resident set). Then the mask
sampling alone: masks per second of mtvae's batched samplers, of the thesis's per-image Python
samplers, and images per second of the thesis's whole Dataset + DataLoader (no model).

MNIST uses the bundled real digits (their zeros make m sparse as in training); CIFAR-10 and
CelebA shapes use seeded random uint8 images, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.report import tables
from benchmarks.thesis_pipeline import (
    ThesisStyleDataset,
    thesis_loader,
    thesis_mask,
    thesis_optimizer,
    thesis_step,
)
from mtvae.api import make_config
from mtvae.checkpoint import environment
from mtvae.data import ImageData, load_dataset, to_float
from mtvae.losses import objective, training_terms
from mtvae.models import build_model
from mtvae.observations import ObservationConfig, Observer
from mtvae.train import build_optimizer, fit, resolve_device

SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "celeba": (3, 64, 64)}
MODELS = {"gaussian1": ("gaussian", 1), "gaussian2": ("gaussian", 2), "vq1": ("vq", 1),
          "vq2": ("vq", 2), "vq3": ("vq", 3)}
METHODS = ("baseline", "multidecoder", "single")
SAMPLERS = {"exact grid": ObservationConfig(),
            "uniform, 5 %": ObservationConfig("uniform"),
            "uniform, power law": ObservationConfig("uniform", "power-law"),
            "gaussian, power law": ObservationConfig("gaussian", "power-law")}


def images_for(dataset: str, n: int, seed: int = 0) -> torch.Tensor:
    """n uint8 images of the dataset's shape: real MNIST digits, else seeded noise."""
    if dataset == "mnist":
        pool = load_dataset("mnist-sample").train
        return pool[torch.arange(n) % len(pool)]
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *SHAPES[dataset]), generator=g, dtype=torch.uint8)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MB (Linux), else NaN."""
    with contextlib.suppress(OSError, IndexError):
        return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0]) / 1024
    return float("nan")


class PeakMemory:
    """Peak memory (MB) inside a ``with`` block: CUDA ``max_memory_allocated``; on a CPU the
    process's peak resident set (Linux: reset through /proc/self/clear_refs), which includes the
    libraries and whatever the allocator kept from earlier measurements."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, float("nan")

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.mb = _status_mb("VmHWM")


def _timed(run, steps: int, batch: int, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    run(steps)
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def bare_runner(config, images: torch.Tensor, device: torch.device):
    """The model step alone: slices of device-resident uint8 data, masks drawn on the device."""
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, tuple(images.shape[1:])).to(device)
    optimizer = build_optimizer(model, config.train, device)
    step_model = torch.compile(model) if config.train.compile else model
    method, family = config.model.method, config.model.family
    observer = Observer(config.observation, tuple(images.shape[1:])) if method != "baseline" \
        else None
    gen = torch.Generator(device=device).manual_seed(1)
    data, bs = images.to(device), config.train.batch_size
    amp = torch.autocast("cuda", torch.bfloat16) if config.train.amp and device.type == "cuda" \
        else contextlib.nullcontext()

    def run(steps: int) -> None:
        for k in range(steps):
            i = (k * bs) % len(data)
            x = to_float(data[i:i + bs])
            m = observer(x, gen) if observer is not None else None
            with amp:
                out = step_model(x, m)
            loss = objective(training_terms(family, method, x, out, config.loss), config.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return run, model


def thesis_runner(config, images: torch.Tensor, device: torch.device, workers: int):
    """The thesis pipeline around the same model; baselines still get an exact-grid m from the
    loader (docs/thesis_code.md#sampler-assignment), which they ignore."""
    torch.manual_seed(config.train.seed)
    np.random.seed(config.train.seed)
    shape, method = tuple(images.shape[1:]), config.model.method
    model = build_model(config.model, shape).to(device)
    optimizer = thesis_optimizer(model)
    obs = config.observation if method != "baseline" else ObservationConfig()
    loader = thesis_loader(ThesisStyleDataset(images, obs, pil=shape[1] <= 32),
                           config.train.batch_size, workers, device)
    batches = iter(loader)

    def run(steps: int) -> None:
        nonlocal batches
        for _ in range(steps):
            batch = next(batches, None)
            if batch is None:  # a new epoch
                batches = iter(loader)
                batch = next(batches)
            thesis_step(model, batch, optimizer, config.model.family, method, device)
    return run, model


def measure(dataset: str, model_key: str, method: str, device: torch.device, steps: int,
            rounds: int, batch: int, workers: int, amp: bool, compile: bool) -> dict:
    """Images/s and peak memory of fit, the bare loop and the thesis pipeline for one model."""
    family, number = MODELS[model_key]
    config = make_config(dataset, model=family, config=number, method=method, epochs=2,
                         device=str(device), progress=False, batch_size=batch, amp=amp,
                         compile=compile)
    images = images_for(dataset, steps * batch)
    data = ImageData(dataset, images, images_for(dataset, 2 * batch, seed=1))
    # The loader's workers run ahead by 2 batches each (prefetch_factor): warm up past that
    # queue, so a slow loader cannot hide behind batches it prepared before the timing began.
    warm = {"bare": 1, "thesis": 1 + 2 * workers}
    thesis_images = images_for(dataset, (warm["thesis"] + steps) * batch)
    makers = {"bare": lambda: bare_runner(config, images, device),
              "thesis": lambda: thesis_runner(config, thesis_images, device, workers)}
    ips = {"fit": [], "bare": [], "thesis": []}
    mem = {k: 0.0 for k in ips}
    for _ in range(rounds):
        with PeakMemory(device) as pm:
            result = fit(config, data=data)
            ips["fit"].append(result.history[-1]["images_per_s"])
            params = result.extra["n_params"]
            del result
        mem["fit"] = max(mem["fit"], pm.mb)
        for name, make in makers.items():
            with PeakMemory(device) as pm:
                run, model = make()
                run(warm[name])  # allocator, cudnn algorithm choice, compile, loader queue
                ips[name].append(_timed(run, steps, batch, device))
                del run, model
            mem[name] = max(mem[name], pm.mb)
    med = {k: statistics.median(v) for k, v in ips.items()}
    return {"dataset": dataset, "model": model_key, "method": method, "params": params,
            "ips": ips, "median": med, "peak_mb": mem,
            "speedup": statistics.median(f / t for f, t in zip(ips["fit"], ips["thesis"])),
            "overhead": 1 - statistics.median(f / b for f, b in zip(ips["fit"], ips["bare"]))}


def sampling(dataset: str, device: torch.device, batch: int, workers: int, reps: int) -> list:
    """Masks/s of the batched samplers and of the thesis's per-image ones, and images/s of the
    thesis's whole Dataset + DataLoader."""
    shape, rows = SHAPES[dataset], []
    # enough batches that the loader's worker start-up (timed out below) is amortised
    images = images_for(dataset, (reps + 4 * workers) * batch)
    x = to_float(images[:batch].to(device))
    x_cpu = to_float(images[:batch])
    for name, obs in SAMPLERS.items():
        observer, gen = Observer(obs, shape), torch.Generator(device=device).manual_seed(0)
        observer(x, gen)
        ours = _timed(lambda n, o=observer, g=gen: [o(x, g) for _ in range(n)], reps, batch,
                      device)

        def per_image(n, obs=obs):
            for _ in range(n):
                ms = []
                for xi in x_cpu:
                    mask = thesis_mask(shape[1], shape[2], obs)
                    ms.append(torch.cat([xi * mask, mask]))
                torch.stack(ms)
        thesis = _timed(per_image, reps, batch, torch.device("cpu"))
        batches = iter(thesis_loader(ThesisStyleDataset(images, obs, pil=shape[1] <= 32),
                                     batch, workers))
        next(batches)  # the workers have started
        t0 = time.perf_counter()
        n = sum(len(b[0]) for b in batches)
        rows.append({"dataset": dataset, "sampler": name, "ours": ours, "thesis": thesis,
                     "loader": n / (time.perf_counter() - t0)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--datasets", default="mnist,cifar10,celeba")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--quick", action="store_true",
                   help="MNIST, gaussian1 and vq1, 2 steps x 3 rounds: 2 minutes on one core")
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=None,
                   help="thesis DataLoader workers (default: 12 as the thesis on CUDA, capped "
                        "at the CPU count; 0 on a CPU, where workers take the model's cores)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's). On a CPU shared with other jobs "
                        "use 1: two threads on two busy cores ran 4-12x slower here")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="fp32 on CUDA too")
    p.add_argument("--compile", action="store_true", help="torch.compile fit's and bare's model")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="let cuDNN time its convolution algorithms (static batch shapes)")
    p.add_argument("--no-sampling", dest="sampling", action="store_false")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args(argv)
    if a.quick:
        a.datasets, a.models, a.steps, a.rounds = "mnist", "gaussian1,vq1", 2, 3
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    device = resolve_device(a.device)
    workers = a.workers if a.workers is not None else (
        min(12, os.cpu_count() or 1) if device.type == "cuda" else 0)
    datasets, models, methods = (s.split(",") for s in (a.datasets, a.models, a.methods))
    for name, chosen, known in (("dataset", datasets, SHAPES), ("model", models, MODELS),
                                ("method", methods, METHODS)):
        bad = [c for c in chosen if c not in known]
        if bad:
            p.error(f"unknown {name}(s) {bad}; choose from {list(known)}")
    env = environment(device)
    print(f"device {device} ({env.get('device_name', 'cpu')}), torch {env['torch']}, "
          f"{torch.get_num_threads()} threads, thesis loader workers {workers}, "
          f"batch {a.batch_size}, {a.steps} steps x {a.rounds} rounds", flush=True)
    t0, results, samples = time.perf_counter(), [], []

    def save() -> None:  # after every measurement, so a run cut short keeps what it measured
        if a.json:
            a.json.write_text(json.dumps({"environment": env, "workers": workers,
                                          "threads": torch.get_num_threads(),
                                          "args": {k: str(v) for k, v in vars(a).items()},
                                          "results": results, "sampling": samples}, indent=1))

    for ds in datasets:
        for mk in models:
            for method in methods:
                r = measure(ds, mk, method, device, a.steps, a.rounds, a.batch_size, workers,
                            a.amp, a.compile)
                results.append(r)
                save()
                print(f"  {ds} {mk} {method}: fit {r['median']['fit']:.0f}, bare "
                      f"{r['median']['bare']:.0f}, thesis {r['median']['thesis']:.0f} img/s",
                      flush=True)
        if a.sampling:
            samples += sampling(ds, device, a.batch_size, workers, reps=5)
            save()
    print("\n" + tables(results, samples))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
