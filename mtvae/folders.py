"""A folder of PNG/JPEG images as uint8 tensors, decoded once into a cache beside it.

Layout: images anywhere under the folder; if every file sits in a subfolder, the subfolders are
classes (labels = subfolder index, sorted by name); ``train/`` and ``test/`` subfolders, when
both exist, are the two pools, else a seeded ``test`` share (default 0.2) becomes the test pool
(from which the validation images are drawn). The decoded pools go to
``<folder>/.mtvae-cache/images-<options>.npz`` (or ``<data root>/mtvae-cache/`` when the folder
is read-only) with a fingerprint of the file names, sizes and times: adding, removing or
touching an image decodes the folder anew.

A folder dataset's name carries everything needed to load it again (a stored RunConfig reloads
it): ``folder:<absolute path>[:size=N][:channels=1|3][:crop][:test=F]`` (:class:`FolderSpec`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["FolderSpec", "load_folder", "EXTENSIONS"]

log = logging.getLogger("mtvae")

EXTENSIONS = (".png", ".jpg", ".jpeg")
CACHE_DIR = ".mtvae-cache"
TEST_FRACTION = 0.2  # like MNIST's 60k / 10k: enough test images for a validation half
SPLIT_SEED = 0  # the train / test split of a folder is fixed, whatever the run's seed
_OPTION = re.compile(r"^(size=\d+|channels=\d+|crop|test=[0-9.eE+-]+)$")


@dataclass(frozen=True)
class FolderSpec:
    """Where the images are and how they are decoded (the parts of a ``folder:`` name)."""

    path: Path
    size: int | None = None
    channels: int | None = None
    crop: bool = False
    test: float = TEST_FRACTION

    def __post_init__(self) -> None:
        if self.size is not None and self.size < 1:
            raise ValueError(f"size must be a positive side length in pixels, got {self.size}")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if not 0 < self.test < 1:
            raise ValueError(f"test (the share held out as test pool) must be in (0, 1), got "
                             f"{self.test}")

    @property
    def options(self) -> list[str]:
        return ([f"size={self.size}"] if self.size else []) + (
            [f"channels={self.channels}"] if self.channels else []) + (
            ["crop"] if self.crop else []) + (
            [f"test={self.test:g}"] if self.test != TEST_FRACTION else [])

    @property
    def name(self) -> str:
        return ":".join([f"folder:{self.path}", *self.options])

    @classmethod
    def parse(cls, name: str) -> FolderSpec:
        parts, kw = name[len("folder:"):].split(":"), {}
        while len(parts) > 1 and _OPTION.match(parts[-1]):
            key, _, value = parts.pop().partition("=")
            kw[key] = True if key == "crop" else float(value) if key == "test" else int(value)
        path = ":".join(parts)
        if not path:
            raise ValueError("folder: needs a path, e.g. --dataset folder:path/to/images")
        return cls(Path(path).expanduser().resolve(), **kw)



def load_folder(spec: FolderSpec, root=None, progress: bool = True):
    """The folder dataset ``spec`` from its cache, else decoded (then cached)."""
    pools = _pool_files(spec)
    fingerprint = _fingerprint(spec.path, [f for files in pools.values() for f, _ in files])
    caches = _cache_paths(spec, root)
    for cache in caches:
        data = _read_cache(cache, spec.name, fingerprint)
        if data is not None:
            return data
    data = _decode(spec, spec.name, pools, progress)
    _write_cache(caches, data, fingerprint)
    return data


def _pool_files(spec: FolderSpec) -> dict[str, list[tuple[Path, str | None]]]:
    """{'train': [(file, class or None)], 'test': [...]} from the folder layout."""
    split = (spec.path / "train").is_dir() and (spec.path / "test").is_dir()
    if split:
        pools = {p: _images_in(spec.path / p) for p in ("train", "test")}
    else:
        files = _images_in(spec.path)
        if len(files) < 2:
            raise ValueError(f"{spec.path}: found {len(files)} image files ({', '.join(EXTENSIONS)})"
                             "; need at least 2 (a training and a test pool)")
        g = torch.Generator().manual_seed(SPLIT_SEED)
        order = torch.randperm(len(files), generator=g).tolist()
        n_test = min(len(files) - 1, max(1, round(spec.test * len(files))))
        pools = {"train": [files[i] for i in sorted(order[n_test:])],
                 "test": [files[i] for i in sorted(order[:n_test])]}
    for pool, files in pools.items():
        if not files:
            raise ValueError(f"{spec.path / pool if split else spec.path}: no image files "
                             f"({', '.join(EXTENSIONS)})")
    return pools


def _images_in(folder: Path) -> list[tuple[Path, str | None]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    nested = all(len(p.relative_to(folder).parts) > 1 for p in files)
    return [(p, p.relative_to(folder).parts[0] if nested else None) for p in files]


def _fingerprint(folder: Path, files: list[Path]) -> str:
    h = hashlib.sha1()
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_paths(spec: FolderSpec, root) -> list[Path]:
    from .data import data_root
    from .images import dataset_dir

    stem = "images" + "".join("-" + o.replace("=", "") for o in spec.options) + ".npz"
    return [spec.path / CACHE_DIR / stem,
            data_root(root) / "mtvae-cache" / dataset_dir(spec.name) / stem]


def _read_cache(path: Path, key: str, fingerprint: str):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                log.info("%s: the images changed since %s was written; decoding again", key, path)
                return None
            arrays = {k: torch.from_numpy(z[k].copy()) for k in ("train", "test")}
            labels = {k: torch.from_numpy(z[k].copy()) if z[k].size else None
                      for k in ("train_labels", "test_labels")}
    except (OSError, ValueError, KeyError) as err:
        log.warning("%s is unreadable (%s); decoding the images again", path, err)
        return None
    from .data import ImageData

    return ImageData(key, arrays["train"], arrays["test"], labels["train_labels"],
                     labels["test_labels"])


def _write_cache(paths: list[Path], data, fingerprint: str) -> None:
    from .checkpoint import atomic_write

    empty = np.zeros(0, dtype=np.int64)
    arrays = dict(train=data.train.numpy(), test=data.test.numpy(), fingerprint=fingerprint,
                  train_labels=empty if data.train_labels is None else data.train_labels.numpy(),
                  test_labels=empty if data.test_labels is None else data.test_labels.numpy())
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: np.savez(f, **arrays))
            log.info("decoded %s once; cached in %s", data.name, path)
            return
        except OSError as err:
            log.warning("cannot write the image cache %s (%s)", path, err)


def _decode(spec: FolderSpec, key: str, pools: dict, progress: bool):
    from tqdm.auto import tqdm

    from .data import ImageData

    files = [(pool, f, c) for pool, items in pools.items() for f, c in items]
    images = []
    for _, f, _ in tqdm(files, desc=f"decoding {spec.path.name} (once)", unit="img",
                        disable=not progress, mininterval=1.0):
        images.append(_read_image(f, spec))
    channels = spec.channels or (1 if all(len(i) == 1 for i in images) else 3)
    images = [_to_channels(i, channels) for i in images]
    shapes = sorted({tuple(i.shape[1:]) for i in images})
    if len(shapes) > 1:
        raise ValueError(f"{spec.path}: the images have different sizes "
                         f"({', '.join(f'{h}x{w}' for h, w in shapes[:5])}"
                         f"{', ...' if len(shapes) > 5 else ''}); pass size=N (--size N)")
    from .images import check_square

    check_square((channels, *shapes[0]), f"the images in {spec.path}")
    classes = sorted({c for _, _, c in files if c is not None})
    out = {}
    for pool in ("train", "test"):
        idx = [i for i, (p, _, _) in enumerate(files) if p == pool]
        x = torch.stack([images[i] for i in idx])
        y = (torch.tensor([classes.index(files[i][2]) for i in idx]) if classes and
             all(files[i][2] is not None for i in range(len(files))) else None)
        out[pool], out[f"{pool}_labels"] = x.contiguous(), y
    return ImageData(key, out["train"], out["test"], out["train_labels"], out["test_labels"])


def _read_image(path: Path, spec: FolderSpec) -> torch.Tensor:
    """One file -> uint8 (C, H, W), grey or RGB as stored (alpha dropped), cropped, resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode.startswith("I;16"):  # 16-bit grey PNG: scale, do not clip
                a = (np.asarray(im, dtype=np.float32) / 257).round().astype(np.uint8)
            else:
                grey = im.mode in ("1", "L", "LA", "I", "F")
                a = np.asarray(im.convert("L" if grey else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot decode this image ({str(err).splitlines()[0]}); "
                         "delete or replace the file") from None
    img = torch.from_numpy(a.copy())
    img = img[None] if img.dim() == 2 else img.permute(2, 0, 1)
    _, h, w = img.shape
    if spec.crop and h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = img[:, top:top + s, left:left + s]
    if spec.size and tuple(img.shape[1:]) != (spec.size, spec.size):
        img = torch.nn.functional.interpolate(
            img[None].float(), size=(spec.size, spec.size), mode="bilinear", antialias=True,
            align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
    return img


def _to_channels(img: torch.Tensor, channels: int) -> torch.Tensor:
    if img.shape[0] == channels:
        return img
    if channels == 3:
        return img.expand(3, -1, -1).clone()
    luma = (img[0].int() * 299 + img[1].int() * 587 + img[2].int() * 114 + 500) // 1000  # ITU-R 601
    return luma.to(torch.uint8)[None]
