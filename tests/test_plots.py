"""Figure helpers: the power-law pmf against hand values and Monte Carlo, the thesis curves
against the table in docs/thesis_code.md#curves, each figure's axes, and save_figure's files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
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
    # docs/thesis_code.md#counts (2M Monte Carlo draws of the thesis sampler, a = 40)
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
    # docs/thesis_code.md#curves: normalised values at epochs 0 and 99 (here 1 and 100)
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


# ---- notebook 04: the prior, generation, uncertainty ----------------------------------------

def test_prior_nll_curve_marks_test_nll_and_uniform_bits():
    from types import SimpleNamespace

    history = [{"epoch": e, "val_nll_bits": b} for e, b in enumerate([4.0, 3.0, 3.5])]
    prior = SimpleNamespace(history=history, best_epoch=1, grid=(7, 7),
                            metrics={"test": {"nll_bits": 3.2, "uniform_bits": 7.0}})
    fig = plots.prior_nll_curve(prior)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    np.testing.assert_allclose(lines["validation"].get_xdata(), [1, 2, 3])  # epochs from 1
    test = lines["held-out test, epoch 2"]
    assert (test.get_xdata()[0], test.get_ydata()[0]) == (2, 3.2)
    uniform = lines["uniform prior, log2 K = 7"]
    assert list(uniform.get_ydata()) == [7.0, 7.0] and uniform.get_linestyle() == "--"
    fig.canvas.draw()  # the secondary axis (nats = bits * ln 2) takes its limits when drawn
    nats = ax.child_axes[0]
    assert nats.get_ylabel() == "nats per code"
    assert nats.get_ylim()[1] == pytest.approx(ax.get_ylim()[1] * np.log(2))
    with pytest.raises(ValueError, match="history"):
        plots.prior_nll_curve(SimpleNamespace(history=[]))


def test_generated_samples_one_panel_per_generator():
    fig = plots.generated_samples({"a": torch.rand(5, 1, 28, 28), "b": _digits(3)})
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    with pytest.raises(ValueError, match="panel"):
        plots.generated_samples({})


def test_nested_masks_grow_by_adding_pixels():
    from mtvae.plots.generation import _nested_masks

    for sampler in ("uniform", "gaussian"):
        masks = _nested_masks(4, 28, 28, sampler, [0, 3, 10, 60], seed=5)
        assert [int(m[0].sum()) for m in masks] == [0, 3, 10, 60]
        for small, large in zip(masks, masks[1:]):
            assert bool((small <= large).all())  # every smaller count's pixels stay known
    with pytest.raises(ValueError, match="exact"):
        _nested_masks(1, 28, 28, "exact", [3], seed=0)


def _ignoring_m(family):
    model = _model(family, "single")
    with torch.no_grad():  # zero the dense layer's columns that read m: the decoder ignores m
        model.cond_decoder.head.from_m.weight.zero_()
    return model


def test_uncertainty_by_known_pixels_shares_latents_across_counts():
    # A decoder that ignores m must give the same spread for every count: the counts differ
    # only in m when the same prior latents serve each of them (independent draws would not).
    x = _digits(3)
    t = plots.uncertainty_by_known_pixels(_ignoring_m("gaussian"), x, [0, 5, 100], samples=4)
    assert list(t.known_pixels) == [0, 5, 100]
    np.testing.assert_allclose(t.mean_std, t.mean_std[0], rtol=1e-6)
    np.testing.assert_allclose(t.mse, t.mse[0], rtol=1e-6)
    # by hand: 4 draws of z ~ N(0, I) per image, decoded with m = 0
    model = _model("gaussian", "single")
    t = plots.uncertainty_by_known_pixels(model, x, [0], samples=4, seed=3)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        draws = model.decode(torch.randn(12, model.latent_dim, generator=g)).view(3, 4, 1, 28, 28)
    xf = x.float() / 255
    assert t.mean_std[0] == pytest.approx(float(draws.std(1).mean()), rel=1e-5)
    assert t.mse[0] == pytest.approx(float((draws.mean(1) - xf).pow(2).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="conditioned decoder"):
        plots.uncertainty_by_known_pixels(_model("gaussian", "baseline"), x, [0])


def test_uncertainty_figures_have_expected_axes():
    from mtvae.models.pixelcnn import GatedPixelCNN, PixelCNNConfig

    tables = {"a": pd.DataFrame({"known_pixels": [0, 5], "mean_std": [0.2, 0.1],
                                 "mse": [0.1, 0.05]})}
    fig = plots.uncertainty_vs_known_pixels(tables)
    assert len(fig.axes) == 2 and list(fig.axes[0].lines[0].get_ydata()) == [0.2, 0.1]
    vq = _model("vq", "single")
    torch.manual_seed(0)
    prior = GatedPixelCNN(PixelCNNConfig(vq.num_embeddings, channels=8, n_layers=2,
                                         head_channels=16)).eval()
    fig = plots.uncertainty_maps(vq, _digits(1)[0], (2, 20), prior=prior, samples=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert "2 known" in titles and "20 known" in titles  # one row per count


# ---- notebook 05: Table 4.1 -----------------------------------------------------------------

def _store(root):
    """A results store with two VQ rows and one Gaussian row, 2 folds each (made-up values)."""
    from mtvae.crossval import Settings, job_config
    from mtvae.store import Job, fold_file
    from mtvae.train import atomic_write_json

    values = {"vq1-baseline": {"recon": [0.01, 0.03], "vq": [0.02, 0.02]},
              "vq1-multi-exact": {"recon": [0.02, 0.02], "recon_cond": [0.01, 0.01],
                                  "vq": [0.05, 0.07]},
              "gauss1-baseline": {"recon": [0.03, 0.05], "kl": [10.0, 14.0]}}
    for row, metrics in values.items():
        for fold in range(2):
            job = Job("mnist", row, fold)
            test = {k: v[fold] for k, v in metrics.items()}
            path = fold_file(root, job)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json({"dataset": "mnist", "row": row, "fold": fold, "folds": 2,
                               "seed": 0, "epochs": 1, "best_epoch": 0, "n_params": 10,
                               "metrics": {"val": test, "test": test}, "history": [],
                               "config": job_config(job, Settings(folds=2)).to_dict(),
                               "environment": {}}, path)


def test_table_comparison_puts_ours_beside_the_thesis(tmp_path):
    from mtvae import report

    _store(tmp_path)
    df = report.table(tmp_path, "mnist")
    fig = plots.table_comparison(df)
    recon_ax, latent_ax = fig.axes[:2]
    # rows top to bottom in table order
    labels = [t.get_text() for t in recon_ax.get_yticklabels()]
    ticks = list(recon_ax.get_yticks())
    assert [lab for _, lab in sorted(zip(ticks, labels), reverse=True)] == \
        ["vq1-baseline", "vq1-multi-exact", "gauss1-baseline"]
    ours, thesis = recon_ax.containers[:2]  # errorbar containers: ours first
    np.testing.assert_allclose(ours.lines[0].get_xdata().astype(float), [0.02, 0.02, 0.04])
    np.testing.assert_allclose(thesis.lines[0].get_xdata().astype(float),
                               [0.0028, 0.0025, 0.0178])  # the thesis's MNIST rows
    # one separator between the VQ config 1 and Gaussian config 1 groups
    assert sum(ln.get_color() == "0.6" for ln in recon_ax.lines) == 1
    assert latent_ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="report.table"):
        plots.table_comparison(df.drop(columns="recon_thesis_std"))


def test_save_table_writes_the_three_formats_and_indexes_them(tmp_path):
    from mtvae import report

    _store(tmp_path / "store")
    df = report.table(tmp_path / "store", "mnist")
    paths = plots.save_table(df, "tab4-1_crossval", tmp_path / "fig", made_by="unit test")
    assert sorted(paths) == ["csv", "md", "tex"]
    back = pd.read_csv(paths["csv"])
    assert list(back["row"]) == list(df["row"]) and back["recon"][0] == pytest.approx(0.02)
    readme = (tmp_path / "fig" / "README.md").read_text()
    line = next(s for s in readme.splitlines() if "`tab4-1_crossval`" in s)
    assert "[md](tab4-1_crossval.md)" in line and "[csv](tab4-1_crossval.csv)" in line
    assert "Table 4.1" in line and "unit test" in line
    with pytest.raises(ValueError, match="figure name"):
        plots.save_table(df, "table.md", tmp_path / "fig")
