"""Runs from files: ``--config run.json`` (a RunConfig as JSON, e.g. a run folder's
``config.json`` or what ``--print-config`` wrote) on ``train`` and ``crossval``; flags given on
the command line override it.

    python -m mtvae train --model vq --method single --epochs 5 --print-config > run.json
    python -m mtvae train --config run.json --epochs 20 --out runs/x     # run.json, 20 epochs
    python -m mtvae crossval --config run.json --rows 'vq1-*' --results results

``train`` takes the whole RunConfig. ``crossval`` takes what its rows share: the dataset, the
data, training and loss settings and the pixel draws' ``replacement``/``rate`` (model, method and
the rest of the observation come from each grid row).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from .config import DataConfig, RunConfig, TrainConfig
from .losses import LossConfig

__all__ = ["config_arg", "given", "read_config", "merge_flags", "crossval_defaults",
           "crossval_args", "add_config_arguments", "print_config"]

SECTIONS = {"data": DataConfig, "train": TrainConfig, "loss": LossConfig}


def add_config_arguments(p, command: str) -> None:
    """``--config`` (train: a thesis configuration number or a file; crossval: a file),
    ``--print-config`` and ``--log``."""
    if command == "train":
        p.add_argument("--config", type=config_arg, default=1,
                       help="thesis configuration: Gaussian 1-2, VQ 1-3; or a RunConfig JSON "
                       "file (e.g. a run's config.json, or --print-config's output): the flags "
                       "given override it")
    else:
        p.add_argument("--config", type=file_arg, default=None, metavar="RUN.json",
                       help="a RunConfig JSON file (a run's config.json, --print-config's "
                       "output): its dataset, data, training and loss settings; the flags "
                       "given override it, the rows set model, method and pixel draws")
    p.add_argument("--print-config", action="store_true",
                   help="print the RunConfig this command would train (JSON) and exit"
                   + ("" if command == "train" else "; crossval: its first job's"))
    p.add_argument("--log", default="csv", choices=["csv", "tensorboard"],
                   help="metrics.csv is always written to each run folder; tensorboard also "
                   "writes <run>/tensorboard (needs the tensorboard package)")


def file_arg(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no RunConfig file {text!r}")
    return text


def config_arg(text: str):
    """``--config``: a thesis configuration number, or a RunConfig JSON file."""
    if text.strip().isdigit():
        return int(text)
    if not text.endswith(".json") and not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is neither a configuration number (Gaussian "
                                         "1-2, VQ 1-3) nor a RunConfig .json file")
    return text


def given(args: argparse.Namespace, argv: list[str]) -> set[str]:
    """The options (dests) that ``argv`` gave explicitly, defaults aside."""
    parser = getattr(args, "_parser", None)
    if parser is None:
        return set()
    saved = [(a, a.default) for a in parser._actions]
    defaults, parser._defaults = parser._defaults, {}
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        rest = argv[argv.index(args.command) + 1:] if args.command in argv else argv
        found, _ = parser.parse_known_args(rest)
    finally:
        for action, default in saved:
            action.default = default
        parser._defaults = defaults
    return set(vars(found))


def read_config(path) -> RunConfig:
    """A RunConfig from JSON: a file written by ``--print-config``, a run folder's
    ``config.json``, or a ``metrics.json`` / fold result (their ``config`` entry)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--config {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--config {path} is not JSON ({err})") from None
    if isinstance(raw, dict) and isinstance(raw.get("config"), dict):
        raw = raw["config"]
    if not isinstance(raw, dict) or not set(raw) <= {"data", "model", "observation", "loss",
                                                     "train"}:
        raise ValueError(f"--config {path}: expected a RunConfig (sections data, model, "
                         "observation, loss, train), e.g. from --print-config")
    try:
        return RunConfig.from_dict(raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--config {path}: {err}") from None


# flag (argparse dest) -> the RunConfig fields it sets
TRAIN_FIELDS = {
    "dataset": [("data", "dataset")], "data_root": [("data", "root")],
    "model": [("model", "family")], "config": [("model", "config")],
    "sampler": [("observation", "sampler")], "count": [("observation", "count")],
    "exponent": [("observation", "exponent")], "replacement": [("observation", "replacement")],
    "softadapt": [("train", "softadapt")], "shared_decoder": [("model", "shared_decoder")],
    "thesis_baseline_decoder": [("model", "thesis_baseline_decoder")],
    "conditioning": [("model", "conditioning")], "epochs": [("train", "epochs")],
    "batch_size": [("train", "batch_size")], "lr": [("train", "lr")],
    "limit": [("data", "limit")], "fold": [("data", "fold")], "folds": [("data", "folds")],
    "seed": [("train", "seed")], "device": [("train", "device")], "no_amp": [("train", "amp")],
    "compile": [("train", "compile")], "no_progress": [("train", "progress")],
    "log": [("train", "tensorboard")],
}


def merge_flags(base: RunConfig, flags: RunConfig, names: set[str]) -> RunConfig:
    """``base`` (the file) with the fields of the flags in ``names`` taken from ``flags`` (the
    config the flags alone give). ``--method`` takes that method's observation too;
    ``--protocol`` every switch of the protocol; ``--size``/``--channels``/``--crop`` the
    dataset name."""
    from .protocol import protocol_options

    out, new = base.to_dict(), flags.to_dict()
    chosen = set()
    for name in names:
        chosen.update(TRAIN_FIELDS.get(name, []))
    if names & {"size", "channels", "crop"}:
        chosen.add(("data", "dataset"))
    if "method" in names:
        chosen.add(("model", "method"))
        chosen.update(("observation", f.name) for f in fields(type(base.observation)))
    if "protocol" in names:
        m = flags.model
        chosen.add(("train", "protocol"))
        for option in protocol_options(flags.train.protocol, m.family, m.method):
            chosen.update((s, option) for s in new if option in new[s])
    for section, name in chosen:
        out[section][name] = new[section][name]
    return RunConfig.from_dict(out)


def crossval_defaults(config: RunConfig) -> dict:
    """What a RunConfig file gives ``crossval``: its shared settings (the Settings fields and
    the dataset) and, as ``options``, the other data / train / loss fields (and pixel-draw
    ``replacement``, ``rate``) that differ from what its protocol gives by default."""
    from .api import make_config

    d, t = config.data, config.train
    reference = make_config(d.dataset, protocol=t.protocol).to_dict()
    own = config.to_dict()
    handled = {"dataset", "root", "fold", "folds", "limit", "epochs", "seed", "device",
               "protocol", "softadapt"}
    options = {}
    for section in ("data", "train", "loss"):
        for name, value in own[section].items():
            if name not in handled and value != reference[section][name]:
                options[name] = value
    for name in ("replacement", "rate"):
        if own["observation"][name] != reference["observation"][name]:
            options[name] = own["observation"][name]
    return {"dataset": [d.dataset], "folds": d.folds, "limit": d.limit, "epochs": t.epochs,
            "seed": t.seed, "device": t.device, "data_root": d.root, "protocol": t.protocol,
            "options": options}


# crossval option (a field of the file) -> the flag (argparse dest) that overrides it
_OPTION_FLAGS = {"lr": "lr", "batch_size": "batch_size", "amp": "no_amp", "compile": "compile",
                 "progress": "no_progress", "tensorboard": "log"}


def crossval_args(args: argparse.Namespace) -> argparse.Namespace:
    """``crossval --config FILE``: ``args`` with the file's shared settings wherever no flag
    was given; the file's other options go to ``args.file_options`` (once; idempotent)."""
    if args.config is None or getattr(args, "file_options", None) is not None:
        return args
    values = crossval_defaults(read_config(args.config))
    names = given(args, getattr(args, "argv", []))
    options = values.pop("options")
    for name, value in values.items():
        if name not in names:
            setattr(args, name, value)
    for option, flag in _OPTION_FLAGS.items():
        if option in options and flag in names:
            options.pop(option)
    for option in ("lr", "batch_size"):  # these have flags of their own: show them there
        if option in options:
            setattr(args, option, options.pop(option))
    args.file_options = options
    return args


def print_config(config: RunConfig) -> None:
    print(json.dumps(config.to_dict(), indent=2))
