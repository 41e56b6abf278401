import os
from pathlib import Path

import pytest

from lab10 import data

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("LAB10_MNIST_DIR", data.BUNDLED_DIR / "mnist"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
  # MNIST ships with lab10: a missing file is a broken checkout, never a reason to skip.
  missing = [f for f in data.IDX_FILES.values() if not (MNIST_DIR / f).exists()]
  assert not missing, f"MNIST IDX files {missing} not found in {MNIST_DIR} (bundled in lab10/datasets/mnist)"
  return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
  return data.load("mnist", mnist_dir)
