"""SoftAdapt against hand-computed weights (Heydari et al. 2019, loss-weighted variant)."""

import math

import pytest
import torch

from mtvae.softadapt import SoftAdapt, backward_stencil


def test_stencils():
    assert backward_stencil(1) == [-1.0, 1.0]
    assert backward_stencil(2) == [0.5, -2.0, 1.5]
    # exact for polynomials up to the order: f(t) = t^3 on t = -3..0 has f'(0) = 0;
    # f(t) = (t + 3)^3 has f'(0) = 27
    c = backward_stencil(3)
    assert sum(ci * (t + 3) ** 3 for ci, t in zip(c, range(-3, 1))) == pytest.approx(27.0)
    # order 6 on exp(0.1 t), t = -6..0: truncation error ~1e-8 (0.1^7 scale) on the slope 0.1
    c6 = backward_stencil(6)
    assert sum(ci * math.exp(0.1 * t) for ci, t in zip(c6, range(-6, 1))) == pytest.approx(
        0.1, abs=1e-7)
    # the order-100 stencil (the thesis window) sums to 0 (constants have no slope) and its last
    # coefficient is H_100; its other coefficients reach 1e27, which is why high orders on noisy
    # per-step losses are useless
    c100 = backward_stencil(100)
    assert c100[-1] == pytest.approx(sum(1 / k for k in range(1, 101)))
    assert max(map(abs, c100)) > 1e26


def feed(sa, rows):
    for r in rows:
        sa.record({k: torch.tensor(v) for k, v in zip(sa.components, r)})


def test_weights_by_hand():
    sa = SoftAdapt(["a", "b"], beta=1.0, window=4, order=1)
    assert sa.weights == {"a": 0.5, "b": 0.5}
    # a: 4, 3, 2, 1 -> half means 3.5, 1.5 two steps apart: slope -1; mean 2.5
    # b: 1, 1, 1, 1 -> slope 0; mean 1
    feed(sa, [(4, 1), (3, 1), (2, 1)])
    assert sa.updates == 0
    feed(sa, [(1, 1)])
    assert sa.updates == 1
    ea, eb = 2.5 * math.exp(1.0 * (-1 - 0)), 1.0 * math.exp(0.0)
    assert sa.weights["a"] == pytest.approx(ea / (ea + eb), rel=1e-6)
    assert sa.weights["b"] == pytest.approx(eb / (ea + eb), rel=1e-6)
    assert sum(sa.weights.values()) == pytest.approx(1.0, abs=1e-7)


def test_rising_loss_gets_more_weight():
    sa = SoftAdapt(["up", "down"], beta=10.0, window=10, order=1)
    feed(sa, [(1 + 0.1 * t, 2 - 0.1 * t) for t in range(10)])  # slopes +0.1 and -0.1
    # means 1.45 and 1.55; beta * (s_down - s_up) = 10 * -0.2
    expected = 1.45 / (1.45 + 1.55 * math.exp(-2.0))
    assert sa.weights["up"] == pytest.approx(expected, rel=1e-6)
    assert sa.weights["up"] > 0.85  # although its loss is the smaller one


def test_tiny_beta_gives_normalised_magnitudes():
    # what the thesis code effectively did (docs/thesis_code.md#softadapt)
    sa = SoftAdapt(["x", "y", "z"], beta=1e-4, window=6, order=2)
    feed(sa, [(300 - t, 100 + t, 50.0) for t in range(6)])
    means = [297.5, 102.5, 50.0]
    for k, m in zip("xyz", means):
        assert sa.weights[k] == pytest.approx(m / sum(means), rel=1e-3)


def test_higher_order_on_raw_steps():
    sa = SoftAdapt(["a", "b"], beta=1.0, window=3, order=2)  # chunks of one step each
    feed(sa, [(0.0, 1.0), (1.0, 1.0), (4.0, 1.0)])  # a = t^2 at t = 0, 1, 2: f'(2) = 4
    assert sa.rates(torch.tensor([[0.0], [1.0], [4.0]])).item() == pytest.approx(4.0)
    ea, eb = (5 / 3) * math.exp(0.0), 1.0 * math.exp(-4.0)
    assert sa.weights["a"] == pytest.approx(ea / (ea + eb), rel=1e-6)


def test_state_round_trip_and_reset():
    sa = SoftAdapt(["a", "b"], beta=0.5, window=4)
    feed(sa, [(4, 1), (3, 1), (2, 1), (1, 1), (5, 5)])
    other = SoftAdapt(["a", "b"], beta=0.5, window=4)
    other.load_state_dict(sa.state_dict())
    assert other.weights == sa.weights and other.updates == 1
    feed(sa, [(1, 2)] * 3)
    feed(other, [(1, 2)] * 3)  # the restored partial history completes the same window
    assert other.weights == sa.weights and other.updates == 2
    sa.reset()
    assert sa.weights == {"a": 0.5, "b": 0.5} and sa.updates == 0
    with pytest.raises(ValueError, match="state is for"):
        SoftAdapt(["x", "y"], beta=1).load_state_dict(other.state_dict())


def test_bad_arguments():
    with pytest.raises(ValueError, match="two or more"):
        SoftAdapt(["a"], beta=1)
    with pytest.raises(ValueError, match="order \\+ 1"):
        SoftAdapt(["a", "b"], beta=1, window=2, order=3)
    with pytest.raises(ValueError, match=">= 1"):
        backward_stencil(0)
