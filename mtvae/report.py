"""Table 4.1 side by side with the thesis: our cross-validated mean and standard deviation, the
thesis's value, the ratio, and the thesis's own "+-" convention for comparison.

Units are the thesis table's (docs/thesis_code.md#tables): ``recon`` is the per-pixel MSE of the
*unconditioned* reconstruction (for the single decoder: m = 0), ``latent`` is the KL divergence
per image (Gaussian VAE) or the VQ loss (VQ-VAE), both on the held-out fold at the best
validation epoch. ``recon_cond`` (the conditioned reconstruction) has no thesis column.

Spread. Ours, ``*_std``, is the sample standard deviation over folds (ddof = 1, the unbiased
variance's square root). The thesis printed a *population variance* (divided by k = 5), and for
the Gaussian VAE one computed on per-batch sums and divided by the reduction factor R only once
(R = 128 C H W for reconstruction, 128 for KL), i.e. R times the variance of the reported
quantity (docs/thesis_code.md#spread). ``*_pm`` is our folds in exactly that convention, comparable
with the printed ``*_thesis_pm``; ``*_thesis_std`` converts the printed value back to a
(population) standard deviation, sqrt(pm / R).

    from mtvae import report
    df = report.table("results", "mnist")          # a pandas DataFrame
    report.export(df, "figures")                    # .md, .tex and .csv
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DATASETS, dataset_key
from .grid import ROWS, TABLE_ROWS, select_rows, thesis_dataset
from .methods import get_method
from .store import load_results, single_protocol

__all__ = ["claims", "thesis_numbers", "reduction_factor", "thesis_pm", "summarize", "table", "export",
           "to_markdown", "to_latex", "DDOF"]

DDOF = 1  # sample standard deviation over folds
BATCH = 128  # the thesis's batch size, part of its reduction factor


def thesis_numbers(dataset: str | None = None) -> pd.DataFrame:
    """The thesis's Table 4.1 (package data), with our row names in a ``row`` column."""
    with resources.files("mtvae").joinpath("assets", "thesis_table_4_1.csv").open() as f:
        df = pd.read_csv(f, keep_default_na=False, na_values=[""])
    df["params"] = df["params"].fillna("")
    names = {(r.thesis_key()): r.name for r in TABLE_ROWS}
    df["row"] = [names.get((m, int(c), meth, p)) for m, c, meth, p in
                 zip(df["model"], df["config"], df["method"], df["params"])]
    if dataset is not None:
        df = df[df["dataset"] == thesis_dataset(dataset)]
    return df.reset_index(drop=True)


def reduction_factor(family: str, image_shape, recon: bool) -> int:
    """What the thesis divided its Gaussian per-batch sums by; 1 for VQ
    (docs/thesis_code.md#reduction-factor)."""
    if family != "gaussian":
        return 1
    return BATCH * math.prod(image_shape) if recon else BATCH


def thesis_pm(values, factor: float = 1) -> float:
    """The thesis's "+-" for fold values of a reported quantity: population variance x factor."""
    v = np.asarray(values, dtype=float)
    return float(np.var(v, ddof=0) * factor) if len(v) else math.nan


def summarize(folds: pd.DataFrame, dataset: str, ddof: int = DDOF) -> pd.DataFrame:
    """Per-row statistics from :func:`mtvae.store.load_results` rows of one dataset."""
    shape = DATASETS[dataset_key(dataset)].shape
    out = []
    for name, g in folds.groupby("row", sort=False):
        row = ROWS[name]
        latent_key = "test_kl" if row.family == "gaussian" else "test_vq"
        rec = {"row": name, "n": len(g), "n_params": g["n_params"].mean()}
        for col, key, is_recon in (("recon", "test_recon", True), ("latent", latent_key, False),
                                   ("recon_cond", "test_recon_cond", True)):
            # a metric the method does not report (the baseline's recon_cond) stays NaN
            reported = col == "latent" or col in get_method(row.method).metrics
            v = g[key].dropna().to_numpy(float) if key in g and reported else np.array([])
            rec[col] = v.mean() if len(v) else math.nan
            rec[f"{col}_std"] = v.std(ddof=ddof) if len(v) > ddof else math.nan
            if col != "recon_cond":
                rec[f"{col}_pm"] = thesis_pm(v, reduction_factor(row.family, shape, is_recon))
        out.append(rec)
    return pd.DataFrame(out)


def _store_folds(results, dataset: str, rows) -> tuple[pd.DataFrame, str]:
    folds = load_results(results, dataset)
    wanted = [r.name for r in select_rows(rows)]
    if len(folds):
        folds = folds[folds["row"].isin(wanted)]
    if not len(folds):
        raise ValueError(f"no fold results for {dataset} under {results}; run `python -m mtvae "
                         f"crossval --dataset {dataset} --results {results}` first")
    return folds, single_protocol(folds, results)


