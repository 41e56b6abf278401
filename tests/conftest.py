import os
from collections.abc import Callable
import shutil
import subprocess
import tempfile
from pathlib import Path

import filelock
import jax
import pytest

from lab10 import data

ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("LAB10_MNIST_DIR", data.BUNDLED_DIR / "mnist"))

# One persistent XLA compilation cache per test run, shared by the pytest workers and the scripts they start (a
# train.py run spends about half of its 15 s compiling the same programs as the last one), read and written under
# JAX's file lock (filelock, in the dev extras). A process killed while it writes an entry would leave it
# truncated, so a process a test may kill gets a snapshot of its own (``killable_env``).
CACHE_ROOT = "LAB10_TEST_CACHE_ROOT"  # the environment variable naming this run's cache folder


def _cache_env(path: Path, locked: bool) -> dict[str, str]:
  return {"JAX_COMPILATION_CACHE_DIR": str(path), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.1",
          "JAX_COMPILATION_CACHE_MAX_SIZE": str(4 << 30) if locked else "-1"}  # -1: no eviction, no lock


def pytest_configure(config):
  if hasattr(config, "workerinput"):  # an xdist worker: its environment, cache included, is the controller's
    return
  root = Path(tempfile.mkdtemp(prefix="lab10-test-xla-cache-"))
  env = _cache_env(root / "shared", locked=True)
  os.environ.update(env, **{CACHE_ROOT: str(root)})
  jax.config.update("jax_compilation_cache_dir", env["JAX_COMPILATION_CACHE_DIR"])  # JAX is imported already
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
  jax.config.update("jax_compilation_cache_max_size", 4 << 30)


def pytest_unconfigure(config):
  if not hasattr(config, "workerinput") and CACHE_ROOT in os.environ:
    shutil.rmtree(os.environ[CACHE_ROOT], ignore_errors=True)


def killable_env() -> dict[str, str]:
  """This process's environment with a snapshot of the compilation cache of its own, for a process a test may kill:
  hard links to the shared entries, made under JAX's lock (JAX writes an entry once and never changes it), so a
  kill in the middle of a write can only leave a damaged entry in the snapshot."""
  root = Path(os.environ[CACHE_ROOT])
  shared, snapshot = root / "shared", Path(tempfile.mkdtemp(prefix="snapshot-", dir=root))
  shared.mkdir(exist_ok=True)
  with filelock.FileLock(shared / ".lockfile"):
    for entry in shared.glob("*-cache"):
      os.link(entry, snapshot / entry.name)
  return {**os.environ, **_cache_env(snapshot, locked=False)}


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


def made_once(tmp_path_factory, worker_id: str, name: str, make: Callable[[Path], None]) -> Path:
  """``name`` in the test run's temporary folder, made by ``make(path)`` once for the whole run: the first xdist
  worker to ask makes it, under a lock, while the others wait (a session fixture alone runs once per worker)."""
  base = tmp_path_factory.getbasetemp()
  path = (base if worker_id == "master" else base.parent) / name  # the parent: shared by this run's workers
  with filelock.FileLock(f"{path}.lock"):
    if not path.exists():
      making = path.with_name(f"{name}.making")
      shutil.rmtree(making, ignore_errors=True)
      make(making)
      making.rename(path)
  return path
