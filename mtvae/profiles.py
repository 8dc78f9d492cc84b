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

A notebook does ``P = get_profile(PROFILE, DATASET, epochs=EPOCHS, ...)`` and then
``P.train(RESULTS_DIR, "vq", "single", ...)``: runs land in one folder per profile, dataset and
data settings, and a finished run is loaded instead of retrained, so later notebooks reuse the
baselines of earlier ones.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

logger = logging.getLogger("mtvae")

__all__ = ["PROFILES", "Profile", "Budget", "PriorSettings", "CrossvalSettings", "get_profile",
           "THESIS_EXPONENTS"]

FAMILIES = ("gaussian", "vq")
# The thesis's exponent sweep (docs/thesis_code.md#sweep): single decoder, Gaussian
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
class PriorSettings:
    """Notebook 04's Gated PixelCNN prior over a VQ-VAE's codes (:mod:`mtvae.prior`). The names
    are :class:`~mtvae.prior.PriorConfig` / ``PixelCNNConfig`` fields, passed through as is."""

    n_layers: int = 15  # "a stack of fifteen layers" (thesis 2.5.1; van den Oord et al. 2016)
    channels: int = 64  # PixelCNNConfig's default for 49-256 codes per map
    epochs: int = 20  # PriorConfig's default; the epoch with the best validation NLL is kept
    limit: int | None = None  # codes of a seeded subset of N training images; None: the VQ run's

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
    budget: Budget = Budget(None, 100)  # per fold: k-fold over `limit` images, `epochs` each
    train: bool = False  # train the folds missing from the store; False: only read the store


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
    prior: PriorSettings = PriorSettings()
    crossval: CrossvalSettings = CrossvalSettings()
    # Keep checkpoint.pt of finished runs (needed only to continue with more epochs; for the
    # Gaussian multidecoder it is ~350 MB, mostly AdamW state of the dense m layer).
    keep_checkpoints: bool = True
    seed: int = 0
    device: str = "auto"
    # Every number a notebook sets beside the thesis's comes from the thesis code's protocol
    # (mtvae.protocol); "mtvae" trains with our corrected defaults instead.
    protocol: str = "thesis"
    data_root: str | None = None  # data folder (None: $MTVAE_DATA or ./data)

    @property
    def label(self) -> str:
        """One line naming what made a figure (figures/README.md)."""
        return self.label_for()

    def label_for(self, *sections: str) -> str:
        """:attr:`label` with the settings of notebook 04 ("prior") or 05 ("crossval") added."""
        _check_sections(sections)
        budgets = "; ".join(f"{_NAMES[f]} {b}" for f, b in self.budgets.items())
        text = (f"{self.name} profile: {self.dataset}, {budgets}, batch {self.batch_size}, "
                f"seed {self.seed}, protocol {self.protocol}")
        if "prior" in sections:
            text += f"; PixelCNN prior {self.prior}"
        if "crossval" in sections:
            text += f"; cross-validation {self.folds} folds over {self.crossval.budget} each"
        return text

    def summary(self, *sections: str) -> str:
        """The settings as aligned lines (stable text: no device, no paths); ``sections`` adds
        the settings of notebook 04 ("prior") or 05 ("crossval")."""
        _check_sections(sections)
        rows = [("profile", self.name), ("dataset", self.dataset), ("protocol", self.protocol)]
        rows += [(f"{_NAMES[f]} training", f"config {self.configs[f]}, {b}")
                 for f, b in self.budgets.items()]
        rows += [("batch size", self.batch_size), ("validation fraction", self.val_fraction),
                 ("single decoder exponent", f"{self.exponent:g}"),
                 ("exponent sweep", ", ".join(f"{_NAMES[k]} config {v}"
                                              for k, v in self.sweep.items())
                  + f" at a = {', '.join(f'{a:g}' for a in self.exponents)}"),
                 ("seed", self.seed)]
        if "prior" in sections:
            rows.append(("PixelCNN prior", self.prior))
        if "crossval" in sections:
            cv = self.crossval
            rows += [("cross-validation", f"{self.folds} folds over {cv.budget}"),
                     ("cross-validated rows", ", ".join(self.crossval_rows())),
                     ("missing folds", "trained" if cv.train else "not trained (read the store)")]
        return "\n".join(f"{k:<24}{v}" for k, v in rows)

    def load_data(self, root: str | os.PathLike | None = None):
        """The profile's dataset as :class:`mtvae.data.ImageData` (decoded once, then cached),
        from ``root``, else the profile's ``data_root``, else $MTVAE_DATA or ./data."""
        from .data import load_dataset

        root = self.data_root if root is None else root
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
                exponent: float | None = None, softadapt: bool = False,
                conditioning: str = "dense") -> Path:
        """``results_dir/<profile>-<dataset>-n<limit>-b<batch>-s<seed>/<run>``, e.g.
        ``quick-mnist-sample-n2000-b32-s0-thesis/vq1-single-gaussian-a60`` (``-spatial`` at the
        end for spatial conditioning, as the grid's rows)."""
        config = self._config(model, config)
        from .images import dataset_dir  # your own images: a file-system-safe folder name

        n = "all" if self.budgets[model].limit is None else self.budgets[model].limit
        group = (f"{self.name}-{dataset_dir(self.dataset)}-n{n}-b{self.batch_size}-s{self.seed}"
                 f"-{self.protocol}")
        parts = [f"{model}{config}", method]
        if method != "baseline":
            parts.append(sampler or ("gaussian" if method == "single" else "exact"))
        if method == "single":
            parts.append(f"a{exponent if exponent is not None else self.exponent:g}")
        if softadapt:
            parts.append("softadapt")
        if conditioning != "dense":
            parts.append(conditioning)
        return Path(results_dir) / group / "-".join(parts)

    def train(self, results_dir: str | os.PathLike | None, model: str, method: str = "baseline",
              *, config: int | None = None, sampler: str | None = None,
              exponent: float | None = None, softadapt: bool = False, data=None,
              conditioning: str = "dense", **options):
        """Train (or load, when finished in ``results_dir``) one run with this profile's
        settings; returns a :class:`mtvae.train.Result`. ``conditioning="spatial"``: m as
        feature maps (mtvae.models.spatial). ``options`` go to :func:`mtvae.make_config`."""
        from .api import train_model

        config = self._config(model, config)
        exponent = self.exponent if exponent is None else exponent
        out = None if results_dir is None else self.run_dir(
            results_dir, model, method, config, sampler, exponent, softadapt, conditioning)
        budget = self.budgets[model]
        settings = dict(epochs=budget.epochs, limit=budget.limit, batch_size=self.batch_size,
                        val_fraction=self.val_fraction, seed=self.seed, device=self.device,
                        # one progress bar per run while it trains (a notebook: tqdm's widget)
                        progress=True, protocol=self.protocol, data_root=self.data_root)
        settings.update(options)
        result = train_model(self.dataset, out=out,
                             data=data if data is not None else self.load_data(), model=model,
                             config=config, method=method, sampler=sampler,
                             # only the single decoder's power law has an exponent
                             **({"exponent": exponent} if method == "single" else {}),
                             softadapt=softadapt, conditioning=conditioning, **settings)
        if out is not None and not self.keep_checkpoints:
            # a finished run is reloaded from model.pt + metrics.json; checkpoint.pt is not needed
            (out / "checkpoint.pt").unlink(missing_ok=True)
        return result

    def train_prior(self, vq, **options):
        """Train (or load, when finished) this profile's PixelCNN prior for a VQ run ``vq`` (a
        :class:`mtvae.train.Result` of :meth:`train`); returns a :class:`mtvae.prior.Prior`.

        It is saved in the run's folder, ``<run>/prior-l<layers>-c<channels>-n<images>-s<seed>``
        (checkpoint every epoch, so it resumes; more epochs continue it). ``options`` go to
        :func:`mtvae.prior.train_prior`.
        """
        from .prior import train_prior

        s = self.prior
        settings = dict(n_layers=s.n_layers, channels=s.channels, epochs=s.epochs, limit=s.limit,
                        seed=self.seed, device=self.device, progress=True)
        settings.update(options)
        if getattr(vq, "out_dir", None) is None:
            return train_prior(vq, None, **settings)
        n = "run" if settings["limit"] is None else settings["limit"]
        out = Path(vq.out_dir) / (f"prior-l{settings['n_layers']}-c{settings['channels']}-n{n}"
                                  f"-s{settings['seed']}")
        # the run folder (not the in-memory model), so the prior records where its VQ-VAE is
        return train_prior(vq.out_dir, out, **settings)

    def crossval_rows(self) -> list[str]:
        """The grid rows (names or patterns) this profile cross-validates."""
        return [r.format(**self.configs) for r in self.crossval.rows]

    def crossval_store(self, results_dir: str | os.PathLike, protocol: str | None = None
                       ) -> Path:
        """The results store of this profile's cross-validation, named by the settings that
        every fold of one store must share: ``results_dir/crossval-<profile>-n<limit>-e<epochs>
        -b<batch>-s<seed>-<protocol>`` (the datasets are folders inside it)."""
        b = self.crossval.budget
        n = "all" if b.limit is None else b.limit
        return Path(results_dir) / (f"crossval-{self.name}-n{n}-e{b.epochs}-b{self.batch_size}"
                                    f"-s{self.seed}-{protocol or self.protocol}")

    def crossval_command(self, store: str | os.PathLike) -> str:
        """The command line that fills ``store`` with this profile's folds (add ``--shard i/n``
        to split it over GPUs or a SLURM array, docs/crossval.md)."""
        b = self.crossval.budget
        args = ["python -m mtvae crossval", f"--dataset {shlex.quote(self.dataset)}",
                "--rows " + " ".join(shlex.quote(r) for r in self.crossval_rows()),
                f"--folds {self.folds}", f"--epochs {b.epochs}", f"--batch-size {self.batch_size}",
                f"--seed {self.seed}", f"--protocol {self.protocol}"]
        if b.limit is not None:
            args.append(f"--limit {b.limit}")
        if self.data_root is not None:
            args.append(f"--data-root {shlex.quote(str(self.data_root))}")
        return " ".join(args + ["--no-progress", f"--results {shlex.quote(str(store))}"])

    def run_crossval(self, results_dir: str | os.PathLike | None = None, *,
                     store: str | os.PathLike | None = None, train: bool | None = None,
                     log=None):
        """Cross-validate this profile's rows and return Table 4.1 of the finished ones
        (:func:`mtvae.report.table`, beside the thesis's numbers).

        Folds already in the store (``store``, default :meth:`crossval_store`) are read, not
        retrained. Where the other protocol's store (:meth:`crossval_store` with it) holds folds
        of these rows, the table shows its means and the change per row beside ours. Missing folds are trained when ``train`` (None: the profile's setting; the
        full profile only reads); otherwise ``log`` names the command that fills the store, and
        None is returned while the store holds no fold of these rows.
        """
        from . import crossval, report

        log = log or logger.info
        if store is None:
            if results_dir is None:
                raise ValueError("pass results_dir (the notebooks' RESULTS_DIR) or store")
            store = self.crossval_store(results_dir)
        rows, b = self.crossval_rows(), self.crossval.budget
        jobs = crossval.plan(self.dataset, rows, self.folds)
        todo = crossval.missing(jobs, store)
        if todo and (self.crossval.train if train is None else train):
            crossval.run_rows(self.dataset, rows, store, folds=self.folds, epochs=b.epochs,
                              limit=b.limit, seed=self.seed, device=self.device,
                              data=self.load_data(), batch_size=self.batch_size, progress=True,
                              protocol=self.protocol, data_root=self.data_root, log=log)
        elif todo:
            log(f"{len(todo)} of {len(jobs)} fold runs are not in {store}. Fill it with\n  "
                f"{self.crossval_command(store)}")
            if len(todo) == len(jobs):
                return None
        other = self.crossval_store(results_dir, "mtvae" if self.protocol == "thesis"
                                    else "thesis") if results_dir is not None else None
        compare = other if other is not None and any(
            j not in crossval.missing(jobs, other) for j in jobs) else None
        return report.table(store, self.dataset, rows, compare=compare)

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
    # Thesis sections 3.4.3 and 4.3; configurations of the thesis figures.
    "full": Profile(name="full", dataset="mnist",
                    budgets={"gaussian": Budget(None, 100), "vq": Budget(None, 100)},
                    batch_size=128, val_fraction=0.5, configs={"gaussian": 2, "vq": 3},
                    exponent=60.0, sweep={"gaussian": 2, "vq": 2}, exponents=THESIS_EXPONENTS,
                    folds=5,
                    # the paper's architecture; more epochs than the 7x7 MNIST default, for the
                    # 8x8 and 16x16 code maps of CIFAR-10 and CelebA (the best epoch is kept)
                    prior=PriorSettings(n_layers=15, channels=64, epochs=30),
                    # all 45 rows x 5 folds x 100 epochs, run beforehand (docs/crossval.md)
                    crossval=CrossvalSettings(rows=("all",), budget=Budget(None, 100),
                                              train=False)),
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


def _check_sections(sections) -> None:
    unknown = set(sections) - {"prior", "crossval"}
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; use 'prior' or 'crossval'")


def _override(budget: Budget, epochs: int | None, limit) -> Budget:
    return Budget(budget.limit if limit == "profile" else limit,
                  budget.epochs if epochs is None else int(epochs))
