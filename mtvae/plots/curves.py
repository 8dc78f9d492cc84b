"""Validation curves against the baseline (thesis Figs. 4.2, 4.4, 4.5, 4.6), with the thesis's
own curves (CelebA, 5-fold mean and min-max band) in a separate row for comparison."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..data import DATASETS
from ..report import reduction_factor
from .style import BASELINE, palette, styled

__all__ = ["THESIS_CURVES", "load_thesis_curves", "validation_curves", "summary_table",
           "history_of"]

THESIS_LABEL = "thesis (CelebA, 5-fold mean, min-max band)"

# (family, method) -> the W&B export behind the thesis figure (docs/thesis_code.md#figures).
# skip: leading epochs the thesis figure itself dropped (VQ spikes), per metric.
THESIS_CURVES = {
    ("gaussian", "multidecoder"): dict(file="SCVAE2D_EXACT", figure="4.2", label=(
        "multidecoder, exact, SoftAdapt"), config=2, skip={}),
    ("vq", "multidecoder"): dict(file="SCVQVAE2D_EXACT", figure="4.4", label=(
        "multidecoder, exact, SoftAdapt"), config=3, skip={"vq": 4, "recon": 7}),
    ("gaussian", "single"): dict(file="SCVAE1D_GAUSSIAN", figure="4.5", label=(
        "single, gaussian, a = 60"), config=2, skip={}),
    ("vq", "single"): dict(file="SCVQVAE1D_GAUSSIAN", figure="4.6", label=(
        "single, gaussian, a = 60"), config=3, skip={"recon": 4}),
}


def load_thesis_curves(family: str, method: str) -> pd.DataFrame:
    """The thesis's validation curves for (family, method) in Table 4.1 units.

    Long format: run ("baseline" or the thesis run), metric (kl | vq | recon | recon_cond),
    epoch (1-based), mean, min, max over the 5 folds. Gaussian recon is divided by 128*3*64*64
    and KL by 128 (per-batch sums -> per pixel / per image); VQ values are raw. For the single
    decoder, the thesis's ``val_recon_loss_0`` is the *conditioned* output (our recon_cond) and
    ``(MASKED)`` is m = 0 (our recon), docs/thesis_code.md#figures.
    """
    key = (family, method)
    if key not in THESIS_CURVES:
        raise ValueError(f"the thesis has validation curves for {sorted(THESIS_CURVES)}, "
                         f"not {key}")
    meta = THESIS_CURVES[key]
    latent = "kl" if family == "gaussian" else "vq"
    frames = []
    for kind in (f"{latent}_loss", "recon_loss"):
        name = f"{meta['file']}__{kind}.csv"
        with (resources.files("mtvae") / "assets" / "thesis_curves" / name).open() as f:
            frames.append(_parse(pd.read_csv(f), family, method, meta["label"]))
    df = pd.concat(frames, ignore_index=True)
    for metric, n in meta["skip"].items():
        same_axes = [metric, "recon_cond"] if metric == "recon" else [metric]
        df = df[~(df.metric.isin(same_axes) & (df.epoch <= n))]
    return df.reset_index(drop=True)


def _parse(raw: pd.DataFrame, family: str, method: str, label: str) -> pd.DataFrame:
    metric_names = {"val_kl_loss": "kl", "val_vq_loss": "vq",
                    "val_recon_loss_0": "recon_cond" if method == "single" else "recon",
                    "val_recon_loss_0(MASKED)": "recon"}
    rows = []
    for col in raw.columns:
        if not col.startswith("Group: ") or col.endswith(("__MIN", "__MAX")):
            continue
        run, metric = col[len("Group: "):].rsplit(" - ", 1)
        if metric not in metric_names:
            continue  # _step columns
        baseline = run.startswith(("VAE(", "VQVAE("))
        name = metric_names[metric] if not baseline else metric_names[metric].replace(
            "recon_cond", "recon")
        # Gaussian per-batch sums -> per-pixel MSE and nats per image: divided by the
        # thesis's reduction factor (docs/thesis_code.md#curves); VQ: 1
        scale = reduction_factor(family, DATASETS["celeba"].shape, recon=name != "kl")
        rows.append(pd.DataFrame({
            "run": "baseline" if baseline else label, "metric": name,
            "epoch": raw["epoch"].to_numpy() + 1, "mean": raw[col].to_numpy() / scale,
            "min": raw[f"{col}__MIN"].to_numpy() / scale,
            "max": raw[f"{col}__MAX"].to_numpy() / scale}))
    return pd.concat(rows, ignore_index=True)


def history_of(run) -> list[dict]:
    """A run's per-epoch records: a :class:`mtvae.train.Result` or a list of dicts."""
    history = getattr(run, "history", run)
    if not isinstance(history, list) or not history or not isinstance(history[0], dict):
        raise ValueError("expected a training Result or its non-empty history (list of dicts)")
    return history


