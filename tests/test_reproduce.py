"""Profiles, notebook discovery, output stripping and the papermill batch run."""

import json
import subprocess
import sys

import nbformat
import pytest
import torch

import mtvae.train
from mtvae import workflow
from mtvae.profiles import PROFILES, get_profile
from mtvae.reproduce import find_notebooks, run_notebooks, strip_outputs


def test_full_profile_has_the_thesis_settings():
    full = get_profile("full")
    # thesis section 3.4.3: batch 128, 100 epochs, whole pool; 5 folds (section 4.3)
    assert full.batch_size == 128 and full.folds == 5
    assert all((b.limit, b.epochs) == (None, 100) for b in full.budgets.values())
    assert full.configs == {"gaussian": 2, "vq": 3}  # the configurations of Figs. 4.2, 4.4-4.6
    assert full.sweep == {"gaussian": 2, "vq": 2} and len(full.exponents) == 14


def test_profile_overrides_and_errors():
    p = get_profile("quick", "fashion-mnist", epochs=2, configs={"vq": 2}, seed=3)
    assert (p.dataset, p.seed) == ("fashion-mnist", 3)
    assert {b.epochs for b in p.budgets.values()} == {2}  # EPOCHS applies to every family
    assert [b.limit for b in p.budgets.values()] == \
        [b.limit for b in PROFILES["quick"].budgets.values()]
    assert p.configs == {"gaussian": PROFILES["quick"].configs["gaussian"], "vq": 2}
    assert {b.limit for b in get_profile("quick", limit=None).budgets.values()} == {None}
    for bad in (dict(name="slow"), dict(name="quick", dataset="imagenet"),
                dict(name="quick", epochs=0), dict(name="quick", configs=3),
                dict(name="quick", configs={"vae": 1})):
        with pytest.raises(ValueError):
            get_profile(**bad)
    with pytest.raises(ValueError, match="family"):
        workflow.run_dir(p, ".", "vae", "baseline")


def test_run_dir_names_each_run_by_its_settings(tmp_path):
    p = get_profile("quick")  # VQ-VAE 2,000 images, Gaussian VAE 800, batch 32, seed 0
    single = workflow.run_dir(p, tmp_path, "vq", "single", exponent=20)
    assert single.parent == tmp_path / "quick-mnist-sample-n2000-b32-s0-thesis"
    assert single.name == "vq1-single-gaussian-a20"
    assert workflow.run_dir(p, tmp_path, "gaussian", "multidecoder").name == \
        "gaussian1-multidecoder-exact"
    assert workflow.run_dir(p, tmp_path, "gaussian", "baseline", softadapt=True).name == \
        "gaussian1-baseline-softadapt"
    assert workflow.run_dir(p, tmp_path, "vq", "single", exponent=20,
                            conditioning="spatial").name == \
        "vq1-single-gaussian-a20-spatial"  # never the dense run's folder
    assert workflow.run_dir(p, tmp_path, "gaussian", "baseline").parent.name == \
        "quick-mnist-sample-n800-b32-s0-thesis"
    wide = get_profile("quick", seed=3, protocol="mtvae", limit=None)
    assert workflow.run_dir(wide, tmp_path, "vq", "baseline").parent.name == \
        "quick-mnist-sample-nall-b32-s3-mtvae"


def test_validation_images_are_the_profiles_share_of_the_test_pool(monkeypatch):
    p = get_profile("quick")
    images = workflow.validation_images(p)
    assert images.shape == (500, 1, 28, 28)  # a quarter of mnist-sample's 2,000 test digits
    assert images.dtype == torch.uint8
    # the very images a run of this profile validates on (one tiny run, its evaluations seen)
    seen = []
    real_evaluate = mtvae.train.evaluate

    def evaluate(model, x, *args, **kwargs):
        seen.append(x.cpu())
        return real_evaluate(model, x, *args, **kwargs)

    monkeypatch.setattr(mtvae.train, "evaluate", evaluate)
    workflow.train_run(p, None, "vq", "baseline", limit=32, epochs=1, progress=False, device="cpu")
    assert seen and all(torch.equal(x, images) for x in seen)


def _notebook(path, *cells, tags0=("parameters",)):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells[0].metadata["tags"] = list(tags0)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_find_notebooks_orders_and_selects(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        _notebook(tmp_path / name, "x = 1")
    assert [p.name for p in find_notebooks(tmp_path)] == ["01_a.ipynb", "02_b.ipynb",
                                                          "10_c.ipynb"]
    assert [p.name for p in find_notebooks(tmp_path, ["10", "01"])] == ["01_a.ipynb",
                                                                        "10_c.ipynb"]
    with pytest.raises(ValueError, match="04"):
        find_notebooks(tmp_path, ["04"])
    with pytest.raises(FileNotFoundError):
        find_notebooks(tmp_path / "empty")


def test_strip_outputs_keeps_text_and_drops_images_and_widgets(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="1\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Fig>"}),
        nbformat.v4.new_output("execute_result", execution_count=1, data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "VBox"}),
        nbformat.v4.new_output("execute_result", execution_count=1,
                               data={"text/plain": "table", "text/html": "<table/>"}),
    ]
    cell.metadata["papermill"] = {"duration": 1.0}
    cell.metadata["tags"] = []
    injected = nbformat.v4.new_code_cell('RESULTS_DIR = "/tmp/x"')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [injected, cell]
    nb.metadata["widgets"] = {"state": {}}
    nbformat.write(nb, tmp_path / "in.ipynb")
    strip_outputs(tmp_path / "in.ipynb", tmp_path / "out.ipynb")
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert len(out.cells) == 1  # papermill's injected parameters are dropped
    outputs = out.cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream", "execute_result"]
    assert set(outputs[1].data) == {"text/plain", "text/html"}
    assert out.cells[0].metadata == {}  # no papermill timings, no empty tag list
    assert "widgets" not in out.metadata


@pytest.mark.slow
def test_reproduce_runs_notebooks_in_order_and_stops_at_a_failure(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    params = 'PROFILE = "x"\nSEED = 0\nDEVICE = "cpu"\nRESULTS_DIR = "r"\nFIGURES_DIR = "f"'
    _notebook(folder / "01_ok.ipynb", params,
              "import json, pathlib\npathlib.Path(RESULTS_DIR).mkdir(parents=True, exist_ok=True)\n"
              "(pathlib.Path(RESULTS_DIR) / 'params.json').write_text(json.dumps("
              "[PROFILE, SEED, FIGURES_DIR]))")
    _notebook(folder / "02_fails.ipynb", params, "raise RuntimeError('broken on purpose')")
    _notebook(folder / "03_never.ipynb", params, "open('ran', 'w')")
    lines = []
    runs = run_notebooks("quick", tmp_path / "out", notebook_dir=folder,
                         figures_dir=tmp_path / "figs", echo=lines.append)
    assert [r.notebook for r in runs] == ["01_ok.ipynb", "02_fails.ipynb"]
    assert runs[0].ok and not runs[1].ok
    assert runs[0].peak_mib is None or runs[0].peak_mib > 10
    params_seen = json.loads((tmp_path / "out" / "results" / "params.json").read_text())
    assert params_seen == ["quick", 0, str((tmp_path / "figs").resolve())]
    assert "broken on purpose" in "\n".join(lines)
    assert not (folder / "ran").exists()
    # the command line reports the failure with a non-zero exit status
    cmd = [sys.executable, "-m", "mtvae", "reproduce", "--output", str(tmp_path / "cli"),
           "--notebook-dir", str(folder), "--notebooks", "02", "--figures", str(tmp_path / "f")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1 and "FAILED" in proc.stdout
