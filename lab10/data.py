"""Datasets as NumPy arrays: MNIST-family IDX files, CIFAR-10 binaries, synthetic teacher data.

Images come back as float32 NHWC in [0, 1] (pixels / 255, as in the labs), labels as int32.
Nothing here needs TensorFlow: the raw files are parsed with NumPy, and
tensorflow-datasets is imported only to download them (its download manager verifies
the checksums TFDS registers for each file).

Where the files are looked for: ``data_dir`` (the ``--data_dir`` flag), else
``$LAB10_DATA_DIR`` — the folder itself, then its ``<name>/`` sub-folder; such a folder is
only read, never written. With neither: MNIST from the copy bundled in ``lab10/datasets/mnist``
(offline, TFDS not imported), any other dataset from ``~/.cache/lab10/<name>``, downloaded on first use.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import socket
import tarfile
import urllib.parse
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "LAB10_DATA_DIR"
DATASETS = ("mnist", "fashion_mnist", "cifar10", "synthetic", "synthetic_uniform")
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
BUNDLED_DIR = Path(__file__).resolve().parent / "datasets"  # package data, one folder per dataset
BUNDLED = ("mnist",)
ONLINE_TIMEOUT_S = 5.0
OFFLINE_HINT = "--dataset mnist (bundled with lab10) and --dataset synthetic need no download"
SYNTHETIC_SIZES = (10_000, 2_000)  # train, test


class DataError(Exception):
  """A dataset is missing, corrupt or cannot be fetched; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  train_x: np.ndarray  # (N, H, W, C) float32
  train_y: np.ndarray  # (N,) int32
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int
  val_x: np.ndarray | None = None
  val_y: np.ndarray | None = None

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train_x.shape[1:])


def load(name: str, data_dir: str | os.PathLike | None = None, *, val_size: int = 0) -> Dataset:
  """Load ``name``; the first ``val_size`` training examples become the validation set (as TF1's
  ``input_data.read_data_sets`` did: 55k train / 5k validation / 10k test for MNIST)."""
  if name in ("mnist", "fashion_mnist"):
    ds = _load_idx(name, _find_or_download(name, data_dir, list(IDX_FILES.values())))
  elif name == "cifar10":
    ds = _load_cifar10(_find_or_download(name, data_dir, [f"{CIFAR_DIR}/{f}" for f in CIFAR_FILES]))
  elif name in ("synthetic", "synthetic_uniform"):
    ds = synthetic(uniform=name == "synthetic_uniform")
  else:
    raise DataError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
  if not 0 <= val_size < len(ds.train_y):
    raise DataError(f"--val_size {val_size} is out of range; expected 0..{len(ds.train_y) - 1} for the "
                    f"{len(ds.train_y)} training examples of {name}")
  if val_size:
    ds = dataclasses.replace(ds, train_x=ds.train_x[val_size:], train_y=ds.train_y[val_size:],
                             val_x=ds.train_x[:val_size], val_y=ds.train_y[:val_size])
  return ds


# --- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------

IDX_MAGIC = {3: 2051, 1: 2049}  # images (ndim 3), labels (ndim 1)


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
  """Parse one IDX file (gzip-compressed or raw), checking magic number, header and length."""
  path = Path(path)
  try:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
      raw = f.read()
  except FileNotFoundError:
    raise DataError(f"{path}: file not found") from None
  except (OSError, EOFError) as e:
    raise DataError(f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'IDX'} ({e})") from None
  header_len = 4 * (1 + ndim)
  if len(raw) < header_len:
    raise DataError(f"{path}: {len(raw)} bytes, shorter than the {header_len}-byte IDX header")
  magic, *dims = (int(v) for v in np.frombuffer(raw[:header_len], dtype=">u4"))
  if magic != IDX_MAGIC[ndim]:
    raise DataError(f"{path}: IDX magic number {magic}, expected {IDX_MAGIC[ndim]} for a {ndim}-d array")
  expected = int(np.prod(dims))
  if len(raw) - header_len != expected:
    raise DataError(f"{path}: {len(raw) - header_len} data bytes, header {dims} says {expected} "
                    "(truncated or corrupt file)")
  return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def _load_idx(name: str, folder: Path) -> Dataset:
  arrays = {k: read_idx(folder / f, 3 if k.endswith("images") else 1) for k, f in IDX_FILES.items()}
  for split in ("train", "test"):
    n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
    if n_img != n_lab:
      raise DataError(f"{folder}: {n_img} {split} images but {n_lab} {split} labels")
  train_shape, test_shape = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
  if train_shape != test_shape:
    raise DataError(f"{folder}: test images are {'×'.join(map(str, test_shape))} but training images are "
                    f"{'×'.join(map(str, train_shape))}; expected one image size")
  for split in ("train", "test"):
    _check_labels(folder / IDX_FILES[f"{split}_labels"], arrays[f"{split}_labels"], 10)
  return Dataset(name, _images(arrays["train_images"][..., None]), arrays["train_labels"].astype(np.int32),
                 _images(arrays["test_images"][..., None]), arrays["test_labels"].astype(np.int32), 10)


