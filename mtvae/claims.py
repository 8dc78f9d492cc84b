"""The thesis's directional claims (chapters 4 and 5), each checked on a results store.

A claim compares two sets of Table 4.1 rows of one (family, config) group, "A" and "B", on one
metric each, and says which way the difference should go: "the Gaussian multidecoder lowers the
unconditioned reconstruction error" is A = {multi-exact, multi-uniform}, B = {baseline}, metric
``recon``, A lower. Checked *paired per fold*: on every fold that all rows of both sets finished
(same fold, same seed, same initial weights), the mean over A is set against the mean over B, so
fold-to-fold differences in the held-out data cancel. A claim

* **holds** when every paired fold goes the claimed way, **fails** when none does, is **mixed**
  otherwise, and **untested** when a row is missing from the store;
* is also checked against the thesis's own Table 4.1 means ("thesis table": yes / no; "-" where
  the table has no such column, e.g. the conditioned error).

    from mtvae import claims
    df = claims.claims("reference_results", "mnist")
    claims.export(df, "figures")               # claims_mnist.md, .tex, .csv
    python -m mtvae claims --dataset mnist --results reference_results [--compare STORE2]
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .grid import FAMILY_NAMES, ROWS, thesis_dataset
from .store import load_results, single_protocol

__all__ = ["Claim", "CLAIMS", "claims", "export", "to_markdown", "to_latex"]

METRIC_NAME = {"recon": "unconditioned recon. error", "recon_cond": "conditioned recon. error",
               "latent": "latent loss (KL or VQ)"}


@dataclass(frozen=True)
class Claim:
    """One directional statement of the thesis about a (family, config) group.

    ``a`` and ``b`` are row-name suffixes after the group prefix (``multi-exact`` for
    ``vq1-multi-exact``); ``lower`` says A's metric is claimed below B's.
    """

    key: str
    section: str
    family: str
    text: str
    a: tuple[str, ...]
    b: tuple[str, ...]
    metric_a: str = "recon"
    metric_b: str | None = None  # None: the same metric as A
    lower: bool = True

    def rows(self, config: int, side: str) -> list[str]:
        prefix = f"{'gauss' if self.family == 'gaussian' else 'vq'}{config}"
        return [f"{prefix}-{s}" for s in (self.a if side == "a" else self.b)]


MULTI = ("multi-exact", "multi-uniform")
MULTI_SA = ("multi-exact-softadapt", "multi-uniform-softadapt")
SINGLE = ("single-gaussian-a40", "single-gaussian-a60", "single-uniform-a40",
          "single-uniform-a60")
BASE = ("baseline",)


def _both(key, section, text, a, b, metric="recon", lower=True, metric_b=None):
    return [Claim(f"{key}-{'gauss' if f == 'gaussian' else 'vq'}", section, f, text, a, b,
                  metric, metric_b, lower) for f in ("gaussian", "vq")]


CLAIMS: tuple[Claim, ...] = (
    # 4.1 / 5.1: the multidecoder.
    Claim("multi-recon-gauss", "4.1.1, 5.1.1", "gaussian",
          "the multidecoder lowers the unconditioned reconstruction error", MULTI, BASE),
    Claim("multi-kl-gauss", "4.1.1, 5.1.1", "gaussian",
          "the multidecoder raises the KL divergence", MULTI, BASE, "latent", lower=False),
    Claim("multi-softadapt-recon-gauss", "4.1.1", "gaussian",
          "with SoftAdapt the multidecoder still lowers the reconstruction error", MULTI_SA, BASE),
    Claim("multi-softadapt-kl-gauss", "4.1.1", "gaussian",
          "with SoftAdapt the multidecoder still raises the KL divergence", MULTI_SA, BASE,
          "latent", lower=False),
    Claim("multi-recon-vq", "4.1.2, 5.1.2", "vq",
          "the multidecoder lowers the unconditioned reconstruction error", MULTI, BASE),
    Claim("multi-latent-vq", "4.1.2, 5.1.2", "vq",
          "the multidecoder lowers the VQ loss", MULTI, BASE, "latent"),
    Claim("multi-uniform-vq", "4.1.2, 5.1.2", "vq",
          "uniform sampling beats exact sampling (reconstruction)", ("multi-uniform",),
          ("multi-exact",)),
    *_both("multi-cond", "4.1, 5.1", "the conditioned decoder reconstructs better than the "
           "unconditioned one", MULTI, MULTI, "recon_cond", metric_b="recon"),
    # 4.2 / 5.2: the single decoder.
    Claim("single-kl-gauss", "4.2.1, 5.2.1", "gaussian",
          "the single decoder lowers the KL divergence", SINGLE, BASE, "latent"),
    Claim("single-recon-gauss", "4.2.1, 5.2.1", "gaussian",
          "the single decoder costs unconditioned reconstruction (error rises)", SINGLE, BASE,
          lower=False),
    Claim("single-uniform-kl-gauss", "4.2.1, 5.2.1", "gaussian",
          "uniform sampling lowers the KL more than Gaussian sampling",
          ("single-uniform-a40", "single-uniform-a60"),
          ("single-gaussian-a40", "single-gaussian-a60"), "latent"),
    Claim("single-exponent-kl-gauss", "4.2.1", "gaussian",
          "a higher exponent (60 vs 40) raises the KL divergence",
          ("single-gaussian-a60", "single-uniform-a60"),
          ("single-gaussian-a40", "single-uniform-a40"), "latent", lower=False),
    *_both("single-exponent-recon", "4.2.1, 4.2.2, 5.2.2", "a higher exponent (60 vs 40) "
           "gives a better unconditioned reconstruction",
           ("single-gaussian-a60", "single-uniform-a60"),
           ("single-gaussian-a40", "single-uniform-a40")),
    Claim("single-latent-vq", "4.2.2, 5.2.2", "vq",
          "the single decoder lowers the VQ loss", SINGLE, BASE, "latent"),
    Claim("single-recon-vq", "4.2.2", "vq", "the single decoder with a high exponent (60) "
          "lowers the unconditioned reconstruction error",
          ("single-gaussian-a60", "single-uniform-a60"), BASE),
    Claim("single-gaussian-vq", "4.2.2, 5.2.2", "vq",
          "Gaussian sampling beats uniform sampling (reconstruction)",
          ("single-gaussian-a40", "single-gaussian-a60"),
          ("single-uniform-a40", "single-uniform-a60")),
    *_both("single-cond", "3.3, 4.2", "given known pixels the single decoder reconstructs "
           "better than with none", SINGLE, SINGLE, "recon_cond", metric_b="recon"),
    # 5.3: the two methods against each other (VQ-VAE).
    Claim("methods-latent-vq", "5.3", "vq",
          "the single decoder reaches a lower VQ loss than the multidecoder", SINGLE, MULTI,
          "latent"),
    Claim("methods-recon-vq", "5.3", "vq", "the multidecoder reconstructs better than the "
          "single decoder (unconditioned)", MULTI, SINGLE),
)


def _metric_column(metric: str, family: str) -> str:
    if metric == "latent":
        return "test_kl" if family == "gaussian" else "test_vq"
    return f"test_{metric}"


def _load(results, dataset) -> tuple[pd.DataFrame, str]:
    folds = load_results(results, dataset)
    if not len(folds):
        raise ValueError(f"no fold results for {dataset} under {results}; run `python -m mtvae "
                         f"crossval --dataset {dataset} --results {results}` first")
    return folds, single_protocol(folds, results)


def _thesis_means(dataset: str) -> dict[str, tuple[float, float]]:
    from .report import thesis_numbers

    t = thesis_numbers(dataset)
    return {r: (rec, lat) for r, rec, lat in zip(t["row"], t["recon"], t["latent_loss"])
            if r is not None}


def _check(claim: Claim, config: int, folds: pd.DataFrame) -> dict:
    """One claim on one (family, config) group of a store's fold results."""
    rows_a, rows_b = claim.rows(config, "a"), claim.rows(config, "b")
    col_a = _metric_column(claim.metric_a, claim.family)
    col_b = _metric_column(claim.metric_b or claim.metric_a, claim.family)
    present = set(folds["row"])
    missing = [r for r in dict.fromkeys(rows_a + rows_b) if r not in present]
    out = {"folds_agree": math.nan, "folds": 0, "change": math.nan, "verdict": "untested",
           "missing": ", ".join(missing)}
    if missing:
        return out
    per_fold = folds[folds["row"].isin(rows_a + rows_b)]
    fold_sets = [set(per_fold.loc[per_fold["row"] == r, "fold"]) for r in rows_a + rows_b]
    common = sorted(set.intersection(*fold_sets))
    if not common:
        out["missing"] = "no fold finished by every row"
        return out
    agree, changes = 0, []
    for k in common:
        f = per_fold[per_fold["fold"] == k]
        seeds = set(f["seed"])
        if len(seeds) > 1:
            raise ValueError(f"fold {k} of {rows_a + rows_b} was trained with different seeds "
                             f"{sorted(seeds)}: claims pair folds of one seed; rerun them "
                             "with the same --seed")
        a = f.loc[f["row"].isin(rows_a), col_a].astype(float).mean()
        b = f.loc[f["row"].isin(rows_b), col_b].astype(float).mean()
        agree += bool(a < b) if claim.lower else bool(a > b)
        changes.append((a - b) / b)
    n = len(common)
    verdict = "holds" if agree == n else "fails" if agree == 0 else "mixed"
    out.update(folds_agree=agree, folds=n, change=float(np.mean(changes)), verdict=verdict,
               missing="")
    return out


