"""The thesis's claims, checked paired per fold on hand-made stores with known answers."""

import json

import pytest

from mtvae.claims import CLAIMS, claims, export, to_latex, to_markdown
from mtvae.cli import main
from mtvae.crossval import Settings, job_config
from mtvae.store import Job

VQ1 = ["vq1-baseline", "vq1-multi-exact", "vq1-multi-exact-softadapt", "vq1-multi-uniform",
       "vq1-multi-uniform-softadapt", "vq1-single-gaussian-a40", "vq1-single-gaussian-a60",
       "vq1-single-uniform-a40", "vq1-single-uniform-a60"]


def write_fold(store, row, fold, recon, vq, recon_cond=None, protocol="thesis", seed=0,
               dataset="mnist"):
    config = job_config(Job(dataset, row, fold), Settings(protocol=protocol, epochs=2,
                                                          seed=seed))
    test = {"recon": recon, "vq": vq}
    if recon_cond is not None:
        test["recon_cond"] = recon_cond
    record = {"format": 1, "dataset": dataset, "row": row, "fold": fold, "folds": 5,
              "seed": seed, "protocol": protocol, "thesis_protocol": protocol == "thesis",
              "best_epoch": 1, "epochs": 2, "n_params": 1, "metrics": {"val": test,
                                                                         "test": test},
              "history": [], "config": config.to_dict(), "environment": {}, "seconds": 1.0}
    path = store / dataset / row / f"fold{fold}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def fill(store, folds=3, protocol="thesis", rows=VQ1):
    # baseline recon 0.010 on every fold; the plain multidecoders beat it on folds 0 and 1 and
    # lose on fold 2: a mixed verdict with 2/3 folds. Every conditioned error is below the
    # unconditioned one (holds), every VQ loss below the baseline's (holds).
    multi = {0: 0.008, 1: 0.009, 2: 0.012}
    for k in range(folds):
        for row in rows:
            if row == "vq1-baseline":
                write_fold(store, row, k, 0.010, 0.010, protocol=protocol)
            elif row in ("vq1-multi-exact", "vq1-multi-uniform"):
                write_fold(store, row, k, multi[k], 0.008, multi[k] / 2, protocol=protocol)
            else:
                write_fold(store, row, k, 0.011, 0.005, 0.009, protocol=protocol)


def by_key(df):
    return {r["claim"]: r for r in df.to_dict("records")}


def test_verdicts_paired_per_fold_with_hand_computed_changes(tmp_path):
    fill(tmp_path)
    df = claims(tmp_path, "mnist")
    assert set(df["group"]) == {"VQ-VAE c1"}  # only the groups the store has
    c = by_key(df)
    recon = c["multi-recon-vq"]
    assert recon["verdict"] == "mixed" and (recon["folds_agree"], recon["folds"]) == (2, 3)
    assert recon["change"] == pytest.approx((-0.2 - 0.1 + 0.2) / 3)
    assert c["multi-latent-vq"]["verdict"] == "holds"
    assert c["multi-latent-vq"]["change"] == pytest.approx(-0.2)
    assert c["multi-cond-vq"]["verdict"] == "holds"
    assert c["multi-cond-vq"]["change"] == pytest.approx(-0.5)
    # the single decoders' unconditioned error 0.011 > the baseline's 0.010 on every fold
    assert c["single-recon-vq"]["verdict"] == "fails" and c["single-recon-vq"]["folds_agree"] == 0
    # uniform vs exact: identical numbers, so "uniform beats exact" holds on no fold
    assert c["multi-uniform-vq"]["verdict"] == "fails"
    # the thesis's own MNIST table: VQ c1 multidecoders 0.0025 / 0.0023 vs baseline 0.0028
    # (yes); single decoders at a = 60, 0.0026 / 0.0026, vs a = 40, 0.0025 / 0.0025: a higher
    # exponent did not lower the error there (no); no conditioned column (-)
    assert recon["thesis_table"] == "yes" and c["single-recon-vq"]["thesis_table"] == "yes"
    assert c["single-exponent-recon-vq"]["thesis_table"] == "no"
    assert c["multi-cond-vq"]["thesis_table"] == "-"
    assert df.attrs["protocol"] == "thesis"


def test_missing_rows_are_untested_and_only_common_folds_pair(tmp_path):
    fill(tmp_path, folds=3, rows=VQ1[:3])
    write_fold(tmp_path, "vq1-multi-uniform", 0, 0.001, 0.001, 0.0005)  # fold 0 only
    c = by_key(claims(tmp_path, "mnist"))
    assert c["single-latent-vq"]["verdict"] == "untested"
    assert "vq1-single-gaussian-a40" in c["single-latent-vq"]["missing"]
    # exact has folds 0-2, uniform fold 0 only: one paired fold
    assert c["multi-uniform-vq"]["folds"] == 1 and c["multi-uniform-vq"]["verdict"] == "holds"


def test_compare_store_and_exports(tmp_path):
    fill(tmp_path / "thesis")
    fill(tmp_path / "ours", folds=2, protocol="mtvae")
    df = claims(tmp_path / "thesis", "mnist", compare=tmp_path / "ours")
    c = by_key(df)
    # with folds 0 and 1 only, the multidecoder wins on both: holds under the other protocol
    assert c["multi-recon-vq"]["verdict_compare"] == "holds"
    assert c["multi-recon-vq"]["folds_compare"] == 2
    md = to_markdown(df)
    assert "Verdict (mtvae)" in md and "2/3" in md and "protocol thesis" in md
    assert r"\begin{tabular}" in to_latex(df)
    paths = export(df, tmp_path / "fig")
    assert sorted(p.suffix for p in paths.values()) == [".csv", ".md", ".tex"]


def test_bad_stores_get_one_line_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="no fold results"):
        claims(tmp_path, "mnist")
    fill(tmp_path, folds=1)
    write_fold(tmp_path, "vq1-baseline", 1, 0.01, 0.01, protocol="mtvae")
    with pytest.raises(ValueError, match="mixes protocols"):
        claims(tmp_path, "mnist")
    with pytest.raises(ValueError, match="no numbers for 'fashion-mnist'"):
        claims(tmp_path, "fashion-mnist")
    assert main(["claims", "--dataset", "mnist", "--results", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mtvae claims: error: no fold results") and "\n" not in err


def test_different_seeds_on_one_fold_are_refused(tmp_path):
    fill(tmp_path, folds=1)
    write_fold(tmp_path, "vq1-multi-exact", 0, 0.008, 0.008, 0.004, seed=7)
    with pytest.raises(ValueError, match="different seeds"):
        claims(tmp_path, "mnist")


def test_claims_cover_the_thesis_sections_and_both_families():
    sections = {s.strip() for c in CLAIMS for s in c.section.split(",")}
    assert {"4.1.1", "4.1.2", "4.2.1", "4.2.2", "5.1.1", "5.1.2", "5.2.1", "5.2.2",
            "5.3"} <= sections
    assert len({c.key for c in CLAIMS}) == len(CLAIMS)
    # the conditioned-vs-unconditioned claim exists for both methods and both families
    cond = {(c.family, c.a[0].split("-")[0]) for c in CLAIMS if c.metric_a == "recon_cond"}
    assert cond == {("gaussian", "multi"), ("vq", "multi"), ("gaussian", "single"),
                    ("vq", "single")}
