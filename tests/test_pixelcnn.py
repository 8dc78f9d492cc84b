"""Gated PixelCNN prior: causality, no blind spot, sampling, and learning (mtvae.models.pixelcnn,
mtvae.prior)."""

import math

import pytest
import torch

import mtvae
from mtvae.cli import main
from mtvae.models.pixelcnn import GatedPixelCNN, PixelCNNConfig
from mtvae.prior import PriorConfig, extract_codes, load_prior, prior_nll, sample_codes, train_prior


def small_net(k=8, layers=15, first=7, kernel=3, seed=0, double=True):
    torch.manual_seed(seed)
    net = GatedPixelCNN(PixelCNNConfig(k, channels=8, n_layers=layers, first_kernel=first,
                                       kernel=kernel, head_channels=16)).eval()
    return net.double() if double else net


def dependence(net, rows, cols, at="logits", seed=0):
    """dep[q, p]: the output at raster position p has a nonzero gradient with respect to the
    embedded code at position q. ``at`` is "logits" or "features" (the head's input).

    One backward pass: copy b of the code map backpropagates only a random projection of the
    output at position b. Gradients (unlike perturbing codes) do not round a tiny but real
    dependence away, and a dependence that the layer shapes exclude is exactly 0. The no-blind-
    spot tests look at the features: the head is 1x1 (it adds no spatial dependence), but at
    random initialisation its ReLUs can all be off at some position and hide every dependence.
    """
    n = rows * cols
    codes = torch.randint(0, net.num_classes, (n, rows, cols),
                          generator=torch.Generator().manual_seed(seed))
    seen = {}
    hooks = [net.embed.register_forward_hook(lambda m, i, out: seen.update(emb=out)),
             net.head.register_forward_pre_hook(lambda m, i: seen.update(features=i[0]))]
    logits = net(codes)
    for h in hooks:
        h.remove()
    emb = seen["emb"]
    emb.retain_grad()
    out = (logits if at == "logits" else seen["features"]).flatten(2)  # (n, channels, n)
    weights = torch.randn(out.shape[1], generator=torch.Generator().manual_seed(seed + 1))
    picked = out[torch.arange(n), :, torch.arange(n)]  # (n, channels): copy b, position b
    (picked @ weights.to(picked.dtype)).sum().backward()
    return emb.grad.abs().sum(-1).view(n, n).t() > 0  # emb.grad[b, q] -> dep[q, p=b]


def raster(rows, cols):
    q, p = torch.meshgrid(torch.arange(rows * cols), torch.arange(rows * cols), indexing="ij")
    return q, p


@pytest.mark.parametrize("layers", [1, 2, 3, 15])
@pytest.mark.parametrize("grid", [(7, 7), (8, 8)])
def test_no_position_sees_itself_or_the_future(layers, grid):
    dep = dependence(small_net(layers=layers), *grid)
    q, p = raster(*grid)
    assert not dep[q >= p].any()


@pytest.mark.parametrize("first,kernel", [(5, 5), (3, 3)])
def test_causal_for_other_kernels(first, kernel):
    dep = dependence(small_net(layers=4, first=first, kernel=kernel), 8, 8)
    q, p = raster(8, 8)
    assert not dep[q >= p].any()


def test_causal_on_a_16x16_grid():
    dep = dependence(small_net(layers=15), 16, 16, at="features")
    q, p = raster(16, 16)
    assert not dep[q >= p].any()
    # 15 layers reach 3 + 14 = 17 rows and columns: every earlier code of a 16x16 map (CelebA).
    assert dep[q < p].all()


@pytest.mark.parametrize("grid", [(7, 7), (8, 8)])
def test_fifteen_layers_see_every_earlier_code(grid):
    dep = dependence(small_net(layers=15), *grid, at="features")
    q, p = raster(*grid)
    assert dep[q < p].all()


