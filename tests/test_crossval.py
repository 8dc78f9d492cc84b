"""Cross-validation jobs: folds, sharding, the results store, resuming, the thesis protocol."""

import itertools
import json

import pytest
import torch

from mtvae import crossval
from mtvae.cli import main
from mtvae.crossval import Job, Settings, job_config, parse_shard, plan, run_jobs, shard
from mtvae.data import kfold_indices, load_dataset, make_splits
from mtvae.store import collect, fold_file, load_results, missing
from mtvae.train import Result

# ------------------------------------------------------------------------------------- folds


@pytest.mark.parametrize("shuffle", [True, False])
def test_folds_are_disjoint_and_cover_the_pool(shuffle):
    data = load_dataset("mnist-sample")
    k, limit = 5, 1003  # not a multiple of k: the first 1003 % 5 = 3 folds get one more
    held, pool = [], None
    for fold in range(k):
        s = make_splits(data, fold, k, seed=3, shuffle=shuffle, limit=limit)
        tr, te = set(s.train.tolist()), set(s.test.tolist())
        assert not tr & te
        pool = pool or tr | te
        assert tr | te == pool  # every fold splits the same limited pool
        held.append(te)
    assert len(pool) == limit
    assert [len(h) for h in held] == [201, 201, 201, 200, 200]
    for a, b in itertools.combinations(held, 2):
        assert not a & b
    assert set().union(*held) == pool


def test_unshuffled_folds_are_contiguous_blocks_like_sklearn():
    # sklearn KFold(3, shuffle=False) over 10 items: [0..3], [4..6], [7..9]
    held = [te.tolist() for _, te in kfold_indices(10, 3, shuffle=False)]
    assert held == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


# ---------------------------------------------------------------------------------- sharding


def test_shards_partition_the_grid_exactly():
    jobs = plan(["mnist", "cifar10", "celeba"], "grid", 5)
    # 45 table rows + 14 x 2 sweep rows, of which a = 40 and 60 (2 x 2) are table rows
    assert len(jobs) == 3 * (45 + 28 - 4) * 5 == len(set(jobs))
    for n in (1, 2, 3, 8, 1035, 2000):
        parts = [shard(jobs, i, n) for i in range(n)]
        assert sorted(itertools.chain(*parts)) == sorted(jobs)  # each job exactly once
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1


def test_job_order_does_not_depend_on_argument_order():
    a = plan(["celeba", "mnist"], ["vq1-baseline", "gauss2-multi-*"], 5)
    b = plan(["mnist", "celeba"], ["gauss2-multi-*", "vq1-baseline"], 5)
    assert a == b and len(a) == 2 * 5 * 5


@pytest.mark.parametrize("bad", ["8/8", "-1/4", "1/0", "a/b", "3", ""])
def test_bad_shard_specs_are_rejected(bad):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(bad)


