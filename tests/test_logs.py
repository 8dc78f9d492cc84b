"""Live logs: metrics.csv grows epoch by epoch, TensorBoard's own reader loads the events, the
mtvae logger carries the library's messages."""

import csv
import json
import logging

import pytest

from mtvae import fit, make_config, train_model
from mtvae.cli import main
from mtvae.logs import show

RUN = dict(model="vq", method="single", epochs=3, limit=128, batch_size=64, progress=False)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_metrics_csv_has_each_epoch_as_soon_as_it_ends(tmp_path):
    out = tmp_path / "run"
    seen = []

    def callback(epoch, record):  # called after the epoch, while the run goes on
        seen.append([int(r["epoch"]) for r in rows(out / "metrics.csv")])

    result = fit(make_config("mnist-sample", **RUN), out, callback=callback)
    assert seen == [[0], [0, 1], [0, 1, 2]]
    final = rows(out / "metrics.csv")
    for row, record in zip(final, result.history):
        assert float(row["val_loss"]) == pytest.approx(record["val_loss"], rel=1e-12)
        assert float(row["train_recon_cond"]) == pytest.approx(record["train_recon_cond"])


def test_a_resumed_run_rewrites_metrics_csv_from_its_checkpoint(tmp_path):
    out = tmp_path / "run"
    train_model("mnist-sample", out=out, **{**RUN, "epochs": 2})
    (out / "metrics.csv").write_text("epoch,val_loss\n0,1\n1,2\n7,3\n")  # a killed run's rows
    result = train_model("mnist-sample", out=out, **RUN)  # more epochs: continues
    assert [int(r["epoch"]) for r in rows(out / "metrics.csv")] == [0, 1, 2]
    assert float(rows(out / "metrics.csv")[2]["val_loss"]) == pytest.approx(
        result.history[2]["val_loss"])


def test_config_json_is_the_run_config(tmp_path):
    result = train_model("mnist-sample", out=tmp_path / "r", **{**RUN, "epochs": 1})
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == result.config.to_dict()


def test_tensorboard_events_load_in_tensorboards_reader(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra (pip install 'mtvae[logs]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    assert main(["train", "--model", "vq", "--method", "single", "--epochs", "2", "--limit",
                 "128", "--batch-size", "64", "--no-progress", "--log", "tensorboard",
                 "--out", str(out)]) == 0
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    history = json.loads((out / "metrics.json").read_text())["history"]
    events = acc.Scalars("val/loss")
    assert [e.step for e in events] == [0, 1]
    assert [e.value for e in events] == pytest.approx([h["val_loss"] for h in history], rel=1e-6)
    assert "train/recon_cond" in acc.Tags()["scalars"]
    grid = acc.Images("reconstructions")
    # 8 validation images of 28 px, 1 px padding; rows: input, m = 0, with m
    assert len(grid) == 2 and (grid[-1].width, grid[-1].height) == (8 * 29 + 1, 3 * 29 + 1)


def test_library_messages_go_to_the_mtvae_logger_with_timestamps(tmp_path, capsys):
    out = tmp_path / "run"
    train_model("mnist-sample", out=out, **{**RUN, "epochs": 1})
    show()
    try:
        train_model("mnist-sample", out=out, resume=False, **{**RUN, "epochs": 1})
    finally:
        for h in [h for h in logging.getLogger("mtvae").handlers if getattr(h, "_mtvae", False)]:
            logging.getLogger("mtvae").removeHandler(h)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "moved the previous run" in x)
    assert line[:4].isdigit() and line[4] == "-" and "WARNING" in line
