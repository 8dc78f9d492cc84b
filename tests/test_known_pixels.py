"""known_pixel_curve against decoders whose answers are known by hand.

The trained networks are replaced by closed-form decoders (patched onto a real GaussianVAE, so
the curve runs through the real encoder, mask sampler, m and prior draws):
- an oracle that copies the known pixels and says c elsewhere: error (c - x)^2 (1 - k / HW);
- a decoder whose draws are N(0.5, s^2) per image: on images drawn from the same N(0.5, s^2)
  the central 95 % interval of the draws covers about 95 % of the true values, and a draw
  spread ten times too small covers P(|t| < 0.216) = 0.17 of them.
"""

import pytest
import torch

from mtvae import make_config
from mtvae.known_pixels import known_pixel_curve
from mtvae.models import build_model

SHAPE = (1, 28, 28)


def model_with(decode):
    model = build_model(make_config(model="gaussian", method="single").model, SHAPE)
    model.decode = decode
    return model


def test_oracle_error_falls_linearly_with_the_known_pixels():
    c, value = 0.5, 0.2
    model = model_with(lambda z, m: m[:, :1] + c * (1 - m[:, 1:]))
    images = torch.full((10, *SHAPE), value)
    rows = known_pixel_curve(model, images, (0, 5, 196, 784), samples=4)
    for row in rows:
        expected = (c - value) ** 2 * (1 - row["known_pixels"] / 784)
        assert row["recon"] == pytest.approx(expected, rel=1e-5)
        assert row["draws_mse"] == pytest.approx(expected, rel=1e-5)  # draws ignore z
        assert row["spread"] == pytest.approx(0.0, abs=1e-7)
    assert rows[-1]["coverage"] == 1.0  # every pixel known: the draws are the image
    assert rows[0]["coverage"] == 0.0  # 0.5 everywhere never covers 0.2


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("scale, low, high", [(1.0, 0.88, 0.99), (0.1, 0.10, 0.25)])
def test_coverage_of_the_central_95_percent_interval(scale, low, high, shared):
    s = 0.1
    model = model_with(lambda z, m: (0.5 + scale * s * z[:, :1, None, None]).expand(
        len(z), *SHAPE))
    torch.manual_seed(0)
    images = (0.5 + s * torch.randn(100, 1, 1, 1)).expand(100, *SHAPE).clone()
    (row,) = known_pixel_curve(model, images, (0,), samples=200, seed=1, shared_draws=shared)
    assert low < row["coverage"] < high
    assert row["spread"] == pytest.approx(scale * s, rel=0.1)


def test_bad_counts_and_samples_name_the_limits():
    model = model_with(lambda z, m: m[:, :1])
    with pytest.raises(ValueError, match=r"\[0, 784\]"):
        known_pixel_curve(model, torch.zeros(2, *SHAPE), (785,))
    with pytest.raises(ValueError, match="samples >= 2"):
        known_pixel_curve(model, torch.zeros(2, *SHAPE), samples=1)


def test_vq_without_prior_gives_the_reconstruction_only():
    model = build_model(make_config(model="vq", method="single").model, SHAPE)
    rows = known_pixel_curve(model, torch.rand(4, *SHAPE), (0, 5))
    assert all(r["recon"] > 0 for r in rows)
    assert all(r["coverage"] != r["coverage"] for r in rows)  # NaN: no draws without a prior


def test_shared_draws_sample_the_prior_once_per_count():
    asked = []

    def prior(n, generator):  # a callable prior: z ~ N(0, I) of the model's latent size
        asked.append(n)
        return torch.randn(n, 16, generator=generator)

    model = model_with(lambda z, m: z[:, :1, None, None].expand(len(z), *SHAPE))
    images = torch.zeros(6, *SHAPE)
    known_pixel_curve(model, images, (0, 5, 10), samples=4, prior=prior)
    assert asked == [24, 24, 24]  # images x samples per count
    asked.clear()
    known_pixel_curve(model, images, (0, 5, 10), samples=4, prior=prior, shared_draws=True)
    assert asked == [4, 4, 4]
