"""Spatial conditioning (models/spatial.py): parameter counts by hand, m = 0 is the
unconditioned decoder, the partial-convolution resampling, and the grid / CLI plumbing."""

import json

import pytest
import torch

from mtvae.api import train_model
from mtvae.cli import main
from mtvae.grid import ROWS, SPATIAL_ROWS, select_rows
from mtvae.models import ModelConfig, build_model, count_parameters
from mtvae.models.spatial import resample_m


def n_params(family, config, method, shape, **kw):
    return count_parameters(build_model(ModelConfig(family, config, method, **kw), shape))


def test_parameters_by_hand_mnist_gaussian():
    # The MNIST Gaussian decoder stack has activations of 128, 64, 32 and 32 channels (at 7, 7,
    # 14 and 28 px). Each branch: a 3x3 conv 2 -> 32 (576 weights) and a 1x1 conv 32 -> 2C
    # (64 C), no biases: 4 x 576 + 64 x 256 = 18,688 on top of the plain VAE.
    base = n_params("gaussian", 1, "baseline", (1, 28, 28))
    spatial = n_params("gaussian", 1, "single", (1, 28, 28), conditioning="spatial")
    assert spatial - base == 18_688
    dense = n_params("gaussian", 1, "single", (1, 28, 28))
    m_layer = dense - base  # the thesis's dense m columns: 1,568 x 12,544 = 19,668,992
    assert m_layer == 1568 * 12544
    assert (spatial - base) / m_layer < 0.05


def test_celeba_vq3_single_decoder_is_under_a_tenth_of_the_dense_one():
    dense = n_params("vq", 3, "single", (3, 64, 64))
    spatial = n_params("vq", 3, "single", (3, 64, 64), conditioning="spatial")
    assert dense == 543_762_883 and spatial < 0.1 * dense


@pytest.mark.parametrize("family,method", [("gaussian", "single"), ("vq", "single"),
                                           ("gaussian", "multidecoder"),
                                           ("vq", "multidecoder")])
def test_no_known_pixels_is_the_unconditioned_decoder(family, method):
    torch.manual_seed(0)
    model = build_model(ModelConfig(family, 1, method, conditioning="spatial"), (1, 28, 28))
    for p in model.parameters():  # the zero-initialised branch outputs too
        torch.nn.init.normal_(p, std=0.05)
    model.eval()
    x = torch.rand(3, 1, 28, 28)
    h = model.encode(x)[0] if family == "gaussian" else model.quantizer.lookup(model.encode(x))
    none = model.cond_decoder(h, None)
    zeros = model.cond_decoder(h, torch.zeros(3, 2, 28, 28))
    assert torch.equal(none, zeros)
    m = torch.zeros(3, 2, 28, 28)
    m[:, 0, 14, 14], m[:, 1, 14, 14] = x[:, 0, 14, 14], 1.0
    assert not torch.allclose(model.cond_decoder(h, m), none)  # one known pixel changes it


def test_training_starts_from_the_unconditioned_decoder():
    model = build_model(ModelConfig("vq", 1, "single", conditioning="spatial"), (1, 28, 28))
    h = torch.randn(2, 16, 7, 7)
    m = torch.rand(2, 2, 28, 28).round()
    assert torch.equal(model.cond_decoder(h, m), model.cond_decoder(h, None))


def test_resampling_keeps_the_mean_of_the_known_pixels():
    m = torch.zeros(1, 2, 4, 4)
    m[0, 0, 0, 1], m[0, 1, 0, 1] = 0.8, 1.0  # one known pixel in the top-left 2x2 cell
    m[0, 0, 3, 3], m[0, 1, 3, 3] = 0.2, 1.0
    m[0, 0, 2, 3], m[0, 1, 2, 3] = 0.6, 1.0  # two in the bottom-right cell: mean 0.4
    r = resample_m(m, (2, 2))
    assert r[0, 0].flatten().tolist() == pytest.approx([0.8, 0.0, 0.0, 0.4])
    assert r[0, 1].flatten().tolist() == pytest.approx([0.25, 0.0, 0.0, 0.5])


def test_wrong_m_shape_names_the_fix():
    model = build_model(ModelConfig("gaussian", 1, "single", conditioning="spatial"),
                        (1, 28, 28)).eval()
    with pytest.raises(ValueError, match="build the model for this image size"):
        model.decode(torch.zeros(1, 16), torch.zeros(1, 2, 32, 32))
    with pytest.raises(ValueError, match="conditioning"):
        ModelConfig("vq", 1, "single", conditioning="film")


def test_spatial_rows_follow_the_table_and_patterns_keep_the_thesis_rows():
    assert len(SPATIAL_ROWS) == 40  # the 8 conditioned rows of each of the 5 groups
    assert "vq1-single-gaussian-a40-spatial" in ROWS
    assert len(select_rows("vq1-*")) == 9 and len(select_rows("vq1-*-spatial")) == 8
    row = ROWS["gauss1-multi-uniform-softadapt-spatial"]
    config = row.run_config("mnist", protocol="thesis")
    assert config.model.conditioning == "spatial" and config.train.softadapt
    assert row.thesis_key()[3] == "Uniform sampling, SoftAdapt, spatial conditioning"


def test_trains_and_reloads_through_the_cli(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "vq", "--method", "single", "--conditioning", "spatial",
                 "--limit", "128", "--epochs", "1", "--batch-size", "64", "--no-progress",
                 "--device", "cpu", "--out", str(out)]) == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["config"]["model"]["conditioning"] == "spatial"
    stamps = {name: (out / name).stat().st_mtime_ns for name in ("model.pt", "metrics.json")}
    again = train_model(model="vq", method="single", conditioning="spatial", limit=128, epochs=1,
                        batch_size=64, progress=False, device="cpu", out=out)
    # the finished run is loaded, not trained again, with the spatial conditioner's weights
    assert {name: (out / name).stat().st_mtime_ns for name in stamps} == stamps
    assert again.history == saved["history"] and again.best_epoch == saved["best_epoch"]
    stored = torch.load(out / "model.pt", map_location="cpu")["model"]
    state = again.model.state_dict()
    assert state.keys() == stored.keys()
    assert any(k.startswith("cond_decoder.spatial.") for k in stored)
    assert all(torch.equal(state[k].cpu(), stored[k]) for k in stored)



# Position-weighted sums of the seed-0 initial weights, computed with the code before spatial
# conditioning existed (commit 3867ec0), which the committed reference run was trained from.
BEFORE = {("vq", "multidecoder"): 14095.882521287895, ("vq", "single"): 9492.957883081135,
          ("gaussian", "single"): 304415.78782176087,
          ("gaussian", "multidecoder"): 884262.5115470552}


@pytest.mark.parametrize("family,method", sorted(BEFORE))
def test_dense_models_draw_the_same_initial_weights_as_before(family, method):
    torch.manual_seed(0)
    model = build_model(ModelConfig(family, 1, method), (1, 28, 28))
    with torch.no_grad():
        total = sum(float((p.double() * (i + 1)).sum()) for i, p in enumerate(model.parameters()))
    assert total == pytest.approx(BEFORE[(family, method)], rel=1e-12)
