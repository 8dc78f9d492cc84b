"""Your own images as :class:`mtvae.data.ImageData`: a folder of PNG/JPEG files
(:mod:`mtvae.folders`), or a tensor or array already in memory.

    data = ImageData.from_folder("cells/", size=32)              # name 'folder:/abs/cells:size=32'
    data = ImageData.from_numpy(arr, name="cells")               # name 'tensor:cells'
    mtvae.train_model(data=data, model="vq", epochs=5, out="runs/cells")

Both kinds are named like the built-in datasets, so every command takes them: a folder's name
(``folder:<path>[:size=N]...``) reloads it anywhere, on the command line as
``--dataset folder:cells --size 32``. A tensor dataset (``tensor:<name>``) lives only in this
process: make it once with :func:`from_tensor` and pass it on as ``data=``.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from pathlib import Path

import numpy as np
import torch

from .folders import SPLIT_SEED, TEST_FRACTION, FolderSpec

__all__ = ["from_folder", "from_tensor", "from_numpy", "is_custom", "custom_key", "load_custom",
           "dataset_dir", "custom_info", "with_options", "check_square"]

# tensor datasets made in this process, by name, while something holds them
_TENSORS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
SIZES_HINT = ("the thesis architectures take square images: any side for the Gaussian VAE, a "
              "multiple of 4 for the VQ-VAE (e.g. 28, 32 or 64)")


def is_custom(name: str) -> bool:
    return isinstance(name, str) and name.lower().startswith(("folder:", "tensor:"))


def custom_key(name: str) -> str:
    """The canonical name of a folder or tensor dataset (absolute path, options in order)."""
    if name.lower().startswith("tensor:"):
        label = name[len("tensor:"):]
        if not re.fullmatch(r"[A-Za-z0-9._-]+", label):
            raise ValueError(f"tensor dataset names take letters, digits, '.', '_' and '-', got "
                             f"{label!r}")
        return f"tensor:{label}"
    return FolderSpec.parse(name).name


def with_options(name: str, size: int | None = None, channels: int | None = None,
                 crop: bool = False) -> str:
    """``name`` with the CLI's --size / --channels / --crop added (folder datasets only)."""
    if size is None and channels is None and not crop:
        return name
    if not name.lower().startswith("folder:"):
        raise ValueError(f"--size, --channels and --crop apply to folder:PATH datasets, not "
                         f"{name!r}")
    spec = FolderSpec.parse(name)
    return FolderSpec(spec.path, size or spec.size, channels or spec.channels,
                      crop or spec.crop, spec.test).name


def dataset_dir(name: str) -> str:
    """A file-system-safe folder name for a dataset (the results store's first level)."""
    if not is_custom(name):
        return name
    key = custom_key(name)
    if key.startswith("tensor:"):
        return "tensor-" + key[len("tensor:"):]
    spec = FolderSpec.parse(key)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.path.name or "root")[:40]
    tag = "".join("-" + o.replace("=", "").replace("size", "s").replace("channels", "c")
                  for o in spec.options)
    return f"folder-{stem}{tag}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def check_square(shape, what: str) -> None:
    c, h, w = shape
    if h != w:
        raise ValueError(f"{what} are {h}x{w}; {SIZES_HINT}: pass size=N (--size N; crop=True / "
                         "--crop keeps the aspect ratio) or crop them square first")


def from_folder(path, size: int | None = None, *, crop: bool = False,
                channels: int | None = None, test_fraction: float = TEST_FRACTION,
                progress: bool = True, root=None):
    """A folder of PNG/JPEG images (see the module docstring) as uint8 ``ImageData``.

    size:     resize to size x size (bilinear, antialiased); None: keep, all must agree
    crop:     centre-crop to a square before resizing (else non-square images are squashed)
    channels: 1 (grey) or 3 (RGB); None: 1 if every image is grey, else 3
    test_fraction: the share held out as the test pool when there are no train/ and test/
              folders (the validation images are drawn from the test pool)
    root:     data root for the cache when the folder is read-only
    """
    return load_custom(FolderSpec(Path(path).expanduser().resolve(), size, channels, crop,
                                  test_fraction).name, root, progress)


