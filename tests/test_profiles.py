"""The profiles' prior and cross-validation settings (notebooks 04 and 05)."""

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from mtvae import crossval, workflow
from mtvae.cli import build_parser
from mtvae.cli import crossval as crossval_cli
from mtvae.cli import main as cli_main
from mtvae.crossval import job_config
from mtvae.grid import select_rows
from mtvae.profiles import Budget, CrossvalSettings, PriorSettings, get_profile


def test_full_profile_prior_and_crossval_are_the_thesis_settings():
    full = get_profile("full")
    # "a stack of fifteen layers" (thesis 2.5.1); PixelCNNConfig's 64 channels
    assert (full.prior.n_layers, full.prior.channels, full.prior.limit) == (15, 64, None)
    # Table 4.1: all 45 rows, 5 folds of 100 epochs on the whole pool (section 4.3)
    assert len(select_rows(workflow.crossval_rows(full))) == 45
    assert full.crossval.budget == Budget(None, 100) and full.folds == 5
    assert full.crossval.train is False  # the full profile reads the store, never trains it


def test_quick_crossval_rows_follow_the_configs():
    quick = get_profile("quick")
    assert all(r.startswith("vq1-") for r in workflow.crossval_rows(quick))
    rows = workflow.crossval_rows(get_profile("quick", configs={"vq": 2}))
    assert rows == [r.replace("vq1-", "vq2-") for r in workflow.crossval_rows(quick)]
    assert [r.name for r in select_rows(rows)] == rows  # real grid rows, in table order


def test_epochs_and_limit_overrides():
    quick = get_profile("quick")
    p = get_profile("quick", epochs=2)
    assert p.crossval.budget == Budget(quick.crossval.budget.limit, 2)  # EPOCHS: every fold
    assert p.prior == quick.prior  # the prior keeps its own epochs
    p = get_profile("quick", limit=300)
    assert p.crossval.budget == Budget(300, quick.crossval.budget.epochs)
    assert p.prior.limit is None  # the prior then learns the VQ run's own 300 images


def test_summary_sections():
    quick = get_profile("quick")
    base = workflow.summary(quick)
    assert "PixelCNN" not in base and "cross-validation" not in base
    prior = workflow.summary(quick, "prior").splitlines()
    assert prior[:-1] == base.splitlines()
    assert prior[-1].split(None, 2)[2] == "6 layers, 32 channels, 8,000 images x 5 epochs"
    cv = workflow.summary(quick, "crossval")
    assert "2 folds over 4,000 images x 5 epochs" in cv and "vq1-baseline" in cv
    with pytest.raises(ValueError, match="section"):
        workflow.summary(quick, "priors")


def test_figure_labels_name_the_settings_that_made_them():
    quick = get_profile("quick")
    label = workflow.label(quick)  # notebooks 01-03
    assert label == ("quick profile: mnist-sample, Gaussian VAE 800 images x 3 epochs; VQ-VAE "
                     "2,000 images x 5 epochs, batch 32, seed 0, protocol thesis")
    assert workflow.label(quick, "prior") == label + \
        "; PixelCNN prior 6 layers, 32 channels, 8,000 images x 5 epochs"
    assert workflow.label(quick, "crossval").endswith(
        "; cross-validation 2 folds over 4,000 images x 5 epochs each")
    with pytest.raises(ValueError, match="section"):
        workflow.label(quick, "table")


def test_crossval_store_is_named_by_the_settings_folds_must_share(tmp_path):
    quick = get_profile("quick")
    assert workflow.crossval_store(quick, tmp_path).name == "crossval-quick-n4000-e5-b32-s0-thesis"
    assert workflow.crossval_store(get_profile("full"), tmp_path).name == \
        "crossval-full-nall-e100-b128-s0-thesis"
    stores = {workflow.crossval_store(get_profile("quick", epochs=e, seed=s, protocol=pr), tmp_path)
              for e in (1, 2) for s in (0, 1) for pr in ("thesis", "mtvae")}
    assert len(stores) == 8
    with pytest.raises(ValueError, match="unknown protocol"):
        get_profile("quick", protocol="paper")


class _Captured(Exception):
    """Raised in place of training: the jobs and settings a sweep was about to run."""


def _capture_run_jobs(monkeypatch, module) -> dict:
    seen: dict = {}

    def run_jobs(jobs, settings, results, **kwargs):
        seen.update(jobs=list(jobs), settings=settings, results=Path(results))
        raise _Captured

    monkeypatch.setattr(module, "run_jobs", run_jobs)
    return seen


# Hand-counted: quick cross-validates 5 VQ rows in 2 folds, full all 45 Table 4.1 rows in 5.
JOBS = {"quick": 5 * 2, "full": 45 * 5}


