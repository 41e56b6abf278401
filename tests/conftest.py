import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("LAB10_MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
  if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
    pytest.skip(f"MNIST IDX files not found in {MNIST_DIR} (set LAB10_MNIST_DIR)")
  return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
  from lab10 import data

  return data.load("mnist", mnist_dir)
