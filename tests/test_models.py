"""Model shapes, parameter counts and the properties each method promises."""

import itertools

import pytest
import torch

from mtvae.models import ModelConfig, build_model, count_parameters
from mtvae.observations import ObservationConfig, Observer

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64)]
COMBOS = [("gaussian", c) for c in (1, 2)] + [("vq", c) for c in (1, 2, 3)]
METHODS = ["baseline", "multidecoder", "single"]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[1]}px")
@pytest.mark.parametrize("family, config", COMBOS)
@pytest.mark.parametrize("method", METHODS)
def test_shapes_every_config_method_size(family, config, method, shape):
    # the meta device checks shapes without allocating (CelebA VQ c3 has 544 M parameters)
    with torch.device("meta"):
        model = build_model(ModelConfig(family, config, method), shape)
        x = torch.empty(4, *shape)
        m = torch.empty(4, shape[0] + 1, *shape[1:])
        model.train()
        out = model(x, None if method == "baseline" else m)
        model.eval()
        out_eval = model(x, None if method == "baseline" else m)
    if method != "single":
        assert out.recon.shape == x.shape
    if method != "baseline":
        assert out.recon_cond.shape == x.shape
    assert out_eval.recon.shape == x.shape  # the single decoder gives m = 0 output in eval
    if family == "vq":
        side = shape[1] // 4  # x4 downsampling: 7x7, 8x8, 16x16 token grids
        assert out.codes.shape == (4, side, side)
        assert out.z_e.shape == out.z_q.shape == (4, model.latent_shape[0], side, side)
    else:
        assert out.mu.shape == out.logvar.shape == (4, model.latent_dim)


def _count(family, config, method, shape, **kw):
    with torch.device("meta"):
        return count_parameters(build_model(ModelConfig(family, config, method, **kw), shape))


# docs/thesis_code.md#parameter-counts (computed from the thesis code's layer formulas)
@pytest.mark.parametrize("shape, family, config, method, millions", [
    ((1, 28, 28), "gaussian", 1, "baseline", 1.43), ((1, 28, 28), "gaussian", 2, "baseline", 3.23),
    ((1, 28, 28), "gaussian", 1, "single", 21.1), ((1, 28, 28), "gaussian", 2, "single", 22.9),
    ((1, 28, 28), "gaussian", 1, "multidecoder", 21.7),
    ((1, 28, 28), "gaussian", 2, "multidecoder", 24.1),
    ((3, 32, 32), "gaussian", 1, "baseline", 0.84), ((3, 32, 32), "gaussian", 2, "baseline", 0.99),
    ((3, 32, 32), "gaussian", 1, "single", 5.0), ((3, 32, 32), "gaussian", 2, "multidecoder", 5.7),
    ((3, 64, 64), "gaussian", 1, "baseline", 1.00), ((3, 64, 64), "gaussian", 2, "baseline", 1.59),
    ((3, 64, 64), "gaussian", 1, "single", 68.1), ((3, 64, 64), "gaussian", 2, "multidecoder", 69.4),
    ((1, 28, 28), "vq", 3, "single", 21.6), ((3, 32, 32), "vq", 3, "single", 40.4),
    ((3, 64, 64), "vq", 1, "single", 84.0), ((3, 64, 64), "vq", 2, "single", 205.5),
    ((3, 64, 64), "vq", 3, "single", 543.8),
])
def test_parameter_counts_match_thesis_code(shape, family, config, method, millions):
    # the document rounds to 2-3 significant digits (e.g. 5.648 M is printed as 5.7 M)
    assert _count(family, config, method, shape) / 1e6 == pytest.approx(millions, rel=0.01)


def test_gaussian_mnist_c1_exact_count():
    # hand count: encoder convs+BN 388,800; mu/logvar 2 x (12,544*16+16); dense head
    # 16*12,544+12,544 + BN1d 25,088; transposed convs+BN 295,296+73,920+18,528+9,312; out conv 289
    expected = 388_800 + 2 * 200_720 + 213_248 + 25_088 + 295_296 + 73_920 + 18_528 + 9_312 + 289
    assert _count("gaussian", 1, "baseline", (1, 28, 28)) == expected


def test_vq_baseline_counts():
    # thesis code's baseline (un-mirrored decoder): c1 97,329 (Lightning's 98.9 K included an
    # unused BatchNorm1d of 1,568), c2 3.10 M, c3 4.80 M (docs/thesis_code.md#parameter-counts)
    assert _count("vq", 1, "baseline", (1, 28, 28), thesis_baseline_decoder=True) == 97_329
    assert _count("vq", 2, "baseline", (1, 28, 28), thesis_baseline_decoder=True) == 3_102_881
    assert _count("vq", 3, "baseline", (1, 28, 28),
                  thesis_baseline_decoder=True) / 1e6 == pytest.approx(4.80, abs=0.01)
    # our default mirrors the decoder for every method: baseline conv decoder = SC conv decoder
    # c2: 4,096 codebook + 2,205,472 encoder + 1,911,169 mirrored decoder
    assert _count("vq", 2, "baseline", (1, 28, 28)) == 4_096 + 2_205_472 + 1_911_169


