"""Command line: ``python -m mtvae <command> ...`` (or the ``mtvae`` script).

    python -m mtvae data --dataset mnist                      # download / decode / check
    python -m mtvae train --dataset mnist-sample --model vq --config 1 --method single \\
        --sampler gaussian --exponent 40 --epochs 5 --out runs/vq1-single
    python -m mtvae prior --vq-checkpoint runs/vq1-single --epochs 20 --sample 64
    python -m mtvae crossval --dataset mnist --rows all --results results   # Table 4.1 grid
    python -m mtvae table --dataset mnist --results results                 # beside the thesis
    python -m mtvae claims --dataset mnist --results results                # the thesis's claims

Every parser is here: :mod:`.commands` (data, train, prior, reproduce), :mod:`.crossval`
(crossval, collect, table, claims); :mod:`.options` builds the options that set a config field
from the field itself, so its default and help are written once (mtvae.config.option).
"""

from __future__ import annotations

import argparse
import sys

from .commands import add_data, add_prior, add_reproduce, add_train, train_config
from .crossval import add_claims, add_collect, add_crossval, add_table

__all__ = ["main", "build_parser", "train_config"]

_COMMANDS = [add_data, add_train, add_prior, add_crossval, add_collect, add_table, add_claims,
             add_reproduce]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtvae", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..logs import show

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
