"""Reliability: no NaN taken as a result, one-line errors that name the fix, resumable
interruptions (Ctrl-C, SIGTERM, --no-resume), safe concurrent writers, safe checkpoint loading."""

import json
import math
import os
import signal

import numpy as np
import pytest
import torch

import mtvae
from mtvae import crossval
from mtvae.checkpoint import atomic_save, atomic_write_json, load_checkpoint, load_model
from mtvae.cli import main
from mtvae.config import RunConfig
from mtvae.crossval import Settings, job_config, plan, run_jobs
from mtvae.data import DataCorruptError, ImageData, load_dataset, make_splits, to_float
from mtvae.recovery import RunInterrupted
from mtvae.store import claim, fold_file, load_record, load_results, release
from mtvae.train import TrainingDivergedError, fit, resolve_device

TINY = dict(model="vq", config=1, method="single", epochs=1, limit=256, batch_size=64,
            progress=False, eval_batch_size=500)
CLI = ["train", "--model", "vq", "--config", "1", "--method", "single", "--epochs", "2",
       "--limit", "256", "--batch-size", "64", "--no-progress"]


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist-sample")


def tiny(**kw):
    return mtvae.make_config("mnist-sample", **{**TINY, **kw})


def fake_fit():
    from test_crossval import FakeFit  # the bookkeeping stand-in for fit

    return FakeFit()


def stop_in_epoch_1(monkeypatch, stop):
    """Call ``stop()`` in the second epoch's validation, after epoch 0's checkpoint."""
    from mtvae import train

    real, calls = train.evaluate, []

    def evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            stop()
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", evaluate)
    return lambda: monkeypatch.setattr(train, "evaluate", real)


# ----------------------------------------------------------------- 1. NaN is never a result


def test_nan_images_in_the_validation_pool_stop_the_run(sample, tmp_path):
    test = to_float(sample.test)
    test[:] = math.nan
    data = ImageData("mnist-sample", sample.train, test)
    with pytest.raises(TrainingDivergedError, match="validation .* at epoch 0") as err:
        mtvae.train_model("mnist-sample", data=data, out=tmp_path, **TINY)
    assert "No epoch finished" in str(err.value) and "kept in" not in str(err.value)
    assert not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "checkpoint.pt").exists()


def test_nan_images_in_the_held_out_fold_are_not_a_result(sample):
    splits = make_splits(sample, 0, 2, limit=256)
    train = to_float(sample.train)
    train[splits.test] = math.nan  # only the held-out images: training itself is fine
    data = ImageData("mnist-sample", train, sample.test)
    with pytest.raises(TrainingDivergedError, match="test metrics are not finite"):
        fit(tiny(fold=0, folds=2), data=data)


def write_folds(root, values):
    """Fold results of vq1-baseline on mnist with the given test recon per fold."""
    for fold, recon in enumerate(values):
        job = crossval.Job("mnist", "vq1-baseline", fold)
        test = {"recon": recon, "vq": 0.1}
        path = fold_file(root, job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "dataset": "mnist", "row": job.row, "fold": fold, "folds": len(values), "seed": 0,
            "epochs": 1, "best_epoch": 0, "n_params": 1, "metrics": {"val": test, "test": test},
            "history": [], "config": job_config(job, Settings(folds=len(values))).to_dict(),
            "environment": {}}))


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, "0.1"])
def test_table_refuses_a_fold_whose_metric_is_not_a_number(tmp_path, bad):
    from mtvae import report

    write_folds(tmp_path, [0.1, bad, 0.3])
    for load in (lambda: load_results(tmp_path, "mnist"), lambda: report.table(tmp_path, "mnist")):
        with pytest.raises(ValueError, match=r"fold1\.json: metric (val|test) recon is"):
            load()


# -------------------------------------------------------------- 2. --no-resume strands nothing


def test_no_resume_sets_the_old_run_aside_and_the_hint_resumes(sample, tmp_path):
    out = tmp_path / "run"
    fit(tiny(seed=0), out, data=sample)  # a finished run

    def stop(epoch, record):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match="without --no-resume") as err:
        fit(tiny(seed=1, epochs=2), out, data=sample, resume=False, callback=stop)
    assert err.value.checkpoint == out / "checkpoint.pt" and err.value.epochs == 1
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(moved) == 1 and (moved[0] / "metrics.json").exists()  # nothing lost
    assert not (out / "metrics.json").exists()
    ran = []
    result = fit(tiny(seed=1, epochs=2), out, data=sample, callback=lambda e, r: ran.append(e))
    assert ran == [1] and len(result.history) == 2  # resumed, not refused, not restarted


