"""Training speed and size of the thesis's dense conditioning against spatial conditioning.

Interleaved rounds (so machine noise hits both alike), one optimiser step = forward, loss,
backward, fused AdamW, on random images of each dataset's shape (speed does not depend on the
pixel values). Prints parameters and the median images/s per model, and the spatial/dense ratio.

    OMP_NUM_THREADS=2 python benchmarks/conditioning.py --shapes mnist --rounds 3 --steps 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mtvae.api import make_config
from mtvae.losses import objective, training_terms
from mtvae.models import build_model, count_parameters
from mtvae.observations import Observer

SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "celeba": (3, 64, 64)}
CONFIGS = {"mnist": {"gaussian": 1, "vq": 1}, "cifar10": {"gaussian": 2, "vq": 2},
           "celeba": {"gaussian": 2, "vq": 3}}


def setups(shape_name: str, methods, batch: int):
    shape = SHAPES[shape_name]
    for family, config in CONFIGS[shape_name].items():
        for method in methods:
            for cond in ("dense", "spatial"):
                cfg = make_config("mnist-sample", model=family, config=config, method=method,
                                  conditioning=cond)
                model = build_model(cfg.model, shape)
                opt = torch.optim.AdamW(model.parameters(), fused=True)
                yield (shape_name, family, config, method, cond), (
                    cfg, model, opt, Observer(cfg.observation, shape), torch.rand(batch, *shape))


def step(cfg, model, opt, observer, x):
    out = model(x, observer(x))
    loss = objective(training_terms(cfg.model.family, cfg.model.method, x, out, cfg.loss),
                     cfg.loss, None)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", nargs="+", default=["mnist"], choices=sorted(SHAPES))
    ap.add_argument("--methods", nargs="+", default=["single", "multidecoder"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    torch.manual_seed(0)
    runs = dict(s for name in args.shapes for s in setups(name, args.methods, args.batch))
    speed: dict = {k: [] for k in runs}
    for _ in range(args.rounds):
        for key, s in runs.items():
            step(*s)  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(*s)
            speed[key].append(args.steps * args.batch / (time.perf_counter() - t0))
    print("| shape | model | method | conditioning | parameters | images/s | spatial / dense |")
    print("|---|---|---|---|---|---|---|")
    for key, s in runs.items():
        shape, family, config, method, cond = key
        med = statistics.median(speed[key])
        dense = statistics.median(speed[(shape, family, config, method, "dense")])
        print(f"| {shape} | {family} c{config} | {method} | {cond} | "
              f"{count_parameters(s[1]):,} | {med:,.0f} | "
              + (f"{med / dense:.2f}x |" if cond == "spatial" else "- |"))


if __name__ == "__main__":
    main()
