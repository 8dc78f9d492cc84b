"""Command line: ``python -m mtvae <command> ...`` (or the ``mtvae`` script).

    python -m mtvae data --dataset mnist                      # download / decode / check
    python -m mtvae train --dataset mnist-sample --model vq --config 1 --method single \\
        --sampler gaussian --exponent 40 --epochs 5 --out runs/vq1-single
    python -m mtvae prior --vq-checkpoint runs/vq1-single --epochs 20 --sample 64
    python -m mtvae crossval --dataset mnist --rows all --results results   # Table 4.1 grid
    python -m mtvae table --dataset mnist --results results                 # beside the thesis
    python -m mtvae claims --dataset mnist --results results                # the thesis's claims
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

__all__ = ["main", "build_parser"]

log = logging.getLogger("mtvae")


def _add_train(sub) -> None:
    from .images import add_image_arguments
    from .protocol import add_protocol_argument
    from .runfiles import add_config_arguments

    p = sub.add_parser("train", help="train one model (thesis sections 3.2-3.4)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="mnist-sample",
                   help="mnist | fashion-mnist | cifar10 | celeba | mnist-sample | folder:PATH "
                   "(your own PNG/JPEG images)")
    add_image_arguments(p)
    p.add_argument("--data-root", default=None, help="data folder (default $MTVAE_DATA or ./data)")
    p.add_argument("--model", default="gaussian", choices=["gaussian", "vq"])
    add_config_arguments(p, "train")
    p.add_argument("--method", default="baseline", choices=["baseline", "multidecoder", "single"])
    p.add_argument("--sampler", default=None, choices=["exact", "uniform", "gaussian"],
                   help="pixel locations (default: exact for multidecoder, gaussian for single)")
    p.add_argument("--count", default=None, choices=["fixed", "power-law"],
                   help="pixel count (default: fixed 5%% for multidecoder, power-law for single)")
    p.add_argument("--exponent", type=float, default=40.0, help="power-law exponent a > 0")
    p.add_argument("--replacement", action="store_true",
                   help="draw pixels with replacement like the thesis code (duplicates kept)")
    p.add_argument("--softadapt", action="store_true", help="SoftAdapt loss balancing")
    p.add_argument("--shared-decoder", action="store_true",
                   help="VQ multidecoder: one shared conv decoder, as the thesis code")
    p.add_argument("--thesis-baseline-decoder", action="store_true",
                   help="VQ baseline: the thesis code's un-mirrored, smaller decoder")
    p.add_argument("--conditioning", default="dense", choices=["dense", "spatial"],
                   help="how m enters a conditioned decoder: the thesis's dense layer, or "
                   "feature maps modulating every decoder stage (docs/methods.md)")
    add_protocol_argument(p)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--limit", type=int, default=None, help="train on a seeded subset of N images")
    p.add_argument("--fold", type=int, default=None, help="hold out this fold of --folds")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-resume", action="store_true",
                   help="start over: a run in --out is moved aside to <out>.replaced-<time>")
    p.add_argument("--change-lr", action="store_true",
                   help="resume the run in --out with this --lr although it was trained with "
                   "another (after a divergence); recorded in metrics.json")
    p.add_argument("--out", default=None, help="run folder: checkpoint.pt, model.pt, metrics.json")
    p.set_defaults(func=_cmd_train, _parser=p)


def train_config(args):
    """The RunConfig ``python -m mtvae train`` trains: from the flags, or from ``--config FILE``
    with the flags given on the command line on top (:mod:`mtvae.runfiles`)."""
    from .api import make_config
    from .images import with_options
    from .protocol import amp_option
    from .runfiles import given, merge_flags, read_config

    base = read_config(args.config) if isinstance(args.config, str) else None
    names = given(args, getattr(args, "argv", sys.argv[1:])) if base is not None else set()
    dataset = args.dataset
    if base is not None:  # the file's model, method and dataset unless given
        dataset = args.dataset if "dataset" in names else base.data.dataset
        args.model = args.model if "model" in names else base.model.family
        args.method = args.method if "method" in names else base.model.method
        args.config = base.model.config
    options = dict(batch_size=args.batch_size, lr=args.lr, **amp_option(args),
                   compile=args.compile, progress=not args.no_progress,
                   protocol=args.protocol, tensorboard=args.log == "tensorboard")
    if args.thesis_baseline_decoder:
        options["thesis_baseline_decoder"] = True
    if args.conditioning != "dense":
        options["conditioning"] = args.conditioning
    if args.replacement:
        options["replacement"] = True
    flags = make_config(with_options(dataset, args.size, args.channels, args.crop),
                        model=args.model, config=args.config, method=args.method,
                        sampler=args.sampler, count=args.count, exponent=args.exponent,
                        softadapt=args.softadapt,
                        shared_decoder=True if args.shared_decoder else None,
                        epochs=args.epochs, limit=args.limit, fold=args.fold, folds=args.folds,
                        seed=args.seed, device=args.device, data_root=args.data_root, **options)
    return flags if base is None else merge_flags(base, flags, names - {"config"})


def _cmd_train(args) -> int:
    from .runfiles import print_config
    from .train import fit

    config = train_config(args)
    if args.print_config:
        print_config(config)
        return 0
    result = fit(config, args.out, resume=not args.no_resume, change_lr=args.change_lr)
    summary = {"best_epoch": result.best_epoch, "n_params": result.extra.get("n_params"),
               **{f"{split}_{k}": v for split, ms in result.metrics.items() for k, v in ms.items()}}
    print(json.dumps(summary, indent=2))
    if result.out_dir is not None:
        log.info("wrote %s", result.out_dir / "metrics.json")
    return 0


def _add_data(sub) -> None:
    from .images import add_image_arguments

    p = sub.add_parser("data", help="download (or find) a dataset and decode it once")
    p.add_argument("--dataset", nargs="+", default=["mnist-sample"],
                   help="built-in names, or folder:PATH (your own images, decoded once into "
                   "PATH/.mtvae-cache)")
    add_image_arguments(p)
    p.add_argument("--data-root", default=None)
    p.add_argument("--offline", action="store_true", help="do not try to download")
    p.set_defaults(func=_cmd_data)


def _cmd_data(args) -> int:
    from .data import load_dataset
    from .images import with_options

    for name in args.dataset:
        name = with_options(name, args.size, args.channels, args.crop) if name.lower(
            ).startswith("folder:") else name
        d = load_dataset(name, args.data_root, download=not args.offline)
        print(d)
    return 0


def _add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="run the notebooks in order with papermill and refresh "
                       "the figures", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--profile", default="quick", choices=["quick", "full"],
                   help="quick: bundled MNIST sample on a CPU; full: thesis settings on a GPU")
    p.add_argument("--output", required=True,
                   help="folder for the executed notebooks, their logs and (default) the runs")
    p.add_argument("--notebooks", nargs="+", default=None, metavar="NAME",
                   help="only the notebooks whose names start with these (e.g. 01 03)")
    p.add_argument("--notebook-dir", default=None, help="default: ./notebooks")
    p.add_argument("--figures", default="figures", help="FIGURES_DIR of the notebooks")
    p.add_argument("--results", default=None,
                   help="RESULTS_DIR: finished runs there are loaded (default OUTPUT/results)")
    p.add_argument("--dataset", default=None, help="override the profile's dataset")
    p.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--protocol", default=None, choices=["thesis", "mtvae"],
                   help="PROTOCOL of the notebooks (default theirs: thesis)")
    p.add_argument("--data-root", default=None, help="DATA_ROOT: where the datasets are")
    p.add_argument("--update-notebooks", action="store_true",
                   help="write the executed notebooks back (text outputs only) for committing")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int:
    from .reproduce import run_notebooks

    runs = run_notebooks(args.profile, args.output, notebooks=args.notebooks,
                         notebook_dir=args.notebook_dir, figures_dir=args.figures,
                         results_dir=args.results, dataset=args.dataset, epochs=args.epochs,
                         seed=args.seed, device=args.device, protocol=args.protocol,
                         data_root=args.data_root, update_notebooks=args.update_notebooks)
    return 0 if runs and all(r.ok for r in runs) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtvae", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def _add_prior(sub) -> None:
    """``python -m mtvae prior``: train (or resume) a prior, then optionally sample from it."""
    p = sub.add_parser("prior", help="train a Gated PixelCNN prior on a VQ-VAE's codes and "
                                     "sample from it (thesis sections 2.2.2, 2.5.1)")
    p.add_argument("--vq-checkpoint", required=True, help="VQ run folder, model.pt or checkpoint.pt")
    p.add_argument("--out", help="prior folder (default: <VQ run folder>/prior)")
    p.add_argument("--epochs", type=int, default=20, help="default 20")
    p.add_argument("--batch-size", type=int, default=128, help="default 128")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate, default 1e-3")
    p.add_argument("--layers", type=int, default=15, help="gated layers, mask A first; default 15")
    p.add_argument("--channels", type=int, default=64, help="default 64")
    p.add_argument("--limit", type=int, help="train on a seeded subset of N images")
    p.add_argument("--data-root", default=None,
                   help="data folder of the VQ run's dataset (default: the one it trained from)")
    p.add_argument("--seed", type=int, default=0, help="training and sampling seed, default 0")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out has a prior")
    p.add_argument("--sample", type=int, default=0, metavar="N",
                   help="draw N images (from the finished prior in --out, else after training) "
                        "into <out>/samples.png and samples.pt")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = argmax; default 1")
    p.set_defaults(func=_cmd_prior)


def _cmd_prior(args) -> int:
    import time
    from pathlib import Path

    import torch

    from .plots import generated_samples
    from .prior import METRICS, PRIOR, load_prior, sample_codes, train_prior
    from .train import resolve_device

    vq_path = Path(args.vq_checkpoint)
    out = Path(args.out) if args.out else (vq_path if vq_path.is_dir() else vq_path.parent) / "prior"
    if args.sample and (out / PRIOR).exists() and not args.no_resume:
        prior = load_prior(out, vq=vq_path, device=resolve_device(args.device))
    else:
        prior = train_prior(vq_path, out, resume=not args.no_resume, epochs=args.epochs,
                            batch_size=args.batch_size, lr=args.lr, n_layers=args.layers,
                            channels=args.channels, limit=args.limit, seed=args.seed,
                            device=args.device, amp=not args.no_amp, progress=not args.no_progress,
                            data_root=args.data_root)
        print(json.dumps({"best_epoch": prior.best_epoch, **prior.metrics}, indent=2))
        log.info("wrote %s", out / METRICS)
    if args.sample:
        t0 = time.perf_counter()
        codes = sample_codes(prior, args.sample, temperature=args.temperature, seed=args.seed)
        with torch.no_grad():
            images = prior.vq.decode_codes(codes)
        seconds = time.perf_counter() - t0
        torch.save({"codes": codes.cpu(), "images": images.cpu(), "seed": args.seed,
                    "temperature": args.temperature}, out / "samples.pt")
        generated_samples({f"prior samples, temperature {args.temperature}": images}).savefig(
            out / "samples.png", dpi=120, bbox_inches="tight")
        log.info("sampled %d images in %.2f s; wrote %s", args.sample, seconds,
                 out / "samples.png")
    return 0


def _add_crossval(sub) -> None:
    from .crossval_cli import add_collect_parser, add_crossval_parser
    from .report import add_table_parser

    add_crossval_parser(sub)
    add_collect_parser(sub)
    add_table_parser(sub)


def _add_claims(sub) -> None:
    p = sub.add_parser("claims", help="check the thesis's directional claims (chapters 4-5) "
                       "on a results store, paired per fold")
    p.add_argument("--dataset", default="mnist-sample", help="a dataset the thesis has numbers "
                   "for: mnist (or mnist-sample), cifar10, celeba")
    p.add_argument("--results", default="results", help="the store to check")
    p.add_argument("--compare", default=None, metavar="STORE2",
                   help="a second store (usually the other protocol), shown beside it")
    p.add_argument("--out", default="figures", help="folder for claims_<dataset>.md/.tex/.csv")
    p.set_defaults(func=_cmd_claims)


def _cmd_claims(args) -> int:
    from .claims import claims, export, to_markdown

    df = claims(args.results, args.dataset, compare=args.compare)
    paths = export(df, args.out)
    print(to_markdown(df))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


_COMMANDS = [_add_data, _add_train, _add_prior, _add_crossval, _add_claims, _add_reproduce]


def main(argv: list[str] | None = None) -> int:
    from .logs import show

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # which flags were given (--config FILE: they override it)
    show()  # the library's messages, with timestamps, on stderr
    try:
        return args.func(args)
    # bad input, an unwritable folder, a diverged run: one clear line, no traceback
    except (ValueError, OSError, FloatingPointError) as err:
        print(f"mtvae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM during training (recovery.Terminated)
        print(f"mtvae {args.command}: {_interrupted(err, args.command, argv)}", file=sys.stderr)
        return 128 + int(getattr(err, "signum", 2))  # 130 for SIGINT, 143 for SIGTERM


def _interrupted(err: KeyboardInterrupt, command: str, argv: list[str]) -> str:
    """What was kept, and the command that resumes (the same, without --no-resume)."""
    import shlex

    again = "python -m mtvae " + shlex.join(a for a in argv if a != "--no-resume")
    kept = getattr(err, "checkpoint", None)
    if command == "train" and hasattr(err, "checkpoint"):
        return f"{err}\nresume with: {again}" if kept is not None else str(err)
    if command in ("crossval", "prior"):
        what = ("finished folds are in the results store and an unfinished fold resumes from "
                "its last epoch" if command == "crossval" else "finished epochs are kept")
        return f"interrupted; {what}; resume with: {again}"
    return str(err) or "interrupted"


if __name__ == "__main__":
    sys.exit(main())