def test_cli_interrupt_prints_a_command_that_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    args = CLI + ["--out", str(out)]
    assert main(args + ["--epochs", "1"]) == 0

    def ctrl_c():
        raise KeyboardInterrupt

    undo = stop_in_epoch_1(monkeypatch, ctrl_c)
    assert main(args + ["--seed", "3", "--no-resume"]) == 130
    err = capsys.readouterr().err
    assert "epochs 0-0 are kept in" in err
    command = err.split("resume with: python -m mtvae ")[1].strip().split()
    assert "--no-resume" not in command and command[-2:] == ["--seed", "3"]
    undo()
    assert main(command) == 0
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2


# ------------------------------------------------------- 3. one-line errors that name the fix


@pytest.mark.parametrize("device, match", [("foo", "unknown device 'foo'"),
                                           ("tpu", "unknown device 'tpu'")])
def test_unknown_devices_are_one_line_errors(device, match, capsys):
    assert main(CLI + ["--device", device]) == 2
    assert match in capsys.readouterr().err
    with pytest.raises(ValueError, match=match):
        resolve_device(device)


def test_mps_without_mps_is_a_one_line_error(capsys):
    if torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    assert main(CLI + ["--device", "mps"]) == 2
    assert "MPS (Apple GPU) is not available" in capsys.readouterr().err


def test_an_output_path_that_is_a_file_stops_before_training(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")

    def no_training(*a, **k):
        raise AssertionError("trained before checking the output folder")

    monkeypatch.setattr("mtvae.train.load_dataset", no_training)
    monkeypatch.setattr(crossval, "load_dataset", no_training)
    for out in (blocker, blocker / "run"):
        assert main(CLI + ["--out", str(out)]) == 2
        assert "choose another --out folder" in capsys.readouterr().err
        assert main(["crossval", "--rows", "vq1-baseline", "--folds", "2", "--epochs", "1",
                     "--results", str(out)]) == 2
        assert "choose another --results folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_output_folder_stops_before_training(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert main(CLI + ["--out", str(ro)]) == 2
    assert "not writable" in capsys.readouterr().err


@pytest.mark.parametrize("text, match", [("{}", "no config"), ("[1, 2]", "no config"),
                                         ('{"config": {}, "history": [], "best_epoch": 0}',
                                          "no metrics"),
                                         ("{not json", "not readable JSON")])
def test_a_broken_metrics_json_names_the_file_and_the_fix(sample, tmp_path, capsys, text, match):
    fit(tiny(), tmp_path, data=sample)
    (tmp_path / "metrics.json").write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        fit(tiny(), tmp_path, data=sample)
    assert "metrics.json" in str(err.value) and "delete it" in str(err.value)
    assert main(CLI + ["--out", str(tmp_path)]) == 2
    assert "metrics.json" in capsys.readouterr().err


@pytest.mark.parametrize("text, match", [("{}", "no dataset"), ("[1, 2]", "not a JSON object"),
                                         ("{trunc", "not a readable fold result")])
def test_a_broken_fold_file_names_the_file(tmp_path, text, match):
    path = tmp_path / "mnist" / "vq1-baseline" / "fold0.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        load_results(tmp_path)
    assert str(path) in str(err.value)


def test_a_fold_file_without_metrics_names_the_file(tmp_path):
    write_folds(tmp_path, [0.1, 0.2])
    path = fold_file(tmp_path, crossval.Job("mnist", "vq1-baseline", 1))
    record = json.loads(path.read_text())
    del record["metrics"]
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"fold1\.json is not a fold result \(no metrics\)"):
        load_results(tmp_path, "mnist")


def test_divergence_in_the_cli_is_one_line_and_the_hint_continues_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    gauss = ["train", "--model", "gaussian", "--method", "baseline", "--limit", "256",
             "--batch-size", "64", "--no-progress", "--out", str(out)]
    assert main(gauss + ["--epochs", "1", "--lr", "1e6"]) == 2  # diverges in the first epoch
    err = capsys.readouterr().err
    assert "error: the " in err and "No epoch finished" in err
    assert "Traceback" not in err and not (out / "checkpoint.pt").exists()
    assert main(gauss + ["--epochs", "1", "--no-resume"]) == 0  # one good epoch
    capsys.readouterr()
    assert main(gauss + ["--epochs", "2", "--lr", "1e6", "--change-lr"]) == 2
    err = capsys.readouterr().err
    assert f"Epochs 0-0 are kept in {out / 'checkpoint.pt'}" in err and "--change-lr" in err
    assert main(gauss + ["--epochs", "2", "--lr", "1e-4"]) == 2  # a changed lr is not a resume
    assert "--change-lr" in capsys.readouterr().err
    assert main(gauss + ["--epochs", "2", "--lr", "1e-4", "--change-lr"]) == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert len(saved["history"]) == 2
    assert saved["lr_changes"] == [{"epoch": 1, "from": 1e-3, "to": 1e-4}]


