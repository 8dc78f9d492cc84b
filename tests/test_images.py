"""Your own images: real PNG/JPEG files in a temporary folder, tensors and arrays, and every
command downstream (train, crossval, table, prior, generation)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mtvae import train_model
from mtvae.cli import main
from mtvae.data import DataNotFoundError, ImageData, load_dataset

PIXELS = np.random.default_rng(0)


def write_folder(root, n_per_class=6, side=16, mode="RGB", classes=("cat", "dog"), ext=".png"):
    """Images whose pixels the tests know: returns {relative path: uint8 array (H, W[, 3])}."""
    files = {}
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            shape = (side, side, 3) if mode == "RGB" else (side, side)
            a = PIXELS.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(a, mode).save(root / c / f"{i:02d}{ext}")
            files[f"{c}/{i:02d}{ext}"] = a
    return files


def test_rgb_folder_decodes_every_file_exactly_with_class_labels(tmp_path):
    files = write_folder(tmp_path / "pets")
    data = ImageData.from_folder(tmp_path / "pets", progress=False)
    assert data.shape == (3, 16, 16) and data.train.dtype == torch.uint8
    assert len(data.train) + len(data.test) == 12 and len(data.test) == round(0.2 * 12)
    # every file's pixels are in one pool, once, with its subfolder's label (sorted: cat=0)
    pool = torch.cat([data.train, data.test])
    labels = torch.cat([data.train_labels, data.test_labels]).tolist()
    for rel, a in files.items():
        hits = [i for i in range(len(pool)) if torch.equal(pool[i], torch.from_numpy(a).permute(2, 0, 1))]
        assert len(hits) == 1
        assert labels[hits[0]] == (0 if rel.startswith("cat") else 1)


def test_grey_folder_is_one_channel_and_resized(tmp_path):
    write_folder(tmp_path / "g", side=20, mode="L", classes=("a",))
    data = ImageData.from_folder(tmp_path / "g", size=12, progress=False)
    assert data.shape == (1, 12, 12)
    assert data.train_labels is None or set(data.train_labels.tolist()) == {0}
    assert data.name.endswith(":size=12")


def test_channels_option_converts_rgb_to_grey_by_luma(tmp_path):
    (tmp_path / "c").mkdir()
    for name, rgb in (("red", (255, 0, 0)), ("green", (0, 255, 0))):
        Image.fromarray(np.full((8, 8, 3), rgb, np.uint8)).save(tmp_path / "c" / f"{name}.png")
    data = ImageData.from_folder(tmp_path / "c", channels=1, progress=False)
    values = sorted(int(x.flatten()[0]) for x in torch.cat([data.train, data.test]))
    assert values == [76, 150]  # ITU-R 601: 0.299 * 255, 0.587 * 255


def test_the_cache_is_written_once_and_refreshed_when_files_change(tmp_path):
    write_folder(tmp_path / "f", classes=("x",), n_per_class=5)
    first = ImageData.from_folder(tmp_path / "f", progress=False)
    caches = list((tmp_path / "f" / ".mtvae-cache").glob("*.npz"))
    assert len(caches) == 1
    again = load_dataset(first.name)  # by name, as a stored RunConfig reloads it
    assert torch.equal(again.train, first.train)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "f" / "x" / "new.png")
    grown = load_dataset(first.name)
    assert len(grown.train) + len(grown.test) == 6


def test_train_and_test_subfolders_are_the_pools(tmp_path):
    write_folder(tmp_path / "s" / "train", n_per_class=4, classes=("a", "b"))
    write_folder(tmp_path / "s" / "test", n_per_class=1, classes=("a", "b"))
    data = ImageData.from_folder(tmp_path / "s", progress=False)
    assert (len(data.train), len(data.test)) == (8, 2)
    assert sorted(data.test_labels.tolist()) == [0, 1]


def test_bad_folders_name_the_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match="no folder"):
        ImageData.from_folder(tmp_path / "nowhere")
    (tmp_path / "mixed").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "mixed" / "a.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "mixed" / "b.png")
    with pytest.raises(ValueError, match="different sizes.*--size"):
        ImageData.from_folder(tmp_path / "mixed", progress=False)
    (tmp_path / "wide").mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((8, 12), np.uint8)).save(tmp_path / "wide" / f"{i}.png")
    with pytest.raises(ValueError, match="square.*multiple of 4.*--crop"):
        ImageData.from_folder(tmp_path / "wide", progress=False)
    square = ImageData.from_folder(tmp_path / "wide", size=8, crop=True, progress=False)
    assert square.shape == (1, 8, 8)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"not a png")
    (tmp_path / "junk" / "b.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode.*delete or replace"):
        ImageData.from_folder(tmp_path / "junk", progress=False)


def test_vq_rejects_sides_that_are_not_multiples_of_4_naming_sizes_it_takes():
    data = ImageData.from_tensor(torch.zeros(10, 1, 30, 30, dtype=torch.uint8), name="t30")
    with pytest.raises(ValueError, match=r"multiples of 4 \(e.g. 28, 32\).*--size"):
        train_model(data=data, model="vq", epochs=1, progress=False)


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "nhw"])
def test_from_numpy_accepts_the_layouts_and_floats(layout):
    x = PIXELS.integers(0, 256, (10, 3, 8, 8), dtype=np.uint8)
    if layout == "nhw":
        x = x[:, 0]
    arr = {"nchw": x, "nhwc": np.moveaxis(x, 1, -1) if x.ndim == 4 else x, "nhw": x}[layout]
    data = ImageData.from_numpy(arr, name=f"arr-{layout}")
    expected = torch.from_numpy(x if x.ndim == 4 else x[:, None])
    pool = torch.cat([data.train, data.test])
    assert sorted(map(bytes, pool.numpy())) == sorted(map(bytes, expected.numpy()))
    floats = ImageData.from_numpy(arr.astype(np.float32) / 255, name=f"f-{layout}")
    assert torch.equal(torch.cat([floats.train, floats.test]), pool)
    with pytest.raises(ValueError, match="in \\[0, 1\\].*divide by 255"):
        ImageData.from_numpy(arr.astype(np.float32), name="raw")


def test_tensor_datasets_live_in_their_process_only():
    with pytest.raises(DataNotFoundError, match="data=ImageData.from_tensor"):
        load_dataset("tensor:never-made")


def test_cli_trains_crossvalidates_and_tabulates_a_folder(tmp_path, capsys):
    write_folder(tmp_path / "imgs", n_per_class=10, side=20, classes=("a", "b"), ext=".jpg")
    folder = f"folder:{tmp_path / 'imgs'}"
    run = tmp_path / "run"
    assert main(["train", "--dataset", folder, "--size", "16", "--model", "vq", "--method",
                 "single", "--epochs", "2", "--batch-size", "4", "--no-progress",
                 "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["dataset"] == f"folder:{tmp_path / 'imgs'}:size=16"
    results = tmp_path / "store"
    assert main(["crossval", "--dataset", folder, "--size", "16", "--rows", "vq1-baseline",
                 "--folds", "2", "--epochs", "1", "--batch-size", "4", "--no-progress",
                 "--results", str(results)]) == 0
    capsys.readouterr()
    assert main(["table", "--dataset", f"{folder}:size=16", "--results", str(results),
                 "--out", str(tmp_path / "fig")]) == 0
    text = capsys.readouterr().out
    assert "no thesis column" in text and "Recon (thesis)" not in text
    lines = [x for x in text.splitlines() if x.startswith("|")]
    assert len(lines) == 3  # header, rule, the one row
    assert {x.count("|") for x in lines} == {9}  # 8 columns each: no thesis cells in the rows
    assert lines[2].startswith("| VQ-VAE | 1 | baseline | - | 2 |")
    # the prior reads the VQ run's dataset back from its config (the folder's name)
    assert main(["prior", "--vq-checkpoint", str(run), "--epochs", "1", "--layers", "2",
                 "--channels", "8", "--no-progress", "--sample", "4"]) == 0
    samples = torch.load(run / "prior" / "samples.pt")
    assert samples["images"].shape == (4, 3, 16, 16)


def test_notebook_style_profile_on_a_folder(tmp_path):
    from mtvae import workflow
    from mtvae.generate import generate
    from mtvae.profiles import get_profile

    write_folder(tmp_path / "nb", n_per_class=8, side=16, mode="L", classes=("a", "b"))
    P = get_profile("quick", f"folder:{tmp_path / 'nb'}", epochs=1)
    data = workflow.load_data(P)
    run = workflow.train_run(P, tmp_path / "results", "gaussian", "single", data=data)
    assert run.config.data.dataset == data.name
    run_dir = workflow.run_dir(P, tmp_path / "results", "gaussian", "single")
    assert (run_dir / "metrics.csv").exists()
    images = generate(run.model, 3, seed=0)
    assert images.shape == (3, 1, 16, 16)
