"""The thesis grid by name and Table 4.1 from synthetic fold results (hand-computed numbers)."""

import math

import pandas as pd
import pytest

from mtvae.checkpoint import atomic_write_json
from mtvae.cli import main
from mtvae.crossval import Job, Settings, job_config
from mtvae.grid import ROWS, SWEEP_ROWS, TABLE_ROWS, select_rows
from mtvae.report import best_mask, export, table, thesis_numbers, to_latex, to_markdown
from mtvae.store import fold_file

# -------------------------------------------------------------------------------------- grid


@pytest.mark.parametrize("dataset", ["MNIST", "CIFAR10", "CelebA"])
def test_grid_has_45_rows_matching_the_thesis_table_one_to_one(dataset):
    thesis = thesis_numbers()
    rows = thesis[thesis["dataset"] == dataset]
    assert len(rows) == 45 and len(TABLE_ROWS) == 45
    assert rows["row"].notna().all()  # every thesis line has a row name ...
    assert sorted(rows["row"]) == sorted(r.name for r in TABLE_ROWS)  # ... and vice versa, once
    counts = rows.groupby(["model", "config"]).size().to_dict()
    assert counts == {("Gaussian VAE", 1): 9, ("Gaussian VAE", 2): 9, ("VQ-VAE", 1): 9,
                      ("VQ-VAE", 2): 9, ("VQ-VAE", 3): 9}


def test_row_names_become_the_right_configs():
    c = ROWS["gauss2-single-uniform-a60"].run_config("cifar10", epochs=3, fold=1)
    assert (c.model.family, c.model.config, c.model.method) == ("gaussian", 2, "single")
    assert (c.observation.sampler, c.observation.count, c.observation.exponent) == \
        ("uniform", "power-law", 60.0)
    assert c.data.dataset == "cifar10" and c.data.fold == 1 and c.train.epochs == 3
    assert not c.train.softadapt
    c = ROWS["vq3-multi-exact-softadapt"].run_config("celeba")
    assert (c.model.family, c.model.config, c.model.method) == ("vq", 3, "multidecoder")
    assert (c.observation.sampler, c.observation.count) == ("exact", "fixed")
    assert c.train.softadapt
    assert ROWS["vq1-baseline"].run_config("mnist").model.method == "baseline"


def test_exponent_sweep_rows():
    exps = [3, 5, 10, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70]
    assert [r.name for r in SWEEP_ROWS] == [f"{f}2-single-gaussian-a{a}" for f in ("gauss", "vq")
                                            for a in exps]
    assert len(select_rows("sweep")) == 28 and len(select_rows("grid")) == 45 + 24
    assert [r.name for r in select_rows("vq*-baseline")] == ["vq1-baseline", "vq2-baseline",
                                                             "vq3-baseline"]
    with pytest.raises(ValueError, match="unknown row"):
        select_rows(["vq4-baseline"])


# ------------------------------------------------------------------------- synthetic results


def write_folds(root, dataset, row, metric_lists, protocol="mtvae"):
    """Fold results with the given test metrics, e.g. {"recon": [..], "vq": [..]}."""
    n = len(next(iter(metric_lists.values())))
    for fold in range(n):
        job = Job(dataset, row, fold)
        config = job_config(job, Settings(folds=max(n, 2), protocol=protocol))
        test = {k: v[fold] for k, v in metric_lists.items()}
        atomic_write_json({"dataset": dataset, "row": row, "fold": fold, "folds": n, "seed": 0,
                           "protocol": protocol,
                           "epochs": 100, "best_epoch": 50, "n_params": 1000,
                           "metrics": {"val": test, "test": test}, "history": [],
                           "config": config.to_dict(), "environment": {}},
                          _mkdir(fold_file(root, job)))


