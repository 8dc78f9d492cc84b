"""Datasets as uint8 tensors (thesis section 3.4.1); their folds and validation split are in
:mod:`mtvae.splits` (re-exported here).

Every dataset is decoded once into a ``uint8`` tensor of shape ``(N, C, H, W)``; training slices
batches from that tensor on the training device and converts them to floats in [0, 1] (the
thesis's only transform was ``ToTensor``, docs/thesis_code.md#data). There is no per-image
Python in the training loop and no DataLoader.

Datasets:

=============== ========= ===================================== ===========================
name            shape     training pool / test pool             source
=============== ========= ===================================== ===========================
mnist           1x28x28   60,000 / 10,000                       torchvision MNIST
fashion-mnist   1x28x28   60,000 / 10,000                       torchvision FashionMNIST
cifar10         3x32x32   50,000 / 10,000                       torchvision CIFAR10
celeba          3x64x64   162,770 / 19,962 (split train / test) torchvision CelebA, resized
mnist-sample    1x28x28   8,000 / 2,000                         the official MNIST test split,
                                                                bundled with the package
=============== ========= ===================================== ===========================

CelebA is resized to 64x64 without a crop, as the thesis did (the 178x218 faces are squashed);
``celeba_crop=True`` centre-crops a 178x178 square first, which keeps the aspect ratio.
"""

from __future__ import annotations

import functools
import gzip
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .splits import Splits, kfold_indices, make_splits, validation_indices

__all__ = [
    "DATASETS",
    "DataCorruptError",
    "DataNotFoundError",
    "ImageData",
    "Splits",
    "kfold_indices",
    "load_dataset",
    "make_splits",
    "data_root",
    "dataset_key",
    "to_float",
    "validation_indices",
]


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are missing and could not be downloaded."""


class DataCorruptError(ValueError):
    """A dataset's files (or mtvae's cache of them) are there but cannot be read."""


@dataclass(frozen=True)
class DatasetInfo:
    shape: tuple[int, int, int]
    description: str
    files: tuple[str, ...]  # what must exist under <root>/<folder> when offline
    folder: str


class _Datasets(dict):
    """The built-in datasets; looking up a ``folder:`` or ``tensor:`` name (your own images,
    :mod:`mtvae.images`) gives its info too, so ``DATASETS[key].shape`` works for every key."""

    def __missing__(self, key):
        from .images import custom_info

        info = custom_info(key) if isinstance(key, str) else None
        if info is None:
            raise KeyError(key)
        return info


DATASETS: dict[str, DatasetInfo] = _Datasets({
    "mnist": DatasetInfo(
        (1, 28, 28), "MNIST handwritten digits (LeCun & Cortes), 60k train / 10k test",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), "MNIST/raw"),
    "fashion-mnist": DatasetInfo(
        (1, 28, 28), "Fashion-MNIST (Zalando), 60k train / 10k test",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), "FashionMNIST/raw"),
    "cifar10": DatasetInfo(
        (3, 32, 32), "CIFAR-10 (Krizhevsky 2009), 50k train / 10k test",
        ("data_batch_1 ... data_batch_5", "test_batch", "batches.meta"), "cifar-10-batches-py"),
    "celeba": DatasetInfo(
        (3, 64, 64), "CelebA aligned faces resized to 64x64, split train 162,770 / test 19,962",
        ("img_align_celeba/", "list_eval_partition.txt", "identity_CelebA.txt",
         "list_attr_celeba.txt", "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt"),
        "celeba"),
    "mnist-sample": DatasetInfo(
        (1, 28, 28), "the official MNIST test split (10,000 digits) bundled with mtvae: "
        "8,000 training pool / 2,000 test pool", ("t10k-images-idx3-ubyte.gz",),
        "(package) mtvae/assets/mnist"),
})

# The bundled sample: a fixed permutation of the 10,000 test digits (so both pools mix the two
# writer populations of MNIST's test set), the first 8,000 form the training pool.
SAMPLE_TRAIN_SIZE = 8000
SAMPLE_PERMUTATION_SEED = 20240601


@dataclass
class ImageData:
    """A dataset decoded to uint8 tensors ``(N, C, H, W)``.

    ``train`` is the pool that cross-validation folds (the official training split); ``test`` is
    the official test split, from which the validation set for best-epoch selection is drawn.
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(self.name, self.train.to(device), self.test.to(device),
                         self.train_labels, self.test_labels)

    @staticmethod
    def from_folder(path, size: int | None = None, **options) -> ImageData:
        """Your own PNG/JPEG folder (:func:`mtvae.images.from_folder`: size, crop, channels)."""
        from .images import from_folder

        return from_folder(path, size, **options)

    @staticmethod
    def from_tensor(train, test=None, **options) -> ImageData:
        """Images in memory, (N, C, H, W) or (N, H, W, C), uint8 or floats in [0, 1]
        (:func:`mtvae.images.from_tensor`)."""
        from .images import from_tensor

        return from_tensor(train, test, **options)

    from_numpy = from_tensor  # the same for numpy arrays

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}, train={tuple(self.train.shape)}, "
                f"test={tuple(self.test.shape)}, dtype={self.train.dtype}, "
                f"device={self.train.device})")


