"""Run profiles for the notebooks and ``python -m mtvae reproduce``: one place for the settings.

Two profiles:

* ``quick``: every notebook on the bundled MNIST sample on a 2-core CPU in minutes. Seeded
  subsets of the training pool, a few epochs, batch 32 (twice the optimiser steps of batch 64
  for ~30 % more time per image), the thesis's smallest configurations (Gaussian 1, VQ 1). The
  VQ-VAE trains ~5x faster per image on a CPU (machine_notes.md), so it gets more images and
  epochs. Numbers from it show that the pipeline runs and which way the curves bend, not the
  thesis's values.
* ``full``: the thesis's settings (section 3.4.3: whole training pool, 100 epochs, batch 128,
  AdamW 1e-3; 5 folds in section 4.3) on a GPU, with the configurations of the thesis figures
  (Gaussian 2 for Figs. 4.2 and 4.5, VQ 3 for Figs. 4.4 and 4.6) and the thesis's exponent sweep
  (Gaussian 2 and VQ 2, exponents 3-70; original_code.md section 3.4).

A notebook does ``P = get_profile(PROFILE, DATASET, epochs=EPOCHS, ...)`` and then
``P.train(RESULTS_DIR, "vq", "single", ...)``: runs land in one folder per profile, dataset and
data settings, and a finished run is loaded instead of retrained, so later notebooks reuse the
baselines of earlier ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["PROFILES", "Profile", "get_profile", "THESIS_EXPONENTS"]

FAMILIES = ("gaussian", "vq")
# The thesis's exponent sweep (original_code.md sections 3.4 and 10.1): single decoder, Gaussian
# sampling, Gaussian config 2 and VQ config 2.
THESIS_EXPONENTS = (3, 5, 10, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70)


@dataclass(frozen=True)
class Budget:
    """How much one model family trains: a seeded subset of ``limit`` images (None: the whole
    training pool) for ``epochs`` epochs."""

    limit: int | None
    epochs: int

    def __str__(self) -> str:
        n = "all" if self.limit is None else f"{self.limit:,}"
        return f"{n} images x {self.epochs} epochs"


@dataclass(frozen=True)
class Profile:
    """Settings shared by all notebooks of one profile. :func:`get_profile` builds one."""

    name: str
    dataset: str
    budgets: dict  # model family -> Budget
    batch_size: int
    val_fraction: float  # share of the test pool used for per-epoch validation
    configs: dict = field(default_factory=dict)  # model family -> thesis configuration number
    exponent: float = 60.0  # single decoder exponent of the thesis curves (Figs. 4.5, 4.6)
    sweep: dict = field(default_factory=dict)  # family -> config for the exponent sweep
    exponents: tuple = THESIS_EXPONENTS  # the sweep's exponents
    folds: int = 5  # cross-validation folds (thesis section 4.3)
    # Keep checkpoint.pt of finished runs (needed only to continue with more epochs; for the
    # Gaussian multidecoder it is ~350 MB, mostly AdamW state of the dense m layer).
    keep_checkpoints: bool = True
    seed: int = 0
    device: str = "auto"

    @property
    def label(self) -> str:
        """One line naming what made a figure (figures/README.md)."""
        budgets = "; ".join(f"{_NAMES[f]} {b}" for f, b in self.budgets.items())
        return (f"{self.name} profile: {self.dataset}, {budgets}, batch {self.batch_size}, "
                f"seed {self.seed}")

    def summary(self) -> str:
        """The settings as aligned lines (stable text: no device, no paths)."""
        rows = [("profile", self.name), ("dataset", self.dataset)]
        rows += [(f"{_NAMES[f]} training", f"config {self.configs[f]}, {b}")
                 for f, b in self.budgets.items()]
        rows += [("batch size", self.batch_size), ("validation fraction", self.val_fraction),
                 ("single decoder exponent", f"{self.exponent:g}"),
                 ("exponent sweep", ", ".join(f"{_NAMES[k]} config {v}"
                                              for k, v in self.sweep.items())
                  + f" at a = {', '.join(f'{a:g}' for a in self.exponents)}"),
                 ("seed", self.seed)]
        return "\n".join(f"{k:<24}{v}" for k, v in rows)

    def load_data(self, root: str | os.PathLike | None = None):
        """The profile's dataset as :class:`mtvae.data.ImageData` (decoded once, then cached)."""
        from .data import load_dataset

        key = (self.dataset, str(root))
        if key not in _DATA_CACHE:
            _DATA_CACHE[key] = load_dataset(self.dataset, root)
        return _DATA_CACHE[key]

    def validation_images(self, data=None):
        """The images every run of this profile validates on (uint8, ``(N, C, H, W)``): the
        same seeded share of the test pool that :func:`mtvae.train.fit` uses."""
        from .data import make_splits

        data = data if data is not None else self.load_data()
        return data.test[make_splits(data, val_fraction=self.val_fraction).val]

    def run_dir(self, results_dir: str | os.PathLike, model: str, method: str,
                config: int | None = None, sampler: str | None = None,
                exponent: float | None = None, softadapt: bool = False) -> Path:
        """``results_dir/<profile>-<dataset>-n<limit>-b<batch>-s<seed>/<run>``, e.g.
        ``quick-mnist-sample-n2000-b32-s0/vq1-single-gaussian-a60``."""
        config = self._config(model, config)
        n = "all" if self.budgets[model].limit is None else self.budgets[model].limit
        group = f"{self.name}-{self.dataset}-n{n}-b{self.batch_size}-s{self.seed}"
        parts = [f"{model}{config}", method]
        if method != "baseline":
            parts.append(sampler or ("gaussian" if method == "single" else "exact"))
        if method == "single":
            parts.append(f"a{exponent if exponent is not None else self.exponent:g}")
        if softadapt:
            parts.append("softadapt")
        return Path(results_dir) / group / "-".join(parts)

    def train(self, results_dir: str | os.PathLike | None, model: str, method: str = "baseline",
              *, config: int | None = None, sampler: str | None = None,
              exponent: float | None = None, softadapt: bool = False, data=None, **options):
        """Train (or load, when finished in ``results_dir``) one run with this profile's
        settings; returns a :class:`mtvae.train.Result`. ``options`` go to
        :func:`mtvae.make_config` (e.g. ``shared_decoder=True``)."""
        from .api import train_model

        config = self._config(model, config)
        exponent = self.exponent if exponent is None else exponent
        out = None if results_dir is None else self.run_dir(
            results_dir, model, method, config, sampler, exponent, softadapt)
        budget = self.budgets[model]
        settings = dict(epochs=budget.epochs, limit=budget.limit, batch_size=self.batch_size,
                        val_fraction=self.val_fraction, seed=self.seed, device=self.device,
                        progress=False)
        settings.update(options)
        result = train_model(self.dataset, out=out,
                             data=data if data is not None else self.load_data(), model=model,
                             config=config, method=method, sampler=sampler, exponent=exponent,
                             softadapt=softadapt, **settings)
        if out is not None and not self.keep_checkpoints:
            # a finished run is reloaded from model.pt + metrics.json; checkpoint.pt is not needed
            (out / "checkpoint.pt").unlink(missing_ok=True)
        return result

    def _config(self, model: str, config: int | None) -> int:
        if model not in FAMILIES:
            raise ValueError(f"unknown model family {model!r}; choose one of {FAMILIES}")
        return self.configs[model] if config is None else config


