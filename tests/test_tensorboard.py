"""lab10.tensorboard: --tensorboard writes every metrics.jsonl and stats.jsonl number at its step and every
activation histogram, once per step even across a resumption; a run directory converts to the same events."""

import shutil

import numpy as np
import pytest

import tb_events
from lab10 import config as C
from lab10 import data, runs, tensorboard, train, workdir


@pytest.fixture(scope="module")
def dataset():
  return data.synthetic(sizes=(600, 200))


def _config(path, **overrides):
  settings = dict(dataset="synthetic", depth=2, width=(16,), activation="tanh", batch_size=50, epochs=2,
                  log_stats_every=4, log_histograms=True, tensorboard=True, workdir=str(path))
  return C.with_preset(None, **{**settings, **overrides})


def _check_events_equal_the_files(run_dir, folder):
  scalars, histograms = tb_events.read(folder)
  metrics, stats = runs.read_jsonl(run_dir / workdir.METRICS), runs.read_jsonl(run_dir / workdir.STATS)
  expected = tb_events.expected_scalars(metrics, stats)
  assert "metrics/test_accuracy" in expected and "backward/dense_1/grad_var" in expected
  assert {tag: sorted(v) for tag, v in scalars.items()} == expected  # every key, every step, once
  with np.load(run_dir / workdir.HISTOGRAMS) as saved:
    assert set(histograms) == {f"activations/dense_{i}" for i in (0, 1)} | {
        f"{kind}/{layer}" for kind in ("weights", "grads") for layer in ("dense_0", "dense_1", "head")}
    for tag, events in histograms.items():
      assert [step for step, _ in events] == saved["step"].tolist()
      for (_, h), counts, edges in zip(events, saved[f"{tag}/counts"], saved[f"{tag}/edges"], strict=True):
        assert list(h.bucket) == counts.tolist() and h.num == counts.sum()
        assert h.min == edges[0] and list(h.bucket_limit) == edges[1:].tolist()


@pytest.fixture(scope="module")
def run_dir(dataset, tmp_path_factory):
  """A finished run of 2 epochs with --tensorboard (not to be changed: copy it)."""
  path = tmp_path_factory.mktemp("tensorboard") / "run"
  train.fit(_config(path), dataset, verbose=False)
  return path


def test_events_hold_every_record_once_across_resumption(dataset, run_dir, tmp_path):
  assert len(runs.read_jsonl(run_dir / workdir.STATS)) == 2 * 3  # 12 steps an epoch, logged at 0, 4, 8
  _check_events_equal_the_files(run_dir, run_dir / "tensorboard")
  # Killed after epoch 2's records, before its checkpoint: the resumed run logs epoch 2 again, then epoch 3.
  path = shutil.copytree(run_dir, tmp_path / "run")
  shutil.rmtree(path / workdir.CHECKPOINTS / "2")
  (path / workdir.SUMMARY).unlink()
  train.fit(_config(path, epochs=3, resume=True), dataset, verbose=False)
  assert [r["epoch"] for r in runs.read_jsonl(path / workdir.METRICS)] == [1, 2, 3]
  assert len(list((path / "tensorboard").glob("events.out.tfevents.*"))) == 1  # rewritten from the logs
  _check_events_equal_the_files(path, path / "tensorboard")


def test_convert_writes_what_tensorboard_would_have_written(run_dir, tmp_path):
  assert tensorboard.convert(run_dir, tmp_path / "events") == tmp_path / "events"
  _check_events_equal_the_files(run_dir, tmp_path / "events")
  assert tb_events.read(tmp_path / "events") == tb_events.read(run_dir / "tensorboard")
  with pytest.raises(C.ConfigError, match="already holds TensorBoard event files"):
    tensorboard.convert(run_dir)


class _FullDisk:
  """An event file on a full disk: its writes are buffered, its flush fails with ENOSPC."""

  def __init__(self, path):
    self.name = path

  def write(self, data):
    return len(data)

  def flush(self):
    import errno
    import os

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  def close(self):
    self.flush()


def test_a_full_disk_stops_the_writer_at_once_with_a_write_error_naming_the_file(run_dir, tmp_path, monkeypatch):
  import tensorboardX.record_writer

  monkeypatch.setattr(tensorboardX.record_writer, "open_file", _FullDisk)
  record, stats = tensorboard.logged(run_dir)[0]
  writer = tensorboard.Writer(run_dir, tmp_path / "tb")
  with pytest.raises(runs.WriteError, match=r"cannot write .*tb/events\.out\.tfevents\..*No space left on device"):
    writer(record, stats)  # the epoch's flush: on this thread, so it fails here instead of blocking a writer thread
  with pytest.raises(runs.WriteError):
    writer.close()


def test_a_full_disk_during_a_run_with_tensorboard_exits_4_in_one_line(tmp_path, monkeypatch):
  import tensorboardX.record_writer

  import cli

  monkeypatch.setattr(tensorboardX.record_writer, "open_file", _FullDisk)
  status, lines = cli.main("train", "--dataset", "synthetic", "--depth", "1", "--width", "8", "--epochs", "1",
                           "--tensorboard", "--workdir", str(tmp_path / "run"))
  assert status == 4 and len(lines) == 1 and "No space left on device" in lines[0] and "tfevents" in lines[0], lines
  assert runs.read_jsonl(tmp_path / "run" / workdir.METRICS)  # the epoch's records were written before its events
