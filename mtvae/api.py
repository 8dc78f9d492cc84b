"""One-line entry points for notebooks and scripts (pytorch-generative's ``reproduce()`` style).

    import mtvae
    result = mtvae.train_model("mnist-sample", model="vq", config=1, method="single",
                               sampler="gaussian", exponent=40, epochs=5)
"""

from __future__ import annotations

import os
import warnings

from .config import DataConfig, RunConfig, TrainConfig, checked
from .losses import LossConfig
from .methods import get_method
from .models import ModelConfig
from .observations import ObservationConfig
from .protocol import protocol_options

__all__ = ["make_config", "train_model", "default_observation"]


def default_observation(method: str, sampler: str | None = None, count: str | None = None,
                        exponent: float = ObservationConfig.exponent,
                        replacement: bool = ObservationConfig.replacement,
                        rate: float = ObservationConfig.rate) -> ObservationConfig:
    """The thesis's conditioning for each method when not given: the multidecoder samples a fixed
    5 % of pixels (exact grid unless another sampler is named; section 3.2.1), the single
    decoder a power-law count at Gaussian-distributed locations (section 3.3.1). Declared in
    mtvae/methods.py."""
    spec = get_method(method)
    return ObservationConfig(sampler or spec.sampler, count or spec.count, exponent, rate,
                             replacement)


def make_config(dataset: str = DataConfig.dataset, model: str = ModelConfig.family,
                config: int = ModelConfig.config, method: str = ModelConfig.method,
                sampler: str | None = None, count: str | None = None,
                exponent: float = ObservationConfig.exponent,
                softadapt: bool = TrainConfig.softadapt, shared_decoder: bool | None = None,
                epochs: int = TrainConfig.epochs, limit: int | None = DataConfig.limit,
                seed: int = TrainConfig.seed, device: str = TrainConfig.device,
                fold: int | None = DataConfig.fold, folds: int = DataConfig.folds,
                data_root: str | None = DataConfig.root, protocol: str = TrainConfig.protocol,
                **options) -> RunConfig:
    """A :class:`RunConfig` from flat keyword arguments (the CLI's flags); the defaults are the
    config fields' (:class:`DataConfig`, :class:`TrainConfig`, ...).

    ``protocol="thesis"`` sets the switches that repeat the thesis code's protocol
    (:data:`mtvae.protocol.THESIS_OPTIONS`, plus its VQ decoders); options given here explicitly
    still win. Other fields of DataConfig, TrainConfig, LossConfig, ObservationConfig or ModelConfig can be
    passed by name, e.g. ``lr=3e-4``, ``replacement=True``, ``thesis_baseline_decoder=True``.
    A wrong type (``epochs="2"``) is a ValueError naming the parameter. Settings the method
    ignores (an exponent for a baseline or a fixed pixel count) are not stored, with a warning.
    """
    for name, value in dict(locals()).items():  # the named parameters: types first
        if name != "options":
            checked(name, value, make_config.__annotations__[name])
    sampler, count, exponent = _ignored(method, sampler, count, exponent)
    options = {**protocol_options(protocol, model, method), **options, "protocol": protocol}
    protocol_shared = options.pop("shared_decoder", False)
    shared_decoder = protocol_shared if shared_decoder is None else shared_decoder
    sections = {"data": {}, "train": {}, "loss": {}, "obs": {}, "model": {}}
    owners = [("data", DataConfig), ("train", TrainConfig), ("loss", LossConfig),
              ("obs", ObservationConfig), ("model", ModelConfig)]
    for key, value in options.items():
        for name, cls in owners:
            if key in cls.__dataclass_fields__:
                sections[name][key] = checked(key, value, cls.__dataclass_fields__[key].type)
                break
        else:
            raise ValueError(f"unknown option {key!r}")
    obs_kw = {k: sections["obs"].pop(k) for k in ("replacement", "rate") if k in sections["obs"]}
    return RunConfig(
        data=DataConfig(dataset=dataset, limit=limit, fold=fold, folds=folds, root=data_root,
                        **sections["data"]),
        model=ModelConfig(family=model, config=config, method=method,
                          shared_decoder=shared_decoder, **sections["model"]),
        observation=default_observation(method, sampler, count, exponent, **obs_kw),
        loss=LossConfig(**sections["loss"]),
        train=TrainConfig(epochs=epochs, seed=seed, device=device, softadapt=softadapt,
                          **sections["train"]),
    )


def train_model(dataset: str | None = None, *, out: str | os.PathLike | None = None,
                resume: bool = True, data=None, change_lr: bool = False, **kwargs):
    """Train one model in one call; returns a :class:`mtvae.train.Result`.

    Keyword arguments are those of :func:`make_config`; ``out`` is the run folder (checkpoints,
    ``metrics.json``; an unfinished run there resumes, a finished one is loaded; with
    ``resume=False`` a run there is moved aside first). ``change_lr=True`` resumes it with a new
    ``lr`` (after a divergence). ``data``: an :class:`~mtvae.data.ImageData` already loaded
    (e.g. ``ImageData.from_folder(...)``); ``dataset`` then defaults to its name
    (else to 'mnist-sample').
    """
    from .train import fit

    if dataset is None:
        dataset = data.name if data is not None else DataConfig.dataset
    for name, value in (("resume", resume), ("change_lr", change_lr)):
        checked(name, value, "bool")
    return fit(make_config(dataset, **kwargs), out, data=data, resume=resume,
               change_lr=change_lr)


def _ignored(method: str, sampler, count, exponent):
    """(sampler, count, exponent) without what ``method`` ignores: a baseline draws no pixels,
    a fixed count has no exponent. Ignored values given are warned about and not stored, so the
    same run asked for without them is recognised as the same."""
    default, dropped, spec = ObservationConfig().exponent, [], get_method(method)
    if not spec.conditioned:
        dropped = [f"{k}={v!r}" for k, v in (("sampler", sampler), ("count", count)) if v]
        sampler = count = None
    fixed = (count or spec.count) == "fixed"
    if exponent != default and (not spec.conditioned or fixed):
        dropped.append(f"exponent={exponent!r}")
        exponent = default
    if dropped:
        warnings.warn(f"{', '.join(dropped)} ignored by the {method} (it "
                      f"{'has a fixed count' if spec.conditioned else 'sees no known pixels'}"
                      "); not stored", stacklevel=3)
    return sampler, count, exponent
