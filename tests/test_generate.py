"""Generation, generation from sparse pixels and uncertainty maps (mtvae.generate)."""

import matplotlib.pyplot as plt
import pytest
import torch

import mtvae
from mtvae import plots
from mtvae.generate import (
    Uncertainty,
    generate,
    generate_given_pixels,
    uncertainty,
)
from mtvae.models import ModelConfig, build_model
from mtvae.models.pixelcnn import GatedPixelCNN, PixelCNNConfig
from mtvae.observations import make_m
from mtvae.prior import train_prior

SHAPE = (1, 28, 28)


def model(family, method):
    torch.manual_seed(0)
    return build_model(ModelConfig(family=family, config=1, method=method), SHAPE).eval()


def tiny_prior(k=128):
    torch.manual_seed(0)
    return GatedPixelCNN(PixelCNNConfig(k, channels=8, n_layers=2, head_channels=16)).eval()


def prior_for(m):
    return tiny_prior(m.num_embeddings) if m.config.family == "vq" else None


def images(n=3, seed=0):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


def first_pixels(n, count, seed=0):
    """(n, 1, 28, 28) masks; the first ``count`` pixels of one random order per image, so a
    smaller count's pixels are a subset of a larger count's."""
    g = torch.Generator().manual_seed(seed)
    rank = torch.rand(n, 28 * 28, generator=g).argsort(1).argsort(1)
    return (rank < count).float().view(n, 1, 28, 28)


@pytest.mark.parametrize("family", ["gaussian", "vq"])
@pytest.mark.parametrize("method", ["baseline", "multidecoder", "single"])
def test_generate_for_every_model(family, method):
    m = model(family, method)
    out = generate(m, 3, prior=prior_for(m), seed=0)
    assert out.shape == (3, *SHAPE) and torch.isfinite(out).all()
    if method == "baseline":
        with pytest.raises(ValueError, match="no conditioned decoder"):
            generate(m, 3, prior=prior_for(m), m=make_m(images(3), first_pixels(3, 10)))
    else:
        x, mask = images(2), first_pixels(2, 10)
        draws = generate_given_pixels(m, x, mask, samples=4, prior=prior_for(m))
        assert draws.shape == (2, 4, *SHAPE)


