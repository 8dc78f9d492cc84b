"""Markdown tables and Table 4.1 grid times from throughput.py JSON files (docs/performance.md).

    python benchmarks/report.py run1.json [run2.json ...]

Files measuring the same (dataset, model, method) are merged: their rounds are pooled before
the median, [min-max] and the per-round ratios are taken, so repeated runs on a noisy machine
add up instead of overwriting each other.

The grid per dataset (docs/thesis_code.md#sampler-assignment and
docs/thesis_code.md#crossval-loop): 45 cross-validated runs = per model config
1 baseline, 4 single-decoder runs (2 samplers x 2 exponents) and 4 multidecoder runs (2 samplers
x with/without SoftAdapt), each 5 folds x 100 epochs over 4/5 of the training pool, validated
every epoch on half the test pool, then tested once on the held-out fold. Assumptions, printed
with the result: training runs at fit's median images/s (the sampler and SoftAdapt change a
step's cost by a few per cent at most); evaluating an image costs a third of training on it (a
forward pass without backward pass or optimizer step); runs go one after another on one device
(benchmarks/multirun.py measures running several at once).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

RUNS = {"baseline": 1, "single": 4, "multidecoder": 4}  # per model config and dataset
CONFIGS = ("gaussian1", "gaussian2", "vq1", "vq2", "vq3")
# (training images per fold, validation images per epoch, held-out fold images)
POOLS = {"mnist": (48_000, 5_000, 12_000), "cifar10": (40_000, 5_000, 10_000),
         "celeba": (130_216, 9_981, 32_554)}
FOLDS, EPOCHS, EVAL_COST = 5, 100, 1 / 3
PIPELINES = ("fit", "bare", "thesis")


def merge(runs: list[dict]) -> list[dict]:
    """Pool the rounds of results for the same (dataset, model, method), in first-seen order."""
    pooled: dict[tuple, dict] = {}
    for r in runs:
        key = (r["dataset"], r["model"], r["method"])
        if key not in pooled:
            pooled[key] = {**r, "ips": {k: [] for k in PIPELINES}, "peak_mb": dict(r["peak_mb"])}
        p = pooled[key]
        for k in PIPELINES:
            p["ips"][k] += r["ips"][k]
            p["peak_mb"][k] = max(p["peak_mb"][k], r["peak_mb"][k])
    for p in pooled.values():
        ips = p["ips"]
        p["median"] = {k: statistics.median(v) for k, v in ips.items()}
        p["speedup"] = statistics.median(f / t for f, t in zip(ips["fit"], ips["thesis"]))
        p["overhead"] = 1 - statistics.median(f / b for f, b in zip(ips["fit"], ips["bare"]))
    return list(pooled.values())


def grid_hours(results: list[dict], dataset: str, pipeline: str = "fit"
               ) -> tuple[float, list[str]]:
    """(hours for the measured part of the grid, the (config, method) pairs not measured)."""
    rate = {(r["model"], r["method"]): r["median"][pipeline] for r in results
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


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} [{min(values):,.0f}-{max(values):,.0f}]"


def tables(results: list[dict], sampling: list[dict]) -> str:
    lines = ["| dataset | model | method | params | fit img/s | bare img/s | thesis-style img/s | "
             "fit / thesis | overhead | peak MB fit / bare / thesis |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        mem = " / ".join(f"{r['peak_mb'][k]:,.0f}" for k in PIPELINES)
        lines.append(f"| {r['dataset']} | {r['model']} | {r['method']} | "
                     f"{r['params'] / 1e6:.2f} M | "
                     + " | ".join(_spread(r["ips"][k]) for k in PIPELINES)
                     + f" | {r['speedup']:.2f}x | {100 * r['overhead']:+.1f} % | {mem} |")
    if sampling:
        lines += ["", "| dataset | sampler | mtvae masks/s | thesis per-image masks/s | ratio | "
                      "thesis Dataset + DataLoader img/s |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {s['dataset']} | {s['sampler']} | {s['ours']:,.0f} | {s['thesis']:,.0f} | "
                  f"{s['ours'] / s['thesis']:.1f}x | {s['loader']:,.0f} |" for s in sampling]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print(__doc__)
        return 2
    files = [json.loads(Path(p).read_text()) for p in paths]
    results = merge([r for f in files for r in f["results"]])
    sampling = [s for f in files for s in f.get("sampling", [])]
    env = files[0].get("environment", {})
    print(f"device {env.get('device_name', env.get('device', '?'))}, torch {env.get('torch')}, "
          f"threads {files[0].get('threads')}, files: {', '.join(paths)}\n")
    print(tables(results, sampling) + "\n")
    for dataset in sorted({r["dataset"] for r in results}):
        hours, missing = grid_hours(results, dataset)
        thesis, _ = grid_hours(results, dataset, "thesis")
        note = f"; not measured: {', '.join(missing)}" if missing else ""
        print(f"{dataset} Table 4.1 grid (45 runs x 5 folds x 100 epochs), one run at a time: "
              f"{hours:,.1f} h with fit, {thesis:,.1f} h thesis-style{note}")
    print(f"assumptions: fit's median images/s; evaluation at {EVAL_COST:.2f} of a training "
          "step's cost per image; runs one after another")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
