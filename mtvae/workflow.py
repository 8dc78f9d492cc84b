"""What the notebooks do with a profile (:mod:`mtvae.profiles`): load its data, train its runs
and its PixelCNN prior, cross-validate its rows, name the folders and describe the settings.

    from mtvae import workflow
    from mtvae.profiles import get_profile

    P = get_profile("quick")
    data = workflow.load_data(P)                                  # decoded once per process
    vq = workflow.train_run(P, "results", "vq", "single", data=data)
    prior = workflow.train_prior(P, vq)
    table = workflow.run_crossval(P, "results")                   # Table 4.1 of its rows

Runs land in one folder per profile, dataset and data settings (:func:`run_dir`), and a finished
run is loaded instead of retrained, so later notebooks reuse the baselines of earlier ones.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from . import crossval
from .grid import FAMILY_NAMES
from .methods import get_method
from .models import FAMILIES
from .profiles import Profile

__all__ = ["label", "summary", "load_data", "cached_dataset", "validation_images", "run_dir",
           "train_run", "train_prior", "crossval_rows", "crossval_store", "crossval_settings",
           "crossval_command", "run_crossval"]

logger = logging.getLogger("mtvae")
SECTIONS = ("prior", "crossval")  # the settings of notebook 04 and of notebook 05


def label(profile: Profile, *sections: str) -> str:
    """One line naming what made a figure (figures/README.md); ``sections`` add the settings
    of notebook 04 ("prior") or 05 ("crossval")."""
    _check_sections(sections)
    budgets = "; ".join(f"{FAMILY_NAMES[f]} {b}" for f, b in profile.budgets.items())
    text = (f"{profile.name} profile: {profile.dataset}, {budgets}, batch {profile.batch_size}, "
            f"seed {profile.seed}, protocol {profile.protocol}")
    if "prior" in sections:
        text += f"; PixelCNN prior {profile.prior}"
    if "crossval" in sections:
        text += f"; cross-validation {profile.folds} folds over {profile.crossval.budget} each"
    return text


def summary(profile: Profile, *sections: str) -> str:
    """The settings as aligned lines (stable text: no device, no paths); ``sections`` as
    :func:`label`."""
    _check_sections(sections)
    p = profile
    rows = [("profile", p.name), ("dataset", p.dataset), ("protocol", p.protocol)]
    rows += [(f"{FAMILY_NAMES[f]} training", f"config {p.configs[f]}, {b}")
             for f, b in p.budgets.items()]
    sweep = ", ".join(f"{FAMILY_NAMES[k]} config {v}" for k, v in p.sweep.items())
    rows += [("batch size", p.batch_size), ("validation fraction", p.val_fraction),
             ("single decoder exponent", f"{p.exponent:g}"),
             ("exponent sweep", f"{sweep} at a = {', '.join(f'{a:g}' for a in p.exponents)}"),
             ("seed", p.seed)]
    if "prior" in sections:
        rows.append(("PixelCNN prior", p.prior))
    if "crossval" in sections:
        cv = p.crossval
        rows += [("cross-validation", f"{p.folds} folds over {cv.budget}"),
                 ("cross-validated rows", ", ".join(crossval_rows(p))),
                 ("missing folds", "trained" if cv.train else "not trained (read the store)")]
    return "\n".join(f"{k:<24}{v}" for k, v in rows)


def _check_sections(sections) -> None:
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; use 'prior' or 'crossval'")


@functools.cache
def cached_dataset(name: str, root: str | None):
    """:func:`mtvae.data.load_dataset`, once per (dataset, data folder) in this process
    (``cached_dataset.cache_clear()`` lets the images go)."""
    from .data import load_dataset

    return load_dataset(name, root)


def load_data(profile: Profile, root: str | os.PathLike | None = None):
    """The profile's dataset as :class:`mtvae.data.ImageData` (decoded once, then cached),
    from ``root``, else the profile's ``data_root``, else $MTVAE_DATA or ./data."""
    root = profile.data_root if root is None else root
    return cached_dataset(profile.dataset, None if root is None else os.fspath(root))