def _check_labels(path: Path, labels: np.ndarray, num_classes: int) -> None:
  """DataError unless every label is a class index 0 … num_classes − 1 (else the loss reads past the logits)."""
  bad = labels >= num_classes
  if bad.any():
    i = int(np.argmax(bad))
    raise DataError(f"{path}: label {int(labels[i])} at index {i} is out of range; expected 0..{num_classes - 1}")


def _images(pixels: np.ndarray) -> np.ndarray:
  return pixels.astype(np.float32) / 255.0


# --- CIFAR-10 binary version ------------------------------------------------------------------

CIFAR_RECORD = 1 + 32 * 32 * 3  # label byte, then 3 channel planes of 32×32


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
  try:
    raw = np.fromfile(path, dtype=np.uint8)
  except FileNotFoundError:
    raise DataError(f"{path}: file not found") from None
  if raw.size == 0 or raw.size % CIFAR_RECORD:
    raise DataError(f"{path}: {raw.size} bytes, expected a multiple of the {CIFAR_RECORD}-byte record")
  records = raw.reshape(-1, CIFAR_RECORD)
  images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return images, records[:, 0].astype(np.int32)


def _load_cifar10(folder: Path) -> Dataset:
  train = [_read_cifar_batch(folder / CIFAR_DIR / f) for f in CIFAR_FILES[:-1]]
  test_x, test_y = _read_cifar_batch(folder / CIFAR_DIR / CIFAR_FILES[-1])
  for f, (_, y) in zip(CIFAR_FILES, [*train, (test_x, test_y)]):
    _check_labels(folder / CIFAR_DIR / f, y, 10)
  return Dataset("cifar10", _images(np.concatenate([x for x, _ in train])),
                 np.concatenate([y for _, y in train]), _images(test_x), test_y, 10)


# --- synthetic --------------------------------------------------------------------------------


def synthetic(*, uniform: bool = False, sizes: tuple[int, int] = SYNTHETIC_SIZES,
              shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10, seed: int = 0) -> Dataset:
  """Inputs N(0, 1) (or U[−√3, √3], also unit variance) labelled by a fixed random teacher:
  y = argmax(tanh(2·x·W₁/√d)·W₂), W₁ (d × 16), W₂ (16 × classes) ~ N(0, 1). The teacher depends
  only on ``seed`` (fixed), not on the run's seed. An MLP 784-256-256-10 reaches ≈ 0.52 test
  accuracy after 5 epochs (chance 0.1): hard enough that depth and initialisation matter."""
  rng = np.random.default_rng(seed)
  d = int(np.prod(shape))
  w1 = 2 * rng.standard_normal((d, 16)) / np.sqrt(d)
  w2 = rng.standard_normal((16, num_classes))
  n = sum(sizes)
  x = rng.uniform(-np.sqrt(3), np.sqrt(3), (n, d)) if uniform else rng.standard_normal((n, d))
  y = np.argmax(np.tanh(x @ w1) @ w2, axis=1).astype(np.int32)
  x = x.astype(np.float32).reshape(n, *shape)
  name = "synthetic_uniform" if uniform else "synthetic"
  return Dataset(name, x[:sizes[0]], y[:sizes[0]], x[sizes[0]:], y[sizes[0]:], num_classes)


# --- finding and downloading files ------------------------------------------------------------


def resolve_dir(name: str, data_dir: str | os.PathLike | None) -> tuple[Path, bool]:
  """The folder to read ``name`` from, and whether it is the download cache: ``data_dir``, else
  ``$LAB10_DATA_DIR``, else the bundled copy (MNIST), else ``~/.cache/lab10/<name>``."""
  given = data_dir or os.environ.get(DATA_DIR_ENV)
  if given:
    return Path(given).expanduser(), False
  if name in BUNDLED:
    return BUNDLED_DIR / name, False
  return Path.home() / ".cache" / "lab10" / name, True


