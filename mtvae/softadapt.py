"""Loss-weighted SoftAdapt (Heydari, Thompson & Mehmood 2019, arXiv:1912.12355).

For loss components L_1..L_n, SoftAdapt weights each by how fast it changes:

    s_i = dL_i/dt (a finite-difference slope over recent training steps)
    w_i = f_i exp(beta (s_i - max_j s_j)) / sum_k f_k exp(beta (s_k - max_j s_j))

where the *loss-weighted* variant multiplies by f_i, the recent mean of L_i (the paper's
section 3.2). A component whose loss rises or stalls gets more weight; beta -> 0 leaves the
weights proportional to the loss magnitudes.

How the slope is taken here (explicit, because the thesis code got it wrong): the last
``window`` per-step values are split into ``order + 1`` equal consecutive chunks, and the
backward finite-difference stencil of accuracy ``order`` (exact rational coefficients) is applied
to the chunk means, spaced ``window / (order + 1)`` steps apart. ``order=1`` is the difference of
the two half-window means divided by half the window: a slope that per-step minibatch noise
cannot dominate. ``order = window - 1`` is a plain stencil on raw per-step values, as the thesis
code did.

The thesis code (docs/thesis_code.md#softadapt) used SoftAdapt 0.0.5 with a window of 101 steps and
``findiff`` coefficients of accuracy 100 computed in floating point. Solving that 101 x 101
Vandermonde system in float64 is hopelessly ill-conditioned: it returned
[0.6428, -2.2856, 1.6428, ~0, ...], which is exact only for straight lines (k^2 gives 4.29
instead of 0) and measures the slope at the *oldest* three points of the window, whereas the
exact forward stencil starts with -H_100 = -5.187 (and its coefficients reach 2e27 in size,
so even an exact order-100 slope of noisy minibatch losses is pure noise). With beta = 1e-4
(Gaussian) or 5e-3 (VQ) and such rates, exp(beta * rate) ~ 1, so its weights were just the
window-mean loss magnitudes normalised to sum to 1. Its state was not checkpointed nor reset between folds. Here the stencil
is exact (``fractions``), the state is in ``state_dict`` and :meth:`reset` starts a fold afresh.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import torch

__all__ = ["SoftAdapt", "backward_stencil", "DEFAULT_BETA"]

# The thesis code's defaults: 1e-4 for Gaussian VAEs (VAELoss), 5e-3 for VQ-VAEs (VQLoss).
DEFAULT_BETA = {"gaussian": 1e-4, "vq": 5e-3}


def backward_stencil(order: int) -> list[float]:
    """Coefficients c_0..c_p of the first derivative at the last of p + 1 equally spaced points,
    f'(t_p) ~ sum_j c_j f(t_j) / h, exact to O(h^p). Order 1: [-1, 1]; order 2: [1/2, -2, 3/2].

    Closed form (the derivative of the Lagrange interpolant at the last node): the point j steps
    back gets (-1)^j C(p, j) / j and the last point H_p = 1 + 1/2 + ... + 1/p. Exact rational
    arithmetic, so any order is exact, unlike a floating-point Vandermonde solve.
    """
    if order < 1:
        raise ValueError(f"finite-difference order must be >= 1, got {order}")
    back = [Fraction((-1) ** j * comb(order, j), j) for j in range(1, order + 1)]
    last = sum(Fraction(1, k) for k in range(1, order + 1))
    return [float(c) for c in reversed(back)] + [float(last)]


class SoftAdapt:
    """Adaptive weights for named loss components, updated every ``window`` training steps.

    >>> sa = SoftAdapt(["recon", "recon_cond", "latent"], beta=1e-4)
    >>> loss = sum(sa.weights[k] * v for k, v in terms.items()); sa.record(terms)
    """

    def __init__(self, components: list[str], beta: float, window: int = 100, order: int = 1,
                 init: str = "uniform"):
        if len(components) < 2:
            raise ValueError("SoftAdapt balances two or more loss components")
        if window < order + 1:
            raise ValueError(f"window ({window} steps) must hold at least order + 1 = {order + 1} "
                             "points; lengthen the window or lower the order")
        self.components = list(components)
        if init not in ("uniform", "ones"):
            raise ValueError(f"init must be 'uniform' (1/n each) or 'ones' (the thesis code's "
                             f"torch.ones), got {init!r}")
        self.beta, self.window, self.order = float(beta), int(window), int(order)
        self.init = init
        self.stencil = torch.tensor(backward_stencil(order), dtype=torch.float64)
        self.reset()

    def reset(self) -> None:
        """Equal initial weights (1/n, or 1 with init='ones') and an empty history (call at the
        start of every fold)."""
        w0 = 1.0 / len(self.components) if self.init == "uniform" else 1.0
        self.weights = {k: w0 for k in self.components}
        self._history: list[torch.Tensor] = []
        self.updates = 0

    def record(self, terms: dict[str, torch.Tensor]) -> None:
        """Append one training step's component values; recompute the weights once ``window``
        values are in (the values stay on their device until then: no per-step sync)."""
        self._history.append(torch.stack([terms[k].detach().double() for k in self.components]))
        if len(self._history) >= self.window:
            self.update(torch.stack([h.cpu() for h in self._history]))
            self._history.clear()

    def rates(self, values: torch.Tensor) -> torch.Tensor:
        """Slopes per step of each column of ``values`` (steps x components)."""
        chunks = torch.tensor_split(values, self.order + 1, dim=0)
        means = torch.stack([c.mean(0) for c in chunks])  # (order + 1, n)
        spacing = values.shape[0] / (self.order + 1)
        return (self.stencil[:, None] * means).sum(0) / spacing

    def update(self, values: torch.Tensor) -> dict[str, float]:
        values = values.double()
        s = self.rates(values)
        f = values.mean(0)
        e = f * torch.exp(self.beta * (s - s.max()))
        w = e / (e.sum() + 1e-8)
        self.weights = {k: float(v) for k, v in zip(self.components, w)}
        self.updates += 1
        return self.weights

    def state_dict(self) -> dict:
        return {"components": self.components, "beta": self.beta, "window": self.window,
                "order": self.order, "weights": dict(self.weights), "updates": self.updates,
                "history": [h.cpu() for h in self._history]}

    def load_state_dict(self, state: dict) -> None:
        if state["components"] != self.components:
            raise ValueError(f"SoftAdapt state is for {state['components']}, not {self.components}")
        self.beta, self.window, self.order = state["beta"], state["window"], state["order"]
        self.stencil = torch.tensor(backward_stencil(self.order), dtype=torch.float64)
        self.weights = dict(state["weights"])
        self.updates = state["updates"]
        self._history = list(state["history"])
