"""Datasets, folds and splits."""

import gzip
import hashlib
from importlib import resources

import pytest
import torch

from mtvae.data import (
    DataNotFoundError,
    _read_idx,
    kfold_indices,
    load_dataset,
    make_splits,
    to_float,
    validation_indices,
)


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist-sample")


def test_bundled_sample_is_the_official_mnist_test_split(sample):
    raw = (resources.files("mtvae") / "assets" / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    assert hashlib.md5(raw).hexdigest() == "9fb629c4189551a2d022fa330f9573f3"  # LeCun's file
    assert sample.train.shape == (8000, 1, 28, 28) and sample.test.shape == (2000, 1, 28, 28)
    assert sample.train.dtype == torch.uint8
    # the two pools are a partition of the 10,000 digits
    everything = torch.cat([sample.train, sample.test]).flatten(1)
    assert len(torch.unique(everything, dim=0)) > 9990
    # MNIST facts: background 0, strokes up to 255, mean intensity ~ 0.13
    x = to_float(sample.train)
    assert x.min() == 0 and x.max() == 1
    assert 0.12 < x.mean().item() < 0.14
    labels = torch.cat([sample.train_labels, sample.test_labels])
    assert torch.bincount(labels).tolist()[:3] == [980, 1135, 1032]  # official test counts


def test_idx_parser_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + b"\x00" * 10))
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        _read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + b"\x01" * 10)
    with pytest.raises(ValueError, match="truncated"):
        _read_idx(short)


@pytest.mark.parametrize("shuffle", [True, False])
def test_kfold_disjoint_and_covering(shuffle):
    n, k = 103, 5
    folds = kfold_indices(n, k, seed=3, shuffle=shuffle)
    held = torch.cat([te for _, te in folds])
    assert sorted(held.tolist()) == list(range(n))  # disjoint and covering
    for tr, te in folds:
        assert len(set(tr.tolist()) & set(te.tolist())) == 0
        assert len(tr) + len(te) == n
    assert [len(te) for _, te in folds] == [21, 21, 21, 20, 20]  # sklearn KFold sizes


def test_contiguous_folds_are_sklearn_kfold():
    folds = kfold_indices(10, 5, shuffle=False)
    assert [te.tolist() for _, te in folds] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def test_folds_seeded():
    a = kfold_indices(50, 5, seed=1)[0][1]
    assert torch.equal(a, kfold_indices(50, 5, seed=1)[0][1])
    assert not torch.equal(a, kfold_indices(50, 5, seed=2)[0][1])


def test_splits(sample):
    s = make_splits(sample, fold=2, k=5, seed=0)
    assert len(s.train) == 6400 and len(s.test) == 1600 and len(s.val) == 1000
    assert len(set(s.train.tolist()) & set(s.test.tolist())) == 0
    lim = make_splits(sample, fold=0, k=4, seed=0, limit=400)
    assert len(lim.train) == 300 and len(lim.test) == 100
    whole = make_splits(sample, fold=None)
    assert len(whole.train) == 8000 and len(whole.test) == 0
    v = validation_indices(2000, 0.5, seed=0)
    assert len(v) == 1000 and len(v.unique()) == 1000


def test_bad_inputs(sample, tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="fold must be in 0..4"):
        make_splits(sample, fold=5)
    with pytest.raises(ValueError, match="k >= 2"):
        kfold_indices(10, 1)
    with pytest.raises(ValueError, match="positive number"):
        make_splits(sample, limit=0)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py"),
                                          ("fashion-mnist", "FashionMNIST/raw")])
def test_missing_files_offline_names_folder_and_files(tmp_path, name, folder):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset(name, root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / folder) in msg and "Put these files there" in msg
    assert "mnist-sample" in msg


def test_data_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MTVAE_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DataNotFoundError, match="elsewhere"):
        load_dataset("mnist", download=False)


def test_mnist_from_idx_files_offline(tmp_path, sample):
    """The full-MNIST path reads torchvision's raw layout without a download."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = resources.files("mtvae") / "assets" / "mnist"
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            data = gzip.decompress((src / f"t10k-{kind}-ubyte.gz").read_bytes())
            (raw / f"{split}-{kind}-ubyte").write_bytes(data)
    d = load_dataset("mnist", root=tmp_path, download=False)
    assert d.train.shape == (10000, 1, 28, 28) and d.test.shape == (10000, 1, 28, 28)
    assert d.train.dtype == torch.uint8


def test_to_float_scales_uint8_and_keeps_floats():
    assert to_float(torch.tensor([0, 51, 255], dtype=torch.uint8)).tolist() == pytest.approx(
        [0.0, 0.2, 1.0])
    x = torch.tensor([0.25, 0.5], dtype=torch.float64)
    assert to_float(x).dtype == torch.float32 and to_float(x).tolist() == [0.25, 0.5]


def test_dataset_names_are_normalised():
    from mtvae.data import dataset_key

    assert dataset_key("Fashion_MNIST") == "fashion-mnist"
    with pytest.raises(ValueError, match="choose one of"):
        dataset_key("svhn")
