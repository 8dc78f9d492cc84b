"""Command-line options built from dataclass fields, so that each default is written once, in
the field (:func:`mtvae.config.option`).

``add_field(parser, TrainConfig, "lr")`` adds ``--lr`` with the field's type, default, help
(``metadata["help"]``) and choices; a bool field that is False becomes a switch ``--name``, one
that is True a switch ``--no-name`` (``metadata["flag"]`` renames either). :func:`field_value`
reads a field back from parsed arguments; :func:`command_words` is the inverse of parsing: the
words that give a parser the values asked for (the profiles' printed ``crossval`` command).
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING

__all__ = ["add_field", "field_default", "field_dest", "field_value", "field_values",
           "flag_value", "command_words", "add_protocol", "add_image_arguments"]

_TYPES = {"int": int, "float": float, "str": None}  # argparse gives str without a type


def _field(cls, name: str):
    try:
        return cls.__dataclass_fields__[name]
    except KeyError:
        raise ValueError(f"{cls.__name__} has no field {name!r}") from None


def _kinds(cls, name: str) -> list[str]:
    """The field's annotation as names: ['int', 'None'] for ``int | None``."""
    t = _field(cls, name).type
    text = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    return [k.strip() for k in text.split("|")]


def field_default(cls, name: str):
    f = _field(cls, name)
    return f.default if f.default is not MISSING else f.default_factory()


def _flag(cls, name: str) -> tuple[str, bool]:
    """(option string, negated): ``--name``, ``--no-name`` for a switch that is on by default,
    or the field's ``metadata["flag"]``."""
    negated = _kinds(cls, name) == ["bool"] and field_default(cls, name) is True
    flag = "--" + ("no-" if negated else "") + name.replace("_", "-")
    return _field(cls, name).metadata.get("flag", flag), negated


def field_dest(cls, name: str) -> str:
    """The argparse dest of the field's option (``data_root`` for DataConfig.root)."""
    return _flag(cls, name)[0].lstrip("-").replace("-", "_")


def flag_value(cls, name: str, value):
    """What the field's option holds for the field value ``value`` (a ``--no-`` switch: not)."""
    return not value if _flag(cls, name)[1] else value


def field_value(args: argparse.Namespace, cls, name: str):
    """The value of field ``name`` that the parsed ``args`` give."""
    return flag_value(cls, name, getattr(args, field_dest(cls, name)))


def field_values(args: argparse.Namespace, cls, names, changed: bool = False) -> dict:
    """{name: value} of these fields; ``changed``: only those that differ from the default (so
    that what a protocol sets, e.g. amp, is not overridden by an option that was not given)."""
    values = {name: field_value(args, cls, name) for name in names}
    return {k: v for k, v in values.items() if not changed or v != field_default(cls, k)}


def add_field(parser, cls, name: str, *, flag: str | None = None, **kwargs) -> argparse.Action:
    """Add the option of field ``name`` of dataclass ``cls``; ``kwargs`` go to add_argument
    on top (``help`` for fields without one, ``nargs="+"``: a list of the default)."""
    f, kinds = _field(cls, name), _kinds(cls, name)
    default = field_default(cls, name)
    own, negated = _flag(cls, name)
    text = f.metadata.get("help")
    if kinds == ["bool"]:
        if negated:
            text = f.metadata.get("flag_help") or (text and f"no {text}")
        options = dict(action="store_true", help=text)
    else:
        kind = next(k for k in kinds if k != "None")
        options = dict(default=default, help=text)
        if _TYPES[kind] is not None:
            options["type"] = _TYPES[kind]
        if "choices" in f.metadata:
            options["choices"] = f.metadata["choices"]
        if kwargs.get("nargs") in ("+", "*"):
            options["default"] = [default]
    options.update(kwargs)
    return parser.add_argument(flag or own, **options)


def add_protocol(parser, cls) -> None:
    """``--protocol {thesis,mtvae}`` (field ``protocol`` of ``cls``) and its older alias
    ``--thesis-protocol``."""
    add_field(parser, cls, "protocol")
    parser.add_argument("--thesis-protocol", dest="protocol", action="store_const",
                        const="thesis", help="the same as --protocol thesis")


def add_image_arguments(parser) -> None:
    """``--size``, ``--channels`` and ``--crop`` for ``--dataset folder:PATH``
    (:func:`mtvae.images.with_options`)."""
    parser.add_argument("--size", type=int, default=None,
                        help="folder:PATH datasets: resize to SIZE x SIZE (VQ-VAE: a multiple "
                        "of 4)")
    parser.add_argument("--channels", type=int, default=None, choices=[1, 3],
                        help="folder:PATH datasets: 1 (grey) or 3 (RGB); default: 1 if every "
                        "image is grey")
    parser.add_argument("--crop", action="store_true",
                        help="folder:PATH datasets: centre-crop to a square before resizing")


def dataset_names(args) -> list[str]:
    """``args.dataset`` with the image options of :func:`add_image_arguments` attached to
    every ``folder:PATH`` name (the other names take none)."""
    from ..images import with_options

    return [with_options(d, args.size, args.channels, args.crop) if d.lower().startswith(
        "folder:") else d for d in args.dataset]


def command_words(parser: argparse.ArgumentParser, values: dict) -> list[str]:
    """The option words that make ``parser`` parse to ``values`` ({dest: value}), in the
    parser's order: a switch when True, nothing for None, each item of a list."""
    words, done = [], set()
    for action in parser._actions:
        dest = action.dest
        if dest in done or dest not in values or not action.option_strings:
            continue
        value, flag = values[dest], action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            words += [flag] if value else []
        elif action.nargs == 0:
            continue  # another switch for this dest (--thesis-protocol): the option says it
        elif isinstance(value, (list, tuple)):
            words += [flag, *map(str, value)]
        elif value is not None:
            words += [flag, str(value)]
        done.add(dest)
    if set(values) - done:
        raise ValueError(f"no option of {parser.prog!r} sets {sorted(set(values) - done)}")
    return words