def test_shard_from_a_slurm_array(monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    assert parse_shard("slurm") == (4, 8)
    assert parse_shard("2/8") == (2, 8)


# ---------------------------------------------------------------- bookkeeping with a fake fit


class FakeFit:
    """Stands in for mtvae.train.fit: records its calls, fails on the call numbers in ``fail``."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, config, out_dir, *, data=None, init_state=None, callback=None, **_):
        self.calls.append((config, out_dir, init_state))
        if len(self.calls) in self.fail:
            raise RuntimeError("injected failure")
        value = 0.01 * (config.data.fold + 1)
        test = {"recon": value, "recon_cond": value / 2, "vq": value / 10, "loss": value}
        history = [{"epoch": e, "val_loss": 1.0 / (e + 1)} for e in range(config.train.epochs)]
        return Result(None, config, history, config.train.epochs - 1,
                      {"val": dict(test), "test": test}, out_dir,
                      {"n_params": 1234, "environment": {"torch": torch.__version__,
                                                         "device": "cpu", "git_commit": "abc"}})


ROWS2 = ["vq1-baseline", "vq1-single-gaussian-a40"]


def test_interrupted_sweep_resumes_with_only_the_missing_fold_runs(tmp_path, monkeypatch):
    jobs = plan("mnist-sample", ROWS2, 3)
    settings = Settings(folds=3, epochs=2, device="cpu")
    first = FakeFit(fail={4})
    monkeypatch.setattr(crossval, "fit", first)
    with pytest.raises(RuntimeError, match="injected"):
        run_jobs(jobs, settings, tmp_path, data=load_dataset("mnist-sample"), log=lambda s: None)
    assert missing(jobs, tmp_path) == jobs[3:]  # three finished, the failed one has no result
    second = FakeFit()
    monkeypatch.setattr(crossval, "fit", second)
    summary = run_jobs(jobs, settings, tmp_path, log=lambda s: None)
    ran = [(c.data.fold, out.parent.name) for c, out, _ in second.calls]
    assert ran == [(j.fold, j.row) for j in jobs[3:]]
    assert summary["skipped"] == jobs[:3] and summary["done"] == jobs[3:]
    assert missing(jobs, tmp_path) == []
    third = FakeFit()  # a third run has nothing to do
    monkeypatch.setattr(crossval, "fit", third)
    assert run_jobs(jobs, settings, tmp_path, log=lambda s: None)["skipped"] == jobs
    assert third.calls == []


def test_keep_going_logs_failures_and_finishes_the_rest(tmp_path, monkeypatch):
    jobs = plan("mnist-sample", ROWS2, 2)
    monkeypatch.setattr(crossval, "fit", FakeFit(fail={2}))
    summary = run_jobs(jobs, Settings(folds=2, epochs=1), tmp_path, keep_going=True,
                       data=load_dataset("mnist-sample"), log=lambda s: None)
    assert [j for j, _ in summary["failed"]] == [jobs[1]]
    assert missing(jobs, tmp_path) == [jobs[1]]


def test_same_initial_weights_per_fold_or_per_fold_seeds(tmp_path, monkeypatch):
    jobs = plan("mnist-sample", ["vq1-baseline"], 3)
    data = load_dataset("mnist-sample")
    fake = FakeFit()
    monkeypatch.setattr(crossval, "fit", fake)
    run_jobs(jobs, Settings(folds=3, epochs=1, seed=7), tmp_path / "a", data=data,
             log=lambda s: None)
    inits = [init for _, _, init in fake.calls]
    assert all(i is not None for i in inits)
    for other in inits[1:]:
        assert all(torch.equal(inits[0][k], other[k]) for k in inits[0])
    assert [c.train.seed for c, _, _ in fake.calls] == [7, 7, 7]
    fake = FakeFit()
    monkeypatch.setattr(crossval, "fit", fake)
    run_jobs(jobs, Settings(folds=3, epochs=1, seed=7, same_init=False), tmp_path / "b",
             data=data, log=lambda s: None)
    assert [(c.train.seed, init) for c, _, init in fake.calls] == [(7, None), (8, None),
                                                                   (9, None)]


def test_a_store_with_other_settings_is_an_error_not_a_skip(tmp_path, monkeypatch):
    jobs = plan("mnist-sample", ["vq1-baseline"], 2)
    monkeypatch.setattr(crossval, "fit", FakeFit())
    run_jobs(jobs, Settings(folds=2, epochs=1), tmp_path, data=load_dataset("mnist-sample"),
             log=lambda s: None)
    for other in (Settings(folds=2, epochs=3), Settings(folds=2, epochs=1, protocol="thesis"),
                  Settings(folds=2, epochs=1, options={"lr": 3e-4})):
        with pytest.raises(ValueError, match="another --results folder"):
            run_jobs(jobs, other, tmp_path, log=lambda s: None)


def test_collect_merges_the_stores_of_separate_workers(tmp_path, monkeypatch):
    jobs = plan("mnist-sample", ROWS2, 3)
    settings = Settings(folds=3, epochs=1)
    monkeypatch.setattr(crossval, "fit", FakeFit())
    data = load_dataset("mnist-sample")
    for i in range(3):  # three machines, each with its own folder
        run_jobs(shard(jobs, i, 3), settings, tmp_path / f"w{i}", data=data, log=lambda s: None)
    frame = collect(tmp_path / "all", [tmp_path / f"w{i}" for i in range(3)])
    assert len(frame) == len(jobs) and missing(jobs, tmp_path / "all") == []
    assert sorted(frame["test_recon"]) == sorted(0.01 * (j.fold + 1) for j in jobs)
    assert len(load_results(tmp_path / "all", "mnist-sample")) == len(jobs)
    assert (tmp_path / "all" / "folds.csv").read_text().count("\n") == len(jobs) + 1
    # the same job trained with other settings elsewhere is a conflict
    run_jobs(jobs[:1], Settings(folds=3, epochs=2), tmp_path / "odd", data=data,
             log=lambda s: None)
    with pytest.raises(ValueError, match="conflicting"):
        collect(tmp_path / "all", [tmp_path / "odd"])


# ----------------------------------------------------------------------- real tiny trainings


@pytest.mark.slow
def test_a_killed_fold_resumes_from_its_last_epoch(tmp_path):
    """Tiny real runs (VQ config 1, 300 images, 2 folds x 2 epochs): a fold killed after its
    first epoch trains only its second epoch on the rerun; the finished fold is not touched."""
    data = load_dataset("mnist-sample")
    jobs = plan("mnist-sample", ["vq1-baseline"], 2)
    settings = Settings(folds=2, epochs=2, limit=300, device="cpu", keep="model",
                        options={"val_fraction": 0.05, "progress": False})
    epochs_run = []

    def kill_in_fold_1(epoch, record):
        epochs_run.append(epoch)
        if len(epochs_run) == 3:  # fold 0: epochs 0, 1; fold 1: epoch 0, then killed
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, settings, tmp_path, data=data, callback=kill_in_fold_1,
                 log=lambda s: None)
    assert missing(jobs, tmp_path) == jobs[1:]
    fold0 = fold_file(tmp_path, jobs[0]).read_text()
    epochs_run.clear()
    summary = run_jobs(jobs, settings, tmp_path, data=data,
                       callback=lambda epoch, record: epochs_run.append(epoch),
                       log=lambda s: None)
    assert epochs_run == [1] and summary["done"] == jobs[1:]
    assert fold_file(tmp_path, jobs[0]).read_text() == fold0
    record = json.loads(fold_file(tmp_path, jobs[1]).read_text())
    assert [h["epoch"] for h in record["history"]] == [0, 1]
    assert {"recon", "vq"} <= set(record["metrics"]["test"]) and record["fold"] == 1
    assert record["config"]["data"]["fold"] == 1 and record["seed"] == 0
    assert record["environment"]["torch"] == torch.__version__ and "git_commit" in \
        record["environment"]
    assert not (fold_file(tmp_path, jobs[1]).with_suffix("") / "checkpoint.pt").exists()
    assert (fold_file(tmp_path, jobs[1]).with_suffix("") / "model.pt").exists()


@pytest.mark.parametrize("keep, left", [("all", ["checkpoint.pt", "metrics.json", "model.pt"]),
                                        ("model", ["metrics.json", "model.pt"]), ("none", None)])
def test_finished_fold_folders_keep_what_was_asked(tmp_path, keep, left):
    run_dir = tmp_path / "fold0"
    run_dir.mkdir()
    for name in ("checkpoint.pt", "metrics.json", "model.pt"):
        (run_dir / name).write_text("x")
    crossval._tidy(run_dir, keep)
    assert (sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else None) == left


# -------------------------------------------------------------------- protocol and the CLI


def test_thesis_protocol_switches():
    s = Settings(protocol="thesis")
    vq_multi = job_config(Job("mnist", "vq2-multi-uniform", 0), s)
    assert vq_multi.data.shuffle_folds is False and vq_multi.train.shuffle is False
    assert vq_multi.observation.replacement is True and vq_multi.model.shared_decoder is True
    assert vq_multi.train.eval_sample_z is True
    assert job_config(Job("mnist", "vq1-baseline", 0), s).model.thesis_baseline_decoder
    gauss = job_config(Job("mnist", "gauss1-multi-exact", 0), s)
    assert gauss.model.shared_decoder is False and gauss.train.eval_sample_z is True
    # fp32 on every device and SoftAdapt from the thesis code's torch.ones(3)
    sa = job_config(Job("mnist", "gauss1-multi-exact-softadapt", 0), s)
    assert sa.train.amp is False and sa.train.softadapt_init == "ones"
    assert sa.train.softadapt_window == 101 and sa.train.protocol == "thesis"
    ours = job_config(Job("mnist", "vq2-multi-uniform", 0), Settings())
    assert ours.data.shuffle_folds and ours.train.shuffle and not ours.model.shared_decoder
    assert not ours.observation.replacement and not ours.train.eval_sample_z
    assert ours.train.amp and ours.train.softadapt_init == "uniform"
    assert ours.train.protocol == "mtvae"


def test_cli_lists_rows_and_plans_a_shard(tmp_path, capsys):
    assert main(["crossval", "--list-rows", "--rows", "vq1-*"]) == 0
    # the thesis's nine VQ config 1 rows of Table 4.1, in table order (no -spatial rows)
    assert capsys.readouterr().out.split() == [
        "vq1-baseline", "vq1-multi-exact", "vq1-multi-exact-softadapt", "vq1-multi-uniform",
        "vq1-multi-uniform-softadapt", "vq1-single-gaussian-a40", "vq1-single-gaussian-a60",
        "vq1-single-uniform-a40", "vq1-single-uniform-a60"]
    assert main(["crossval", "--dataset", "mnist", "--rows", "all", "--shard", "3/8",
                 "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "28 of 28 jobs to run"  # 225 = 8 x 28 + 1 jobs: shard 0 gets 29
    assert main(["crossval", "--rows", "vq9-baseline", "--dry-run"]) == 2
    assert "unknown row" in capsys.readouterr().err


def test_a_fold_logged_to_tensorboard_keeps_its_logs_not_its_weights(tmp_path):
    run_dir = tmp_path / "fold0"
    (run_dir / "tensorboard").mkdir(parents=True)
    for name in ("checkpoint.pt", "metrics.json", "model.pt", "metrics.csv", "config.json"):
        (run_dir / name).write_text("x")
    crossval._tidy(run_dir, "none")
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "metrics.csv",
                                                         "tensorboard"]
