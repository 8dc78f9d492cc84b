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
  (Gaussian 2 and VQ 2, exponents 3-70; docs/thesis_code.md#sweep). Its cross-validation
  (notebook 05) is read from a results store filled beforehand on GPUs, not retrained.

A profile is plain frozen settings; what a notebook does with one is in :mod:`mtvae.workflow`:
``P = get_profile(PROFILE, DATASET, epochs=EPOCHS, ...)``, then
``workflow.train_run(P, RESULTS_DIR, "vq", "single", ...)``. The settings that repeat a config
field take its default from there (:class:`~mtvae.config.TrainConfig` and the others), so the
thesis's numbers are written once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from .config import DataConfig, TrainConfig
from .grid import SWEEP_EXPONENTS
from .models import FAMILIES
from .models.pixelcnn import PixelCNNConfig
from .prior import PriorConfig

__all__ = ["PROFILES", "Profile", "Budget", "PriorSettings", "CrossvalSettings", "get_profile"]


@dataclass(frozen=True)
class Budget:
    """How much one model family trains: a seeded subset of ``limit`` images (None: the whole
    training pool) for ``epochs`` epochs."""

    limit: int | None
    epochs: int

    def __str__(self) -> str:
        n = "all" if self.limit is None else f"{self.limit:,}"
        return f"{n} images x {self.epochs} epochs"


THESIS_BUDGET = Budget(None, TrainConfig.epochs)  # section 3.4.3: the whole pool, 100 epochs


@dataclass(frozen=True)
class PriorSettings:
    """Notebook 04's Gated PixelCNN prior over a VQ-VAE's codes (:mod:`mtvae.prior`). The names
    are :class:`~mtvae.prior.PriorConfig` / ``PixelCNNConfig`` fields, passed through as is, and
    so are the defaults."""

    # "a stack of fifteen layers" (thesis 2.5.1; van den Oord et al. 2016): 15
    n_layers: int = PixelCNNConfig.n_layers
    channels: int = PixelCNNConfig.channels  # 64, for 49-256 codes per map
    epochs: int = PriorConfig.epochs  # the epoch with the best validation NLL is kept
    limit: int | None = PriorConfig.limit  # codes of a seeded subset of N images; None: the run's

    def __str__(self) -> str:
        n = "the VQ run's images" if self.limit is None else f"{self.limit:,} images"
        return f"{self.n_layers} layers, {self.channels} channels, {n} x {self.epochs} epochs"


@dataclass(frozen=True)
class CrossvalSettings:
    """Notebook 05's k-fold cross-validation (thesis section 4.3, Table 4.1; :mod:`mtvae.crossval`).
    The number of folds is :attr:`Profile.folds`."""

    # Grid rows or patterns (mtvae.grid.select_rows); "{vq}" and "{gaussian}" stand for the
    # profile's configurations, so CONFIG = {"vq": 2} cross-validates the vq2 rows.
    rows: tuple = ("all",)
    budget: Budget = THESIS_BUDGET  # per fold: k-fold over `limit` images, `epochs` each
    train: bool = False  # train the folds missing from the store; False: only read the store


@dataclass(frozen=True)
class Profile:
    """Settings shared by all notebooks of one profile. :func:`get_profile` builds one. The
    defaults are the thesis's, from the config fields (batch 128, validation on half the test
    pool, 5 folds, seed 0)."""

    name: str
    dataset: str
    budgets: dict  # model family -> Budget
    batch_size: int = TrainConfig.batch_size
    val_fraction: float = DataConfig.val_fraction  # share of the test pool used for validation
    configs: dict = field(default_factory=dict)  # model family -> thesis configuration number
    exponent: float = 60.0  # single decoder exponent of the thesis curves (Figs. 4.5, 4.6)
    sweep: dict = field(default_factory=dict)  # family -> config for the exponent sweep
    exponents: tuple = SWEEP_EXPONENTS  # the sweep's exponents (docs/thesis_code.md#sweep)
    folds: int = DataConfig.folds  # cross-validation folds (thesis section 4.3)
    prior: PriorSettings = PriorSettings()
    crossval: CrossvalSettings = CrossvalSettings()
    # Keep checkpoint.pt of finished runs (needed only to continue with more epochs; for the
    # Gaussian multidecoder it is ~350 MB, mostly AdamW state of the dense m layer).
    keep_checkpoints: bool = True
    seed: int = TrainConfig.seed
    device: str = TrainConfig.device
    # Every number a notebook sets beside the thesis's comes from the thesis code's protocol
    # (mtvae.protocol); "mtvae" trains with our corrected defaults instead.
    protocol: str = "thesis"
    data_root: str | None = DataConfig.root  # data folder (None: $MTVAE_DATA or ./data)


PROFILES = {
    # Sized for all five notebooks in <= 15 minutes on 2 CPU cores (docs/notebooks.md).
    "quick": Profile(name="quick", dataset="mnist-sample",
                     budgets={"gaussian": Budget(800, 3), "vq": Budget(2000, 5)},
                     batch_size=32, val_fraction=0.25, configs={"gaussian": 1, "vq": 1},
                     exponent=60.0, sweep={"vq": 1}, exponents=(5, 20, 60), folds=2,
                     keep_checkpoints=False,
                     # docs/prior.md: 6 layers x 32 channels train ~10x faster than the default
                     # on a CPU; the whole 8,000-image pool gives the prior 4x the VQ run's codes
                     prior=PriorSettings(n_layers=6, channels=32, epochs=5, limit=8000),
                     # 2 folds of 2,000 images x 5 epochs each, as notebook 02's VQ runs (fewer
                     # steps leave VQ config 1 with a collapsed codebook, docs/prior.md); the
                     # Gaussian VAE's conditioned rows train ~20x slower on a CPU, so VQ only
                     crossval=CrossvalSettings(
                         # multi-uniform beside multi-exact: the multidecoder claims
                         # (mtvae.claims) compare both samplers with the baseline
                         rows=("vq{vq}-baseline", "vq{vq}-multi-exact", "vq{vq}-multi-uniform",
                               "vq{vq}-single-gaussian-a40", "vq{vq}-single-gaussian-a60"),
                         budget=Budget(4000, 5), train=True)),
    # Thesis sections 3.4.3 and 4.3 (batch 128, half the test pool validates, 5 folds: the
    # Profile defaults); configurations of the thesis figures.
    "full": Profile(name="full", dataset="mnist",
                    budgets={"gaussian": THESIS_BUDGET, "vq": THESIS_BUDGET},
                    configs={"gaussian": 2, "vq": 3}, exponent=60.0,
                    sweep={"gaussian": 2, "vq": 2}, exponents=SWEEP_EXPONENTS,
                    # the paper's architecture (PriorSettings' defaults); more epochs than the
                    # 7x7 MNIST default, for the 8x8 and 16x16 code maps of CIFAR-10 and CelebA
                    # (the best epoch is kept)
                    prior=PriorSettings(epochs=30),
                    # all 45 rows x 5 folds x 100 epochs, run beforehand (docs/crossval.md)
                    crossval=CrossvalSettings(rows=("all",), budget=THESIS_BUDGET, train=False)),
}


def get_profile(name: str = "quick", dataset: str | None = None, *, epochs: int | None = None,
                configs: dict | None = None, seed: int | None = None,
                device: str | None = None, limit: int | None | str = "profile",
                protocol: str | None = None, data_root: str | os.PathLike | None = None
                ) -> Profile:
    """The settings of profile ``name`` ("quick" or "full") with the notebook parameters that
    are not None applied on top: ``epochs`` and ``limit`` (None: the whole pool; the default
    "profile" keeps the profile's) apply to every model family and to each cross-validation
    fold; ``limit`` also makes the prior learn the VQ run's own images. The prior's epochs are
    its own (:class:`PriorSettings`). ``protocol`` ("thesis", the default, or "mtvae") and
    ``data_root`` (where the datasets are) are the notebooks' PROTOCOL and DATA_ROOT."""
    from .logs import show

    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    show()  # a notebook shows mtvae's messages (stderr, with timestamps)
    p = PROFILES[name]
    changes: dict = {}
    if dataset is not None:
        from .data import dataset_key

        changes["dataset"] = dataset_key(dataset)
    if epochs is not None and int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if epochs is not None or limit != "profile":
        changes["budgets"] = {
            f: _override(b, epochs, limit) for f, b in p.budgets.items()}
        changes["crossval"] = replace(p.crossval, budget=_override(p.crossval.budget, epochs,
                                                                   limit))
        if limit != "profile":
            changes["prior"] = replace(p.prior, limit=None)
    if configs is not None:
        if not isinstance(configs, dict) or not set(configs) <= set(FAMILIES):
            raise ValueError("CONFIG must be None or a dict such as {'gaussian': 2, 'vq': 3} "
                             f"(thesis section 3.4.2), got {configs!r}")
        changes["configs"] = {**p.configs, **{k: int(v) for k, v in configs.items()}}
    if seed is not None:
        changes["seed"] = int(seed)
    if device is not None:
        changes["device"] = device
    if protocol is not None:
        from .protocol import check_protocol

        changes["protocol"] = check_protocol(protocol)
    if data_root is not None:
        changes["data_root"] = str(data_root)
    return replace(p, **changes)


def _override(budget: Budget, epochs: int | None, limit) -> Budget:
    return Budget(budget.limit if limit == "profile" else limit,
                  budget.epochs if epochs is None else int(epochs))
