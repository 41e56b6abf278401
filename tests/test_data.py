import functools
import gzip
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from lab10 import data

from conftest import ROOT

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_offline_mnist_matches_published_statistics(mnist):
  assert mnist.train_x.shape == (60000, 28, 28, 1) and mnist.test_x.shape == (10000, 28, 28, 1)
  assert mnist.train_x.dtype == np.float32 and mnist.train_y.dtype == np.int32
  assert float(mnist.train_x.mean()) == pytest.approx(0.1307, abs=5e-5)
  assert float(mnist.train_x.std()) == pytest.approx(0.3081, abs=5e-5)
  assert np.bincount(mnist.train_y).tolist() == MNIST_TRAIN_COUNTS
  assert np.bincount(mnist.test_y).tolist() == MNIST_TEST_COUNTS


def test_validation_split_is_the_first_examples_as_in_tf1(mnist_dir, mnist):
  ds = data.load("mnist", mnist_dir, val_size=5000)
  assert len(ds.train_y) == 55000 and len(ds.val_y) == 5000
  np.testing.assert_array_equal(ds.val_y, mnist.train_y[:5000])
  np.testing.assert_array_equal(ds.train_y, mnist.train_y[5000:])


def test_environment_variable_points_at_the_data(mnist_dir, monkeypatch):
  monkeypatch.setenv(data.DATA_DIR_ENV, str(mnist_dir))
  assert len(data.load("mnist").test_y) == 10000


def test_mnist_loads_from_the_bundled_copy_offline_without_tfds(tmp_path):
  # A fresh interpreter: in this one other tests may already have imported TFDS.
  code = textwrap.dedent("""
      import json, socket, sys

      import numpy as np

      def offline(*args, **kwargs):
        raise OSError("the network is off in this test")

      socket.create_connection = socket.socket.connect = offline
      from lab10 import data

      ds = data.load("mnist")
      print(json.dumps({"dir": str(data.resolve_dir("mnist", None)[0]), "train": len(ds.train_y),
                        "test": len(ds.test_y), "first_train": ds.train_y[:5].tolist(),
                        "first_test": ds.test_y[:5].tolist(), "train_counts": np.bincount(ds.train_y).tolist(),
                        "tfds": "tensorflow_datasets" in sys.modules}))
  """)
  env = {k: v for k, v in os.environ.items() if k != data.DATA_DIR_ENV}
  env["HOME"] = str(tmp_path)  # no ~/.cache/lab10 to fall back on
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  out = json.loads(result.stdout)
  assert out["dir"] == str(ROOT / "lab10" / "datasets" / "mnist")
  assert out["train"] == 60000 and out["test"] == 10000
  assert out["first_train"] == [5, 0, 4, 1, 9] and out["first_test"] == [7, 2, 1, 0, 4]
  assert out["train_counts"] == MNIST_TRAIN_COUNTS
  assert not out["tfds"], "loading the bundled MNIST imported tensorflow_datasets"


def test_data_dir_and_environment_override_the_bundled_copy(monkeypatch, tmp_path):
  monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
  assert data.resolve_dir("mnist", tmp_path / "flag") == (tmp_path / "flag", False)
  assert data.resolve_dir("mnist", None) == (tmp_path / "env", False)
  (tmp_path / "env").mkdir()
  with pytest.raises(data.DataError, match="env/train-images-idx3-ubyte.gz: file not found"):
    data.load("mnist")


def test_incomplete_bundled_copy_says_so(monkeypatch, tmp_path):
  monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
  monkeypatch.setattr(data, "BUNDLED_DIR", tmp_path)
  with pytest.raises(data.DataError, match="the mnist files bundled with lab10 are missing or incomplete"):
    data.load("mnist")


def _copy_mnist(src, dst):
  dst.mkdir(exist_ok=True)
  for f in data.IDX_FILES.values():
    shutil.copy(src / f, dst / f)
  return dst


def _rewrite(path, transform):
  with gzip.open(path, "rb") as f:
    raw = f.read()
  with gzip.open(path, "wb") as f:
    f.write(transform(raw))


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.unlink(), "t10k-labels-idx1-ubyte.gz: file not found; expected the raw mnist files"),
    (lambda p: _rewrite(p, lambda raw: raw[:-100]), r"9900 data bytes, header \[10000\] says 10000"),
    (lambda p: _rewrite(p, lambda raw: (1234).to_bytes(4, "big") + raw[4:]), "magic number 1234, expected 2049"),
    (lambda p: p.write_bytes(b"not gzip at all"), "cannot be read as gzip"),
])
def test_missing_or_corrupt_files_give_one_clear_line(mnist_dir, tmp_path, damage, message):
  folder = _copy_mnist(mnist_dir, tmp_path / "mnist")
  damage(folder / "t10k-labels-idx1-ubyte.gz")
  with pytest.raises(data.DataError, match=message) as err:
    data.load("mnist", folder)
  assert "t10k-labels-idx1-ubyte.gz" in str(err.value) and "\n" not in str(err.value)


def test_data_dir_that_does_not_exist(tmp_path):
  with pytest.raises(data.DataError, match="data directory .*nope does not exist"):
    data.load("mnist", tmp_path / "nope")


