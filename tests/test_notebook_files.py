"""The committed notebooks are saved as JupyterLab saves them, so opening one does not mark it
modified; and the exponent slider's histogram keeps its axes."""

from pathlib import Path

import matplotlib
import pytest
import torch

nbformat = pytest.importorskip("nbformat", reason="the notebooks extra")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_file_is_what_jupyterlab_writes(path):
    raw = path.read_text()
    nb = nbformat.reads(raw, as_version=4)
    assert nb.metadata.kernelspec == {"display_name": "Python 3 (ipykernel)",
                                      "language": "python", "name": "python3"}
    assert '"id": ' in raw and raw.count('"cell_type"') == raw.count('"id": ')  # every cell
    assert nbformat.writes(nb) + "\n" == raw  # saving it again changes nothing


def test_exponent_slider_histogram_keeps_its_axes():
    matplotlib.use("Agg")
    from mtvae.plots import exponent_panel
    from mtvae.plots.background import histogram_limits

    image = torch.zeros(1, 28, 28)
    limits = histogram_limits(28 * 28, (1, 100))
    axes = []
    for a in (5, 40, 100):
        fig = exponent_panel(image, a, seed=0, n_samples=2000, limits=limits)
        ax = fig.axes[0]
        axes.append((ax.get_xlim(), ax.get_ylim()))
    assert axes[0] == axes[1] == axes[2]
    free = [exponent_panel(image, a, seed=0, n_samples=2000).axes[0].get_xlim() for a in (5, 40)]
    assert free[0] != free[1]  # without limits each exponent fits its own (what the slider avoids)
