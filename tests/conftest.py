"""Shared fixtures. ``shared_datasets``: the real MNIST beside the checkout (../shared/datasets,
as on our CI machine) or in $MTVAE_TEST_DATA; tests that need it skip, saying why, elsewhere."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    candidates = [os.environ.get("MTVAE_TEST_DATA"), REPO.parent / "shared" / "datasets"]
    for c in candidates:
        if c and (Path(c) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(c)
    pytest.skip("real MNIST not found: put the official idx files in ../shared/datasets/MNIST/raw "
                "or set MTVAE_TEST_DATA to a folder holding MNIST/raw")
