"""The submitit launcher: tasks through submitit's local executor (processes on this machine),
a preempted task requeued and resumed from its checkpoint, and the sbatch array it writes for
SLURM (with stand-ins for srun and sbatch)."""

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit", reason="the slurm extra (pip install 'mtvae[slurm]')")

from mtvae import launch  # noqa: E402
from mtvae.cli import main  # noqa: E402
from mtvae.crossval import Settings, plan  # noqa: E402
from mtvae.store import fold_file, load_record  # noqa: E402

ARGS = ["--rows", "vq1-baseline", "--folds", "2", "--epochs", "1", "--limit", "64",
        "--batch-size", "32", "--no-progress"]


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    """The task processes import this checkout's mtvae (as an installed mtvae would be)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_local_launcher_runs_one_task_per_fold_into_the_store(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["crossval", *ARGS, "--launcher", "local", "--results", str(results)]) == 0
    assert "2 of 2 task(s) finished" in capsys.readouterr().out
    for job in plan("mnist-sample", ["vq1-baseline"], 2):
        record = load_record(fold_file(results, job))
        assert record["fold"] == job.fold and record["epochs"] == 1
    assert len(list((results / "submitit").glob("*/*_log.err"))) == 2  # one log per task
    # a second submission finds nothing missing and submits nothing
    assert main(["crossval", *ARGS, "--launcher", "local", "--results", str(results)]) == 0
    assert "0 of 0 task(s)" in capsys.readouterr().out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the task's pid in /proc")
def test_a_preempted_task_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    results = tmp_path / "results"
    job = plan("mnist-sample", ["vq1-baseline"], 2)[0]
    settings = Settings(folds=2, epochs=8, limit=256, options={"batch_size": 64,
                                                                "progress": False})
    (task,) = launch.submit([job], settings, results, launcher="local", time="00:30:00")
    checkpoint = fold_file(results, job).with_suffix("") / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists():  # the first epoch is on disk
        assert time.monotonic() < deadline and not task.done(), task.stderr()
        time.sleep(0.05)
    # what SLURM sends before a preemption or the time limit: submitit's signal (USR2), to the
    # task process (a child of the local executor's controller, whose pid is the job id)
    children = Path(f"/proc/{task.job_id}/task/{task.job_id}/children").read_text().split()
    assert len(children) == 1
    os.kill(int(children[0]), signal.SIGUSR2)
    task.result()  # the requeued task finished the fold
    record = json.loads(fold_file(results, job).read_text())
    assert record["epochs"] == 8
    log = task.stdout() + task.stderr()
    assert "preempted" in log and "Requeued" in log
    assert "resuming from epoch" in log  # it continued, it did not start over


def test_checkpoint_hook_resubmits_the_same_task():
    task = launch.FoldTask(plan("mnist-sample", ["vq1-baseline"], 2), Settings(), "r")
    again = task.checkpoint()
    assert again.function is task and again.args == ()


def test_batches_cover_the_jobs_once_in_order():
    jobs = plan("mnist-sample", ["vq1-*"], 5)
    groups = launch.batches(jobs, 4)
    assert [j for g in groups for j in g] == jobs and max(map(len, groups)) == 4
    with pytest.raises(ValueError, match="at least 1"):
        launch.batches(jobs, 0)


def test_slurm_array_script_has_the_flags(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "sbatch_calls"
    for name, body in (("srun", "exit 0"),
                       ("sbatch", f'cp "$1" {tmp_path}/script.sh; echo "$@" >> {calls}; '
                                  'echo "Submitted batch job 4242"')):
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    results = tmp_path / "results"
    assert main(["crossval", *ARGS, "--results", str(results), "--launcher", "slurm",
                 "--partition", "gpu", "--gpus-per-task", "1", "--time", "04:00:00",
                 "--array-parallelism", "1"]) == 0
    assert "submitted 2 task(s)" in capsys.readouterr().out
    script = (tmp_path / "script.sh").read_text()
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --gpus-per-task=1" in script
    assert "#SBATCH --time=240" in script and "#SBATCH --array=0-1%1" in script
    assert "#SBATCH --signal=USR2@" in script  # submitit's requeue signal before the end
    assert calls.read_text().count("\n") == 1  # one sbatch call: one array


def test_time_and_missing_slurm_are_one_line_errors(tmp_path, monkeypatch, capsys):
    assert launch.slurm_parameters(time="1-02:30:00")["timeout_min"] == 26 * 60 + 30
    assert main(["crossval", *ARGS, "--results", str(tmp_path), "--launcher", "slurm",
                 "--time", "4h"]) == 2
    assert "HH:MM:SS" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun here
    assert main(["crossval", *ARGS, "--results", str(tmp_path), "--launcher", "slurm"]) == 2
    assert "login node" in capsys.readouterr().err
    assert sys.executable  # the local executor starts tasks with this interpreter
