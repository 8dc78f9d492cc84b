"""Samplers of the conditioning information m, checked against their definitions (thesis 3.1-3.3)."""

import math

import pytest
import torch

from mtvae.observations import (
    ObservationConfig,
    Observer,
    fixed_count,
    grid_coordinates,
    make_m,
    power_law_counts,
    sample_mask,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("size, coords", [
    (28, [5, 10, 15, 20]),
    (32, [6, 12, 18, 24]),
    (64, [4, 10, 16, 22, 28, 34, 40, 46, 52, 58]),
])
def test_exact_grid_is_the_thesis_grid(size, coords):
    # docs/thesis_code.md#samplers: MNIST {5,10,15,20}^2 = 16 px, CIFAR {6,...,24}^2,
    # CelebA 10x10 = 100 px
    assert grid_coordinates(size) == coords
    mask = sample_mask(3, size, size, "exact")
    assert mask.shape == (3, 1, size, size)
    assert int(mask[0].sum()) == len(coords) ** 2
    rows = mask[0, 0].nonzero()[:, 0].unique().tolist()
    assert rows == coords
    assert torch.equal(mask[0], mask[2])  # the same pixels for every image


@pytest.mark.parametrize("size, count", [(28, 39), (32, 51), (64, 204)])
def test_fixed_count_is_five_percent(size, count):
    assert fixed_count(size, size) == count


@pytest.mark.parametrize("sampler", ["uniform", "gaussian"])
@pytest.mark.parametrize("count", [0, 1, 39, 400, 784])
def test_distinct_pixels_exactly_count(sampler, count):
    mask = sample_mask(64, 28, 28, sampler, count, generator=gen())
    assert mask.shape == (64, 1, 28, 28)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (mask.sum((1, 2, 3)) == count).all()


def test_variable_counts_per_image():
    counts = torch.tensor([0, 5, 100, 784])
    for sampler in ("uniform", "gaussian"):
        mask = sample_mask(4, 28, 28, sampler, counts, generator=gen(1))
        assert mask.sum((1, 2, 3)).long().tolist() == counts.tolist()


def test_gaussian_pixels_closer_to_centre_than_uniform():
    def mean_dist(sampler):
        mask = sample_mask(2000, 32, 32, sampler, 51, generator=gen(2))
        rc = mask[:, 0].nonzero()[:, 1:].float() + 0.5  # pixel centres
        return (rc - 16.0).norm(dim=1).mean().item()

    d_uniform, d_gauss = mean_dist("uniform"), mean_dist("gaussian")
    # uniform over a 32x32 square: mean distance from the centre ~ 0.3826 * 32 = 12.2
    assert abs(d_uniform - 0.3826 * 32) < 0.3
    assert d_gauss < 0.8 * d_uniform


def test_gaussian_sampler_is_centred():
    mask = sample_mask(4000, 28, 28, "gaussian", 10, generator=gen(3))
    rc = mask[:, 0].nonzero()[:, 1:].float() + 0.5
    assert torch.allclose(rc.mean(0), torch.tensor([14.0, 14.0]), atol=0.1)


def test_uniform_covers_every_pixel_evenly():
    mask = sample_mask(20000, 8, 8, "uniform", 4, generator=gen(4))
    freq = mask.mean(0).flatten()  # expected 4/64 each
    assert torch.allclose(freq, torch.full_like(freq, 4 / 64), atol=0.01)


def test_power_law_mean_and_zero_probability():
    n, a, draws = 784, 40.0, 400_000
    c = power_law_counts(draws, n, a, gen(5)).double()
    # E[floor(N Y)] = sum_k P(Y >= k/N) = sum_{k=1}^{N} (1 - k/N)^a with Y = 1 - X ~ Beta(1, a);
    # close to N / (a + 1) = 19.1 (minus ~0.5 for the floor)
    expected = sum((1 - k / n) ** a for k in range(1, n + 1))
    assert abs(expected - n / (a + 1)) < 0.6
    se = c.std().item() / math.sqrt(draws)
    assert abs(c.mean().item() - expected) < 5 * se
    p0 = 1 - (1 - 1 / n) ** a  # about 5 % for MNIST at a = 40
    assert abs(p0 - 0.0498) < 1e-3
    assert abs((c == 0).double().mean().item() - p0) < 5 * math.sqrt(p0 * (1 - p0) / draws)
    assert c.min() >= 0 and c.max() <= n


def test_higher_exponent_fewer_pixels():
    means = [power_law_counts(50_000, 784, a, gen(6)).float().mean().item() for a in (5, 40, 60)]
    assert means[0] > means[1] > means[2]
    # and the exponent is really used (the thesis code always used 40)
    assert abs(means[2] - 784 / 61) < 1.0


def test_with_replacement_mode_matches_thesis_duplicates():
    # 39 uniform draws with replacement on 784 pixels give 784 (1 - (1 - 1/784)^39) distinct
    mask = sample_mask(5000, 28, 28, "uniform", 39, replacement=True, generator=gen(7))
    expected = 784 * (1 - (1 - 1 / 784) ** 39)  # 38.05 (docs/thesis_code.md#samplers: "38.1 of 39")
    assert abs(mask.sum((1, 2, 3)).mean().item() - expected) < 0.1
    assert (mask.sum((1, 2, 3)) <= 39).all()
    g = sample_mask(5000, 32, 32, "gaussian", 51, replacement=True, generator=gen(8))
    assert 46.5 < g.sum((1, 2, 3)).mean().item() < 49  # docs/thesis_code.md#samplers: about 47.7


def test_seeded_reproducibility():
    obs = Observer(ObservationConfig("gaussian", "power-law", 40), (3, 32, 32))
    x = torch.rand(16, 3, 32, 32)
    assert torch.equal(obs(x, gen(9)), obs(x, gen(9)))
    assert not torch.equal(obs(x, gen(9)), obs(x, gen(10)))


def test_m_layout():
    x = torch.rand(5, 3, 32, 32)
    obs = Observer(ObservationConfig("uniform", "fixed"), (3, 32, 32))
    m = obs(x, gen(11))
    assert m.shape == (5, 4, 32, 32)
    mask = m[:, 3:]
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert (mask.sum((1, 2, 3)) == 51).all()
    # colour channels equal x on the mask, zero elsewhere; one mask shared by all colours
    assert torch.equal(m[:, :3], x * mask)
    assert (m[:, :3][mask.expand(-1, 3, -1, -1) == 0] == 0).all()


def test_make_m_rejects_odd_shapes():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        make_m(torch.rand(2, 1, 28, 28), torch.ones(2, 3, 28, 28))


@pytest.mark.parametrize("kwargs, match", [
    (dict(sampler="stripes"), "unknown pixel sampler"),
    (dict(count="poisson"), "unknown count sampler"),
    (dict(sampler="uniform", count="power-law", exponent=0), "exponent must be"),
    (dict(sampler="uniform", count="power-law", exponent=-3), "exponent must be"),
    (dict(sampler="exact", count="power-law"), "use sampler='uniform' or 'gaussian'"),
    (dict(rate=1.5), "rate must be"),
])
def test_bad_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ObservationConfig(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[0, 784\]"):
        sample_mask(2, 28, 28, "uniform", 785)
    with pytest.raises(ValueError, match="at least 7 pixels"):
        Observer(ObservationConfig("exact"), (1, 5, 5))
    obs = Observer(ObservationConfig("uniform"), (1, 28, 28))
    with pytest.raises(ValueError, match="build the Observer for this image size"):
        obs(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="build the Observer"):
        obs(torch.rand(28, 28))
    with pytest.raises(ValueError, match="exponent"):
        power_law_counts(4, 784, float("nan"))


def test_full_sort_path_gives_the_same_counts():
    """On a GPU the top-k bound is all N pixels (no host sync per step); it must draw exactly
    the same number of distinct pixels as the CPU's bound of the largest count."""
    from mtvae.observations import _draw, _gaussian_log_weights

    counts = torch.tensor([0, 3, 50, 784])
    for sampler in ("uniform", "gaussian"):
        log_w = _gaussian_log_weights(28, 28, "cpu") if sampler == "gaussian" else None
        mask = _draw(4, 28, 28, sampler, counts, 784, False, gen(12), log_w)
        assert mask.sum((1, 2, 3)).long().tolist() == counts.tolist()


def test_observer_grid_is_not_shared_with_callers():
    obs = Observer(ObservationConfig("exact"), (1, 28, 28))
    first = obs.mask(2)
    first.zero_()  # a caller writing into its mask must not change the next batch's
    assert int(obs.mask(2).sum()) == 2 * 16
