"""Reliability: one-line errors for bad flags and files, divergence stops, checkpoints, exact resume,
the workdir guard. CLI behaviour is checked through ``scripts/train.py`` (in-process ``main`` for the
many bad-input cases, subprocesses where a real process matters: kills, exit codes, no traceback)."""

import dataclasses
import gzip
import json
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from lab10 import config as C
from lab10 import data, runs, train

from conftest import ROOT


def _load_script(name):
  import importlib.util

  spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


train_script = _load_script("train")

# A tiny run: 10k synthetic examples, 200 steps an epoch, a few tenths of a second per epoch on CPU.
TINY = ["--dataset", "synthetic", "--width", "64", "--batch_size", "50", "--seed", "3"]


def _main(*flags):
  """scripts/train.py's main in this process: (exit status, stderr lines)."""
  import contextlib
  import io

  err = io.StringIO()
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      status = train_script.main(list(flags))
    except SystemExit as e:  # argparse
      status = e.code
  return status, err.getvalue().strip().splitlines()


def _train(*flags, **kwargs):
  return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *flags], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _finish(process, timeout=300):
  out, err = process.communicate(timeout=timeout)
  return process.returncode, out, err


# --- bad flags -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags,message", [
    (["--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not valid; choose from: adam, sgd, momentum"),
    (["--dataset", "imagenet"], "--dataset 'imagenet' is not valid; choose from: mnist, fashion_mnist"),
    (["--init", "xavier"], "--init 'xavier' is not valid; choose from: normal, glorot_uniform"),
    (["--model", "resnet"], "--model 'resnet' is not valid; choose from: mlp, cnn"),
    (["--bias_init", "ones"], "--bias_init 'ones' is not valid; choose from: zeros, normal"),
    (["--depth", "-1"], "--depth -1 is out of range; expected >= 0 (mlp) or >= 1 (cnn)"),
    (["--model", "cnn", "--depth", "0"], "--depth 0 is out of range"),
    (["--width", "0"], "--width 0 is out of range; expected positive integers"),
    (["--width", "64,-1", "--depth", "2"], "--width 64,-1 is out of range"),
    (["--width", "16,32,8"], "--width 16,32,8 gives 3 widths but --depth is 2"),
    (["--model", "cnn", "--width", "16,32", "--depth", "2"], "gives several widths but --model cnn takes one"),
    (["--epochs", "-3"], "--epochs -3 is out of range; expected an integer > 0"),
    (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
    (["--batch_size", "0"], "--batch_size 0 is out of range; expected an integer > 0"),
    (["--lr", "0"], "--lr 0.0 is out of range; expected a finite number > 0"),
    (["--lr", "-0.1"], "--lr -0.1 is out of range"),
    (["--lr", "inf"], "--lr inf is out of range"),
    (["--dropout", "-0.1"], r"--dropout -0.1 is out of range; expected a probability in [0, 1)"),
    (["--dropout", "nan"], "--dropout nan is out of range"),
    (["--momentum", "1"], "--momentum 1.0 is out of range; expected in [0, 1)"),
    (["--seed", "-1"], "--seed -1 is out of range; expected an integer in [0, 2^32)"),
    (["--weight_decay", "-1e-4"], "--weight_decay -0.0001 is out of range; expected >= 0"),
    (["--batchnorm", "maybe"], "argument --batchnorm: 'maybe' is not a boolean; choose from: true, false"),
    (["--keep_checkpoints", "0"], "--keep_checkpoints 0 is out of range; expected an integer >= 1"),
    (["--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    (["--dataset", "synthetic", "--batch_size", "10001"], "--batch_size 10001 is larger than the 10000"),
    (["--dataset", "synthetic", "--val_size", "10000"],
     "--val_size 10000 is out of range; expected 0..9999 for the 10000 training examples of synthetic"),
    (["--dataset", "synthetic", "--data_dir", "/nonexistent/lab10"],
     "--data_dir /nonexistent/lab10 does not exist or is not a folder"),
])
def test_bad_flag_exits_2_with_one_line_naming_it(flags, message, tmp_path):
  status, lines = _main(*flags, "--workdir", str(tmp_path / "run"))
  assert status == 2 and len(lines) == 1 and message in lines[0], lines
  assert not (tmp_path / "run").exists(), "a rejected run must not create its workdir"


def test_resume_needs_a_workdir():
  status, lines = _main("--resume")
  assert status == 2 and lines == ["error: --resume needs --workdir, the run directory to continue"]


def test_workdir_that_is_a_file_or_cannot_be_created(tmp_path):
  (tmp_path / "file").write_text("x")
  status, lines = _main(*TINY, "--workdir", str(tmp_path / "file"))
  assert status == 2 and lines == [f"error: --workdir {tmp_path / 'file'} exists and is not a folder"]
  status, lines = _main(*TINY, "--workdir", str(tmp_path / "file" / "run"))
  assert status == 2 and len(lines) == 1 and f"--workdir {tmp_path / 'file' / 'run'} cannot be" in lines[0]


# --- bad data files --------------------------------------------------------------------------------


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


@pytest.mark.parametrize("file,content,message", [
    ("t10k-labels-idx1-ubyte.gz", None, "t10k-labels-idx1-ubyte.gz: file not found; expected the raw mnist files"),
    ("t10k-labels-idx1-ubyte.gz", _labels(50, magic=2051), "magic number 2051, expected 2049 for a 1-d array"),
    ("t10k-labels-idx1-ubyte.gz", gzip.compress(_idx(np.zeros(50), 2049)[:-10]),
     "t10k-labels-idx1-ubyte.gz: 40 data bytes, header [50] says 50 (truncated or corrupt file)"),
    ("t10k-labels-idx1-ubyte.gz", _labels(50)[:-20], "t10k-labels-idx1-ubyte.gz: cannot be read as gzip"),
    ("t10k-labels-idx1-ubyte.gz", b"\x00" * 30, "t10k-labels-idx1-ubyte.gz: cannot be read as gzip"),
    ("t10k-labels-idx1-ubyte.gz", gzip.compress(b"\x00\x00"), "2 bytes, shorter than the 8-byte IDX header"),
    ("train-labels-idx1-ubyte.gz", _labels(199), "200 train images but 199 train labels"),
])
def test_corrupt_idx_file_exits_2_naming_the_file(fake_mnist, file, content, message, tmp_path):
  if content is None:
    (fake_mnist / file).unlink()
  else:
    (fake_mnist / file).write_bytes(content)
  status, lines = _main("--data_dir", str(fake_mnist), "--workdir", str(tmp_path / "run"))
  assert status == 2 and len(lines) == 1 and message in lines[0] and str(fake_mnist) in lines[0], lines


def test_fake_mnist_is_valid(fake_mnist, tmp_path):
  # The corrupt-file cases above start from these files: undamaged, they train.
  assert _main("--data_dir", str(fake_mnist), "--epochs", "1", "--workdir", str(tmp_path)) == (0, [])
  assert runs.read_jsonl(tmp_path / "metrics.jsonl")[0]["step"] == 2


def test_prepared_tfds_folder_is_named_as_such(tmp_path):
  version = tmp_path / "tfds" / "mnist" / "3.0.1"
  version.mkdir(parents=True)
  (version / "dataset_info.json").write_text("{}")
  (version / "mnist-train.tfrecord-00000-of-00001").write_bytes(b"")
  status, lines = _main("--data_dir", str(tmp_path / "tfds"), "--workdir", str(tmp_path / "run"))
  assert status == 2 and len(lines) == 1, lines
  assert f"{version}: a prepared TFDS dataset (tfrecords, version 3.0.1), not the raw mnist files" in lines[0]


def test_corrupt_file_in_a_real_process_is_one_line_without_traceback(fake_mnist, tmp_path):
  (fake_mnist / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
  status, out, err = _finish(_train("--data_dir", str(fake_mnist), "--workdir", str(tmp_path / "run")))
  assert status == 2 and err.count("\n") == 1 and "train-images-idx3-ubyte.gz: cannot be read as gzip" in err


# --- divergence ------------------------------------------------------------------------------------


def test_locate_divergence_follows_the_order_within_a_step():
  names = ["dense_0", "dense_1", "head"]
  steps = {"loss": np.array([1.0, 2.0, np.nan]), "forward_finite": np.ones((3, 3), bool),
           "final_params_finite": np.ones(3, bool)}
  assert train.locate_divergence(steps, names) == (2, "loss", "every layer's activations finite")
  steps["forward_finite"][1, 1:] = False
  assert train.locate_divergence(steps, names) == (1, "dense_1", "activations in the forward pass")
  steps["loss"][2] = 1.0
  steps["forward_finite"][1, 1:] = True
  steps["final_params_finite"][2] = False  # only the last update broke the head
  assert train.locate_divergence(steps, names) == (2, "head", "parameters after the update")
  steps["final_params_finite"][2] = True
  assert train.locate_divergence({k: v[:1] for k, v in steps.items()}, names) is None


def _poisoned(n_train=2001, batch=50, seed=0):
  """Synthetic data with one NaN image that the 2001 % 50 = 1 skipped example of epoch 1 is, but
  epoch 2's is not: a run that is healthy in epoch 1 and diverges in epoch 2 at a known step."""
  ds = data.synthetic(sizes=(n_train, 200))
  _, data_key, _ = jax.random.split(jax.random.key(seed), 3)  # as in train.fit
  order = [np.asarray(jax.random.permutation(jax.random.fold_in(data_key, e), n_train)) for e in (1, 2)]
  bad = int(order[0][-1])
  assert order[1][-1] != bad
  x = ds.train_x.copy()
  x[bad] = np.nan
  step = n_train // batch + int(np.flatnonzero(order[1] == bad)[0]) // batch + 1
  return dataclasses.replace(ds, train_x=x), step


def test_divergence_in_epoch_2_keeps_metrics_and_the_checkpoint_of_epoch_1(tmp_path):
  ds, expected_step = _poisoned()
  c = C.with_preset(None, dataset="synthetic", depth=2, width=(32,), epochs=3, batch_size=50, seed=0,
                    workdir=str(tmp_path))
  with pytest.raises(train.Diverged) as err:
    train.fit(c, ds, verbose=False)
  assert (err.value.epoch, err.value.step, err.value.layer) == (2, expected_step, "dense_0")
  assert str(err.value) == (f"training diverged in epoch 2 at step {expected_step}: dense_0 went non-finite first "
                            "(activations in the forward pass); metrics.jsonl keeps epochs 1-2, the newest "
                            "checkpoint is epoch 1")
  records = runs.read_jsonl(tmp_path / "metrics.jsonl")
  assert [r["epoch"] for r in records] == [1, 2] and records[1]["train_loss"] is None
  assert runs.checkpoint_epochs(tmp_path) == [1] and not (tmp_path / "summary.json").exists()
  with runs.Checkpoints(tmp_path, 3) as checkpoints:
    saved = checkpoints.restore(1)
  assert int(saved["epoch"]) == 1 and int(saved["state"]["step"]) == 40
  assert all(np.isfinite(a).all() for a in jax.tree.leaves(saved["state"]))


def test_diverging_process_exits_3_and_leaves_readable_files(tmp_path):
  # The lab's sigmoid / N(0, 1) network with an absurd learning rate: Adam's first step is ±lr.
  status, out, err = _finish(_train("--dataset", "synthetic", "--activation", "sigmoid", "--init", "normal",
                                    "--bias_init", "normal", "--lr", "1e38", "--epochs", "3",
                                    "--workdir", str(tmp_path)))
  assert status == 3 and err.count("\n") == 1, err
  assert "error: training diverged in epoch 1 at step 2: dense_0 went non-finite first (activations" in err
  assert json.loads((tmp_path / "config.json").read_text())["config"]["lr"] == 1e38
  assert [r["epoch"] for r in runs.read_jsonl(tmp_path / "metrics.jsonl")] == [1]
  assert runs.checkpoint_epochs(tmp_path) == []  # no non-finite state is checkpointed


# --- checkpoints, resume, the workdir guard (in process) ---------------------------------------------


@pytest.fixture(scope="module")
def small():
  return data.synthetic(sizes=(2000, 500))


def _config(workdir, **overrides):
  # Every kind of state: batch-norm statistics, momentum, dropout keys.
  values = dict(dataset="synthetic", depth=2, width=(32,), epochs=3, batch_size=50, dropout=0.2, batchnorm=True,
                optimizer="momentum", lr=0.01, seed=1, workdir=str(workdir), keep_checkpoints=2)
  return C.with_preset(None, **{**values, **overrides})


def _summary(workdir):
  return json.loads((workdir / "summary.json").read_text())


@pytest.fixture(scope="module")
def whole(small, tmp_path_factory):
  """An uninterrupted 3-epoch run of ``_config``."""
  return train.fit(_config(tmp_path_factory.mktemp("whole")), small, verbose=False)


def test_resume_after_a_crash_equals_an_uninterrupted_run(small, whole, tmp_path):
  assert runs.checkpoint_epochs(whole) == [2, 3]  # --keep_checkpoints 2
  # A crash while epoch 3 was being written: its checkpoint and summary lost, a half line in the log.
  run = train.fit(_config(tmp_path / "run"), small, verbose=False)
  with runs.Checkpoints(run, 2) as checkpoints:
    checkpoints.restore(2)  # readable
  import shutil

  shutil.rmtree(run / "checkpoints" / "3")
  (run / "summary.json").unlink()
  with open(run / "metrics.jsonl", "a") as f:
    f.write('{"epoch": 4, "train')
  assert "unfinished run with this config (checkpoint of epoch 2 of 3)" in _refusal(_config(run), small)
  train.fit(_config(run, resume=True), small, verbose=False)
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  assert _summary(run)["params_sha256"] == _summary(whole)["params_sha256"]
  assert _summary(run)["resumed_from_epoch"] == 2
  assert json.loads((run / "config.json").read_text())["resumed"][0]["from_epoch"] == 2


def test_resume_with_more_epochs_extends_the_run_exactly(small, whole, tmp_path):
  run = train.fit(_config(tmp_path / "run", epochs=1), small, verbose=False)
  train.fit(_config(run, epochs=3, resume=True), small, verbose=False)
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  assert _summary(run)["params_sha256"] == _summary(whole)["params_sha256"]


def _refusal(config, dataset) -> str:
  with pytest.raises(C.ConfigError) as err:
    train.fit(config, dataset, verbose=False)
  assert "\n" not in str(err.value)
  return str(err.value)


def test_workdir_guard(small, tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  (run / "notes.txt").write_text("mine")  # not the run's: never deleted
  train.fit(_config(run, epochs=2), small, verbose=False)
  before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
  assert "holds a run with another config (--lr 0.1 (run: 0.01)); pass --resume" in _refusal(
      _config(run, epochs=2, lr=0.1), small)
  assert "holds a finished run with this config (2 epochs); pass --overwrite" in _refusal(
      _config(run, epochs=2), small)
  assert "--resume: the run in" in _refusal(_config(run, epochs=2, lr=0.1, resume=True), small)
  assert "--epochs 1 is fewer than the 2 epochs" in _refusal(_config(run, epochs=1, resume=True), small)
  train.fit(_config(run, epochs=2, resume=True), small, verbose=False)  # finished: nothing to do
  assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}, "refusals must not write"
  train.fit(_config(run, epochs=2, lr=0.1, overwrite=True), small, verbose=False)
  assert json.loads((run / "config.json").read_text())["config"]["lr"] == 0.1
  assert (run / "metrics.jsonl").read_bytes() != before[run / "metrics.jsonl"]
  assert (run / "notes.txt").read_text() == "mine"
  # --resume where there is nothing to resume starts the run.
  train.fit(_config(tmp_path / "new", epochs=1, resume=True), small, verbose=False)
  assert [r["epoch"] for r in runs.read_jsonl(tmp_path / "new" / "metrics.jsonl")] == [1]


def test_resume_flags_take_the_runs_own_config(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"config": _config(tmp_path, lr=0.05).to_json()}))

  def parse(*flags):
    return C.from_args(C.parser("t").parse_args([*flags, "--workdir", str(tmp_path), "--resume"]))

  c = parse()
  assert c.lr == 0.05 and c.batchnorm and c.resume and c.width == (32,)
  assert parse("--lr", "0.05", "--epochs", "9").epochs == 9
  with pytest.raises(C.ConfigError, match=r"these flags differ from it: --lr 0.1 \(run: 0.05\)"):
    parse("--lr", "0.1")


def test_truncate_logs_drops_later_epochs_and_a_partial_line(tmp_path):
  log = tmp_path / "metrics.jsonl"
  for record in ({"init": 1}, {"epoch": 1}, {"epoch": 2}, {"epoch": 2, "layer": "head"}, {"epoch": 3}):
    runs.append_jsonl(log, record)
  with open(log, "a") as f:
    f.write('{"epoch": 4, "lo')
  runs.truncate_logs(tmp_path, 2)
  assert runs.read_jsonl(log) == [{"init": 1}, {"epoch": 1}, {"epoch": 2}, {"epoch": 2, "layer": "head"}]
  assert log.read_bytes().endswith(b"}\n")
  runs.truncate_logs(tmp_path, 0)
  assert not log.exists()


# --- killed processes --------------------------------------------------------------------------------

KILL_RUN = [*TINY, "--width", "128", "--epochs", "6", "--dropout", "0.1"]


def _lines(path):
  return len(path.read_bytes().splitlines()) if path.exists() else 0


def _kill_when(process, metrics, lines, delay=0.0, timeout=120):
  """SIGKILL ``process`` ``delay`` seconds after metrics.jsonl reaches ``lines`` lines."""
  deadline = time.monotonic() + timeout
  while _lines(metrics) < lines and process.poll() is None and time.monotonic() < deadline:
    time.sleep(0.01)
  time.sleep(delay)
  assert process.poll() is None, f"the run ended before it could be killed: {process.communicate()}"
  process.send_signal(signal.SIGKILL)
  process.wait()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  status, _, err = _finish(_train(*KILL_RUN, "--workdir", str(workdir)))
  assert status == 0, err
  return workdir


def _assert_identical(run, reference):
  assert (run / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
  assert _summary(run)["params_sha256"] == _summary(reference)["params_sha256"]
  with runs.Checkpoints(run, 3) as a, runs.Checkpoints(reference, 3) as b:
    final_a, final_b = a.restore(6), b.restore(6)
  for x, y in zip(jax.tree.leaves(final_a), jax.tree.leaves(final_b), strict=True):
    np.testing.assert_array_equal(x, y)


def test_two_identical_processes_write_byte_identical_metrics(uninterrupted, tmp_path):
  status, _, err = _finish(_train(*KILL_RUN, "--workdir", str(tmp_path)))
  assert status == 0, err
  _assert_identical(tmp_path, uninterrupted)


def test_killed_after_epoch_1_and_resumed_equals_uninterrupted(uninterrupted, tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  _kill_when(_train(*KILL_RUN, "--workdir", str(tmp_path)), metrics, 1)
  status, out, err = _finish(_train(*KILL_RUN, "--workdir", str(tmp_path)))
  assert status == 2 and "holds an unfinished run with this config" in err and "pass --resume" in err
  status, out, err = _finish(_train("--workdir", str(tmp_path), "--resume"))  # the run's own config
  assert status == 0, err
  assert "resuming after epoch" in out
  _assert_identical(tmp_path, uninterrupted)


def test_killed_at_random_moments_and_resumed_equals_uninterrupted(uninterrupted, tmp_path):
  seed = random.randrange(2**32)
  rng = random.Random(seed)
  metrics = tmp_path / "metrics.jsonl"
  for attempt in range(3):
    process = _train(*KILL_RUN, "--workdir", str(tmp_path), *(["--resume"] if attempt else []))
    # Somewhere from start-up to mid-way through the run: compiling, training, writing, checkpointing.
    _kill_when(process, metrics, min(_lines(metrics) + rng.randint(0, 2), 5), delay=rng.uniform(0, 0.3))
  status, _, err = _finish(_train(*KILL_RUN, "--workdir", str(tmp_path), "--resume"))
  assert status == 0, f"seed {seed}: {err}"
  _assert_identical(tmp_path, uninterrupted)
