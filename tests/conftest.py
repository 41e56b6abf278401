import os
import subprocess
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


@pytest.fixture
def small_disk(tmp_path):
  """A 2.5 MB tmpfs (room for config.json and one checkpoint of a small model); skipped where mounting is not
  permitted."""
  mount = tmp_path / "disk"
  mount.mkdir()
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2500k", "tmpfs", str(mount)], capture_output=True).returncode:
    pytest.skip("cannot mount a tmpfs here")
  yield mount
  subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path) -> None:
  """Fill ``disk`` (small_disk) up: every later write there fails with ENOSPC."""
  import contextlib

  with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
    f.write(b"\0" * 2500 * 1024)
