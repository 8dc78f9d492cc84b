"""Table 4.1 (thesis section 4.3) as a figure beside the thesis's numbers, and the table's files.

:func:`mtvae.report.table` builds the table from a cross-validation results store; here each row
becomes a pair of points per column: our mean over folds with our standard deviation, and the
thesis's value with its printed "+-" converted to a standard deviation (the thesis printed a
population variance, for the Gaussian VAE times a reduction factor; docs/crossval.md).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

from .style import check_name, palette, record, styled

__all__ = ["table_comparison", "save_table", "TABLE_COLUMNS"]

# column of report.table -> axis label
TABLE_COLUMNS = {"recon": "test recon (MSE per pixel)",
                 "latent": "test latent loss (KL per image or VQ loss)"}


def table_comparison(df: pd.DataFrame, title: str | None = None):
    """One panel per column of Table 4.1 (reconstruction, latent loss), one line per row of
    ``df`` (:func:`mtvae.report.table`): ours as filled dots with +- one std over folds, the
    thesis's as open diamonds with +- its std; log scale, groups (family, config) separated."""
    import matplotlib.pyplot as plt

    missing = {"row", "model", "config", "n"} | {f"{c}{s}" for c in TABLE_COLUMNS
                                                 for s in ("", "_std", "_thesis", "_thesis_std")}
    missing -= set(df.columns)
    if missing or not len(df):
        raise ValueError("expected a non-empty mtvae.report.table(...) DataFrame"
                         + (f"; missing columns {sorted(missing)}" if missing else ""))
    y = np.arange(len(df))[::-1]  # first row on top, as in the table
    ours_colour, thesis_colour = palette(2)
    dataset = df.attrs.get("dataset", "ours")
    thesis_name = df.attrs.get("thesis_dataset")
    folds = "/".join(str(n) for n in sorted(set(df["n"])))
    with styled():
        fig, axes = plt.subplots(1, len(TABLE_COLUMNS), sharey=True, layout="constrained",
                                 figsize=(4.2 * len(TABLE_COLUMNS) + 1.5, 0.42 * len(df) + 1.6))
        for ax, (col, label) in zip(axes, TABLE_COLUMNS.items()):
            ax.errorbar(df[col].to_numpy(float), y + 0.12, xerr=_finite(df[f"{col}_std"]),
                        fmt="o", color=ours_colour, capsize=2,
                        label=f"ours ({dataset}, {folds} folds): mean ± std")
            if df[f"{col}_thesis"].notna().any():
                ax.errorbar(df[f"{col}_thesis"].to_numpy(float), y - 0.12,
                            xerr=_finite(df[f"{col}_thesis_std"]),
                            fmt="D", mfc="none", color=thesis_colour, capsize=2,
                            label=f"thesis ({thesis_name}, 5 folds): value ± std from its ±")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short axes
            ax.set_xlabel(label)
            groups = list(zip(df["model"], df["config"]))
            for i in range(1, len(groups)):
                if groups[i] != groups[i - 1]:
                    ax.axhline(y[i] + 0.5, color="0.6", lw=0.8)
        axes[0].set_yticks(y, df["row"])
        axes[0].set_ylim(-0.6, len(df) - 0.4)
        axes[0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0))
        fig.suptitle(title or "Table 4.1: cross-validated test losses, ours beside the thesis")
    return fig


def _finite(values: pd.Series) -> np.ndarray:
    """Error bar half-widths with NaN (one fold, or no thesis value) drawn as none."""
    return np.nan_to_num(values.to_numpy(float), nan=0.0)


def save_table(df: pd.DataFrame, name: str, folder: str | os.PathLike = "figures", *,
               made_by: str | None = None) -> dict:
    """Write Table 4.1 (:func:`mtvae.report.table`) or a claims verdict
    (:func:`mtvae.claims.claims`) as ``folder/name.md``, ``.tex`` and ``.csv`` and list it in
    ``folder/README.md`` like a figure; returns the paths by extension."""
    if "verdict" in df:
        from ..claims import export
    else:
        from ..report import export

    paths = export(df, folder, stem=check_name(name))
    record(folder, name, made_by)
    return {ext: str(path) for ext, path in paths.items()}