@pytest.mark.parametrize("name", ["quick", "full"])
def test_crossval_command_trains_the_same_runs_as_the_notebook(name, tmp_path, monkeypatch):
    """The printed command, parsed by the real CLI parser and run by the real CLI, would train
    the same fold runs into the same store as the notebook's ``run_crossval``, and each run has
    the profile's settings, field by field."""
    p = get_profile(name)
    b = p.crossval.budget
    store = tmp_path / "a store"
    words = shlex.split(workflow.crossval_command(p, store))
    assert words[:4] == ["python", "-m", "mtvae", "crossval"]

    # the flags, as the CLI's parser reads them, against the profile's fields
    args = build_parser().parse_args(words[3:])
    assert args.dataset == [p.dataset] and args.rows == workflow.crossval_rows(p)
    assert (args.folds, args.epochs, args.limit) == (p.folds, b.epochs, b.limit)
    assert (args.batch_size, args.seed, args.protocol) == (p.batch_size, p.seed, p.protocol)
    assert args.data_root == p.data_root and args.results == str(store) and args.no_progress
    assert not args.per_fold_seeds  # every fold starts from the same weights, as the notebook

    # what each side would train: the CLI run on the printed words, the notebook's call
    monkeypatch.setattr(workflow, "load_data", lambda profile, root=None: None)  # full: no download
    cli = _capture_run_jobs(monkeypatch, crossval_cli)
    with pytest.raises(_Captured):
        cli_main(words[3:])
    notebook = _capture_run_jobs(monkeypatch, crossval)
    with pytest.raises(_Captured):
        workflow.run_crossval(p, store=store, train=True)
    assert cli["results"] == notebook["results"] == store
    assert cli["jobs"] == notebook["jobs"] and len(cli["jobs"]) == JOBS[name]
    assert {j.row for j in cli["jobs"]} == {r.name for r in select_rows(workflow.crossval_rows(p))}
    assert cli["settings"].same_init and notebook["settings"].same_init
    for job in cli["jobs"]:
        ours, theirs = job_config(job, cli["settings"]), job_config(job, notebook["settings"])
        assert ours.differences(theirs) == [] and ours.train.epochs == theirs.train.epochs
        assert (ours.data.dataset, ours.data.fold, ours.data.folds, ours.data.limit) == \
            (p.dataset, job.fold, p.folds, b.limit)
        assert (ours.train.epochs, ours.train.batch_size, ours.train.seed) == \
            (b.epochs, p.batch_size, p.seed)
        assert ours.train.protocol == p.protocol == "thesis" and not ours.train.progress
        # the thesis protocol: the thesis code's contiguous folds and unshuffled batches
        assert not ours.data.shuffle_folds and not ours.train.shuffle


def _tiny(tmp_path, train=True):
    p = get_profile("quick")
    return replace(p, crossval=CrossvalSettings(rows=("vq{vq}-baseline",), budget=Budget(64, 1),
                                                train=train),
                   prior=PriorSettings(n_layers=2, channels=8, epochs=1, limit=None))


def test_run_crossval_without_training_reports_the_command(tmp_path):
    p, lines = _tiny(tmp_path, train=False), []
    assert workflow.run_crossval(p, tmp_path, log=lines.append) is None
    assert "2 of 2 fold runs are not in" in lines[0]
    assert workflow.crossval_command(p, workflow.crossval_store(p, tmp_path)) in lines[0]
    with pytest.raises(ValueError, match="results_dir"):
        workflow.run_crossval(p)


@pytest.mark.slow
def test_run_crossval_trains_once_then_reads_the_store(tmp_path):
    p = _tiny(tmp_path)
    table = workflow.run_crossval(p, tmp_path, log=lambda s: None)
    assert list(table["row"]) == ["vq1-baseline"] and table["n"][0] == 2
    fold = workflow.crossval_store(p, tmp_path) / "mnist-sample" / "vq1-baseline" / "fold0.json"
    record = json.loads(fold.read_text())
    assert record["folds"] == 2 and record["epochs"] == 1
    stamp = fold.stat().st_mtime_ns
    # reads, trains nothing
    again = workflow.run_crossval(p, tmp_path, train=False, log=lambda s: None)
    assert fold.stat().st_mtime_ns == stamp
    assert again["recon"][0] == table["recon"][0]
    # one fold missing: the other is still tabulated, and the command is logged
    fold.unlink()
    lines = []
    partial = workflow.run_crossval(p, tmp_path, train=False, log=lines.append)
    assert partial["n"][0] == 1 and "1 of 2 fold runs" in lines[0]


@pytest.mark.slow
def test_train_prior_saves_in_the_run_folder_and_loads_when_finished(tmp_path):
    p = replace(_tiny(tmp_path), budgets={"gaussian": Budget(64, 1), "vq": Budget(64, 1)})
    vq = workflow.train_run(p, tmp_path, "vq", "single")
    prior = workflow.train_prior(p, vq)
    assert prior.out_dir == vq.out_dir / "prior-l2-c8-nrun-s0"
    assert (prior.config.pixelcnn.n_layers, prior.config.pixelcnn.channels) == (2, 8)
    assert prior.metrics["test"]["uniform_bits"] == 7.0  # log2 of VQ config 1's K = 128
    saved = (prior.out_dir / "prior.pt").stat().st_mtime_ns
    again = workflow.train_prior(p, vq)  # finished: loaded, not retrained
    assert (prior.out_dir / "prior.pt").stat().st_mtime_ns == saved
    assert again.metrics == prior.metrics
    assert workflow.train_prior(p, vq, n_layers=3).out_dir.name == "prior-l3-c8-nrun-s0"