def table(results: str | os.PathLike, dataset: str, rows="all", ddof: int = DDOF,
          compare: str | os.PathLike | None = None) -> pd.DataFrame:
    """Table 4.1 for ``dataset`` from the results store: one line per row with fold results.

    compare: a second store, usually the other protocol (thesis vs mtvae): its means are added
             as ``recon_compare`` / ``latent_compare`` with the relative change
             ``*_change = compare / ours - 1`` per row (what our corrections change).
    """
    folds, protocol = _store_folds(results, dataset, rows)
    ours = summarize(folds, dataset, ddof)
    shape = DATASETS[dataset_key(dataset)].shape
    thesis = thesis_numbers(dataset).set_index("row")
    lines = []
    for rec in ours.to_dict("records"):
        row = ROWS[rec["row"]]
        model, config, method, setting = row.thesis_key()
        line = {"row": row.name, "model": model, "config": config, "method": method,
                "setting": setting, **rec}
        for col, tcol, is_recon in (("recon", "recon", True), ("latent", "latent_loss", False)):
            known = row.name in thesis.index
            value = thesis.at[row.name, tcol] if known else math.nan
            pm = thesis.at[row.name, f"{tcol}_spread"] if known else math.nan
            line[f"{col}_thesis"] = value
            line[f"{col}_ratio"] = rec[col] / value if known else math.nan
            line[f"{col}_thesis_pm"] = pm
            line[f"{col}_thesis_std"] = math.sqrt(
                pm / reduction_factor(row.family, shape, is_recon))
        lines.append(line)
    order = {name: i for i, name in enumerate(ROWS)}
    df = pd.DataFrame(lines).sort_values("row", key=lambda s: s.map(order)).reset_index(drop=True)
    cols = ["row", "model", "config", "method", "setting", "n", "n_params"]
    for c in ("recon", "latent"):
        cols += [c, f"{c}_std", f"{c}_thesis", f"{c}_ratio", f"{c}_pm", f"{c}_thesis_pm",
                 f"{c}_thesis_std"]
    df = df[cols + ["recon_cond", "recon_cond_std"]]
    df.attrs.update(dataset=dataset, ddof=ddof, thesis_dataset=thesis_dataset(dataset),
                    protocol=protocol, results=str(results), compare=None)
    if compare is not None:
        other_folds, other_protocol = _store_folds(compare, dataset, rows)
        other = summarize(other_folds, dataset, ddof).set_index("row")
        for c in ("recon", "latent"):
            df[f"{c}_compare"] = [other.at[r, c] if r in other.index else math.nan
                                  for r in df["row"]]
            df[f"{c}_change"] = df[f"{c}_compare"] / df[c] - 1
        df["n_compare"] = [other.at[r, "n"] if r in other.index else 0 for r in df["row"]]
        df.attrs.update(compare=str(compare), compare_protocol=other_protocol)
    return df


def best_mask(df: pd.DataFrame, column: str) -> pd.Series:
    """True where ``column`` is the minimum of its (model, config) group: the thesis's bold
    (``find_min_loss``, docs/thesis_code.md#table-format). Ties are all bold."""
    mins = df.groupby(["model", "config"])[column].transform("min")
    return df[column].notna() & (df[column] == mins)


def _cells(df: pd.DataFrame, bold) -> list[list[str]]:
    def cell(value, spread, is_best):
        if pd.isna(value):
            return "-"
        text = f"{value:.4f}" + ("" if pd.isna(spread) else f" ± {spread:.1e}")
        return bold(text) if is_best else text

    best = {c: best_mask(df, c) for c in ("recon", "latent", "recon_thesis", "latent_thesis")}
    out = []
    for i, r in df.iterrows():
        out.append([r["model"], str(r["config"]), r["method"], r["setting"] or "-", str(r["n"]),
                    cell(r["recon"], r["recon_std"], best["recon"][i]),
                    cell(r["recon_thesis"], r["recon_thesis_pm"], best["recon_thesis"][i]),
                    "-" if pd.isna(r["recon_ratio"]) else f"{r['recon_ratio']:.2f}",
                    cell(r["latent"], r["latent_std"], best["latent"][i]),
                    cell(r["latent_thesis"], r["latent_thesis_pm"], best["latent_thesis"][i]),
                    "-" if pd.isna(r["latent_ratio"]) else f"{r['latent_ratio']:.2f}",
                    cell(r["recon_cond"], r["recon_cond_std"], False)])
        if "recon_compare" in df:
            out[-1] += [cell(r["recon_compare"], None, False), _pct(r["recon_change"]),
                        cell(r["latent_compare"], None, False), _pct(r["latent_change"])]
    return [_drop_thesis(df, r) for r in out]


