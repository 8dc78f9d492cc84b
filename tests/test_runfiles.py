"""Runs from files: --print-config writes what --config reads; flags given override the file."""

import json

import pytest

from mtvae.cli import main
from mtvae.config import RunConfig

TRAIN = ["train", "--model", "vq", "--method", "single", "--exponent", "25", "--epochs", "4",
         "--lr", "0.0005", "--limit", "128", "--batch-size", "64", "--no-progress"]


def printed(capsys, argv) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_print_config_round_trips_through_config(tmp_path, capsys):
    config = printed(capsys, TRAIN + ["--print-config"])
    assert config["model"]["family"] == "vq" and config["observation"]["exponent"] == 25
    assert config["train"]["lr"] == 0.0005 and config["train"]["epochs"] == 4
    path = tmp_path / "run.json"
    path.write_text(json.dumps(config))
    again = printed(capsys, ["train", "--config", str(path), "--print-config"])
    assert again == config


def test_flags_given_override_the_file_and_only_those(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(printed(capsys, TRAIN + ["--print-config"])))
    changed = printed(capsys, ["train", "--config", str(path), "--epochs", "9",
                               "--print-config"])
    assert changed["train"]["epochs"] == 9
    assert changed["train"]["lr"] == 0.0005  # not given: the file's, not the flag's default
    assert changed["observation"]["exponent"] == 25 and changed["model"]["family"] == "vq"
    other = printed(capsys, ["train", "--config", str(path), "--method", "baseline",
                             "--print-config"])
    assert other["model"]["method"] == "baseline" and other["observation"]["sampler"] == "exact"


def test_a_run_folders_config_json_trains_the_same_run(tmp_path, capsys):
    out = tmp_path / "a"
    assert main(TRAIN + ["--epochs", "1", "--out", str(out)]) == 0
    stored = RunConfig.from_dict(json.loads((out / "config.json").read_text()))
    again = printed(capsys, ["train", "--config", str(out / "config.json"), "--print-config"])
    assert not stored.differences(RunConfig.from_dict(again))


def test_crossval_takes_the_files_shared_settings(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(printed(capsys, TRAIN + ["--print-config"])))
    job = printed(capsys, ["crossval", "--config", str(path), "--rows", "gauss1-baseline",
                           "--folds", "3", "--print-config"])
    assert job["model"]["family"] == "gaussian"  # the row's model
    assert job["train"]["lr"] == 0.0005 and job["train"]["epochs"] == 4  # the file's
    assert job["data"]["limit"] == 128 and job["data"]["folds"] == 3 and job["data"]["fold"] == 0
    lr = printed(capsys, ["crossval", "--config", str(path), "--rows", "gauss1-baseline",
                          "--lr", "0.002", "--print-config"])
    assert lr["train"]["lr"] == 0.002


def test_bad_config_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["train", "--config", str(tmp_path / "bad.json")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({"optimizer": {}}))
    assert main(["train", "--config", str(tmp_path / "other.json")]) == 2
    assert "expected a RunConfig" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--config", "7x"])
