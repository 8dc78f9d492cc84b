"""The command line: ``python -m mtvae train ...`` writes metrics.json; bad input exits 2."""

import json
import subprocess
import sys

from mtvae.cli import main


def test_train_writes_metrics_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--dataset", "mnist-sample", "--model", "vq", "--config", "1",
                 "--method", "single", "--sampler", "uniform", "--exponent", "60",
                 "--epochs", "1", "--limit", "256", "--seed", "1", "--no-progress",
                 "--out", str(out)])
    assert code == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["observation"] == {"sampler": "uniform", "count": "power-law",
                                              "exponent": 60.0, "rate": 0.05,
                                              "replacement": False}
    assert saved["config"]["train"]["seed"] == 1 and len(saved["history"]) == 1
    assert {"recon", "recon_cond", "vq"} <= set(saved["metrics"]["val"])
    assert (out / "checkpoint.pt").exists() and (out / "model.pt").exists()
    printed = json.loads(capsys.readouterr().out.split("wrote")[0])
    assert printed["val_recon"] == saved["metrics"]["val"]["recon"]


def test_bad_input_exits_2_with_message(capsys):
    assert main(["train", "--dataset", "svhn"]) == 2
    assert "unknown dataset 'svhn'" in capsys.readouterr().err
    assert main(["train", "--method", "single", "--exponent", "-2"]) == 2
    assert "exponent must be" in capsys.readouterr().err


def test_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "mtvae", "train", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "--shared-decoder" in res.stdout