def _thesis_support(claim: Claim, config: int, thesis: dict) -> str:
    if "recon_cond" in (claim.metric_a, claim.metric_b):
        return "-"  # the thesis's table has no conditioned-reconstruction column
    idx = {"recon": 0, "latent": 1}
    rows_a, rows_b = claim.rows(config, "a"), claim.rows(config, "b")
    if not all(r in thesis for r in rows_a + rows_b):
        return "-"
    a = np.mean([thesis[r][idx[claim.metric_a]] for r in rows_a])
    b = np.mean([thesis[r][idx[claim.metric_b or claim.metric_a]] for r in rows_b])
    return "yes" if (a < b if claim.lower else a > b) else "no"


def claims(results: str | os.PathLike, dataset: str, compare: str | os.PathLike | None = None,
           configs: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """Every claim for every (family, config) group that ``results`` holds rows of.

    compare: a second store (usually the other protocol): its verdict and mean change are added
             as ``*_compare`` columns, so the effect of our corrections is visible per claim.
    configs: {'gaussian': [1], 'vq': [1, 2]} to fix the groups (default: those in the store).
    """
    thesis_name = thesis_dataset(dataset)
    if thesis_name is None:
        raise ValueError(f"the thesis has no numbers for {dataset!r}; claims are checked on "
                         "the thesis's datasets: mnist (or mnist-sample), cifar10, celeba")
    folds, protocol = _load(results, dataset)
    other = _load(compare, dataset) if compare is not None else None
    if configs is None:
        known = [ROWS[r] for r in set(folds["row"]) if r in ROWS]
        configs = {f: sorted({r.config for r in known if r.family == f})
                   for f in ("gaussian", "vq")}
    thesis = _thesis_means(dataset)
    lines = []
    for claim in CLAIMS:
        for config in configs.get(claim.family, []):
            line = {"claim": claim.key, "section": claim.section,
                    "group": f"{FAMILY_NAMES[claim.family]} c{config}", "statement": claim.text,
                    **_check(claim, config, folds),
                    "thesis_table": _thesis_support(claim, config, thesis)}
            if other is not None:
                theirs = _check(claim, config, other[0])
                line.update(verdict_compare=theirs["verdict"], change_compare=theirs["change"],
                            folds_agree_compare=theirs["folds_agree"],
                            folds_compare=theirs["folds"])
            lines.append(line)
    df = pd.DataFrame(lines)
    df.attrs.update(dataset=dataset, results=str(results), protocol=protocol,
                    compare=str(compare) if compare is not None else None,
                    compare_protocol=other[1] if other is not None else None)
    return df


# ------------------------------------------------------------------------------------ output


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    def agree(k, n):
        return "-" if not n or pd.isna(k) else f"{int(k)}/{int(n)}"

    def pct(v):
        return "-" if pd.isna(v) else f"{100 * v:+.1f} %"

    header = ["Section", "Group", "Claim", "Folds agreeing", "Mean change", "Verdict",
              "Thesis table"]
    compare = "verdict_compare" in df
    if compare:
        header += [f"Verdict ({df.attrs.get('compare_protocol')})", "Mean change (compare)"]
    rows = []
    for r in df.to_dict("records"):
        cells = [r["section"], r["group"], r["statement"], agree(r["folds_agree"], r["folds"]),
                 pct(r["change"]), r["verdict"] + (f" (missing: {r['missing']})"
                                                   if r["missing"] else ""), r["thesis_table"]]
        if compare:
            cells += [r["verdict_compare"], pct(r["change_compare"])]
        rows.append(cells)
    return header, rows


def _store_name(path) -> str:
    """A store as a committed file should name it: its folder's name, not this machine's path."""
    return Path(str(path)).name if path else str(path)


def _note(df: pd.DataFrame) -> str:
    a = df.attrs
    text = (f"Dataset {a.get('dataset')}, store {_store_name(a.get('results'))} "
            f"(protocol {a.get('protocol')}). "
            "Paired per fold: on each fold finished by every row of the comparison, the mean "
            "over the claim's rows against the mean over the rows it is compared with; mean "
            "change = mean over folds of (A - B) / B. Thesis table: whether the thesis's own "
            "Table 4.1 means point the same way.")
    if a.get("compare"):
        text += (f" Compare: {_store_name(a['compare'])} "
                 f"(protocol {a.get('compare_protocol')}).")
    return text


def to_markdown(df: pd.DataFrame) -> str:
    header, rows = _cells(df)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n\n" + _note(df) + "\n"


def to_latex(df: pd.DataFrame) -> str:
    def esc(t: str) -> str:
        return t.replace("%", r"\%").replace("_", r"\_")

    header, rows = _cells(df)
    body = [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
    return "\n".join([r"% " + _note(df), r"\begin{tabular}{ll p{6cm} " + "l" * (len(header) - 3)
                      + "}", r"\toprule", " & ".join(header) + r" \\", r"\midrule", *body,
                      r"\bottomrule", r"\end{tabular}", ""])


def export(df: pd.DataFrame, out: str | os.PathLike = "figures", stem: str | None = None
           ) -> dict[str, Path]:
    """Write ``<stem>.md``, ``.tex`` and ``.csv`` under ``out``."""
    from .report import write_tables

    stem = stem or f"claims_{df.attrs.get('dataset', 'results')}"
    return write_tables(df, out, stem, to_markdown, to_latex)