_NAMES = {"gaussian": "Gaussian VAE", "vq": "VQ-VAE"}
_DATA_CACHE: dict = {}

PROFILES = {
    # Sized for all five notebooks in <= 15 minutes on 2 CPU cores (docs/notebooks.md).
    "quick": Profile(name="quick", dataset="mnist-sample",
                     budgets={"gaussian": Budget(800, 3), "vq": Budget(2000, 5)},
                     batch_size=32, val_fraction=0.25, configs={"gaussian": 1, "vq": 1},
                     exponent=60.0, sweep={"vq": 1}, exponents=(5, 20, 60), folds=2,
                     keep_checkpoints=False),
    # Thesis sections 3.4.3 and 4.3; configurations of the thesis figures.
    "full": Profile(name="full", dataset="mnist",
                    budgets={"gaussian": Budget(None, 100), "vq": Budget(None, 100)},
                    batch_size=128, val_fraction=0.5, configs={"gaussian": 2, "vq": 3},
                    exponent=60.0, sweep={"gaussian": 2, "vq": 2}, exponents=THESIS_EXPONENTS,
                    folds=5),
}


def get_profile(name: str = "quick", dataset: str | None = None, *, epochs: int | None = None,
                configs: dict | None = None, seed: int | None = None,
                device: str | None = None, limit: int | None | str = "profile") -> Profile:
    """The settings of profile ``name`` ("quick" or "full") with the notebook parameters that
    are not None applied on top: ``epochs`` and ``limit`` (None: the whole pool; the default
    "profile" keeps the profile's) apply to every model family."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    p = PROFILES[name]
    changes: dict = {}
    if dataset is not None:
        from .data import DATASETS

        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
        changes["dataset"] = dataset
    if epochs is not None and int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if epochs is not None or limit != "profile":
        changes["budgets"] = {
            f: Budget(b.limit if limit == "profile" else limit,
                      b.epochs if epochs is None else int(epochs)) for f, b in p.budgets.items()}
    if configs is not None:
        if not isinstance(configs, dict) or not set(configs) <= set(FAMILIES):
            raise ValueError("CONFIG must be None or a dict such as {'gaussian': 2, 'vq': 3} "
                             f"(thesis section 3.4.2), got {configs!r}")
        changes["configs"] = {**p.configs, **{k: int(v) for k, v in configs.items()}}
    if seed is not None:
        changes["seed"] = int(seed)
    if device is not None:
        changes["device"] = device
    return replace(p, **changes)
