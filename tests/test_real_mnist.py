"""Full MNIST offline through every entry point (train, crossval, table, claims, prior).

Uses the official 60,000 / 10,000 digits from ../shared/datasets (or $MTVAE_TEST_DATA); skipped
with the reason where they are absent. Budgets are tiny: these check the plumbing on real data.
"""

import hashlib
import json

from mtvae.cli import main
from mtvae.data import load_dataset


def test_full_mnist_loads_offline_from_the_shared_folder(shared_datasets):
    raw = shared_datasets / "MNIST" / "raw" / "train-images-idx3-ubyte"
    assert hashlib.md5(raw.read_bytes()).hexdigest() == "6bbc9ace898e44ae57da46a324031adb"
    d = load_dataset("mnist", shared_datasets, download=False)
    assert tuple(d.train.shape) == (60000, 1, 28, 28) and tuple(d.test.shape) == (10000, 1, 28, 28)
    assert int(d.train.float().mean().round()) == 33  # MNIST's mean pixel, 0.1307 * 255


def test_cli_train_prior_crossval_table_claims_on_full_mnist(shared_datasets, tmp_path, capsys):
    root = str(shared_datasets)
    run = tmp_path / "vq1"
    assert main(["train", "--dataset", "mnist", "--data-root", root, "--model", "vq",
                 "--protocol", "thesis", "--limit", "512", "--epochs", "1", "--no-progress",
                 "--device", "cpu", "--out", str(run)]) == 0
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["config"]["train"]["protocol"] == "thesis"
    assert saved["config"]["model"]["thesis_baseline_decoder"] is True
    assert saved["config"]["data"]["shuffle_folds"] is False
    assert main(["prior", "--vq-checkpoint", str(run), "--data-root", root, "--layers", "2",
                 "--channels", "8", "--epochs", "1", "--no-progress", "--device", "cpu"]) == 0
    assert (run / "prior" / "prior.pt").exists()
    store = tmp_path / "store"
    assert main(["crossval", "--dataset", "mnist", "--data-root", root, "--rows", "vq1-baseline",
                 "vq1-multi-exact", "vq1-multi-uniform", "--folds", "2", "--epochs", "1", "--limit", "400",
                 "--protocol", "thesis", "--no-progress", "--device", "cpu",
                 "--results", str(store)]) == 0
    record = json.loads((store / "mnist" / "vq1-multi-exact" / "fold1.json").read_text())
    assert record["protocol"] == "thesis" and record["config"]["model"]["shared_decoder"]
    capsys.readouterr()
    assert main(["table", "--dataset", "mnist", "--results", str(store),
                 "--out", str(tmp_path / "fig")]) == 0
    assert "protocol thesis" in capsys.readouterr().out
    assert main(["claims", "--dataset", "mnist", "--results", str(store),
                 "--out", str(tmp_path / "fig")]) == 0
    lines = capsys.readouterr().out.splitlines()
    vq_loss = next(s for s in lines if "the multidecoder lowers the VQ loss" in s)
    cells = [c.strip() for c in vq_loss.split("|")]
    assert cells[4] in ("0/2", "1/2", "2/2") and cells[6] in ("holds", "mixed", "fails")
    single = next(s for s in lines if "the single decoder lowers the VQ loss" in s)
    assert "untested (missing: vq1-single-gaussian-a40" in single  # no single rows here
