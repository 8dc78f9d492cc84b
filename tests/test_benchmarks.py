"""The benchmark's building blocks and the fast path they measure (no timing assertions).

* the thesis-style Dataset yields what the thesis's ConditionalDataset did (x, m = [x*mask,
  mask]), with-replacement draws included;
* the benchmark's functions run one tiny step and report sane numbers;
* the conditioned head's hand-written gradients equal autograd's on the plain concatenated
  linear layer, on both the dense and the observed-columns path;
* training stays deterministic and resumable with the fused optimizer and the new head.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import report, throughput  # noqa: E402
from benchmarks.thesis_pipeline import (  # noqa: E402
    ThesisStyleDataset,
    thesis_loader,
    thesis_optimizer,
    thesis_step,
)
from mtvae.api import make_config  # noqa: E402
from mtvae.models import ModelConfig, blocks, build_model  # noqa: E402
from mtvae.observations import ObservationConfig  # noqa: E402
from mtvae.train import fit  # noqa: E402


def _images(n, shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("shape,pil", [((1, 28, 28), True), ((3, 32, 32), True),
                                       ((3, 64, 64), False)])
def test_thesis_dataset_returns_image_and_masked_m(shape, pil):
    images = _images(4, shape)
    ds = ThesisStyleDataset(images, ObservationConfig("uniform"), pil=pil)
    x, m, y = ds[2]
    assert y == 0 and x.shape == shape and m.shape == (shape[0] + 1, *shape[1:])
    # ToTensor scaling, and channels in (C, H, W) order after the PIL round trip
    torch.testing.assert_close(x, images[2].float() / 255)
    mask = m[-1]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(m[:-1], x * mask)


def test_thesis_uniform_draws_keep_duplicates():
    """39 pairs drawn with replacement from 784 pixels repeat one with probability
    1 - prod(1 - i/784) ~ 0.61, so among 64 images some show fewer than 39 pixels."""
    torch.manual_seed(0)
    ds = ThesisStyleDataset(_images(64, (1, 28, 28)), ObservationConfig("uniform"))
    counts = [int(ds[i][1][1].sum()) for i in range(64)]
    assert max(counts) <= 39 and min(counts) >= 30
    assert sum(c < 39 for c in counts) >= 10


def test_thesis_exact_grid_and_power_law_counts():
    ds = ThesisStyleDataset(_images(2, (1, 28, 28)), ObservationConfig())
    mask = ds[0][1][1]
    rows, cols = mask.nonzero(as_tuple=True)
    assert sorted(set(rows.tolist())) == [5, 10, 15, 20] == sorted(set(cols.tolist()))
    assert int(mask.sum()) == 16
    np.random.seed(0)
    torch.manual_seed(0)
    ds = ThesisStyleDataset(_images(400, (1, 28, 28)), ObservationConfig("uniform", "power-law"))
    counts = torch.tensor([float(ds[i][1][1].sum()) for i in range(400)])
    # count = floor(784 (1 - X)), X ~ Power(40): mean 784/41 = 19.1 before duplicates
    assert 14 < counts.mean() < 22 and counts.max() <= 784


def test_thesis_loader_and_step_train_the_model():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vq", 1, "multidecoder"), (1, 28, 28))
    before = [p.detach().clone() for p in model.parameters()]
    loader = thesis_loader(ThesisStyleDataset(_images(8, (1, 28, 28)), ObservationConfig()), 4)
    logged = thesis_step(model, next(iter(loader)), thesis_optimizer(model), "vq",
                         "multidecoder", torch.device("cpu"))
    assert {"train_loss", "train_recon_loss_1(MASKED)", "train_vq_loss"} <= set(logged)
    assert all(math.isfinite(v) for v in logged.values())
    assert logged["train_loss"] == pytest.approx(logged["train_recon_loss_0"]
                                                 + logged["train_recon_loss_1"]
                                                 + logged["train_vq_loss"], rel=1e-5)
    assert model.cond_decoder.training  # the logged-only eval pass switched it back
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.slow
def test_benchmark_cli_one_tiny_step(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert throughput.main(["--datasets", "mnist", "--models", "vq1", "--methods", "single",
                            "--steps", "1", "--rounds", "1", "--batch-size", "8",
                            "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    (r,) = res["results"]
    for name in ("fit", "bare", "thesis"):
        assert r["ips"][name][0] > 0 and math.isfinite(r["ips"][name][0])
        assert r["peak_mb"][name] > 0
    assert r["speedup"] > 0 and r["overhead"] < 1
    assert r["params"] == sum(p.numel() for p in build_model(
        ModelConfig("vq", 1, "single"), (1, 28, 28)).parameters())
    assert [s["sampler"] for s in res["sampling"]] == list(throughput.SAMPLERS)
    assert all(s[k] > 0 for s in res["sampling"] for k in ("ours", "thesis", "loader"))
    assert "| fit / thesis |" in capsys.readouterr().out


def test_grid_hours_by_hand():
    """All 15 MNIST (config, method) pairs at 1,000 img/s: one fold is 100 epochs x (48,000 +
    5,000/3) images plus the 12,000/3 test images = 4,970.67 s; 45 runs x 5 folds = 225 folds."""
    results = [{"dataset": "mnist", "model": c, "method": m, "median": {"fit": 1000.0}}
               for c in report.CONFIGS for m in report.RUNS]
    hours, missing = report.grid_hours(results, "mnist")
    assert missing == [] and hours == pytest.approx(225 * 4970.6667 / 3600, rel=1e-6)
    hours_without_vq3, missing = report.grid_hours(results[:-3], "mnist")
    assert missing == ["vq3 baseline", "vq3 single", "vq3 multidecoder"]
    assert hours_without_vq3 == pytest.approx(hours * 4 / 5)


def test_report_merges_rounds_of_repeated_runs():
    def run(fit, bare, thesis):
        return {"dataset": "mnist", "model": "vq1", "method": "single", "params": 1,
                "ips": {"fit": fit, "bare": bare, "thesis": thesis},
                "peak_mb": {"fit": 1.0, "bare": 2.0, "thesis": 3.0}}

    (r,) = report.merge([run([100.0], [100.0], [50.0]), run([200.0, 300.0], [250.0, 300.0],
                                                           [100.0, 100.0])])
    assert r["ips"]["fit"] == [100.0, 200.0, 300.0] and r["median"]["fit"] == 200.0
    assert r["speedup"] == 2.0  # per-round ratios 2, 2, 3
    assert r["overhead"] == pytest.approx(0.0)  # per-round fit / bare 1, 0.8, 1
    assert "| mnist | vq1 | single |" in report.tables([r], [])


def test_benchmark_cli_rejects_unknown_names():
    with pytest.raises(SystemExit):
        throughput.main(["--datasets", "imagenet"])


@pytest.mark.parametrize("observed", [1568, 40, 0])
def test_conditioned_head_matches_linear_on_concatenation(observed, monkeypatch):
    """Output and every gradient equal the thesis's layer, Linear(cat(z, flatten(m))), whether
    all of m's columns are multiplied (dense) or only the observed ones."""
    torch.manual_seed(0)
    head = blocks.ConditionedHead(16, 1568, (16, 7, 7)).double()
    m = torch.zeros(6, 2, 28, 28, dtype=torch.float64)
    cols = torch.randperm(1568)[:observed]
    m.view(6, -1)[:, cols] = torch.rand(6, observed, dtype=torch.float64)
    z = torch.randn(6, 16, dtype=torch.float64, requires_grad=True)
    z_ref = z.detach().clone().requires_grad_()
    w_ref = torch.cat([head.linear.weight, head.from_m.weight], 1).detach().requires_grad_()
    b_ref = head.linear.bias.detach().clone().requires_grad_()
    ref = head.norm(torch.relu(F.linear(torch.cat([z_ref, m.flatten(1)], 1), w_ref, b_ref)))
    grad = torch.randn_like(ref)
    ref.backward(grad)
    for fraction in (-1.0, 1.0):  # force the dense, then the observed-columns path
        monkeypatch.setattr(blocks, "SPARSE_COLUMN_FRACTION", fraction)
        head.zero_grad(set_to_none=True)
        z.grad = None
        out = head(z, m)
        out.view(6, -1).backward(grad)
        torch.testing.assert_close(out.view(6, -1), ref)
        torch.testing.assert_close(z.grad, z_ref.grad)
        torch.testing.assert_close(head.linear.weight.grad, w_ref.grad[:, :16])
        torch.testing.assert_close(head.from_m.weight.grad, w_ref.grad[:, 16:])
        torch.testing.assert_close(head.linear.bias.grad, b_ref.grad)