def to_float(batch) -> torch.Tensor:
    """Images as float32 in [0, 1]: uint8 is scaled by 1/255 (torchvision's ToTensor), floats
    (assumed in [0, 1] already) are only cast."""
    batch = torch.as_tensor(batch)
    return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch.float()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$MTVAE_DATA``, else ``./data``."""
    return Path(root if root is not None else os.environ.get("MTVAE_DATA", "data")).expanduser()


def dataset_key(name: str) -> str:
    """The canonical name of a dataset ('fashion_mnist' -> 'fashion-mnist'); ValueError naming
    the choices for an unknown one. ``folder:PATH[:size=N]...`` and ``tensor:NAME`` name your
    own images (:mod:`mtvae.images`)."""
    from .images import custom_key, is_custom

    if is_custom(name):
        return custom_key(name)
    key = name.lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}, or "
                         "folder:PATH (your own images)")
    return key


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True,
                 celeba_crop: bool = False) -> ImageData:
    """Load ``name`` as uint8 tensors (see the module docstring for the list).

    Files live under ``root`` (argument, else ``$MTVAE_DATA``, else ``./data``). With
    ``download=True`` torchvision fetches missing files; offline, a missing file raises
    :class:`DataNotFoundError` naming the folder and files to put there.
    """
    key = dataset_key(name)
    if key == "mnist-sample":
        return _load_mnist_sample()
    if key.startswith(("folder:", "tensor:")):
        from .images import load_custom

        return load_custom(key, root)
    root_path = data_root(root)
    try:
        if key in ("mnist", "fashion-mnist"):
            return _load_mnist_like(key, root_path, download)
        if key == "cifar10":
            return _load_cifar10(root_path, download)
        return _load_celeba(root_path, download, celeba_crop)
    except (DataNotFoundError, DataCorruptError):
        raise
    except Exception as err:  # torchvision raises RuntimeError when files are missing
        folder = root_path / DATASETS[key].folder
        if _present(key, root_path):  # there, but unreadable: truncated, not missing
            raise DataCorruptError(
                f"{key}: the files under {folder} are there but cannot be read "
                f"({type(err).__name__}: {err}); one is probably truncated or corrupt (an "
                "interrupted download or copy): delete it, or the folder, and load again to "
                "fetch it anew") from err
        if isinstance(err, (RuntimeError, OSError)):
            raise _missing(key, root_path, download) from err
        raise


def _present(key: str, root: Path) -> bool:
    """Whether every file the dataset needs is in its folder (readable or not)."""
    names = ([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
             if key == "cifar10" else [f.rstrip("/") for f in DATASETS[key].files])
    return all((root / DATASETS[key].folder / n).exists() for n in names)


def _missing(key: str, root: Path, download: bool) -> DataNotFoundError:
    info = DATASETS[key]
    why = ("the download failed (offline?)" if download else "download=False")
    return DataNotFoundError(
        f"{key}: files not found under {root / info.folder} and {why}. Put these files there: "
        f"{', '.join(info.files)}; or set MTVAE_DATA / --data-root to the folder that holds "
        f"{info.folder}, or run once with internet access so torchvision can download them. "
        f"Offline, 'mnist-sample' (bundled) works anywhere.")


def _read_idx(path: Path | None = None, data: bytes | None = None) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format): magic, dims (big-endian int32), uint8 data."""
    raw = data if data is not None else Path(path).read_bytes()  # type: ignore[arg-type]
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (corrupt download?)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    arr = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated IDX file ({arr.size} of {int(np.prod(dims))} bytes)")
    return arr.reshape(tuple(int(d) for d in dims))