def test_offline_download_fails_fast_and_names_both_fixes(tmp_path):
  # Port 9 (discard) on loopback is closed: the connection is refused at once, like an offline machine.
  start = time.monotonic()
  with pytest.raises(data.DataError) as err:
    data.download("mnist", tmp_path, {"http://127.0.0.1:9/train-images-idx3-ubyte.gz": None})
  assert time.monotonic() - start < 15
  msg = str(err.value)
  assert "connect to the internet once" in msg and "--data_dir" in msg and data.DATA_DIR_ENV in msg


def test_offline_download_names_the_bundled_mnist_and_synthetic(monkeypatch, tmp_path):
  monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
  monkeypatch.setenv("HOME", str(tmp_path))
  monkeypatch.setattr(data, "registered_url_infos", lambda name: {f"https://data.invalid/{name}/x.gz": None})

  def offline(*args, **kwargs):
    raise OSError("the network is off in this test")

  monkeypatch.setattr(data.socket, "create_connection", offline)
  with pytest.raises(data.DataError) as err:
    data.load("fashion_mnist")
  msg = str(err.value)
  assert "cannot reach data.invalid" in msg and "\n" not in msg
  assert "--dataset mnist (bundled with lab10)" in msg and "--dataset synthetic" in msg


def test_default_cache_downloads_when_empty(monkeypatch, tmp_path):
  monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
  monkeypatch.setenv("HOME", str(tmp_path))
  calls = []
  monkeypatch.setattr(data, "download", lambda name, dest: calls.append((name, dest)) or dest)
  with pytest.raises(data.DataError):  # the fake download fetched nothing
    data.load("fashion_mnist")
  assert calls == [("fashion_mnist", tmp_path / ".cache" / "lab10" / "fashion_mnist")]


def test_download_through_tfds_download_manager_from_a_local_server(mnist_dir, tmp_path):
  """The real TFDS download manager, checksums included, against a loopback HTTP server."""
  pytest.importorskip("tensorflow_datasets")
  from tensorflow_datasets.core.download import checksums

  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mnist_dir))
  handler.log_message = lambda *a: None
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    infos = {}
    for f in data.IDX_FILES.values():
      raw = (mnist_dir / f).read_bytes()
      infos[base + f] = checksums.UrlInfo(size=len(raw), checksum=hashlib.sha256(raw).hexdigest(), filename=f)
    dest = tmp_path / "fetched"
    data.download("mnist", dest, infos)
    ds = data.load("mnist", dest)
    assert len(ds.train_y) == 60000 and len(ds.test_y) == 10000
    # A wrong registered checksum is caught by TFDS and reported in one line.
    bad = {u: checksums.UrlInfo(size=i.size, checksum="0" * 64, filename=i.filename) for u, i in infos.items()}
    with pytest.raises(data.DataError, match="downloading mnist .* failed"):
      data.download("mnist", tmp_path / "bad", bad)
  finally:
    server.shutdown()


def test_registered_checksums_are_tfds_own():
  infos = data.registered_url_infos("mnist")
  assert {u.rsplit("/", 1)[1] for u in infos} == set(data.IDX_FILES.values())
  assert all(len(i.checksum) == 64 for i in infos.values())


def test_cifar10_binary_parser(tmp_path):
  folder = tmp_path / data.CIFAR_DIR
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i, f in enumerate(data.CIFAR_FILES):
    records = rng.integers(0, 256, (3, data.CIFAR_RECORD), dtype=np.uint8)
    records[:, 0] = [i % 10, 3, 7]
    records.tofile(folder / f)
  ds = data.load("cifar10", tmp_path)
  assert ds.train_x.shape == (15, 32, 32, 3) and ds.test_x.shape == (3, 32, 32, 3)
  raw = np.fromfile(folder / "test_batch.bin", dtype=np.uint8).reshape(3, -1)
  # CHW planes → HWC: pixel (row 2, col 5) of channel 1 is byte 1 + 1024 + 2·32 + 5.
  assert ds.test_x[0, 2, 5, 1] == pytest.approx(raw[0, 1 + 1024 + 2 * 32 + 5] / 255)
  assert ds.test_y.tolist() == [5, 3, 7]
  (folder / "data_batch_2.bin").write_bytes(b"\0" * 100)
  with pytest.raises(data.DataError, match="data_batch_2.bin: 100 bytes, expected a multiple of the 3073"):
    data.load("cifar10", tmp_path)


def test_synthetic_is_fixed_and_learnable():
  a, b = data.load("synthetic"), data.load("synthetic")
  np.testing.assert_array_equal(a.train_x, b.train_x)
  assert a.train_x.shape == (10000, 28, 28, 1) and a.test_x.shape == (2000, 28, 28, 1)
  assert abs(float(a.train_x.var()) - 1) < 0.01
  assert np.bincount(a.train_y, minlength=10).min() > 200  # every class occurs
  u = data.load("synthetic_uniform")
  assert abs(float(u.train_x.var()) - 1) < 0.01 and np.abs(u.train_x).max() <= np.sqrt(3)


def test_unknown_dataset():
  with pytest.raises(data.DataError, match="unknown dataset 'imagenet'; valid: mnist, fashion_mnist, cifar10"):
    data.load("imagenet")
