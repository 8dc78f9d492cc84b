"""Loss terms and metrics against hand computation on tiny tensors."""

import math

import pytest
import torch

from mtvae.losses import LossConfig, MetricAccumulator, kl_divergence, objective, training_terms
from mtvae.models.outputs import Outputs

# two 1x1x2 "images"
X = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.5]]]])
R1 = torch.tensor([[[[0.5, 1.0]]], [[[0.5, 0.0]]]])  # errors^2: 0.25, 0, 0, 0.25 -> sum 0.5
R2 = torch.tensor([[[[0.0, 0.0]]], [[[0.5, 0.5]]]])  # errors^2: 0, 1, 0, 0 -> sum 1.0


def gaussian_out(recon=R1, recon_cond=R2):
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]])
    return Outputs(recon=recon, recon_cond=recon_cond, mu=mu, logvar=logvar)


def test_kl_by_hand():
    out = gaussian_out()
    # image 1: 0.5 * (mu^2 = 1) = 0.5; image 2: 0.5 * (sigma^2 - 1 - log sigma^2) = 0.5 (1 - ln 2)
    kl = kl_divergence(out.mu, out.logvar)
    assert torch.allclose(kl, torch.tensor([0.5, 0.5 * (1 - math.log(2))]))


def test_gaussian_terms_are_sums():
    terms = training_terms("gaussian", "multidecoder", X, gaussian_out())
    assert terms["recon"].item() == pytest.approx(0.5)  # summed over batch and pixels
    assert terms["recon_cond"].item() == pytest.approx(1.0)
    assert terms["latent"].item() == pytest.approx(0.5 + 0.5 * (1 - math.log(2)))
    loss = objective(terms, LossConfig(w1=2.0, w2=3.0, beta=0.5))
    assert loss.item() == pytest.approx(2 * 0.5 + 3 * 1.0 + 0.5 * (1 - 0.5 * math.log(2)))


def test_method_selects_terms():
    assert set(training_terms("gaussian", "baseline", X, gaussian_out())) == {"recon", "latent"}
    single = training_terms("gaussian", "single", X, gaussian_out(recon=None))
    assert set(single) == {"recon_cond", "latent"}
    with pytest.raises(ValueError, match="pass m"):
        training_terms("gaussian", "single", X, gaussian_out(recon_cond=None))


def vq_out():
    z_e = torch.tensor([[[[1.0, 2.0]]]])  # (B=1, D=1, h=1, w=2)
    z_q = torch.tensor([[[[0.0, 2.5]]]])  # squared gaps 1 and 0.25 -> mean 0.625
    return Outputs(recon=R1, recon_cond=R2, z_e=z_e.requires_grad_(), z_q=z_q.requires_grad_(),
                   codes=torch.tensor([[[3, 1]]]))


def test_vq_terms_are_means():
    terms = training_terms("vq", "multidecoder", X, vq_out())
    assert terms["recon"].item() == pytest.approx(0.5 / 4)  # mean over 4 elements
    assert terms["recon_cond"].item() == pytest.approx(1.0 / 4)
    assert terms["latent"].item() == pytest.approx(1.25 * 0.625)  # codebook + 0.25 commitment


def test_vq_stop_gradients():
    out = vq_out()
    training_terms("vq", "baseline", X, out)["latent"].backward()
    # codebook term moves the codes: d/dz_q mean((z_q - sg z_e)^2) = 2 (z_q - z_e) / 2
    assert torch.allclose(out.z_q.grad, torch.tensor([[[[-1.0, 0.5]]]]))
    # commitment moves the encoder with weight 0.25: 0.25 * 2 (z_e - z_q) / 2
    assert torch.allclose(out.z_e.grad, 0.25 * torch.tensor([[[[1.0, -0.5]]]]))


def test_metrics_table_units():
    acc = MetricAccumulator("gaussian")
    acc.update(X, gaussian_out())
    acc.update(X, gaussian_out())  # two batches: means are over everything
    res = acc.compute()
    assert res["recon"] == pytest.approx(0.5 / 4)  # per-pixel MSE
    assert res["recon_cond"] == pytest.approx(1.0 / 4)
    assert res["kl"] == pytest.approx((0.5 + 0.5 * (1 - math.log(2))) / 2)  # per image

    vq = MetricAccumulator("vq", num_embeddings=4)
    vq.update(X, vq_out())
    res = vq.compute()
    assert res["vq"] == pytest.approx(1.25 * 0.625)
    assert res["codes_used"] == 2
    assert res["perplexity"] == pytest.approx(2.0)  # two codes, equally often
