"""Dense against spatial conditioning, same seeds and epochs: does the decoder use the pixels?

For each seed, family (Gaussian / VQ config 1) and method (single decoder, multidecoder) it
trains the thesis's dense conditioning and mtvae's spatial one (docs/methods.md, "Spatial
conditioning") on MNIST, then measures on held-out test digits (the test split's half that is
not the validation set): parameters, training images/s, the validation metrics at the
method's own pixel counts (thesis 3.2.1 / 3.3.1), and mtvae.known_pixels.known_pixel_curve at
0, 5, ..., 200 known pixels (a VQ-VAE gets a small PixelCNN prior for its draws, shared by the
images of a count: mtvae.known_pixels, ``shared_draws``; a Gaussian VAE's draws are per image).

Resumable: every run, prior and curve is kept under --out and skipped when rerun (a run whose
curve.json exists is not retrained). The default --out, benchmarks/results/known_pixels-DATASET,
keeps the committed curve.json of every finished run (weights and checkpoints there are
git-ignored), so a later sitting continues where the last one stopped. Two processes may share
an --out if they are given different --seeds (a run in progress is not locked). Writes
results.json (every finished run under --out) and prints the markdown tables of docs/methods.md.

    OMP_NUM_THREADS=1 python benchmarks/known_pixels.py --data-root ../shared/datasets \\
        --dataset mnist --seeds 0 1 2
    python benchmarks/known_pixels.py --report-only      # the tables from what has finished
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from mtvae import train_model, train_prior
from mtvae.data import load_dataset, validation_indices
from mtvae.known_pixels import KNOWN_PIXELS, known_pixel_curve
from mtvae.models import count_parameters

CONDITIONINGS = ("dense", "spatial")


def run_one(args, data, held_out, family, method, cond, seed) -> dict:
    folder = Path(args.out) / f"{family}1-{method}-{cond}-s{seed}"
    done = folder / "curve.json"
    if done.exists():
        return json.loads(done.read_text())
    budget = args.gauss if family == "gaussian" else args.vq
    res = train_model(args.dataset, out=folder, data=data, model=family, config=1,
                      method=method, conditioning=cond, seed=seed, epochs=budget[1],
                      limit=budget[0], data_root=args.data_root, device="cpu", progress=False)
    prior = None
    if family == "vq":
        prior = train_prior(res, folder / "prior", data=data, epochs=args.prior_epochs,
                            limit=budget[0], seed=seed, device="cpu", progress=False)
    shared = family == "vq"  # PixelCNN draws per image would take over an hour per run on a CPU
    curve = known_pixel_curve(res.model, held_out, KNOWN_PIXELS, samples=args.samples,
                              prior=prior, seed=seed, shared_draws=shared)
    row = {"family": family, "method": method, "conditioning": cond, "seed": seed,
           "n_params": count_parameters(res.model), "epochs": budget[1], "limit": budget[0],
           "shared_draws": shared,
           "images_per_s": statistics.median(h["images_per_s"] for h in res.history),
           "val": res.metrics["val"], "curve": curve}
    done.write_text(json.dumps(row, indent=1))
    return row


def mean_sd(values) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


METHOD_LABEL = {"single": "single (a = 40, Gaussian locations)",
                "multidecoder": "multidecoder (exact grid)"}
COVERAGE_AT = (0, 5, 20, 50, 200)


def _groups(rows, family):
    for method in ("single", "multidecoder"):
        for cond in CONDITIONINGS:
            rs = [r for r in rows if (r["family"], r["method"], r["conditioning"])
                  == (family, method, cond)]
            if rs:
                yield method, cond, sorted(rs, key=lambda r: r["seed"])


def report(rows: list[dict]) -> None:
    """The markdown tables of docs/methods.md, "Spatial conditioning", one set per family."""
    for family in sorted({r["family"] for r in rows}, reverse=True):  # vq after gaussian
        fam = [r for r in rows if r["family"] == family]
        seeds = sorted({r["seed"] for r in fam})
        print(f"\n### {family} c1, seeds {', '.join(map(str, seeds))}\n")
        print("| method | conditioning | parameters | training img/s (median) | "
              "val recon (m = 0) | val recon, the method's own m |")
        print("|---|---|---|---|---|---|")
        for method, cond, rs in _groups(fam, family):
            print(f"| {METHOD_LABEL[method]} | {cond} | {rs[0]['n_params']:,} | "
                  f"{statistics.median(r['images_per_s'] for r in rs):,.0f} | "
                  f"{mean_sd(r['val']['recon'] for r in rs)} | "
                  f"{mean_sd(r['val'].get('recon_cond', float('nan')) for r in rs)} |")
        for measure, title in (("recon", "Reconstruction error (z from the encoder)"),
                               ("draws_mse", "Error of the draws' mean (z from the prior: "
                                "generation given the pixels)")):
            print(f"\n{title} against the number of known pixels (uniform locations):\n")
            print("| method | conditioning | " + " | ".join(map(str, KNOWN_PIXELS)) + " |")
            print("|---|---|" + "---|" * len(KNOWN_PIXELS))
            for method, cond, rs in _groups(fam, family):
                cells = [mean_sd(r["curve"][i][measure] for r in rs)
                         for i in range(len(KNOWN_PIXELS))]
                print(f"| {method} | {cond} | " + " | ".join(cells) + " |")
        print("\nCoverage of the draws' central 95 % interval (and the draws' mean spread, in "
              "brackets), mean over seeds:\n")
        print("| method | conditioning | " + " | ".join(map(str, COVERAGE_AT)) + " |")
        print("|---|---|" + "---|" * len(COVERAGE_AT))
        for method, cond, rs in _groups(fam, family):
            cells = []
            for k in COVERAGE_AT:
                i = KNOWN_PIXELS.index(k)
                cov = statistics.mean(r["curve"][i]["coverage"] for r in rs)
                spread = statistics.mean(r["curve"][i]["spread"] for r in rs)
                cells.append(f"{cov:.2f} ({spread:.3f})")
            print(f"| {method} | {cond} | " + " | ".join(cells) + " |")
        print("\nPer seed, the targets of issue 12 (reconstruction with k = 5, 10, 20, 50, 100, "
              "200 known pixels):\n")
        print("| method | seed | spatial below dense (k >= 5) | spatial below its own m = 0 "
              "error (k >= 5) | m = 0 error, spatial / dense |")
        print("|---|---|---|---|---|")
        for method in ("single", "multidecoder"):
            for seed in seeds:
                pair = {r["conditioning"]: r for r in fam
                        if (r["method"], r["seed"]) == (method, seed)}
                if len(pair) < 2:
                    continue
                sp, de = pair["spatial"]["curve"], pair["dense"]["curve"]
                n = len(sp) - 1
                below_dense = sum(a["recon"] < b["recon"] for a, b in zip(sp[1:], de[1:]))
                below_own = sum(a["recon"] < sp[0]["recon"] for a in sp[1:])
                print(f"| {method} | {seed} | {below_dense}/{n} | {below_own}/{n} | "
                      f"{sp[0]['recon'] / de[0]['recon']:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--out", default=None,
                    help="default: benchmarks/results/known_pixels-DATASET")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--families", nargs="+", default=["gaussian", "vq"])
    ap.add_argument("--methods", nargs="+", default=["single", "multidecoder"])
    ap.add_argument("--gauss", type=int, nargs=2, default=[8000, 3], metavar=("LIMIT", "EPOCHS"),
                    help="training digits and epochs of the Gaussian runs (default: 8000 3)")
    ap.add_argument("--vq", type=int, nargs=2, default=[20000, 4], metavar=("LIMIT", "EPOCHS"),
                    help="training digits and epochs of the VQ runs (default: 20000 4)")
    ap.add_argument("--prior-epochs", type=int, default=4)
    ap.add_argument("--images", type=int, default=200, help="held-out digits per curve")
    ap.add_argument("--samples", type=int, default=32, help="latent draws per digit")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    args.out = args.out or f"benchmarks/results/known_pixels-{args.dataset}"
    if not args.report_only:
        data = load_dataset(args.dataset, args.data_root)
        val = set(validation_indices(len(data.test)).tolist())
        rest = torch.tensor([i for i in range(len(data.test)) if i not in val][:args.images])
        held_out = data.test[rest]
        for seed in args.seeds:  # seed-major: a partial run already pairs dense with spatial
            for family in args.families:
                for method in args.methods:
                    for cond in CONDITIONINGS:
                        run_one(args, data, held_out, family, method, cond, seed)
                        print(f"done {family} {method} {cond} seed {seed}", flush=True)
    # every finished run under --out, also those of another sitting or of a process given other
    # --seeds (split the seeds, not the runs: a run in progress is not locked against a second)
    rows = [json.loads(p.read_text()) for p in sorted(Path(args.out).glob("*/curve.json"))]
    (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=1))
    report(rows)


if __name__ == "__main__":
    main()
