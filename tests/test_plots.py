"""Figure helpers: the power-law pmf against hand values and Monte Carlo, the thesis curves
against original_code.md's table, each figure's axes, and save_figure's files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mtvae import plots  # noqa: E402
from mtvae.models import ModelConfig, build_model  # noqa: E402
from mtvae.observations import ObservationConfig, power_law_counts  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _digits(n=4, c=1, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), generator=g, dtype=torch.uint8)


# ---- the power law ------------------------------------------------------------------------

def test_pmf_matches_hand_computed_values():
    # N = 4, a = 2: P(count >= k) = (1 - k/4)^2 = 1, 9/16, 4/16, 1/16, 0
    expected = [1 - 9 / 16, 9 / 16 - 4 / 16, 4 / 16 - 1 / 16, 1 / 16, 0.0]
    np.testing.assert_allclose(plots.power_law_pmf(4, 2), expected, atol=1e-15)


@pytest.mark.parametrize("n, a", [(784, 40), (784, 60), (1024, 3), (4096, 40), (10, 0.5)])
def test_pmf_sums_to_one_and_gives_p0(n, a):
    pmf = plots.power_law_pmf(n, a)
    assert pmf.shape == (n + 1,)
    assert (pmf >= 0).all()
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert pmf[0] == pytest.approx(1 - (1 - 1 / n) ** a)


def test_pmf_matches_monte_carlo_histogram():
    n, a, draws = 784, 40, 200_000
    counts = power_law_counts(draws, n, a, generator=torch.Generator().manual_seed(1)).numpy()
    empirical = np.cumsum(np.bincount(counts, minlength=n + 1)) / draws
    # Kolmogorov-Smirnov distance; the 0.1 % critical value for 200k draws is about 0.0044
    assert np.abs(empirical - np.cumsum(plots.power_law_pmf(n, a))).max() < 0.0044


def test_power_law_summary_matches_the_reference_table():
    # original_code.md section 3.2 (2M Monte Carlo draws of the thesis sampler, a = 40)
    table = plots.power_law_summary(784, (40,), n_samples=50_000)
    row = table.loc[40]
    assert round(row["mean"], 1) == 18.6 and row["median"] == 13
    assert row["q90"] == 43 and row["q99"] == 85
    assert row["P(count=0)"] == pytest.approx(0.0498, abs=5e-5)
    assert row["sampled mean"] == pytest.approx(18.6, abs=0.4)
    assert plots.power_law_summary(4096, (40,), n_samples=1000).loc[40, "median"] == 70


def test_pmf_rejects_bad_input():
    with pytest.raises(ValueError):
        plots.power_law_pmf(784, 0)


# ---- figures of chapters 2-3 ---------------------------------------------------------------

def test_background_figures_have_expected_axes():
    x = _digits(1)[0]
    mask = torch.zeros(1, 28, 28)
    mask[0, 3, 4] = 1
    assert len(plots.power_law_distribution(784, (10, 40), n_samples=2000).axes) == 1
    assert len(plots.conditioning_information(x, mask).axes) == 3 + 2  # m: 1 colour + mask
    rgb = _digits(1, c=3, size=32)[0]
    assert len(plots.conditioning_information(rgb, torch.zeros(1, 32, 32)).axes) == 3 + 4
    assert len(plots.sampling_types(x).axes) == 9
    assert len(plots.exponent_panel(x, 40, n_samples=2000).axes) == 3


def test_conditioning_information_titles_count_known_pixels():
    mask = torch.zeros(1, 28, 28)
    mask[0, :2, :3] = 1  # 6 pixels
    fig = plots.conditioning_information(_digits(1)[0], mask)
    assert "6 known pixels" in fig._suptitle.get_text()


# ---- model figures -------------------------------------------------------------------------

def _model(family, method):
    torch.manual_seed(0)
    return build_model(ModelConfig(family=family, config=1, method=method), (1, 28, 28)).eval()


def test_reconstruction_figures_have_expected_axes():
    x = _digits(6)
    obs = ObservationConfig("exact", "fixed")
    assert len(plots.reconstructions(_model("vq", "baseline"), x, n=3).axes) == 2
    assert len(plots.reconstructions(_model("vq", "multidecoder"), x, obs, n=3).axes) == 4
    single = _model("vq", "single")
    assert len(plots.reconstructions(single, x, ObservationConfig("gaussian", "power-law"),
                                     n=3).axes) == 4
    assert len(plots.exponent_panel(x[0], 40, model=single, n_samples=1000).axes) == 5
    with pytest.raises(ValueError, match="observation"):
        plots.reconstructions(single, x)


def test_known_pixel_errors_at_zero_is_the_unconditioned_error():
    model, x = _model("vq", "single"), _digits(5)
    errors = plots.known_pixel_errors(model, x, [0, 10, 784], batch_size=2)
    assert list(errors.known_pixels) == [0, 10, 784]
    xf = x.float() / 255
    with torch.no_grad():
        expected = float((model(xf).recon - xf).pow(2).mean())  # m = None: m = 0
    assert errors.recon[0] == pytest.approx(expected, rel=1e-5)
    fig = plots.reconstruction_vs_known_pixels(model, x, errors, baseline=0.1)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="exact"):
        plots.known_pixel_errors(model, x, [1], sampler="exact")


def _history(epochs, latent, offset=0.0, conditioned=True):
    out = []
    for e in range(epochs):
        r = {"epoch": e, f"val_{latent}": 1.0 / (e + 1) + offset, "val_recon": 0.1 - e * 0.01}
        if conditioned:
            r["val_recon_cond"] = 0.08 - e * 0.01
        out.append(r)
    return out


def test_validation_curves_axes_and_baseline_style():
    runs = {"baseline": _history(3, "kl", conditioned=False), "multidecoder": _history(3, "kl")}
    fig = plots.validation_curves(runs)
    assert len(fig.axes) == 2
    latent_ax = fig.axes[0]
    baseline = [ln for ln in latent_ax.lines if ln.get_label() == "baseline"][0]
    assert baseline.get_linestyle() == "--"
    np.testing.assert_allclose(baseline.get_xdata(), [1, 2, 3])  # epochs from 1
    assert len(plots.validation_curves(runs, thesis=("gaussian", "multidecoder")).axes) == 4
    vq = {"baseline": _history(2, "vq", conditioned=False), "single": _history(2, "vq")}
    assert len(plots.validation_curves(vq, thesis=("vq", "single")).axes) == 4
    with pytest.raises(ValueError):
        plots.validation_curves({"x": []})


def test_reconstruction_vs_exponent_axes():
    import pandas as pd

    table = pd.DataFrame({"exponent": [5, 20, 60], "recon": [0.05, 0.04, 0.03]})
    assert len(plots.reconstruction_vs_exponent({"vq": table}, {"vq": 0.04}).axes) == 2
    assert len(plots.reconstruction_vs_exponent({"vq": table, "gaussian": table},
                                                thesis=False).axes) == 2


# ---- thesis curves -------------------------------------------------------------------------

def _value(df, run, metric, epoch):
    row = df[(df.run == run) & (df.metric == metric) & (df.epoch == epoch)]
    assert len(row) == 1
    return row.iloc[0]


def test_thesis_curves_are_normalised_like_the_reference_table():
    # original_code.md section 10.2: normalised values at epochs 0 and 99 (here 1 and 100)
    g2 = plots.load_thesis_curves("gaussian", "multidecoder")
    sc = plots.THESIS_CURVES[("gaussian", "multidecoder")]["label"]
    assert _value(g2, sc, "kl", 1)["mean"] == pytest.approx(101.3, abs=0.05)
    assert _value(g2, sc, "kl", 100)["mean"] == pytest.approx(78.4, abs=0.05)
    assert _value(g2, "baseline", "recon", 1)["mean"] == pytest.approx(0.01401, abs=5e-6)
    g1 = plots.load_thesis_curves("gaussian", "single")
    sc1 = plots.THESIS_CURVES[("gaussian", "single")]["label"]
    assert _value(g1, sc1, "recon_cond", 1)["mean"] == pytest.approx(0.01579, abs=5e-6)
    assert _value(g1, sc1, "recon", 1)["mean"] == pytest.approx(0.01504, abs=5e-6)
    v1 = plots.load_thesis_curves("vq", "single")
    assert _value(v1, plots.THESIS_CURVES[("vq", "single")]["label"], "recon",
                  100)["mean"] == pytest.approx(0.00224, abs=5e-6)
    assert ((g2["min"] <= g2["mean"] + 1e-12) & (g2["mean"] <= g2["max"] + 1e-12)).all()


def test_thesis_curves_drop_the_epochs_the_thesis_figure_dropped():
    v2 = plots.load_thesis_curves("vq", "multidecoder")
    assert v2[v2.metric == "vq"].epoch.min() == 5  # thesis: epochs <= 3 (0-based) dropped
    assert v2[v2.metric == "recon"].epoch.min() == 8  # epochs <= 6 dropped
    with pytest.raises(ValueError):
        plots.load_thesis_curves("vq", "baseline")


# ---- saving --------------------------------------------------------------------------------

def test_save_figure_writes_png_pdf_and_index(tmp_path):
    fig = plots.power_law_distribution(784, (40,), n_samples=1000)
    plots.save_figure(fig, "fig3-6_sampling_types", tmp_path, made_by="unit test profile")
    png, pdf = tmp_path / "fig3-6_sampling_types.png", tmp_path / "fig3-6_sampling_types.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    readme = (tmp_path / "README.md").read_text()
    assert "`fig3-6_sampling_types`" in readme and "Fig. 3.6" in readme
    assert "unit test profile" in readme
    first = pdf.read_bytes()
    plots.save_figure(fig, "fig3-6_sampling_types", tmp_path)
    assert pdf.read_bytes() == first  # no creation date: byte-stable files


def test_save_figure_rejects_names_with_extensions_or_paths(tmp_path):
    fig = plt.figure()
    for bad in ("x.png", "../x", ""):
        with pytest.raises(ValueError, match="figure name"):
            plots.save_figure(fig, bad, tmp_path)


def test_styled_restores_only_its_own_settings():
    matplotlib.interactive(True)
    before = matplotlib.rcParams["axes.facecolor"]
    with plots.styled():
        matplotlib.interactive(False)  # e.g. a backend switching itself on or off
    assert matplotlib.rcParams["axes.facecolor"] == before
    assert matplotlib.is_interactive() is False
    matplotlib.interactive(False)
