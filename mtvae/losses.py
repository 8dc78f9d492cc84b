"""Loss terms in the thesis's units and the metrics of its Table 4.1.

Training units (what the optimiser sees, docs/thesis_code.md#losses):

* Gaussian VAE: squared error **summed** over batch and pixels, plus the KL divergence summed over
  batch and latent dimensions (thesis eq. in 3.2.2 with the code's reduction; W1 = W2 = beta = 1
  by default).
* VQ-VAE: **mean** squared error, plus codebook MSE ||sg(z_e) - e||^2 and 0.25 x commitment MSE
  ||z_e - sg(e)||^2, each a mean over latent elements (van den Oord et al. 2017, beta = 0.25).

Table units (what the thesis reports, docs/thesis_code.md#tables): per-pixel MSE on [0, 1] for
both reconstructions, KL per image (nats) for the Gaussian VAE, and the raw VQ loss
(codebook + 0.25 commitment = 1.25 mean((z_q - z_e)^2)) for the VQ-VAE.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.nn import functional as F

from .methods import get_method
from .models.outputs import Outputs

__all__ = ["LossConfig", "training_terms", "objective", "MetricAccumulator", "kl_divergence"]


@dataclass
class LossConfig:
    """Weights of the training objective. Defaults are the thesis's (section 3.2.2: W1, W2 and
    beta are hyperparameters; its code used 1, 1 and 1)."""

    w1: float = 1.0  # weight of the unconditioned reconstruction (multidecoder decoder 1)
    w2: float = 1.0  # weight of the conditioned reconstruction (multidecoder decoder 2)
    beta: float = 1.0  # weight of the latent term: KL (Gaussian) or VQ loss
    commitment: float = 0.25  # VQ commitment weight (van den Oord et al. 2017; thesis code)

    def to_dict(self) -> dict:
        return asdict(self)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per image: -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def training_terms(family: str, method: str, x: torch.Tensor, out: Outputs,
                   config: LossConfig | None = None) -> dict[str, torch.Tensor]:
    """The objective's unweighted components, in training units, for ``method``: the terms
    mtvae/methods.py declares, in its order (baseline -> {recon, latent}; multidecoder ->
    {recon, recon_cond, latent}; single -> {recon_cond, latent}: the single decoder trains on
    the conditioned output only).
    """
    config = config or LossConfig()
    x = x.float()
    if family == "gaussian":
        def rec(xh):
            return F.mse_loss(xh.float(), x, reduction="sum")
        latent = kl_divergence(out.mu.float(), out.logvar.float()).sum()
    elif family == "vq":
        def rec(xh):
            return F.mse_loss(xh.float(), x)
        codebook = F.mse_loss(out.z_q, out.z_e.detach())
        commitment = F.mse_loss(out.z_q.detach(), out.z_e)
        latent = codebook + config.commitment * commitment
    else:
        raise ValueError(f"unknown model family {family!r}")
    terms: dict[str, torch.Tensor] = {}
    for name in get_method(method).terms:
        if name == "latent":
            terms[name] = latent
        elif getattr(out, name) is None:
            raise ValueError("the model returned no unconditioned reconstruction" if name == "recon"
                             else f"method {method!r} trains on the conditioned reconstruction: "
                             "pass m to the model")
        else:
            terms[name] = rec(getattr(out, name))  # recon or recon_cond
    return terms


def objective(terms: dict[str, torch.Tensor], config: LossConfig,
              weights: dict[str, float] | None = None) -> torch.Tensor:
    """W1 recon + W2 recon_cond + beta latent, or SoftAdapt's weights when given."""
    if weights is None:
        weights = {"recon": config.w1, "recon_cond": config.w2, "latent": config.beta}
    return sum(weights[k] * v for k, v in terms.items())


class MetricAccumulator:
    """Exact dataset-level metrics in Table 4.1 units, accumulated over evaluation batches.

    recon / recon_cond: per-pixel MSE; kl: nats per image; vq: codebook + commitment loss;
    for VQ models also the codebook perplexity and the number of codes used.
    """

    def __init__(self, family: str, commitment: float = 0.25, num_embeddings: int = 0):
        self.family, self.commitment = family, commitment
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.code_hist = torch.zeros(num_embeddings, dtype=torch.float64) if num_embeddings else None

    def _add(self, key: str, total: torch.Tensor, count: int) -> None:
        total = total.detach().double()
        self.sums[key] = self.sums[key] + total if key in self.sums else total
        self.counts[key] = self.counts.get(key, 0) + count

    @torch.no_grad()
    def update(self, x: torch.Tensor, out: Outputs) -> None:
        x = x.float()
        if out.recon is not None:
            self._add("recon", (out.recon.float() - x).pow(2).sum(), x.numel())
        if out.recon_cond is not None:
            self._add("recon_cond", (out.recon_cond.float() - x).pow(2).sum(), x.numel())
        if self.family == "gaussian":
            self._add("kl", kl_divergence(out.mu.float(), out.logvar.float()).sum(), x.shape[0])
        else:
            sq = (out.z_q - out.z_e).pow(2).sum()
            self._add("vq", (1.0 + self.commitment) * sq, out.z_e.numel())
            if self.code_hist is not None:
                hist = torch.bincount(out.codes.flatten(), minlength=len(self.code_hist))
                self.code_hist = self.code_hist.to(hist.device) + hist  # stays on the device

    def compute(self) -> dict[str, float]:
        res = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        if self.code_hist is not None and self.code_hist.sum() > 0:
            p = self.code_hist / self.code_hist.sum()
            nz = p[p > 0]
            res["perplexity"] = float(torch.exp(-(nz * nz.log()).sum()))
            res["codes_used"] = int((self.code_hist > 0).sum())
        return res
