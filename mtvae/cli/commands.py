"""``python -m mtvae data``, ``train``, ``prior`` and ``reproduce``.

Options that set a config field are built from the field (:mod:`mtvae.cli.options`): its
default and help are written once, in :class:`~mtvae.config.DataConfig`,
:class:`~mtvae.config.TrainConfig`, :class:`~mtvae.models.ModelConfig`,
:class:`~mtvae.observations.ObservationConfig` and :class:`~mtvae.prior.PriorConfig`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..config import DataConfig, TrainConfig
from ..models import CONDITIONINGS, FAMILIES, METHODS, ModelConfig
from ..observations import COUNT_SAMPLERS, PIXEL_SAMPLERS, ObservationConfig
from ..protocol import PROTOCOLS
from .options import add_field, add_image_arguments, add_protocol, dataset_names, field_values

__all__ = ["add_data", "add_train", "add_prior", "add_reproduce", "train_config"]

log = logging.getLogger("mtvae")
Defaults = argparse.ArgumentDefaultsHelpFormatter

# TrainConfig fields with a train and crossval option of their own (make_config options)
TRAIN_OPTIONS = ("lr", "batch_size", "amp", "compile", "progress")


def add_train(sub) -> None:
    from ..runfiles import add_config_arguments

    p = sub.add_parser("train", help="train one model (thesis sections 3.2-3.4)",
                       formatter_class=Defaults)
    add_field(p, DataConfig, "dataset")
    add_image_arguments(p)
    add_field(p, DataConfig, "root")
    add_field(p, ModelConfig, "family", flag="--model", choices=FAMILIES, help="model family")
    add_config_arguments(p, "train")
    add_field(p, ModelConfig, "method", choices=METHODS, help="baseline (thesis chapter 2), "
              "multidecoder (section 3.2) or single decoder (section 3.3)")
    p.add_argument("--sampler", default=None, choices=PIXEL_SAMPLERS,
                   help="pixel locations (default: exact for multidecoder, gaussian for single)")
    p.add_argument("--count", default=None, choices=COUNT_SAMPLERS,
                   help="pixel count (default: fixed 5%% for multidecoder, power-law for single)")
    add_field(p, ObservationConfig, "exponent", help="power-law exponent a > 0")
    add_field(p, ObservationConfig, "replacement",
              help="draw pixels with replacement like the thesis code (duplicates kept)")
    add_field(p, TrainConfig, "softadapt")
    add_field(p, ModelConfig, "shared_decoder",
              help="VQ multidecoder: one shared conv decoder, as the thesis code")
    add_field(p, ModelConfig, "thesis_baseline_decoder",
              help="VQ baseline: the thesis code's un-mirrored, smaller decoder")
    add_field(p, ModelConfig, "conditioning", choices=CONDITIONINGS,
              help="how m enters a conditioned decoder: the thesis's dense layer, or feature "
              "maps modulating every decoder stage (docs/methods.md)")
    add_protocol(p, TrainConfig)
    for name in ("epochs", "batch_size", "lr"):
        add_field(p, TrainConfig, name)
    for name in ("limit", "fold", "folds"):
        add_field(p, DataConfig, name)
    for name in ("seed", "device", "amp", "compile", "progress"):
        add_field(p, TrainConfig, name)
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
    from ..api import make_config
    from ..images import with_options
    from ..runfiles import given, merge_flags, read_config

    base = read_config(args.config) if isinstance(args.config, str) else None
    names = given(args, getattr(args, "argv", sys.argv[1:])) if base is not None else set()
    dataset = args.dataset
    if base is not None:  # the file's model, method and dataset unless given
        dataset = args.dataset if "dataset" in names else base.data.dataset
        args.model = args.model if "model" in names else base.model.family
        args.method = args.method if "method" in names else base.model.method
        args.config = base.model.config
    # the options given (not their defaults: those are make_config's, or the protocol's)
    options = {**field_values(args, TrainConfig, TRAIN_OPTIONS, changed=True),
               **field_values(args, ModelConfig, ("thesis_baseline_decoder", "conditioning"),
                              changed=True),
               **field_values(args, ObservationConfig, ("replacement",), changed=True)}
    flags = make_config(with_options(dataset, args.size, args.channels, args.crop),
                        model=args.model, config=args.config, method=args.method,
                        sampler=args.sampler, count=args.count, exponent=args.exponent,
                        softadapt=args.softadapt,
                        shared_decoder=True if args.shared_decoder else None,
                        epochs=args.epochs, limit=args.limit, fold=args.fold, folds=args.folds,
                        seed=args.seed, device=args.device, data_root=args.data_root,
                        protocol=args.protocol, tensorboard=args.log == "tensorboard", **options)
    return flags if base is None else merge_flags(base, flags, names - {"config"})


def _cmd_train(args) -> int:
    from ..runfiles import print_config
    from ..train import fit

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


def add_data(sub) -> None:
    p = sub.add_parser("data", help="download (or find) a dataset and decode it once")
    add_field(p, DataConfig, "dataset", nargs="+", help="built-in names, or folder:PATH (your "
              "own images, decoded once into PATH/.mtvae-cache)")
    add_image_arguments(p)
    add_field(p, DataConfig, "root")
    p.add_argument("--offline", action="store_true", help="do not try to download")
    p.set_defaults(func=_cmd_data)


def _cmd_data(args) -> int:
    from ..data import load_dataset

    for name in dataset_names(args):
        d = load_dataset(name, args.data_root, download=not args.offline)
        print(d)
    return 0


# PriorConfig fields with a prior option (defaults and help are the fields', docs/prior.md)
PRIOR_OPTIONS = ("epochs", "batch_size", "lr", "limit", "seed", "device", "amp", "progress")


def add_prior(sub) -> None:
    """``python -m mtvae prior``: train (or resume) a prior, then optionally sample from it."""
    from ..models.pixelcnn import PixelCNNConfig
    from ..prior import PriorConfig

    p = sub.add_parser("prior", help="train a Gated PixelCNN prior on a VQ-VAE's codes and "
                       "sample from it (thesis sections 2.2.2, 2.5.1)", formatter_class=Defaults)
    p.add_argument("--vq-checkpoint", required=True,
                   help="VQ run folder, model.pt or checkpoint.pt")
    p.add_argument("--out", help="prior folder (None: <VQ run folder>/prior)")
    for name in ("epochs", "batch_size", "lr"):
        add_field(p, PriorConfig, name)
    add_field(p, PixelCNNConfig, "n_layers", flag="--layers",
              help="gated layers, mask A first (thesis section 2.5.1)")
    add_field(p, PixelCNNConfig, "channels", help="width of both stacks")
    add_field(p, PriorConfig, "limit")
    add_field(p, DataConfig, "root", help="data folder of the VQ run's dataset (None: the one it "
              "trained from)")
    for name in ("seed", "device", "amp", "progress"):
        add_field(p, PriorConfig, name)
    p.add_argument("--no-resume", action="store_true", help="start over even if --out has a prior")
    p.add_argument("--sample", type=int, default=0, metavar="N",
                   help="draw N images (from the finished prior in --out, else after training) "
                        "into <out>/samples.png and samples.pt")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = argmax")
    p.set_defaults(func=_cmd_prior)


def _cmd_prior(args) -> int:
    import time
    from pathlib import Path

    import torch

    from ..plots import generated_samples
    from ..prior import METRICS, PRIOR, PriorConfig, load_prior, sample_codes, train_prior
    from ..train import resolve_device

    vq_path = Path(args.vq_checkpoint)
    run = vq_path if vq_path.is_dir() else vq_path.parent
    out = Path(args.out) if args.out else run / "prior"
    if args.sample and (out / PRIOR).exists() and not args.no_resume:
        prior = load_prior(out, vq=vq_path, device=resolve_device(args.device))
    else:
        prior = train_prior(vq_path, out, resume=not args.no_resume, n_layers=args.layers,
                            channels=args.channels, data_root=args.data_root,
                            **field_values(args, PriorConfig, PRIOR_OPTIONS))
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


def add_reproduce(sub) -> None:
    from ..profiles import PROFILES

    p = sub.add_parser("reproduce", help="run the notebooks in order with papermill and refresh "
                       "the figures", formatter_class=Defaults)
    p.add_argument("--profile", default="quick", choices=list(PROFILES),
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
    add_field(p, TrainConfig, "seed", help="SEED of the notebooks")
    add_field(p, TrainConfig, "device", help="DEVICE of the notebooks")
    p.add_argument("--protocol", default=None, choices=PROTOCOLS,
                   help="PROTOCOL of the notebooks (default theirs: thesis)")
    p.add_argument("--data-root", default=None, help="DATA_ROOT: where the datasets are")
    p.add_argument("--update-notebooks", action="store_true",
                   help="write the executed notebooks back (text outputs only) for committing")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int:
    from ..reproduce import run_notebooks

    runs = run_notebooks(args.profile, args.output, notebooks=args.notebooks,
                         notebook_dir=args.notebook_dir, figures_dir=args.figures,
                         results_dir=args.results, dataset=args.dataset, epochs=args.epochs,
                         seed=args.seed, device=args.device, protocol=args.protocol,
                         data_root=args.data_root, update_notebooks=args.update_notebooks)
    return 0 if runs and all(r.ok for r in runs) else 1