def test_conditioned_head_is_initialised_as_one_layer():
    """Both column blocks are drawn as nn.Linear(latent + m) would draw its weight:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = 16 + 1,568 (not 16 for the latent block)."""
    torch.manual_seed(0)
    head = blocks.ConditionedHead(16, 1568, (16, 7, 7))
    bound = 1 / 1584 ** 0.5
    for w in (head.linear.weight, head.from_m.weight, head.linear.bias):
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.95 * bound  # and fill the range
        assert w.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["multidecoder", "single"])
def test_fit_deterministic_and_resumable_with_fast_path(method, tmp_path):
    """Same seed -> identical metrics; 1 epoch, stop, resume to 2 == 2 epochs straight."""
    def config(epochs):
        return make_config("mnist-sample", model="vq", config=1, method=method, epochs=epochs,
                           limit=128, batch_size=64, val_fraction=0.05, device="cpu",
                           progress=False)

    def values(history):  # everything but the timings
        return [{k: v for k, v in h.items() if k not in ("time_s", "images_per_s")}
                for h in history]

    a, b = fit(config(2)), fit(config(2))
    assert values(a.history) == values(b.history) and a.metrics == b.metrics
    fit(config(1), tmp_path)
    resumed = fit(config(2), tmp_path)
    assert values(resumed.history) == values(a.history) and resumed.metrics == a.metrics