def test_one_layer_sees_exactly_the_mask_a_window():
    """7x7 mask A: the three rows above (columns j-3..j+3) and three codes to the left."""
    rows = cols = 8
    dep = dependence(small_net(layers=1), rows, cols, at="features")
    expected = torch.zeros(rows * cols, rows * cols, dtype=torch.bool)
    for i in range(rows):
        for j in range(cols):
            for r in range(rows):
                for c in range(cols):
                    above = i - 3 <= r < i and abs(c - j) <= 3
                    left = r == i and j - 3 <= c < j
                    expected[r * cols + c, i * cols + j] = above or left
    assert torch.equal(dep, expected)


@pytest.mark.parametrize("layers", [2, 3, 5])
def test_no_blind_spot_within_the_receptive_field(layers):
    """The whole upper window, including the upper-right corner a plain masked PixelCNN misses."""
    net = small_net(layers=layers)
    r = net.config.receptive_field
    assert r == 3 + (layers - 1)
    rows = cols = 8
    dep = dependence(net, rows, cols, at="features")
    for i in range(rows):
        for j in range(cols):
            for row in range(max(0, i - r), i + 1):
                for c in range(max(0, j - r), min(cols, j + r + 1)):
                    if row < i or c < j:
                        assert dep[row * cols + c, i * cols + j], (row, c, i, j)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="odd"):
        PixelCNNConfig(kernel=4)
    with pytest.raises(ValueError, match="n_layers"):
        PixelCNNConfig(n_layers=0)
    with pytest.raises(ValueError, match="codebook size"):
        PixelCNNConfig(num_classes=1)
    with pytest.raises(ValueError, match="unknown prior option"):
        PriorConfig.from_options(layers=3)
    with pytest.raises(ValueError, match="integer code map"):
        small_net()(torch.zeros(2, 7, 7))


def test_sampling_shapes_and_seeds():
    net = small_net(k=8, layers=3, double=False)
    a = net.sample(5, (7, 6), generator=torch.Generator().manual_seed(1))
    b = net.sample(5, (7, 6), generator=torch.Generator().manual_seed(1))
    c = net.sample(5, (7, 6), generator=torch.Generator().manual_seed(2))
    assert a.shape == (5, 7, 6) and a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) < 8
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(sample_codes(net, 5, shape=(7, 6), seed=1), a)
    assert sample_codes(net, 7, shape=(3, 3), seed=0, batch_size=3).shape == (7, 3, 3)


def test_greedy_sampling_matches_a_full_map_decode():
    """Temperature 0 picks the argmax at every step; recomputed here on the full map each time
    (the sampler only runs the rows drawn so far)."""
    net = small_net(k=8, layers=4)
    got = net.sample(3, (5, 6), temperature=0.0)
    codes = torch.zeros(3, 5, 6, dtype=torch.long)
    with torch.no_grad():
        for i in range(5):
            for j in range(6):
                codes[:, i, j] = net(codes)[:, :, i, j].argmax(1)
    assert torch.equal(got, codes)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_first_code_follows_softmax_of_logits_over_temperature(temperature):
    net = small_net(k=4, layers=2, double=False)
    with torch.no_grad():
        net.head[-1].bias.copy_(torch.tensor([2.0, 1.0, 0.0, -1.0]))
        logits = net(torch.zeros(1, 1, 1, dtype=torch.long))[0, :, 0, 0]
    expected = torch.softmax(logits / temperature, 0)
    codes = net.sample(6000, (1, 1), temperature, torch.Generator().manual_seed(0))
    freq = torch.bincount(codes.flatten(), minlength=4) / 6000
    assert (freq - expected).abs().max() < 0.025  # > 4 standard errors


def structured_codes(n, k=16, seed=0):
    """z[i, j] = z[0, 0] + 5 i + j (mod K): every position is uniform on its own (log K bits),
    but given its left or upper neighbour it is certain."""
    first = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))
    i, j = torch.arange(7)[:, None], torch.arange(7)[None, :]
    return (first[:, None, None] + 5 * i + j) % k


