"""Folds and the validation split of a dataset (thesis sections 3.4.1 and 4.3).

A training run sees three index sets of one :class:`~mtvae.data.ImageData`: its training part
and held-out fold of the training pool (k-fold, seeded or contiguous as the thesis's
``KFold(5)``, docs/thesis_code.md#folds) and a validation half of the official test pool for the
best-epoch choice (docs/thesis_code.md#splits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .data import ImageData

__all__ = ["Splits", "kfold_indices", "make_splits", "validation_indices"]


def kfold_indices(n: int, k: int = 5, seed: int | None = 0, shuffle: bool = True
                  ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """k (train, held-out) index pairs over ``range(n)``; held-out folds are disjoint and cover.

    ``shuffle=False`` gives contiguous blocks, exactly scikit-learn's ``KFold(k, shuffle=False)``
    that the thesis used (the first ``n % k`` folds are one longer).
    """
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2 folds, got k={k}")
    if n < k:
        raise ValueError(f"cannot split {n} images into {k} folds; use fewer folds or more data")
    if shuffle:
        g = torch.Generator().manual_seed(0 if seed is None else int(seed))
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    folds, start = [], 0
    for size in sizes:
        held = order[start:start + size]
        train = torch.cat([order[:start], order[start + size:]])
        folds.append((train, held))
        start += size
    return folds


@dataclass
class Splits:
    """Indices into an :class:`ImageData`: ``train``/``test`` index the training pool (fold k's
    training and held-out parts), ``val`` indexes the official test pool."""

    train: torch.Tensor
    test: torch.Tensor
    val: torch.Tensor
    fold: int | None = None
    info: dict = field(default_factory=dict)


def validation_indices(n_test_pool: int, fraction: float = 0.5, seed: int = 0) -> torch.Tensor:
    """The validation set used for best-epoch selection: a seeded ``fraction`` of the official
    test pool. (The thesis took an unseeded random half per run, docs/thesis_code.md#splits.)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"validation fraction must be in (0, 1], got {fraction}")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n_test_pool, generator=g)
    return perm[: max(1, int(fraction * n_test_pool))].sort().values


def make_splits(data: ImageData, fold: int | None = None, k: int = 5, seed: int = 0,
                shuffle: bool = True, val_fraction: float = 0.5, limit: int | None = None
                ) -> Splits:
    """Splits for one training run.

    ``fold=None``: train on the whole training pool (no held-out fold; ``test`` is empty).
    ``fold=i``: fold ``i`` of a seeded k-fold over the training pool is held out.
    ``limit``: use only the first ``limit`` images of a seeded permutation of the pool (quick
    profiles); the folds are then taken over that subset.
    """
    n = len(data.train)
    pool = torch.arange(n)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be a positive number of images, got {limit}")
        g = torch.Generator().manual_seed(int(seed) + 7919)
        pool = torch.randperm(n, generator=g)[: min(limit, n)].sort().values
    val = validation_indices(len(data.test), val_fraction, seed)
    if fold is None:
        return Splits(pool, pool[:0], val, None, {"k": None, "seed": seed})
    if not 0 <= fold < k:
        raise ValueError(f"fold must be in 0..{k - 1} for k={k}, got {fold}")
    tr, te = kfold_indices(len(pool), k, seed, shuffle)[fold]
    return Splits(pool[tr], pool[te], val, fold, {"k": k, "seed": seed, "shuffle": shuffle})
