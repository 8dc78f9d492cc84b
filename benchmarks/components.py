"""Micro-benchmarks behind docs/performance.md's implementation choices, on one CPU thread.

    python benchmarks/components.py head         # conditioned head: slices vs dense vs columns
    python benchmarks/components.py optimizer    # AdamW: per-tensor loop vs foreach vs fused
    python benchmarks/components.py step         # one step, ours vs thesis-style, and its parts
    PYTHONPATH=OTHER_CHECKOUT python benchmarks/components.py bare   # whole-step img/s of the
                                                 # mtvae on PYTHONPATH (before/after a change)

Variants are timed in turn, round after round, and reported as the median (and minimum) of
this process's CPU time (``time.process_time``) besides wall time: on a machine shared with
other jobs the CPU time of a single-threaded process is what they cannot inflate.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: this checkout after PYTHONPATH's entries, so
    # a checkout named there (the before/after comparison) is the mtvae imported
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path.insert(1 + len(pythonpath), str(Path(__file__).resolve().parents[1]))

from mtvae.api import make_config  # noqa: E402
from mtvae.data import load_dataset, to_float  # noqa: E402
from mtvae.losses import objective, training_terms  # noqa: E402
from mtvae.models import build_model  # noqa: E402
from mtvae.observations import Observer  # noqa: E402


def compare(variants: dict, repeats: int = 5) -> None:
    for run in variants.values():
        run()  # warm-up
    cpu = {k: [] for k in variants}
    wall = {k: [] for k in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            c, w = time.process_time(), time.perf_counter()
            run()
            cpu[name].append(1000 * (time.process_time() - c))
            wall[name].append(1000 * (time.perf_counter() - w))
    for name in variants:
        print(f"  {name:34s} cpu {statistics.median(cpu[name]):8.1f} ms (min "
              f"{min(cpu[name]):7.1f})   wall {statistics.median(wall[name]):8.1f} ms", flush=True)


def _mnist(n: int = 128) -> torch.Tensor:
    return to_float(load_dataset("mnist-sample").train[:n])


def head() -> None:
    """The MNIST Gaussian head (16 + 1,568 -> 12,544), forward + backward, as m's observed
    columns grow: autograd on slices of one weight (the first version), two dense blocks (the
    current layout), observed columns only."""
    from torch.nn import functional as F

    from mtvae.models import blocks

    torch.manual_seed(0)
    lat, n_m, batch = 16, 1568, 128
    module = blocks.ConditionedHead(lat, n_m, (256, 7, 7))
    z = torch.randn(batch, lat, requires_grad=True)

    w_one = torch.nn.Parameter(torch.cat([module.linear.weight, module.from_m.weight], 1).detach())

    def slices(m):
        out = F.linear(z, w_one[:, :lat], module.linear.bias) + m @ w_one[:, lat:].t()
        return module.norm(torch.relu(out))

    def step(forward, fraction, m):
        def run():
            blocks.SPARSE_COLUMN_FRACTION = fraction
            forward(z, m).sum().backward()
            module.zero_grad(set_to_none=True)
        return run

    for share in (0.02, 0.3, 0.5, 0.7, 1.0):
        m = torch.zeros(batch, n_m)
        cols = torch.randperm(n_m)[: int(share * n_m)]
        m[:, cols] = (torch.rand(batch, len(cols)) < 0.05).float()
        print(f"m's observed columns: {int(m.any(0).sum())} of {n_m}")
        compare({"autograd on slices (before)": step(lambda z, m: slices(m), 0.0, m),
                 "dense (two blocks)": step(module, -1.0, m),
                 "observed columns only": step(module, 2.0, m)})


def optimizer() -> None:
    for family, method in (("gaussian", "single"), ("vq", "baseline")):
        model = build_model(make_config(model=family, method=method).model, (1, 28, 28))
        print(f"{family} {method}: {sum(p.numel() for p in model.parameters()):,} parameters")
        variants = {}
        for name, kw in (("per-tensor loop", {"foreach": False}), ("foreach", {"foreach": True}),
                         ("fused", {"fused": True})):
            params = [p.detach().clone().requires_grad_() for p in model.parameters()]
            for p in params:
                p.grad = torch.randn_like(p)
            variants[name] = torch.optim.AdamW(params, lr=1e-3, **kw).step
        compare(variants)


def step() -> None:
    """One batch of 128: mtvae's step, the thesis's step on a loaded batch, and its parts."""
    for family in ("vq", "gaussian"):
        print(f"{family} config 1, single decoder")
        compare(_step_variants(family))


def _step_variants(family: str) -> dict:
    from benchmarks.thesis_pipeline import (
        ThesisStyleDataset,
        _masked_output,
        thesis_loader,
        thesis_optimizer,
        thesis_step,
    )
    from mtvae.train import build_optimizer

    images = load_dataset("mnist-sample").train[:128]
    x = to_float(images)
    cfg = make_config("mnist", model=family, config=1, method="single")
    dataset = ThesisStyleDataset(images, cfg.observation)
    batch = next(iter(thesis_loader(dataset, 128)))
    models = []
    for _ in range(3):
        torch.manual_seed(0)
        models.append(build_model(cfg.model, (1, 28, 28)))
    ours, thesis, parts = models
    opt = build_optimizer(ours, cfg.train, torch.device("cpu"))
    thesis_opt = thesis_optimizer(thesis)
    observer, gen = Observer(cfg.observation, (1, 28, 28)), torch.Generator().manual_seed(0)

    def our_step():
        out = ours(x, observer(x, gen))
        loss = objective(training_terms(family, "single", x, out), cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def loader():
        for _ in thesis_loader(dataset, 128):
            pass

    return {"mtvae step": our_step,
            "thesis step (batch loaded)": lambda: thesis_step(
                thesis, batch, thesis_opt, family, "single", torch.device("cpu")),
            "forward + logged-only m = 0 pass": lambda: _masked_output(
                parts, parts(x, batch[1]), batch[1]),
            "forward alone": torch.no_grad()(lambda: parts(x, batch[1])),
            "thesis Dataset + DataLoader": loader}


def bare() -> None:
    """Whole-step images/s (CPU time) of the mtvae on PYTHONPATH, for before/after comparisons."""
    x = _mnist(3 * 128)
    for family, method in (("gaussian", "baseline"), ("gaussian", "multidecoder"),
                           ("gaussian", "single"), ("vq", "baseline"), ("vq", "multidecoder"),
                           ("vq", "single")):
        steps = _bare_steps(family, method, x)
        steps(1)
        c = time.process_time()
        steps(3)
        print(f"  {family} c1 {method:12s} {3 * 128 / (time.process_time() - c):7.0f} "
              "img/s (CPU time)", flush=True)


def _bare_steps(family: str, method: str, x: torch.Tensor):
    try:
        from mtvae.train import build_optimizer
        optimizer = build_optimizer
    except ImportError:  # before build_optimizer existed: torch's default AdamW
        def optimizer(model, tc, device):
            return torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    cfg = make_config("mnist", model=family, config=1, method=method)
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 28, 28))
    opt = optimizer(model, cfg.train, torch.device("cpu"))
    observer = Observer(cfg.observation, (1, 28, 28)) if method != "baseline" else None
    gen = torch.Generator().manual_seed(1)

    def steps(n: int) -> None:
        for k in range(n):
            xb = x[(k % 3) * 128:(k % 3 + 1) * 128]
            out = model(xb, observer(xb, gen) if observer else None)
            loss = objective(training_terms(family, method, xb, out, cfg.loss), cfg.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return steps


if __name__ == "__main__":
    parts = {"head": head, "optimizer": optimizer, "step": step, "bare": bare}
    if len(sys.argv) != 2 or sys.argv[1] not in parts:
        sys.exit(f"usage: python benchmarks/components.py {{{'|'.join(parts)}}}")
    torch.set_num_threads(1)
    parts[sys.argv[1]]()