def _find_or_download(name: str, data_dir, files) -> Path:
  """A given folder (flag or environment) is only read; the default cache is filled by downloading."""
  root, is_cache = resolve_dir(name, data_dir)
  for folder in (root, root / name):
    if all((folder / f).exists() for f in files):
      return folder
  if is_cache:
    return download(name, root)
  if root == BUNDLED_DIR / name:
    raise DataError(f"{root}: the {name} files bundled with lab10 are missing or incomplete; reinstall lab10, "
                    f"or pass --data_dir DIR (or set {DATA_DIR_ENV}) pointing at a folder with the raw files")
  if not root.is_dir():
    raise DataError(f"data directory {root} does not exist (from --data_dir or ${DATA_DIR_ENV})")
  prepared = _tfds_prepared(root)
  if prepared is not None:
    raise DataError(f"{prepared.parent}: a prepared TFDS dataset (tfrecords, version {prepared.parent.name}), "
                    f"not the raw {name} files lab10 reads; point --data_dir at the raw files "
                    f"({Path(files[0]).name}, …), or unset it to download them")
  missing = next(f for f in files if not (root / f).exists())
  raise DataError(f"{root / missing}: file not found; expected the raw {name} files "
                  f"({', '.join(Path(f).name for f in files[:4])}{', …' if len(files) > 4 else ''}) in {root} "
                  f"or {root / name}, or unset --data_dir/${DATA_DIR_ENV} to download into ~/.cache/lab10")


def _tfds_prepared(root: Path) -> Path | None:
  """The ``dataset_info.json`` of a TFDS-prepared folder (``<name>/<version>/``) in or under ``root``."""
  for pattern in ("dataset_info.json", "*/dataset_info.json", "*/*/dataset_info.json"):
    found = sorted(root.glob(pattern))
    if found:
      return found[0]
  return None


def registered_url_infos(name: str) -> dict:
  """TFDS's registered {url: UrlInfo(size, checksum, filename)} for ``name``'s raw files."""
  import tensorflow_datasets as tfds  # lazy: only downloads need TFDS

  path = Path(tfds.__file__).parent / "url_checksums" / f"{name}.txt"
  return tfds.core.download.checksums.load_url_infos(path)


def _check_online(url: str, timeout: float = ONLINE_TIMEOUT_S) -> None:
  parts = urllib.parse.urlsplit(url)
  port = parts.port or (443 if parts.scheme == "https" else 80)
  try:
    socket.create_connection((parts.hostname, port), timeout=timeout).close()
  except OSError as e:
    raise DataError(f"cannot reach {parts.hostname} to download the data ({e.__class__.__name__}); "
                    f"connect to the internet once, or pass --data_dir DIR (or set {DATA_DIR_ENV}) "
                    f"pointing at a folder with the raw files; {OFFLINE_HINT}") from None


def download(name: str, dest: str | os.PathLike, url_infos: dict | None = None) -> Path:
  """Fetch ``name``'s raw files into ``dest`` with TFDS's download manager (checksums verified).

  Fails within ~``ONLINE_TIMEOUT_S`` seconds, with a message naming both fixes, when the
  host cannot be reached — never minutes of retries.
  """
  if name not in ("mnist", "fashion_mnist", "cifar10"):
    raise DataError(f"dataset {name!r} cannot be downloaded; valid: mnist, fashion_mnist, cifar10")
  dest = Path(dest)
  if url_infos is None:
    url_infos = registered_url_infos(name)
  urls = sorted(url_infos)
  _check_online(urls[0])
  import tensorflow_datasets as tfds  # lazy

  dest.mkdir(parents=True, exist_ok=True)
  manager = tfds.download.DownloadManager(download_dir=dest / "downloads", url_infos=url_infos,
                                          dataset_name=name)
  try:
    paths = manager.download({Path(urllib.parse.urlsplit(u).path).name: u for u in urls})
  except Exception as e:  # TFDS raises many types (network, checksum); say which file and why
    raise DataError(f"downloading {name} into {dest} failed: {str(e).splitlines()[0]}; {OFFLINE_HINT}") from None
  for filename, path in paths.items():
    if filename.endswith(".tar.gz"):
      with tarfile.open(path) as tar:
        tar.extractall(dest, filter="data")
    else:
      shutil.copyfile(path, dest / filename)
  return dest