def test_a_truncated_dataset_file_is_corrupt_not_missing(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 60000), ("t10k", 10000)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            np.array([0x803, n, 28, 28], ">i4").tobytes() + bytes(100))  # header, then cut off
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(
            np.array([0x801, n], ">i4").tobytes() + bytes(n))
    with pytest.raises(DataCorruptError, match="truncated or corrupt .*: delete it"):
        load_dataset("mnist", tmp_path, download=False)


# ---------------------------------------------------------------------- 4. concurrent writers


class WritesTheSameFile:
    """Serialised in the middle of an outer write, it writes the same file (another process)."""

    def __init__(self, path, save):
        self.path, self.save = path, save

    def __str__(self):  # json.dump(default=str)
        self.save({"inner": 1}, self.path)
        return "outer"

    def __reduce__(self):  # torch.save
        self.save({"inner": 1}, self.path)
        return (str, ("outer",))


@pytest.mark.parametrize("save, load", [
    (atomic_write_json, lambda p: json.loads(p.read_text())),
    (atomic_save, lambda p: torch.load(p, weights_only=False))])  # our own test file
def test_two_writers_of_one_file_do_not_trip_over_each_other(tmp_path, save, load):
    path = tmp_path / "fold0.json"
    save({"x": WritesTheSameFile(path, save)}, path)
    assert load(path) == {"x": "outer"}  # the later rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["fold0.json"]  # no temporary left


def test_celeba_cache_written_by_two_processes_at_once(tmp_path, monkeypatch):
    from mtvae import data as data_module

    monkeypatch.setattr(data_module, "_decode_celeba", lambda root, split, download, crop:
                        torch.full((3 if split == "train" else 2, 3, 64, 64), 7, dtype=torch.uint8))
    real_replace, real_fsync, synced, other = os.replace, os.fsync, [], []

    def replace(src, dst):
        if not other:  # another process writes the same cache between our write and rename
            other.append(None)
            other[0] = load_dataset("celeba", tmp_path, download=False)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    mine = load_dataset("celeba", tmp_path, download=False)
    assert tuple(mine.train.shape) == (3, 3, 64, 64) and tuple(other[0].test.shape) == (2, 3, 64, 64)
    assert len(synced) >= 4  # each cache file of both writers was fsynced before its rename
    monkeypatch.setattr(os, "replace", real_replace)
    again = load_dataset("celeba", tmp_path, download=False)  # from the cache
    assert torch.equal(again.train, mine.train)
    assert sorted(p.name for p in (tmp_path / "celeba").iterdir()) == [
        "mtvae_test_64.npy", "mtvae_train_64.npy"]


def test_two_workers_given_the_same_job_train_it_once(tmp_path, monkeypatch):
    jobs = plan("mnist-sample", ["vq1-baseline"], 2)
    fake = fake_fit()
    monkeypatch.setattr(crossval, "fit", fake)
    held = claim(fold_file(tmp_path, jobs[0]))  # another worker is training fold 0
    summary = run_jobs(jobs, Settings(folds=2, epochs=1), tmp_path,
                       data=load_dataset("mnist-sample"), log=lambda s: None)
    assert summary["running"] == jobs[:1] and summary["done"] == jobs[1:]
    assert [c.data.fold for c, _, _ in fake.calls] == [1]
    release(held, fold_file(tmp_path, jobs[0]))
    summary = run_jobs(jobs, Settings(folds=2, epochs=1), tmp_path, log=lambda s: None)
    assert summary["done"] == jobs[:1] and summary["skipped"] == jobs[1:]
    assert not list(tmp_path.rglob("*.lock"))  # finished folds leave no lock file


# ---------------------------------------------------------- 5. ignored or clamped inputs


def test_an_exponent_for_a_baseline_is_not_stored():
    with pytest.warns(UserWarning, match="exponent=60.0 ignored by the baseline"):
        cfg = mtvae.make_config(method="baseline", exponent=60.0)
    assert cfg.observation == mtvae.make_config(method="baseline").observation
    with pytest.warns(UserWarning, match="fixed count"):
        multi = mtvae.make_config(method="multidecoder", exponent=60.0)
    assert multi.observation.exponent == 40.0
    # runs stored before, with the ignored value, are still the same run
    old = RunConfig.from_dict({**cfg.to_dict(), "observation": {
        **cfg.to_dict()["observation"], "exponent": 60.0}})
    assert old.differences(cfg) == []