def _mkdir(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_table_mean_std_and_thesis_columns_by_hand(tmp_path):
    write_folds(tmp_path, "mnist", "vq1-baseline",
                {"recon": [0.1, 0.2, 0.3, 0.4, 0.5], "vq": [1.0, 1.0, 1.0, 1.0, 1.0]})
    write_folds(tmp_path, "mnist", "gauss1-baseline",
                {"recon": [0.01, 0.02, 0.03], "kl": [10.0, 12.0, 14.0]})
    df = table(tmp_path, "mnist").set_index("row")
    vq, g = df.loc["vq1-baseline"], df.loc["gauss1-baseline"]
    assert vq["n"] == 5 and g["n"] == 3
    # mean 0.3; deviations -.2 -.1 0 .1 .2: squares sum 0.1; sample var 0.1/4, population 0.1/5
    assert vq["recon"] == pytest.approx(0.3)
    assert vq["recon_std"] == pytest.approx(math.sqrt(0.025))
    assert vq["recon_pm"] == pytest.approx(0.02)  # VQ: the thesis printed the population var
    assert vq["latent"] == pytest.approx(1.0) and vq["latent_std"] == pytest.approx(0.0)
    assert vq["recon_thesis"] == 0.0028 and vq["recon_thesis_pm"] == 8.8e-9
    assert vq["recon_ratio"] == pytest.approx(0.3 / 0.0028)
    assert vq["recon_thesis_std"] == pytest.approx(math.sqrt(8.8e-9))
    # Gaussian: recon mean 0.02, sample std 0.01, population var 2e-4/3; R = 128 * 28 * 28
    assert g["recon"] == pytest.approx(0.02) and g["recon_std"] == pytest.approx(0.01)
    assert g["recon_pm"] == pytest.approx(2e-4 / 3 * 100352)
    assert g["latent"] == pytest.approx(12.0) and g["latent_std"] == pytest.approx(2.0)
    assert g["latent_pm"] == pytest.approx(8 / 3 * 128)  # KL: R = 128
    assert g["latent_thesis"] == 12.9533 and g["latent_ratio"] == pytest.approx(12 / 12.9533)
    assert g["recon_thesis_std"] == pytest.approx(math.sqrt(1.2e-3 / 100352))
    assert math.isnan(g["recon_cond"])  # baselines have no conditioned output
    assert df.attrs["ddof"] == 1


def test_thesis_spread_converts_to_the_documented_stds(tmp_path):
    # docs/thesis_code.md#spread: CelebA Gaussian c2 baseline 0.0097 +- 4.2e-3 is a std of ~5.2e-5,
    # its KL 63.05 +- 24 a std of ~0.43; CelebA VQ c3 baseline 7.4e-8 a std of ~2.7e-4
    write_folds(tmp_path, "celeba", "gauss2-baseline", {"recon": [0.01, 0.011], "kl": [60., 61.]})
    write_folds(tmp_path, "celeba", "vq3-baseline", {"recon": [0.002, 0.003], "vq": [.003, .003]})
    df = table(tmp_path, "celeba").set_index("row")
    assert df.at["gauss2-baseline", "recon_thesis_std"] == pytest.approx(5.2e-5, rel=0.01)
    assert df.at["gauss2-baseline", "latent_thesis_std"] == pytest.approx(0.43, rel=0.01)
    assert df.at["vq3-baseline", "recon_thesis_std"] == pytest.approx(2.7e-4, rel=0.01)


def test_bold_marks_the_lowest_mean_per_model_and_config(tmp_path):
    write_folds(tmp_path, "mnist", "vq1-baseline", {"recon": [3.0, 3.0], "vq": [1.0, 1.0]})
    write_folds(tmp_path, "mnist", "vq1-multi-exact",
                {"recon": [2.0, 2.0], "recon_cond": [1.0, 1.0], "vq": [5.0, 5.0]})
    write_folds(tmp_path, "mnist", "vq2-baseline", {"recon": [9.0, 9.0], "vq": [9.0, 9.0]})
    df = table(tmp_path, "mnist")
    assert list(df["row"]) == ["vq1-baseline", "vq1-multi-exact", "vq2-baseline"]
    assert list(best_mask(df, "recon")) == [False, True, True]  # vq2 is its own group
    assert list(best_mask(df, "latent")) == [True, False, True]
    md = to_markdown(df)
    assert md.count("**") == 2 * (2 + 2 + 2 + 2)  # ours and thesis, recon and latent
    line = next(s for s in md.splitlines() if "Multi Decoder" in s)
    assert "**2.0000 ± 0.0e+00**" in line and "| 5.0000 ± 0.0e+00 |" in line
    assert to_latex(df).count(r"\textbf{") == 8 and r"\midrule" in to_latex(df)


def test_export_and_cli_table(tmp_path, capsys):
    write_folds(tmp_path / "res", "mnist-sample", "vq1-baseline",
                {"recon": [0.1, 0.3], "vq": [0.01, 0.03]})
    paths = export(table(tmp_path / "res", "mnist-sample"), tmp_path / "fig")
    assert sorted(p.suffix for p in paths.values()) == [".csv", ".md", ".tex"]
    back = pd.read_csv(paths["csv"])
    assert back.loc[0, "recon"] == pytest.approx(0.2)
    assert back.loc[0, "recon_std"] == pytest.approx(math.sqrt(0.02))
    assert main(["table", "--dataset", "mnist-sample", "--results", str(tmp_path / "res"),
                 "--out", str(tmp_path / "fig2")]) == 0
    assert "0.2000 ± 1.4e-01" in capsys.readouterr().out
    assert (tmp_path / "fig2" / "table_4_1_mnist-sample.tex").exists()
    assert main(["table", "--dataset", "cifar10", "--results", str(tmp_path / "res")]) == 2
    assert "no fold results for cifar10" in capsys.readouterr().err


def test_table_compares_a_second_protocol_per_row_and_refuses_mixed_stores(tmp_path):
    write_folds(tmp_path / "thesis", "mnist", "vq1-baseline", {"recon": [0.004, 0.006],
                                                              "vq": [0.01, 0.01]},
                protocol="thesis")
    write_folds(tmp_path / "ours", "mnist", "vq1-baseline", {"recon": [0.003, 0.003],
                                                            "vq": [0.02, 0.02]})
    df = table(tmp_path / "thesis", "mnist", compare=tmp_path / "ours")
    r = df.set_index("row").loc["vq1-baseline"]
    assert r["recon_compare"] == pytest.approx(0.003) and r["recon_change"] == pytest.approx(-0.4)
    assert r["latent_change"] == pytest.approx(1.0)
    md = to_markdown(df)
    assert "protocol thesis" in md and "Recon (mtvae)" in md and "| -40 % |" in md
    write_folds(tmp_path / "thesis", "mnist", "vq1-multi-exact",
                {"recon": [0.003], "recon_cond": [0.002], "vq": [0.01]})  # mtvae protocol
    with pytest.raises(ValueError, match="mixes protocols"):
        table(tmp_path / "thesis", "mnist")