def test_vq_multidecoder_shared_vs_independent():
    shape = (1, 28, 28)
    single = _count("vq", 2, "single", shape)
    shared = _count("vq", 2, "multidecoder", shape, shared_decoder=True)
    independent = _count("vq", 2, "multidecoder", shape)
    assert shared == single  # the thesis code: one conv decoder plus the dense head
    assert independent - shared == 1_911_169  # plus a second, independent conv decoder


def test_conditioned_decoder_depends_on_m_and_runs_with_zero_m():
    torch.manual_seed(0)
    for family in ("gaussian", "vq"):
        model = build_model(ModelConfig(family, 1, "single"), (1, 28, 28)).eval()
        x = torch.rand(4, 1, 28, 28)
        obs = Observer(ObservationConfig("uniform", "fixed"), (1, 28, 28))
        m1, m2 = obs(x, torch.Generator().manual_seed(1)), obs(x, torch.Generator().manual_seed(2))
        out1, out2 = model(x, m1), model(x, m2)
        assert not torch.allclose(out1.recon_cond, out2.recon_cond)
        # m = None is the same as an all-zero m
        zero = model(x, torch.zeros_like(m1)).recon_cond
        assert torch.allclose(out1.recon, zero, atol=1e-6)
        assert torch.isfinite(out1.recon).all()


def test_multidecoder_decoders_are_independent():
    torch.manual_seed(0)
    model = build_model(ModelConfig("gaussian", 1, "multidecoder"), (1, 28, 28)).eval()
    x = torch.rand(2, 1, 28, 28)
    m = torch.zeros(2, 2, 28, 28)
    before = model(x, m).recon.clone()
    with torch.no_grad():
        for p in model.cond_decoder.parameters():
            p.add_(0.1)
    assert torch.equal(model(x, m).recon, before)  # decoder 1 does not read decoder 2


def test_straight_through_gradient_reaches_encoder():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vq", 1, "baseline"), (1, 28, 28))
    x = torch.rand(8, 1, 28, 28)
    out = model(x)
    # only the reconstruction: the quantizer's argmin has no gradient, so without the
    # straight-through estimator the encoder would receive nothing
    ((out.recon - x) ** 2).mean().backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert model.quantizer.embed.grad is None  # codebook learns only from the codebook loss


def test_quantizer_picks_nearest_code():
    from mtvae.models import VectorQuantizer

    vq = VectorQuantizer(3, 2)
    with torch.no_grad():
        vq.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    z_e = torch.tensor([[0.9, 0.2], [0.1, 0.05], [0.2, 0.7]]).t().reshape(1, 2, 1, 3)
    _, z_q, codes = vq(z_e)
    assert codes.flatten().tolist() == [1, 0, 2]
    assert torch.equal(z_q[0, :, 0, 0], torch.tensor([1.0, 0.0]))


def test_codebook_init_range():
    model = build_model(ModelConfig("vq", 2, "baseline"), (1, 28, 28))
    e = model.quantizer.embed
    assert e.shape == (128, 32) and e.abs().max() <= 0.05


def test_gaussian_eval_uses_mean_unless_asked():
    torch.manual_seed(0)
    model = build_model(ModelConfig("gaussian", 1, "baseline"), (1, 28, 28)).eval()
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model(x).z, model(x).mu)
    model.eval_sample_z = True
    assert not torch.equal(model(x).z, model(x).mu)


@pytest.mark.parametrize("kwargs, match", [
    (dict(family="flow"), "unknown model family"),
    (dict(family="gaussian", config=3), r"gaussian has configs \[1, 2\]"),
    (dict(family="vq", config=0), r"vq has configs \[1, 2, 3\]"),
    (dict(method="triple"), "unknown method"),
    (dict(shared_decoder=True), "VQ multidecoder only"),
    (dict(overrides={"depth": 3}), "unknown override"),
])
def test_bad_model_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_bad_image_sizes():
    with pytest.raises(ValueError, match="multiples of 4"):
        build_model(ModelConfig("vq", 1), (1, 30, 30))
    with pytest.raises(ValueError, match="square"):
        build_model(ModelConfig("gaussian", 1), (1, 28, 32))
    model = build_model(ModelConfig("gaussian", 1, "single"), (1, 28, 28))
    with pytest.raises(ValueError, match=r"expected images \(B, 1, 28, 28\)"):
        model(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="build the model for this image size"):
        model.cond_decoder(torch.rand(2, 16), torch.rand(2, 4, 32, 32))
    base = build_model(ModelConfig("vq", 1), (1, 28, 28))
    with pytest.raises(ValueError, match="no conditioned decoder"):
        base.decode(torch.rand(1, 16, 7, 7), torch.rand(1, 2, 28, 28))


def test_every_combo_builds_on_cpu_for_mnist():
    """Real (not meta) forward and backward of each method on MNIST-sized models (the larger
    configs differ only in widths, covered on the meta device above)."""
    torch.manual_seed(0)
    for (family, config), method in itertools.product([("gaussian", 1), ("vq", 1), ("vq", 2)],
                                                      METHODS):
        model = build_model(ModelConfig(family, config, method), (1, 28, 28))
        x = torch.rand(2, 1, 28, 28)
        m = torch.cat([x, torch.ones_like(x)], 1)
        out = model(x, None if method == "baseline" else m)
        loss = sum(((o - x) ** 2).mean() for o in (out.recon, out.recon_cond) if o is not None)
        loss.backward()