def validation_curves(runs: Mapping, latent: str | None = None, *, baseline: str = "baseline",
                      thesis: tuple[str, str] | None = None, ours_label: str = "ours",
                      title: str | None = None):
    """Validation latent loss (KL or VQ) and reconstruction per epoch, each run against the
    baseline (dashed). Solid lines: unconditioned output (multidecoder decoder 1, single decoder
    with m = 0); dotted: conditioned output. ``thesis=(family, method)`` adds a second row with
    the thesis's curves, labelled as such; their scale is CelebA's, so they sit in their own axes.
    """
    import matplotlib.pyplot as plt

    histories = {label: history_of(run) for label, run in runs.items()}
    if latent is None:
        latent = "kl" if "val_kl" in next(iter(histories.values()))[0] else "vq"
    if latent not in ("kl", "vq"):
        raise ValueError(f"latent must be 'kl' or 'vq', got {latent!r}")
    rows = 2 if thesis is not None else 1
    with styled():
        fig, axes = plt.subplots(rows, 2, figsize=(9, 3.2 * rows), layout="constrained",
                                 squeeze=False)
        colors = iter(palette(max(len(histories), 1)))
        for label, history in histories.items():
            epoch = np.array([r["epoch"] for r in history]) + 1
            style = dict(BASELINE) if label == baseline else {"color": next(colors)}
            axes[0, 0].plot(epoch, [r[f"val_{latent}"] for r in history], marker=".",
                            label=label, **style)
            axes[0, 1].plot(epoch, [r["val_recon"] for r in history], marker=".", label=label,
                            **style)
            if label != baseline and "val_recon_cond" in history[0]:
                axes[0, 1].plot(epoch, [r["val_recon_cond"] for r in history], lw=1, ls=":",
                                color=style["color"])
        _label_row(axes[0], latent, ours_label)
        if thesis is not None:
            _thesis_row(axes[1], *thesis, latent)
        axes[0, 1].plot([], [], color="0.4", ls=":", lw=1, label="(dotted: conditioned)")
        axes[0, 1].legend(fontsize=7)
        if title:
            fig.suptitle(title)
    return fig


def _label_row(row, latent: str, who: str) -> None:
    latent_name = "KL (nats per image)" if latent == "kl" else "VQ loss"
    row[0].set_ylabel(f"{who}\nvalidation {latent_name}")
    row[1].set_ylabel("validation recon (MSE per pixel)")
    for ax in row:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _thesis_row(row, family: str, method: str, latent: str) -> None:
    df = load_thesis_curves(family, method)
    meta = THESIS_CURVES[(family, method)]
    color = palette(1)[0]
    for ax, metric in zip(row, (latent, "recon")):
        for run, part in df[df.metric.isin([metric, "recon_cond"] if metric == "recon"
                                           else [metric])].groupby(["run", "metric"]):
            name, what = run
            style = dict(BASELINE) if name == "baseline" else {"color": color}
            if what == "recon_cond":
                style["linestyle"] = ":"
            ax.fill_between(part.epoch, part["min"], part["max"], alpha=0.2, lw=0,
                            color=style["color"])
            ax.plot(part.epoch, part["mean"], lw=1.2, **style,
                    label=None if what == "recon_cond" else name)
    config = f"config {meta['config']}"
    _label_row(row, latent, f"{THESIS_LABEL}\nFig. {meta['figure']}, {config}")
    row[0].legend(fontsize=7)


def summary_table(runs: Mapping, split: str = "val") -> pd.DataFrame:
    """One row per run: best epoch, parameters and the ``split`` metrics of the best epoch."""
    rows = {}
    for label, run in runs.items():
        metrics = run.metrics.get(split)
        if metrics is None:
            raise ValueError(f"run {label!r} has no {split!r} metrics; have "
                             f"{sorted(run.metrics)}")
        row = {"best epoch": run.best_epoch + 1, "parameters": run.extra.get("n_params")}
        row.update({k: metrics[k] for k in ("recon", "recon_cond", "kl", "vq") if k in metrics})
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")
