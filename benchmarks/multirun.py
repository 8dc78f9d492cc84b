"""Several small trainings at once on one device: does the aggregate throughput rise?

    python benchmarks/multirun.py --device cuda --model vq1 --method single --procs 1,2,4,8

The MNIST models are too small to keep a GPU busy: a VQ-VAE config 1 step is a few hundred
small kernels, so the GPU idles while Python launches them. Independent runs (the folds of one
Table 4.1 row, or different rows) can fill those gaps when they run as separate processes on the
same GPU. For each process count k this starts k processes together (a barrier), each training
:func:`mtvae.train.fit` on its own copy of the data, and reports the sum of their training
images/s (each process's median over the epochs after its first) next to k = 1's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _worker(rank: int, args: dict, barrier, results) -> None:
    import torch

    from benchmarks.throughput import MODELS, images_for
    from mtvae.api import make_config
    from mtvae.data import ImageData
    from mtvae.train import fit

    if args["threads"]:
        torch.set_num_threads(args["threads"])
    family, number = MODELS[args["model"]]
    config = make_config("mnist", model=family, config=number, method=args["method"],
                         epochs=args["epochs"], seed=rank, device=args["device"],
                         progress=False, batch_size=args["batch_size"])
    data = ImageData("mnist", images_for("mnist", args["images"]),
                     images_for("mnist", 2 * args["batch_size"], seed=1))
    barrier.wait()
    try:
        history = fit(config, data=data).history
        results.put(statistics.median(h["images_per_s"] for h in history[1:]))
    except BaseException:
        results.put(float("nan"))  # so the parent does not wait for this process forever
        raise


def run(k: int, args: dict) -> tuple[float, float]:
    """(sum of the k processes' images/s, wall seconds) for k concurrent trainings."""
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    barrier, results = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, args, barrier, results)) for r in range(k)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    rates = [results.get() for _ in procs]
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        raise RuntimeError("a training process failed; see its traceback above")
    return sum(rates), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--model", default="vq1")
    p.add_argument("--method", default="single")
    p.add_argument("--procs", default="1,2,4")
    p.add_argument("--images", type=int, default=6400, help="training images per process")
    p.add_argument("--epochs", type=int, default=3, help="the first is a warm-up")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    a = p.parse_args(argv)
    if a.epochs < 2:
        p.error("--epochs must be at least 2 (the first one is a warm-up)")
    args = {k: getattr(a, k) for k in ("device", "model", "method", "images", "epochs",
                                       "batch_size", "threads")}
    print(f"{a.model} {a.method} on {a.device}, {a.images} images x {a.epochs} epochs per "
          "process\n procs  total img/s  per process  vs 1 proc   wall s", flush=True)
    base = None
    for k in (int(s) for s in a.procs.split(",")):
        total, wall = run(k, args)
        if base is None:  # one process's rate (the first count should be 1)
            base = total / k
        print(f"{k:6d} {total:12.0f} {total / k:12.0f} {total / base:9.2f}x {wall:8.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
