"""Estimated wall time of the thesis's Table 4.1 grid from a throughput.py JSON file.

    python benchmarks/grid.py gpu_bench/mnist.json [more.json ...]

The grid per dataset (original_code.md 3.4 and 7.2): 45 cross-validated runs = per model config
1 baseline, 4 single-decoder runs (2 samplers x 2 exponents) and 4 multidecoder runs (2 samplers
x with/without SoftAdapt), each 5 folds x 100 epochs over 4/5 of the training pool, validated
every epoch on half the test pool, then tested once on the held-out fold.

Assumptions, printed with the result: training runs at fit's measured median images/s (the
sampler and SoftAdapt change a step's cost by a few per cent at most); evaluating an image costs
a third of training on it (a forward pass without backward pass or optimizer step); runs go one
after another on one device (benchmarks/multirun.py measures running several at once).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = {"baseline": 1, "single": 4, "multidecoder": 4}  # per model config and dataset
CONFIGS = ("gaussian1", "gaussian2", "vq1", "vq2", "vq3")
# (training images per fold, validation images per epoch, held-out fold images)
POOLS = {"mnist": (48_000, 5_000, 12_000), "cifar10": (40_000, 5_000, 10_000),
         "celeba": (130_216, 9_981, 32_554)}
FOLDS, EPOCHS, EVAL_COST = 5, 100, 1 / 3


def grid_hours(results: list[dict], dataset: str) -> tuple[float, list[str]]:
    """(hours for the measured part of the grid, the (config, method) pairs not measured)."""
    rate = {(r["model"], r["method"]): r["median"]["fit"] for r in results
            if r["dataset"] == dataset}
    train, val, test = POOLS[dataset]
    seconds, missing = 0.0, []
    for config in CONFIGS:
        for method, runs in RUNS.items():
            ips = rate.get((config, method))
            if ips is None:
                missing.append(f"{config} {method}")
                continue
            per_fold = (EPOCHS * (train + EVAL_COST * val) + EVAL_COST * test) / ips
            seconds += runs * FOLDS * per_fold
    return seconds / 3600, missing


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print(__doc__)
        return 2
    for path in paths:
        data = json.loads(Path(path).read_text())
        env = data.get("environment", {})
        device = env.get("device_name", env.get("device", "?"))
        for dataset in sorted({r["dataset"] for r in data["results"]}):
            hours, missing = grid_hours(data["results"], dataset)
            note = f"; not measured: {', '.join(missing)}" if missing else ""
            print(f"{path}: {dataset} Table 4.1 grid (45 runs x 5 folds x 100 epochs) on "
                  f"{device}: {hours:.1f} h one run at a time{note}")
    print(f"assumptions: fit's median images/s; evaluation at {EVAL_COST:.2f} of a training "
          "step's cost per image; runs one after another")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