@pytest.mark.slow
def test_learns_dependence_between_codes():
    """Marginals are uniform, so only a model that reads earlier codes gets below log K."""
    torch.manual_seed(0)
    net = GatedPixelCNN(PixelCNNConfig(16, channels=16, n_layers=2, head_channels=32))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    train, held = structured_codes(512, seed=0), structured_codes(256, seed=1)
    for step in range(60):
        batch = train[step * 32 % 512:][:32]
        loss = net.nll(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    bits = prior_nll(net, held)["nll_bits"]
    assert bits < 1.0 < math.log2(16)  # ideal: 4 bits for the first code / 49 = 0.08


def trained_vq(tmp_path_factory):
    """A VQ-VAE (config 1, single decoder) trained briefly on the bundled MNIST sample, stored
    under the session's temp folder so later tests (and test_generate.py, which trains the same
    run into the same folder) load it instead of retraining. lr 3e-3 and batch 32: enough
    steps in two epochs to use more than one code (early VQ training uses very few)."""
    out = tmp_path_factory.getbasetemp() / "vq1-single"
    return mtvae.train_model("mnist-sample", out=out, model="vq", config=1, method="single",
                             sampler="uniform", exponent=3, epochs=2, limit=2000, batch_size=32,
                             lr=3e-3, device="cpu", progress=False)


def small_prior(vq_result, out, **kw):
    options = dict(epochs=2, n_layers=3, channels=32, head_channels=64, batch_size=64, lr=3e-3,
                   limit=1000, device="cpu", progress=False)
    return train_prior(vq_result, out, **{**options, **kw})


@pytest.mark.slow
def test_prior_on_mnist_codes_beats_uniform_and_resumes(tmp_path_factory, tmp_path):
    vq = trained_vq(tmp_path_factory)
    k = vq.model.num_embeddings
    one = small_prior(vq, tmp_path / "p", epochs=1)
    prior = small_prior(vq, tmp_path / "p")  # resumes epoch 2 from epoch 1's checkpoint
    assert [h["epoch"] for h in prior.history] == [0, 1]
    assert prior.history[0] == one.history[0]
    straight = small_prior(vq, tmp_path / "q")  # two epochs without a break: the same numbers
    assert [h["val_nll_nats"] for h in straight.history] == pytest.approx(
        [h["val_nll_nats"] for h in prior.history], rel=1e-5)
    test = prior.metrics["test"]
    assert test["uniform_bits"] == math.log2(k) == 7
    assert test["nll_bits"] == pytest.approx(test["nll_nats"] / math.log(2))
    assert test["nll_bits"] < math.log2(k) - 2, prior.metrics  # >= 4x likelier per code
    assert test["images"] == 1000  # the half of the 2,000 test images outside validation
    # reload: same weights, same NLL on codes computed independently here
    again = load_prior(tmp_path / "p", vq=vq.model)
    codes = extract_codes(vq.model, mtvae.load_dataset("mnist-sample").test[:200])
    assert prior_nll(again.pixelcnn, codes)["nll_nats"] == pytest.approx(
        prior_nll(prior.pixelcnn, codes)["nll_nats"], rel=1e-6)
    assert small_prior(vq, tmp_path / "p").history == prior.history  # finished: loaded
    with pytest.raises(ValueError, match="different prior"):
        small_prior(vq, tmp_path / "p", epochs=3, channels=16)


@pytest.mark.slow
def test_cli_trains_and_samples(tmp_path_factory, tmp_path):
    vq = trained_vq(tmp_path_factory)
    out = tmp_path / "prior"
    args = ["prior", "--vq-checkpoint", str(vq.out_dir), "--out", str(out), "--epochs", "1",
            "--layers", "2", "--channels", "16", "--limit", "300", "--device", "cpu",
            "--no-progress"]
    assert main(args) == 0
    assert (out / "prior.pt").exists() and (out / "metrics.json").exists()
    assert main(args + ["--sample", "6", "--temperature", "0.8"]) == 0
    saved = torch.load(out / "samples.pt")
    assert saved["codes"].shape == (6, 7, 7) and saved["images"].shape == (6, 1, 28, 28)
    assert (out / "samples.png").stat().st_size > 0
    assert main(["prior", "--vq-checkpoint", str(tmp_path / "missing")]) == 2