def test_gaussian_decodes_standard_normal_latents():
    m = model("gaussian", "multidecoder")
    z = torch.randn(4, m.latent_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.allclose(generate(m, 4, seed=7), m.decode(z))
        x, mask = images(4), first_pixels(4, 30)
        assert torch.allclose(generate(m, 4, seed=7, m=make_m(x, mask)), m.decode(z, make_m(x, mask)))
    assert not torch.equal(generate(m, 4, seed=7), generate(m, 4, seed=8))
    assert torch.allclose(generate(m, 4, seed=7, batch_size=3), generate(m, 4, seed=7), atol=1e-6)


def test_vq_decodes_prior_codes_and_needs_a_prior():
    m, prior = model("vq", "single"), tiny_prior()
    codes = prior.sample(3, (7, 7), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.allclose(generate(m, 3, prior=prior, seed=5), m.decode_codes(codes))
    with pytest.raises(ValueError, match="learned prior"):
        generate(m, 3)
    with pytest.raises(ValueError, match="classes"):
        generate(m, 3, prior=tiny_prior(64))
    with pytest.raises(ValueError, match="N\\(0, I\\)"):
        generate(model("gaussian", "single"), 3, prior=prior)


def test_generation_keeps_the_models_mode():
    m = model("gaussian", "single").train()
    generate(m, 2)
    assert m.training


def test_a_callable_replaces_the_prior():
    m = model("gaussian", "single")
    fixed = torch.randn(1, m.latent_dim)
    out = generate(m, 5, prior=lambda n, g: fixed.expand(n, -1))
    assert torch.allclose(out, out[:1].expand_as(out))


def test_generation_from_pixels_uses_each_images_m():
    m = model("gaussian", "single")
    x, mask = images(2), first_pixels(2, 50)
    draws = generate_given_pixels(m, x, mask, samples=3, seed=3)
    z = torch.randn(6, m.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        direct = m.decode(z, make_m(x, mask).repeat_interleave(3, 0)).view(2, 3, *SHAPE)
    assert torch.allclose(draws, direct, atol=1e-6)


def test_uncertainty_maps():
    m = model("vq", "multidecoder")
    x = (images(3) * 255).to(torch.uint8)  # uint8 images are scaled to [0, 1]
    res = uncertainty(m, x, first_pixels(1, 40)[0, 0], samples=5, prior=tiny_prior(),
                      keep_samples=True)
    assert res.mean.shape == res.std.shape == res.error.shape == (3, *SHAPE)
    assert res.mask.shape == (3, 1, 28, 28) and (res.std >= 0).all()
    assert torch.allclose(res.mean, res.samples.mean(1))
    assert torch.allclose(res.std, res.samples.std(1))
    assert torch.allclose(res.error, (res.mean - x.float() / 255).abs())
    summary = res.summary()
    assert summary["known_pixels"].tolist() == [40, 40, 40]
    assert torch.allclose(summary["mse"], res.error.pow(2).mean((1, 2, 3)))
    with pytest.raises(ValueError, match="samples >= 2"):
        uncertainty(m, x, first_pixels(3, 40), samples=1, prior=tiny_prior())
    with pytest.raises(ValueError, match="mask must be"):
        uncertainty(m, x, torch.ones(3, 2, 28, 28), prior=tiny_prior())
    with pytest.raises(ValueError, match="mask must be"):
        uncertainty(m, x, first_pixels(2, 40), prior=tiny_prior())


def test_weighting_by_the_known_pixels():
    m = model("vq", "multidecoder")
    x, mask, prior = images(2), first_pixels(2, 60), tiny_prior()
    plain = uncertainty(m, x, mask, samples=8, prior=prior, keep_samples=True)
    flat = uncertainty(m, x, mask, samples=8, prior=prior, noise=1e6)  # equal weights
    assert torch.allclose(flat.mean, plain.mean, atol=1e-6)
    assert torch.allclose(flat.std, plain.samples.std(1, correction=0), atol=1e-5)
    assert torch.allclose(plain.ess, torch.full((2,), 8.0))
    sharp = uncertainty(m, x, mask, samples=8, prior=prior, noise=0.01)
    assert (sharp.ess >= 1 - 1e-6).all() and (sharp.ess < 8).all()
    # a tiny noise leaves one dominant weight: the mean is the draw that best fits the pixels
    fit = ((plain.samples - x[:, None]).pow(2) * mask[:, None]).sum((2, 3, 4))
    assert torch.allclose(sharp.mean, plain.samples[torch.arange(2), fit.argmin(1)], atol=1e-4)
    with pytest.raises(ValueError, match="noise"):
        uncertainty(m, x, mask, prior=prior, noise=0)


def test_shared_draws_give_every_image_the_same_prior_samples():
    m = model("vq", "single")
    x = images(1).expand(3, -1, -1, -1)  # three copies of one image, one mask
    mask = first_pixels(1, 30)[0, 0]
    shared = uncertainty(m, x, mask, samples=4, prior=tiny_prior(), shared=True,
                         keep_samples=True)
    assert torch.equal(shared.samples[0], shared.samples[1])  # same latents, same m
    assert torch.equal(shared.samples[0], shared.samples[2])
    assert shared.samples[0].std(0).sum() > 0  # still 4 different draws per image
    own = uncertainty(m, x, mask, samples=4, prior=tiny_prior(), keep_samples=True)
    assert not torch.equal(own.samples[0], own.samples[1])  # independent per image
    # the shared draws are the first image's draws when each image draws its own from the seed
    one = uncertainty(m, x[:1], mask, samples=4, prior=tiny_prior(), keep_samples=True)
    assert torch.allclose(shared.samples[0], one.samples[0], atol=1e-6)


def test_one_latent_means_zero_std():
    m = model("gaussian", "single")
    z = torch.randn(1, m.latent_dim)
    res = uncertainty(m, images(2), first_pixels(2, 20), samples=4,
                      prior=lambda n, g: z.expand(n, -1))
    assert torch.equal(res.std, torch.zeros_like(res.std))


def test_plots_return_figures():
    m = model("gaussian", "single")
    x, mask = images(3), first_pixels(3, 30)
    figs = [plots.generated_samples({"samples": generate(m, 10)}, nrow=5),
            plots.given_pixels(x, mask, generate_given_pixels(m, x, mask, samples=4)),
            plots.uncertainty_panels(uncertainty(m, x, mask, samples=4))]
    assert all(isinstance(f, plt.Figure) for f in figs)
    assert len(figs[1].axes) == 3 * (4 + 2)
    assert len([a for a in figs[2].axes if a.images]) == 3 * 5  # + one colour bar per row
    for f in figs:
        plt.close(f)
    colour = build_model(ModelConfig("gaussian", 1, "single"), (3, 32, 32)).eval()
    mask = torch.zeros(32, 32)
    mask[::4, ::4] = 1
    res = uncertainty(colour, torch.rand(2, 3, 32, 32), mask, samples=2)
    assert isinstance(res, Uncertainty) and res.std.shape == (2, 3, 32, 32)
    plt.close(plots.uncertainty_panels(res))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The VQ-VAE of test_pixelcnn.py (same settings and folder: trained once per session, then
    loaded) with a small prior."""
    base = tmp_path_factory.getbasetemp()
    vq = mtvae.train_model("mnist-sample", out=base / "vq1-single", model="vq", config=1,
                           method="single", sampler="uniform", exponent=3, epochs=2, limit=2000,
                           batch_size=32, lr=3e-3, device="cpu", progress=False)
    prior = train_prior(vq, base / "vq1-single-prior", epochs=2, n_layers=3, channels=32,
                        head_channels=64, batch_size=64, lr=3e-3, limit=1000, device="cpu",
                        progress=False)
    data = mtvae.load_dataset("mnist-sample")
    return vq.model, prior, data.test[1000:1016]  # test images outside the validation half


@pytest.mark.slow
def test_more_known_pixels_lower_the_std(trained):
    """5 known pixels against 300 (a superset) on the same 16 test images. Over VQ seeds 0-3
    every image's mean std fell, by 13-32 % on average (docs/prior.md)."""
    vq, prior, x = trained
    few = uncertainty(vq, x, first_pixels(16, 5), samples=16, prior=prior, seed=0).summary()
    many = uncertainty(vq, x, first_pixels(16, 300), samples=16, prior=prior, seed=0).summary()
    assert (few["mean_std"] > 0).all()
    assert many["mean_std"].mean() < few["mean_std"].mean()
    assert (many["mean_std"] < few["mean_std"]).float().mean() >= 0.75, (few, many)
    assert many["mse"].mean() < few["mse"].mean()  # and the mean reconstructs the image better


@pytest.mark.slow
def test_samples_from_pixels_agree_with_them(trained):
    """At the known pixels, images generated from them are closer to the true image than
    unconditioned samples (squared error ratio 0.68-0.81 over VQ seeds 0-3)."""
    vq, prior, x = trained
    mask = first_pixels(16, 150)
    given = generate_given_pixels(vq, x, mask, samples=4, prior=prior, seed=0)
    free = generate(vq, 64, prior=prior, seed=1).view(16, 4, *SHAPE)
    x = x.float()[:, None] / 255
    known = mask[:, None].expand_as(given).bool()
    err_given = (given - x)[known].pow(2).mean()
    err_free = (free - x)[known].pow(2).mean()
    assert err_given < 0.9 * err_free, (err_given, err_free)