_THESIS_CELLS = (6, 7, 9, 10)  # Recon (thesis), ratio, Latent (thesis), ratio


def _no_thesis(df: pd.DataFrame) -> bool:
    """A dataset the thesis has no numbers for (your own images, Fashion-MNIST): its tables
    leave the thesis columns out."""
    return df.attrs.get("thesis_dataset", "") is None


def _drop_thesis(df: pd.DataFrame, cells: list) -> list:
    return [c for i, c in enumerate(cells) if i not in _THESIS_CELLS] if _no_thesis(df) else cells


def _pct(v) -> str:
    return "-" if pd.isna(v) else f"{100 * v:+.0f} %"


def _header(df: pd.DataFrame) -> list[str]:
    header = HEADER
    if "recon_compare" in df:
        p = df.attrs.get("compare_protocol")
        header = HEADER + [f"Recon ({p})", "change", f"Latent ({p})", "change"]
    return _drop_thesis(df, header)


HEADER = ["Model", "Config", "Method", "Setting", "Folds", "Recon (ours)", "Recon (thesis)",
          "ratio", "Latent (ours)", "Latent (thesis)", "ratio", "Recon cond. (ours)"]


def _note(df: pd.DataFrame) -> str:
    a = df.attrs
    compare = (f" Compare: {a['compare']} (protocol {a.get('compare_protocol')}); change = its "
               "mean / ours - 1." if a.get("compare") else "")
    thesis = ("no thesis column (the thesis has no numbers for this dataset). "
              if _no_thesis(df) else f"thesis column: {a.get('thesis_dataset')}. ")
    explained = "" if _no_thesis(df) else (
        " Thesis: mean ± its printed value, a population variance (Gaussian VAE: times the "
        "reduction factor R; std = sqrt(value / R)).")
    return (f"Dataset {a.get('dataset')}, protocol {a.get('protocol', 'mtvae')}; {thesis}"
            f"Ours: mean ± sample std over folds (ddof={df.attrs.get('ddof', DDOF)})."
            f"{explained} Latent: KL per image (Gaussian) or VQ loss. Bold: "
            "lowest mean per (model, config) group and column." + compare)


def to_markdown(df: pd.DataFrame) -> str:
    header = _header(df)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in _cells(df, lambda t: f"**{t}**")]
    return "\n".join(lines) + "\n\n" + _note(df) + "\n"


def to_latex(df: pd.DataFrame) -> str:
    def esc(t: str) -> str:
        return t.replace("±", r"$\pm$").replace("_", r"\_").replace("%", r"\%")

    rows = _cells(df, lambda t: r"\textbf{" + t + "}")
    body, prev = [], None
    for (model, config), r in zip(zip(df["model"], df["config"]), rows):
        if prev is not None and (model, config) != prev:
            body.append(r"\midrule")
        prev = (model, config)
        body.append(" & ".join(esc(c) for c in r) + r" \\")
    extra = " llll" if "recon_compare" in df else ""
    spec = "llll r lll" if _no_thesis(df) else "llll r lll lll l"
    return "\n".join([r"% " + _note(df), r"\begin{tabular}{" + spec + extra + "}",
                      r"\toprule", " & ".join(esc(h) for h in _header(df)) + r" \\",
                      r"\midrule", *body, r"\bottomrule", r"\end{tabular}", ""])


def write_tables(df: pd.DataFrame, out: str | os.PathLike, stem: str, markdown, latex
                 ) -> dict[str, Path]:
    """Write ``<stem>.md`` (``markdown(df)``), ``.tex`` (``latex(df)``) and ``.csv`` (all
    columns) under ``out``; shared by Table 4.1 and the claims verdict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / f"{stem}.md", "tex": out / f"{stem}.tex", "csv": out / f"{stem}.csv"}
    paths["md"].write_text(markdown(df))
    paths["tex"].write_text(latex(df))
    if _no_thesis(df):  # no thesis numbers: no (empty) thesis columns either
        df = df[[c for c in df.columns if "_thesis" not in c and not c.endswith("_ratio")]]
    df.to_csv(paths["csv"], index=False)
    return paths


def export(df: pd.DataFrame, out: str | os.PathLike = "figures", stem: str | None = None
           ) -> dict[str, Path]:
    """Write ``<stem>.md``, ``.tex`` and ``.csv`` (all numeric columns) under ``out``."""
    from .images import dataset_dir  # 'folder:/x/y:size=32' -> a file-system-safe name

    stem = stem or f"table_4_1_{dataset_dir(df.attrs.get('dataset', 'results'))}"
    return write_tables(df, out, stem, to_markdown, to_latex)


from .claims import claims  # noqa: E402  (re-exported: mtvae.report.claims)