def _load_mnist_sample() -> ImageData:
    assets = resources.files("mtvae") / "assets" / "mnist"
    images = _read_idx(data=(assets / "t10k-images-idx3-ubyte.gz").read_bytes())
    labels = _read_idx(data=(assets / "t10k-labels-idx1-ubyte.gz").read_bytes())
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    g = torch.Generator().manual_seed(SAMPLE_PERMUTATION_SEED)
    perm = torch.randperm(len(x), generator=g)
    tr, te = perm[:SAMPLE_TRAIN_SIZE], perm[SAMPLE_TRAIN_SIZE:]
    return ImageData("mnist-sample", x[tr].contiguous(), x[te].contiguous(), y[tr], y[te])


def _load_mnist_like(key: str, root: Path, download: bool) -> ImageData:
    from torchvision import datasets

    cls = datasets.MNIST if key == "mnist" else datasets.FashionMNIST
    tr = cls(str(root), train=True, download=download)
    te = cls(str(root), train=False, download=download)
    return ImageData(key, tr.data.unsqueeze(1).contiguous(), te.data.unsqueeze(1).contiguous(),
                     tr.targets.clone(), te.targets.clone())


def _load_cifar10(root: Path, download: bool) -> ImageData:
    from torchvision import datasets

    tr = datasets.CIFAR10(str(root), train=True, download=download)
    te = datasets.CIFAR10(str(root), train=False, download=download)

    def nchw(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()

    return ImageData("cifar10", nchw(tr.data), nchw(te.data),
                     torch.tensor(tr.targets), torch.tensor(te.targets))


def _load_celeba(root: Path, download: bool, crop: bool) -> ImageData:
    """CelebA 64x64, decoded once and cached as uint8 .npy files next to the images."""
    pools = {}
    for split in ("train", "test"):
        cache = root / "celeba" / f"mtvae_{split}_64{'_crop' if crop else ''}.npy"
        if cache.exists():
            try:
                pools[split] = torch.from_numpy(np.load(cache))
                continue
            except (ValueError, OSError) as err:
                raise DataCorruptError(f"{cache} is corrupt ({err}); delete it and load again "
                                       "to rebuild the cache") from err
        pools[split] = _decode_celeba(root, split, download, crop)
        cache.parent.mkdir(parents=True, exist_ok=True)
        from .checkpoint import atomic_write  # unique temporary name, fsync, rename

        atomic_write(cache, functools.partial(np.save, arr=pools[split].numpy()))
    return ImageData("celeba", pools["train"], pools["test"])


def _decode_celeba(root: Path, split: str, download: bool, crop: bool) -> torch.Tensor:
    from torchvision import datasets, transforms
    from tqdm.auto import tqdm

    steps = [transforms.CenterCrop(178)] if crop else []
    # Resize((64, 64)) without a crop is what the thesis did (docs/thesis_code.md#data).
    tf = transforms.Compose(steps + [transforms.Resize((64, 64)), transforms.PILToTensor()])
    ds = datasets.CelebA(str(root), split=split, target_type=[], transform=tf, download=download)
    out = torch.empty((len(ds), 3, 64, 64), dtype=torch.uint8)
    for i in tqdm(range(len(ds)), desc=f"decoding CelebA {split} (once)", mininterval=2):
        out[i] = ds[i][0]
    return out
