"""Bad data files given to scripts/train.py: one line naming the file and what is wrong with it, exit 2."""

import gzip

import numpy as np
import pytest

import cli
from lab10 import runs


def _idx(array: np.ndarray, magic: int) -> bytes:
  return np.array([magic, *array.shape], ">u4").tobytes() + array.astype(np.uint8).tobytes()


@pytest.fixture
def fake_mnist(tmp_path):
  """Raw MNIST-format files with 200 training and 50 test images."""
  rng = np.random.default_rng(0)
  folder = tmp_path / "mnist"
  folder.mkdir()
  for split, n in (("train", 200), ("t10k", 50)):
    images = rng.integers(0, 256, (n, 28, 28))
    (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images, 2051)))
    (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(rng.integers(0, 10, n), 2049)))
  return folder


def _labels(n, magic=2049):
  return gzip.compress(_idx(np.zeros(n), magic))


BAD_FILES = [
    ("t10k-labels-idx1-ubyte.gz", None, "t10k-labels-idx1-ubyte.gz: file not found; expected the raw mnist files"),
    ("t10k-labels-idx1-ubyte.gz", _labels(50, magic=2051), "magic number 2051, expected 2049 for a 1-d array"),
    ("t10k-labels-idx1-ubyte.gz", gzip.compress(_idx(np.zeros(50), 2049)[:-10]),
     "t10k-labels-idx1-ubyte.gz: 40 data bytes, header [50] says 50 (truncated or corrupt file)"),
    ("t10k-labels-idx1-ubyte.gz", _labels(50)[:-20], "t10k-labels-idx1-ubyte.gz: cannot be read as gzip"),
    ("t10k-labels-idx1-ubyte.gz", b"\x00" * 30, "t10k-labels-idx1-ubyte.gz: cannot be read as gzip"),
    ("t10k-labels-idx1-ubyte.gz", gzip.compress(b"\x00\x00"), "2 bytes, shorter than the 8-byte IDX header"),
    ("train-labels-idx1-ubyte.gz", _labels(199), "200 train images but 199 train labels"),
    ("t10k-images-idx3-ubyte.gz", gzip.compress(_idx(np.zeros((50, 32, 32)), 2051)),
     "test images are 32×32 but training images are 28×28; expected one image size"),
    ("train-labels-idx1-ubyte.gz", gzip.compress(_idx(np.full(200, 200), 2049)),
     "train-labels-idx1-ubyte.gz: label 200 at index 0 is out of range; expected 0..9"),
]


@pytest.mark.parametrize("file,content,message", BAD_FILES, ids=[m.split(": ")[-1][:40] for _, _, m in BAD_FILES])
def test_corrupt_idx_file_exits_2_naming_the_file(fake_mnist, file, content, message, tmp_path):
  if content is None:
    (fake_mnist / file).unlink()
  else:
    (fake_mnist / file).write_bytes(content)
  status, lines = cli.main("train", "--data_dir", str(fake_mnist), "--workdir", str(tmp_path / "run"))
  assert status == 2 and len(lines) == 1 and message in lines[0] and str(fake_mnist) in lines[0], lines
  assert not (tmp_path / "run").exists(), "a rejected run must not create its workdir"


def test_fake_mnist_is_valid(fake_mnist, tmp_path):
  # The corrupt-file cases above start from these files: undamaged, they train.
  assert cli.main("train", "--data_dir", str(fake_mnist), "--epochs", "1", "--workdir", str(tmp_path)) == (0, [])
  assert runs.read_jsonl(tmp_path / "metrics.jsonl")[0]["step"] == 2


def test_prepared_tfds_folder_is_named_as_such(tmp_path):
  version = tmp_path / "tfds" / "mnist" / "3.0.1"
  version.mkdir(parents=True)
  (version / "dataset_info.json").write_text("{}")
  (version / "mnist-train.tfrecord-00000-of-00001").write_bytes(b"")
  status, lines = cli.main("train", "--data_dir", str(tmp_path / "tfds"), "--workdir", str(tmp_path / "run"))
  assert status == 2 and len(lines) == 1, lines
  assert f"{version}: a prepared TFDS dataset (tfrecords, version 3.0.1), not the raw mnist files" in lines[0]


def test_corrupt_file_in_a_real_process_is_one_line_without_traceback(fake_mnist, tmp_path):
  (fake_mnist / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
  status, out, err = cli.run("train", "--data_dir", str(fake_mnist), "--workdir", str(tmp_path / "run"))
  assert status == 2 and err.count("\n") == 1 and "train-images-idx3-ubyte.gz: cannot be read as gzip" in err