def validation_images(profile: Profile, data=None):
    """The images every run of this profile validates on (uint8, ``(N, C, H, W)``): the
    same seeded share of the test pool that :func:`mtvae.train.fit` uses."""
    from .data import make_splits

    data = data if data is not None else load_data(profile)
    return data.test[make_splits(data, val_fraction=profile.val_fraction).val]


def _config(profile: Profile, model: str, config: int | None) -> int:
    if model not in FAMILIES:
        raise ValueError(f"unknown model family {model!r}; choose one of {FAMILIES}")
    return profile.configs[model] if config is None else config


def run_dir(profile: Profile, results_dir: str | os.PathLike, model: str, method: str,
            config: int | None = None, sampler: str | None = None,
            exponent: float | None = None, softadapt: bool = False,
            conditioning: str = "dense") -> Path:
    """``results_dir/<profile>-<dataset>-n<limit>-b<batch>-s<seed>-<protocol>/<run>``, e.g.
    ``quick-mnist-sample-n2000-b32-s0-thesis/vq1-single-gaussian-a60`` (``-spatial`` at the
    end for spatial conditioning, as the grid's rows)."""
    from .images import dataset_dir  # your own images: a file-system-safe folder name

    p, config = profile, _config(profile, model, config)
    n = "all" if p.budgets[model].limit is None else p.budgets[model].limit
    group = f"{p.name}-{dataset_dir(p.dataset)}-n{n}-b{p.batch_size}-s{p.seed}-{p.protocol}"
    parts, spec = [f"{model}{config}", method], get_method(method)
    if spec.conditioned:
        parts.append(sampler or spec.sampler)
    if spec.count == "power-law":  # the single decoder: its exponent names the run
        parts.append(f"a{exponent if exponent is not None else p.exponent:g}")
    if softadapt:
        parts.append("softadapt")
    if conditioning != "dense":
        parts.append(conditioning)
    return Path(results_dir) / group / "-".join(parts)


def train_run(profile: Profile, results_dir: str | os.PathLike | None, model: str,
              method: str = "baseline", *, config: int | None = None, sampler: str | None = None,
              exponent: float | None = None, softadapt: bool = False, data=None,
              conditioning: str = "dense", **options):
    """Train (or load, when finished in ``results_dir``) one run with the profile's settings;
    returns a :class:`mtvae.train.Result`. ``conditioning="spatial"``: m as feature maps
    (mtvae.models.spatial). ``options`` go to :func:`mtvae.make_config`."""
    from .api import train_model

    p, config = profile, _config(profile, model, config)
    exponent = p.exponent if exponent is None else exponent
    out = None if results_dir is None else run_dir(
        p, results_dir, model, method, config, sampler, exponent, softadapt, conditioning)
    budget = p.budgets[model]
    settings = dict(epochs=budget.epochs, limit=budget.limit, batch_size=p.batch_size,
                    val_fraction=p.val_fraction, seed=p.seed, device=p.device,
                    # one progress bar per run while it trains (a notebook: tqdm's widget)
                    progress=True, protocol=p.protocol, data_root=p.data_root)
    settings.update(options)
    result = train_model(p.dataset, out=out, data=data if data is not None else load_data(p),
                         model=model, config=config, method=method, sampler=sampler,
                         # only the single decoder's power law has an exponent
                         **({"exponent": exponent} if get_method(method).count == "power-law"
                            else {}),
                         softadapt=softadapt, conditioning=conditioning, **settings)
    if out is not None and not p.keep_checkpoints:
        # a finished run is reloaded from model.pt + metrics.json; checkpoint.pt is not needed
        (out / "checkpoint.pt").unlink(missing_ok=True)
    return result


def train_prior(profile: Profile, vq, **options):
    """Train (or load, when finished) the profile's PixelCNN prior for a VQ run ``vq`` (a
    :class:`mtvae.train.Result` of :func:`train_run`); returns a :class:`mtvae.prior.Prior`.

    It is saved in the run's folder, ``<run>/prior-l<layers>-c<channels>-n<images>-s<seed>``
    (checkpoint every epoch, so it resumes; more epochs continue it). ``options`` go to
    :func:`mtvae.prior.train_prior`.
    """
    from .prior import train_prior as train

    s = profile.prior
    settings = dict(n_layers=s.n_layers, channels=s.channels, epochs=s.epochs, limit=s.limit,
                    seed=profile.seed, device=profile.device, progress=True)
    settings.update(options)
    if getattr(vq, "out_dir", None) is None:
        return train(vq, None, **settings)
    n = "run" if settings["limit"] is None else settings["limit"]
    out = Path(vq.out_dir) / (f"prior-l{settings['n_layers']}-c{settings['channels']}-n{n}"
                              f"-s{settings['seed']}")
    # the run folder (not the in-memory model), so the prior records where its VQ-VAE is
    return train(vq.out_dir, out, **settings)