def load_custom(name: str, root=None, progress: bool = True):
    """Load a ``folder:`` or ``tensor:`` dataset by its name."""
    from .data import DataNotFoundError

    key = custom_key(name)
    if key.startswith("tensor:"):
        if key not in _TENSORS:
            raise DataNotFoundError(
                f"{key} is a tensor dataset and lives only in the process that made it: pass "
                f"data=ImageData.from_tensor(..., name={key[7:]!r}) (crossval: run_rows(..., "
                "data=...)), or save the images as a folder and use folder:PATH")
        return _TENSORS[key]
    spec = FolderSpec.parse(key)
    if not spec.path.is_dir():
        raise DataNotFoundError(f"{key}: no folder at {spec.path}")
    from .folders import load_folder

    return load_folder(spec, root, progress)


# ------------------------------------------------------------------------------- tensors


def from_tensor(train, test=None, *, name: str | None = None, labels=None, test_labels=None,
                test_fraction: float = TEST_FRACTION):
    """Images already in memory as ``ImageData`` named ``tensor:<name>``.

    ``train`` (and ``test``): (N, C, H, W) or (N, H, W, C) with C = 1 or 3, or (N, H, W) grey;
    uint8, or floats in [0, 1]; torch tensors or numpy arrays. Without ``test`` a seeded
    ``test_fraction`` of ``train`` becomes the test pool (the validation images come from it).
    ``name`` defaults to a hash of the pixels; while the returned object is referenced,
    ``load_dataset('tensor:<name>')`` finds it in this process.
    """
    from .data import ImageData

    x = _as_uint8_nchw(train, "train")
    y = None if labels is None else torch.as_tensor(np.asarray(labels)).long()
    if y is not None and len(y) != len(x):
        raise ValueError(f"{len(y)} labels for {len(x)} images")
    if test is None:
        if not 0 < test_fraction < 1 or len(x) < 2:
            raise ValueError(f"need >= 2 images and 0 < test_fraction < 1 to split off a test "
                             f"pool, got {len(x)} images, test_fraction={test_fraction}")
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
        n_test = min(len(x) - 1, max(1, round(test_fraction * len(x))))
        te, tr = order[:n_test].sort().values, order[n_test:].sort().values
        xt, yt = x[te], (None if y is None else y[te])
        x, y = x[tr], (None if y is None else y[tr])
    else:
        xt = _as_uint8_nchw(test, "test")
        yt = None if test_labels is None else torch.as_tensor(np.asarray(test_labels)).long()
        if xt.shape[1:] != x.shape[1:]:
            raise ValueError(f"train images are {tuple(x.shape[1:])} but test images "
                             f"{tuple(xt.shape[1:])}")
    check_square(x.shape[1:], "the images")
    label = name or hashlib.sha1(x.numpy().tobytes()).hexdigest()[:12]
    data = ImageData(custom_key(f"tensor:{label}"), x.contiguous(), xt.contiguous(), y, yt)
    _TENSORS[data.name] = data
    return data


def _as_uint8_nchw(images, what: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    x = x.detach().cpu()
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise ValueError(f"{what}: expected (N, C, H, W), (N, H, W, C) or (N, H, W), got "
                         f"{tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        if x.shape[3] not in (1, 3):
            raise ValueError(f"{what}: found no channel axis of 1 or 3 in {tuple(x.shape)}; "
                             "give (N, C, H, W) or (N, H, W, C) with C = 1 (grey) or 3 (RGB)")
        x = x.permute(0, 3, 1, 2)
    if x.dtype == torch.uint8:
        return x.contiguous()
    if not x.is_floating_point():
        raise ValueError(f"{what}: pixels must be uint8 (0-255) or floats in [0, 1], got "
                         f"{x.dtype}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(f"{what}: float pixels must be finite and in [0, 1], got values in "
                         f"[{float(x.min()):g}, {float(x.max()):g}]; divide by 255 first?")
    return (x.float() * 255).round().to(torch.uint8).contiguous()


def from_numpy(train, test=None, **kw):
    """:func:`from_tensor` for numpy arrays (the same layouts and dtypes)."""
    return from_tensor(train, test, **kw)


def custom_info(name: str):
    """A :class:`mtvae.data.DatasetInfo` for a folder or tensor dataset (its shape is read from
    the cache or the tensor); None for other names."""
    if not is_custom(name):
        return None
    from .data import DatasetInfo

    data = load_custom(name, progress=False)
    where = custom_key(name).partition(":")[2].split(":")[0]
    return DatasetInfo(tuple(data.shape), f"your own images ({name})", (), where)
