"""One run's full description: data, model, conditioning information, loss and training.

Each part is a small dataclass next to the code it configures (``ModelConfig`` in
:mod:`mtvae.models`, ``ObservationConfig`` in :mod:`mtvae.observations`, ``LossConfig`` in
:mod:`mtvae.losses`); this module gathers them and adds the data and training settings.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import MISSING, asdict, dataclass, field, fields

from .losses import LossConfig
from .models import ModelConfig
from .observations import ObservationConfig
from .protocol import PROTOCOLS

__all__ = ["DataConfig", "TrainConfig", "RunConfig", "checked", "check_fields", "option", "like"]

_WORDS = {"int": "an integer", "float": "a number", "bool": "True or False", "str": "a string",
          "None": "None"}


def checked(name: str, value, annotation):
    """``value`` for a parameter annotated ``annotation`` ('int', 'float | None', ...), as the
    plain Python type (numpy numbers become int / float, paths str); ValueError naming the
    parameter when the type is wrong (``epochs="2"``, ``epochs=1.5``, ``config=True``).
    Annotations other than int, float, bool, str and None are not checked."""
    kinds = [k.strip() for k in str(annotation).split("|")]
    if not kinds or any(k not in _WORDS for k in kinds):
        return value
    if value is None and "None" in kinds:
        return None
    is_bool = isinstance(value, bool) or (type(value).__module__ == "numpy"
                                          and type(value).__name__ in ("bool", "bool_"))
    if "bool" in kinds and is_bool:
        return bool(value)
    if "int" in kinds and isinstance(value, numbers.Integral) and not is_bool:
        return int(value)
    if "float" in kinds and isinstance(value, numbers.Real) and not is_bool:
        return float(value)
    if "str" in kinds and isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise ValueError(f"{name} must be {' or '.join(_WORDS[k] for k in kinds)}, got {value!r} "
                     f"({type(value).__name__})")


def option(default, help: str, **meta):
    """A dataclass field with ``default`` and the text of its command-line option: mtvae.cli
    builds the option from the field (name, type, default) and this ``help``. ``meta``: ``flag``
    (the option's name when not ``--field-name``, or ``--no-field-name`` for a field that is
    True), ``flag_help`` (the help of such a ``--no-...`` flag; default "no " + help) and
    ``choices``."""
    return field(default=default, metadata={"help": help, **meta})


def like(cls, name: str, **meta):
    """A field with the default and option text of field ``name`` of dataclass ``cls``
    (``meta`` changes some of it): settings that repeat a config field take its default from
    there, so every default is written once."""
    f = cls.__dataclass_fields__[name]
    default = {"default": f.default} if f.default is not MISSING else {
        "default_factory": f.default_factory}
    return field(**default, metadata={**f.metadata, **meta})


def check_fields(obj) -> None:
    """Check (and convert, see :func:`checked`) every simply typed field of a dataclass."""
    for f in fields(obj):
        setattr(obj, f.name, checked(f.name, getattr(obj, f.name), f.type))


@dataclass
class DataConfig:
    """Which images a run trains on and how they are split (thesis section 3.4.1)."""

    # data.DATASETS, folder:PATH, tensor:NAME (mtvae.images)
    dataset: str = option("mnist-sample", "mnist | fashion-mnist | cifar10 | celeba | "
                          "mnist-sample | folder:PATH (your own PNG/JPEG images)")
    root: str | None = option(None, "data folder (None: $MTVAE_DATA, else ./data)",
                              flag="--data-root")
    download: bool = True  # let torchvision fetch missing files
    celeba_crop: bool = False  # centre-crop CelebA before resizing (the thesis did not)
    limit: int | None = option(None, "train on a seeded subset of N images (quick profile)")
    fold: int | None = option(None, "hold out this fold of --folds (None: the whole pool)")
    folds: int = option(5, "k of the k-fold split (thesis section 4.3: 5)")
    shuffle_folds: bool = True  # False: the thesis's contiguous, unshuffled folds
    val_fraction: float = 0.5  # share of the official test split used for best-epoch selection
    split_seed: int = 0  # seeds folds, the validation half and the limit subset

    def __post_init__(self) -> None:
        from .data import dataset_key

        check_fields(self)
        self.dataset = dataset_key(self.dataset)  # ValueError listing DATASETS if unknown
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be a positive number of images, got {self.limit}")
        if self.fold is not None and not 0 <= self.fold < self.folds:
            raise ValueError(f"fold must be in 0..{self.folds - 1} for folds={self.folds}")


@dataclass
class TrainConfig:
    """Optimisation settings (thesis section 3.4.3 and docs/thesis_code.md#training)."""

    epochs: int = option(100, "training epochs; the best validation epoch is kept (thesis "
                         "section 3.4.3: 100)")
    batch_size: int = option(128, "batch size (thesis section 3.4.3: 128)")
    lr: float = option(1e-3, "AdamW learning rate (thesis section 3.4.3: 1e-3)")
    weight_decay: float = 0.01  # torch's AdamW default, which the thesis code used
    seed: int = option(0, "seeds initial weights, shuffling, masks and reparameterisation noise")
    device: str = option("auto", "auto (cuda, then mps, then cpu) | cpu | cuda | cuda:1 | mps")
    amp: bool = option(True, "bf16 autocast on CUDA (the quantizer stays in fp32); ignored "
                       "elsewhere")
    shuffle: bool = True  # shuffle training batches each epoch (the thesis's CV did not)
    drop_last: bool = False  # drop the last, smaller batch (static shapes for torch.compile)
    eval_batch_size: int = 1000  # evaluation only; does not change any metric
    eval_sample_z: bool = False  # Gaussian: evaluate with a sampled z as the thesis code did
    softadapt: bool = option(False, "SoftAdapt loss balancing (thesis section 4.1)")
    softadapt_beta: float | None = None  # None: 1e-4 Gaussian, 5e-3 VQ (thesis code)
    softadapt_window: int = 100  # steps per weight update (the thesis code: 101)
    softadapt_order: int = 1  # finite-difference order over the window (see mtvae.softadapt)
    # Weights before the first update: 'uniform' 1/n each (they sum to 1 like every later
    # update); 'ones', 1 each, as the thesis code started (torch.ones(3)).
    softadapt_init: str = "uniform"
    # The protocol make_config applied (recorded as a label; mtvae.protocol sets its switches).
    protocol: str = option("mtvae", "thesis: repeat the thesis code's protocol (contiguous folds, "
                           "unshuffled batches, pixel draws with replacement, sampled-z "
                           "evaluation, its VQ decoders, SoftAdapt's window and initial weights, "
                           "fp32); mtvae: our corrected defaults", choices=PROTOCOLS)
    compile: bool = option(False, "torch.compile the model (GPU; costs tens of seconds per shape)")
    channels_last: bool = False  # channels_last memory format (helps 64x64 convs)
    progress: bool = option(True, "progress bar (tqdm)")
    check_every: int = 25  # steps between NaN/inf checks and progress updates (one sync each)
    tensorboard: bool = False  # also log to <out>/tensorboard (mtvae.logs; metrics.csv always)

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("epochs", "batch_size", "eval_batch_size", "check_every", "softadapt_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.softadapt_init not in ("uniform", "ones"):
            raise ValueError(f"softadapt_init must be 'uniform' or 'ones', got "
                             f"{self.softadapt_init!r}")
        from .protocol import check_protocol

        check_protocol(self.protocol)


@dataclass
class RunConfig:
    """Everything that determines one training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        def build(kind, values):
            names = {f.name for f in fields(kind)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"unknown {kind.__name__} field(s): {sorted(unknown)}")
            values = dict(values)
            if kind is ModelConfig and "overrides" in values:
                values["overrides"] = dict(values["overrides"])
            return kind(**values)

        return cls(data=build(DataConfig, d.get("data", {})),
                   model=build(ModelConfig, d.get("model", {})),
                   observation=build(ObservationConfig, d.get("observation", {})),
                   loss=build(LossConfig, d.get("loss", {})),
                   train=build(TrainConfig, d.get("train", {})))

    # Settings that change nothing a run computes; a resumed run may differ in these.
    COSMETIC = {("train", "progress"), ("train", "epochs"), ("train", "device"),
                ("train", "eval_batch_size"), ("train", "check_every"), ("data", "root"),
                ("data", "download"), ("train", "tensorboard")}

    def differences(self, other: RunConfig) -> list[str]:
        """Fields (section.name) whose values differ, cosmetic ones excluded."""
        a, b = self.to_dict(), other.to_dict()
        ignored = set(self.COSMETIC)  # and what the method ignores, whatever was stored:
        if self.model.method == other.model.method and not self.model.spec.conditioned:  # no m
            ignored |= {("observation", name) for name in a["observation"]}
        elif a["observation"]["count"] == b["observation"].get("count") == "fixed":
            ignored.add(("observation", "exponent"))
        out = []
        for section in a:
            for name in a[section]:
                if (section, name) in ignored:
                    continue
                va, vb = a[section][name], b[section].get(name)
                if isinstance(va, (list, tuple)) or isinstance(vb, (list, tuple)):
                    va, vb = list(va or []), list(vb or [])
                if va != vb:
                    out.append(f"{section}.{name}: {va!r} != {vb!r}")
        return out