def test_a_limit_larger_than_the_pool_is_clamped_and_stored_as_used(sample, tmp_path):
    small = ImageData("mnist-sample", sample.train[:200], sample.test)
    with pytest.warns(UserWarning, match="limit 1000 is larger than the 200-image"):
        first = fit(tiny(limit=1000), tmp_path, data=small)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["config"]["data"]["limit"] == 200 == first.config.data.limit
    calls = []
    again = fit(tiny(limit=1000), tmp_path, data=small, callback=lambda e, r: calls.append(e))
    assert calls == [] and again.metrics == first.metrics  # the same run, loaded


def test_a_fold_run_with_a_clamped_limit_matches_the_same_settings(tmp_path):
    job = crossval.Job("mnist-sample", "vq1-baseline", 0)
    asked = job_config(job, Settings(folds=2, epochs=1, limit=100000))
    ran = asked.to_dict()
    ran["data"]["limit"] = 8000  # what fit stored: the 8,000-image pool it used
    test = {"recon": 0.1, "vq": 0.1}
    path = fold_file(tmp_path, job)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"dataset": job.dataset, "row": job.row, "fold": 0, "folds": 2,
                                "seed": 0, "epochs": 1, "best_epoch": 0, "config": ran,
                                "metrics": {"val": test, "test": test}, "pool_size": 8000}))
    assert load_record(path, asked)["pool_size"] == 8000


# ------------------------------------------------------------------- 6. API types


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs="2"), "epochs must be an integer, got '2'"),
    (dict(lr="1e-3"), "lr must be a number, got '1e-3'"),
    (dict(epochs=1.5), "epochs must be an integer, got 1.5"),
    (dict(config=True), "config must be an integer, got True"),
    (dict(limit="5"), "limit must be an integer or None"),
    (dict(softadapt="yes"), "softadapt must be True or False"),
])
def test_wrong_types_are_value_errors_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mtvae.make_config(**kwargs)
    with pytest.raises(ValueError, match=match):
        mtvae.train_model("mnist-sample", **kwargs)


def test_numpy_numbers_are_plain_numbers_in_the_config():
    cfg = mtvae.make_config(epochs=np.int64(3), lr=np.float32(0.5))
    assert type(cfg.train.epochs) is int and type(cfg.train.lr) is float
    with pytest.raises(ValueError, match="folds must be an integer"):
        Settings(folds="5")


# --------------------------------------------------------- 7. crossval past corrupt fold files


def test_keep_going_goes_past_a_corrupt_fold_file_and_dry_run_reports_it(tmp_path, monkeypatch,
                                                                         capsys):
    jobs = plan("mnist-sample", ["vq1-baseline"], 2)
    corrupt = fold_file(tmp_path, jobs[0])
    corrupt.parent.mkdir(parents=True)
    corrupt.write_text('{"metrics": {"test": {"recon": NaN}}}')
    monkeypatch.setattr(crossval, "fit", fake_fit())
    summary = run_jobs(jobs, Settings(folds=2, epochs=1), tmp_path, keep_going=True,
                       data=load_dataset("mnist-sample"), log=lambda s: None)
    assert [j for j, _ in summary["failed"]] == jobs[:1] and summary["done"] == jobs[1:]
    assert main(["crossval", "--rows", "vq1-baseline", "--folds", "2", "--epochs", "1",
                 "--dry-run", "--results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mnist-sample vq1-baseline fold 0: corrupt (")
    assert lines[1] == "mnist-sample vq1-baseline fold 1: done"
    assert lines[-1].startswith("0 of 2 jobs to run; 1 fold file(s) corrupt")


# ---------------------------------------------------------------------- 8. safe loading


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.pt"
    torch.save({"config": {}, "image_shape": (1, 28, 28), "model": RunsCode(marker)}, path)
    for load in (load_checkpoint, load_model):
        with pytest.raises(ValueError, match="holds more than weights .*trusted=True"):
            load(path)
    assert not marker.exists()


def test_files_of_earlier_versions_still_load(tmp_path):
    from pathlib import Path

    path = tmp_path / "checkpoint.pt"
    torch.save({"config": {"data": {"root": Path("data")}}, "model": {},
                "environment": {"torch": torch.__version__}}, path)  # a TorchVersion, a Path
    assert load_checkpoint(path)["environment"]["torch"] == str(torch.__version__)


# ------------------------------------------------------------------------------- 9. SIGTERM


def test_sigterm_keeps_the_last_epoch_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    args = CLI + ["--out", str(out)]
    before = signal.getsignal(signal.SIGTERM)
    # what SLURM sends before preemption, in the second epoch
    undo = stop_in_epoch_1(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert main(args) == 143
    err = capsys.readouterr().err
    assert "SIGTERM: stopped; epochs 0-0 are kept in" in err and "resume with:" in err
    assert signal.getsignal(signal.SIGTERM) == before  # restored after the loop
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    undo()
    assert main(args) == 0
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2