def crossval_rows(profile: Profile) -> list[str]:
    """The grid rows (names or patterns) the profile cross-validates."""
    return [r.format(**profile.configs) for r in profile.crossval.rows]


def crossval_store(profile: Profile, results_dir: str | os.PathLike,
                   protocol: str | None = None) -> Path:
    """The results store of the profile's cross-validation, named by the settings that every
    fold of one store must share: ``results_dir/crossval-<profile>-n<limit>-e<epochs>-b<batch>
    -s<seed>-<protocol>`` (the datasets are folders inside it)."""
    p, b = profile, profile.crossval.budget
    n = "all" if b.limit is None else b.limit
    return Path(results_dir) / (f"crossval-{p.name}-n{n}-e{b.epochs}-b{p.batch_size}"
                                f"-s{p.seed}-{protocol or p.protocol}")


def crossval_settings(profile: Profile, **options) -> crossval.Settings:
    """The :class:`mtvae.crossval.Settings` of the profile's folds (``options``: more
    make_config options, e.g. ``progress=False``)."""
    b = profile.crossval.budget
    return crossval.Settings(folds=profile.folds, epochs=b.epochs, limit=b.limit,
                             seed=profile.seed, protocol=profile.protocol, device=profile.device,
                             data_root=profile.data_root,
                             options={"batch_size": profile.batch_size, "progress": True,
                                      **options})


def crossval_command(profile: Profile, store: str | os.PathLike) -> str:
    """The command line that fills ``store`` with the profile's folds: the crossval parser's
    options for :func:`crossval_settings` (add ``--shard i/n`` to split it over GPUs or a SLURM
    array, docs/crossval.md). Which device it runs on and what its run folders keep (``--keep``)
    are left to that machine."""
    from .cli.crossval import crossval_command as command

    return command([profile.dataset], crossval_rows(profile), store,
                   crossval_settings(profile, progress=False), leave_out=("device", "keep"))


def run_crossval(profile: Profile, results_dir: str | os.PathLike | None = None, *,
                 store: str | os.PathLike | None = None, train: bool | None = None, log=None):
    """Cross-validate the profile's rows and return Table 4.1 of the finished ones
    (:func:`mtvae.report.table`, beside the thesis's numbers).

    Folds already in the store (``store``, default :func:`crossval_store`) are read, not
    retrained. Where the other protocol's store (:func:`crossval_store` with it) holds folds of
    these rows, the table shows its means and the change per row beside ours. Missing folds are
    trained when ``train`` (None: the profile's setting; the full profile only reads);
    otherwise ``log`` names the command that fills the store, and None is returned while the
    store holds no fold of these rows.
    """
    from . import report

    log = log or logger.info
    if store is None:
        if results_dir is None:
            raise ValueError("pass results_dir (the notebooks' RESULTS_DIR) or store")
        store = crossval_store(profile, results_dir)
    rows = crossval_rows(profile)
    jobs = crossval.plan(profile.dataset, rows, profile.folds)
    todo = crossval.missing(jobs, store)
    if todo and (profile.crossval.train if train is None else train):
        crossval.run_jobs(jobs, crossval_settings(profile), store, data=load_data(profile),
                          log=log)
    elif todo:
        log(f"{len(todo)} of {len(jobs)} fold runs are not in {store}. Fill it with\n  "
            f"{crossval_command(profile, store)}")
        if len(todo) == len(jobs):
            return None
    other = None if results_dir is None else crossval_store(
        profile, results_dir, "mtvae" if profile.protocol == "thesis" else "thesis")
    compare = other if other is not None and len(crossval.missing(jobs, other)) < len(jobs) \
        else None
    return report.table(store, profile.dataset, rows, compare=compare)

