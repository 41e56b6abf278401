"""lab10.runlog: each epoch's records, and the Log of one fit (a new run, a resumed one, a refused one)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lab10 import checkpoints as checkpoints_lib
from lab10 import runlog, runs, workdir


def test_epoch_and_stats_records_carry_the_global_step():
  steps = {"loss": np.array([2.0, 1.0, 0.5, 0.25, 0.125]), "accuracy": np.array([0.0, 0.5, 0.5, 1.0, 1.0]),
           "logged_index": np.array([0, 3]), "stats": {"grads/head/norm": np.array([7.0, 9.0], np.float32)}}
  scores = {"test": {"loss": np.float32(0.75), "accuracy": np.float32(0.5)}}
  assert runlog.epoch_record(2, 10, steps, scores) == {
      "epoch": 2, "step": 10, "train_loss": 0.775, "train_accuracy": 0.6, "test_loss": 0.75, "test_accuracy": 0.5}
  # The epoch's logged steps 0 and 3, after the 5 steps of epoch 1: global steps 5 and 8.
  assert runlog.stats_records(2, 5, steps) == [{"epoch": 2, "step": 5, "loss": 2.0, "grads/head/norm": 7.0},
                                                {"epoch": 2, "step": 8, "loss": 0.25, "grads/head/norm": 9.0}]


def _epoch_steps(first_loss: float) -> dict:
  """Per-step metrics of a 4-step epoch with steps 0 and 2 logged, as ``train.make_epoch`` returns them."""
  return {"loss": np.array([first_loss, 1.0, 0.5, 0.5]), "accuracy": np.full(4, 0.5),
          "logged_index": np.array([0, 2]), "stats": {"forward/dense_0/act_var": np.array([1.0, 2.0])},
          "histograms": {"activations/dense_0": {"edges": np.array([[-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]], np.float32),
                                                 "counts": np.array([[1, 3], [2, 2]])}}}


SCORES = {"test": {"loss": 1.0, "accuracy": 0.25}}


def test_log_writes_a_new_run_and_resumes_it_in_step_with_its_checkpoint(tmp_path):
  state, key = {"w": jnp.arange(3.0)}, jax.random.key(4)
  with checkpoints_lib.Checkpoints(tmp_path / workdir.CHECKPOINTS, 3) as checkpoints:
    log = runlog.Log(tmp_path, "new", checkpoints, histograms=True)
    restored, restored_key = log.restore(state, key)
    assert restored is state and restored_key is key and log.epoch == 0
    log.write_config({"config": {"lr": 1}, "environment": {"host": "first"}})
    for epoch in (1, 2):
      log.write_epoch(epoch, 4 * epoch, _epoch_steps(float(epoch)), SCORES)
      checkpoints.save(epoch, runlog.checkpoint({"w": state["w"] + epoch}, key, epoch))
    log.write_epoch(3, 12, _epoch_steps(3.0), SCORES)  # killed before epoch 3's checkpoint
    checkpoints.wait()
  assert [r["step"] for r in runs.read_jsonl(tmp_path / workdir.STATS)] == [0, 2, 4, 6, 8, 10]
  with np.load(tmp_path / workdir.HISTOGRAMS) as saved:
    assert saved["step"].tolist() == [0, 2, 4, 6, 8, 10] and saved["epoch"].tolist() == [1, 1, 2, 2, 3, 3]
    assert saved["activations/dense_0/counts"].shape == (6, 2) and saved["activations/dense_0/edges"].shape == (6, 3)
    assert saved["activations/dense_0/edges"][3].tolist() == [0.0, 1.0, 2.0]

  with checkpoints_lib.Checkpoints(tmp_path / workdir.CHECKPOINTS, 3) as checkpoints:
    log = runlog.Log(tmp_path, "resume", checkpoints, histograms=True)
    restored, restored_key = log.restore(state, jax.random.key(0))
    assert log.epoch == 2 and restored["w"].tolist() == [2.0, 3.0, 4.0]
    assert np.array_equal(jax.random.key_data(restored_key), jax.random.key_data(key))
    assert [r["epoch"] for r in log.records] == [1, 2]  # epoch 3's lines are cut: it is trained again
    assert [r["epoch"] for r in runs.read_jsonl(tmp_path / workdir.STATS)] == [1, 1, 2, 2]
    log.write_config({"config": {"lr": 1}, "environment": {"host": "second"}})
    record, stats = log.write_epoch(3, 12, _epoch_steps(3.0), SCORES)
    log.write_summary({"wall_time_s": 1.5})
  config = json.loads((tmp_path / workdir.CONFIG).read_text())
  assert config["environment"] == {"host": "first"}
  assert config["resumed"] == [{"from_epoch": 2, "environment": {"host": "second"}}]
  assert record == {"epoch": 3, "step": 12, "train_loss": 1.25, "train_accuracy": 0.5, "test_loss": 1.0,
                    "test_accuracy": 0.25}
  assert [r["epoch"] for r in runs.read_jsonl(tmp_path / workdir.METRICS)] == [1, 2, 3]
  assert stats == [r for r in runs.read_jsonl(tmp_path / workdir.STATS) if r["epoch"] == 3] and len(stats) == 2
  with np.load(tmp_path / workdir.HISTOGRAMS) as saved:
    assert saved["step"].tolist() == [0, 2, 4, 6, 8, 10] and saved["epoch"].tolist() == [1, 1, 2, 2, 3, 3]
  assert json.loads((tmp_path / workdir.SUMMARY).read_text()) == {**record, "wall_time_s": 1.5}


def test_log_refuses_to_resume_when_the_metrics_miss_an_epoch(tmp_path):
  with checkpoints_lib.Checkpoints(tmp_path / workdir.CHECKPOINTS, 3) as checkpoints:
    checkpoints.save(2, runlog.checkpoint({"w": jnp.zeros(2)}, jax.random.key(0), 2))
    checkpoints.wait()
    runs.append_jsonl(tmp_path / workdir.METRICS, {"epoch": 1})
    log = runlog.Log(tmp_path, "resume", checkpoints, None)
    with pytest.raises(runs.RunError, match=r"metrics.jsonl holds epochs \[1\], but the checkpoint resumed from is "
                                            r"epoch 2; cannot resume without losing records"):
      log.restore({"w": jnp.ones(2)}, jax.random.key(0))


# (what is done to a finished 2-epoch run's logs, what the one error says when it is resumed to 3 epochs)
LOST_STATISTICS = [
    (lambda run: (run / "stats.jsonl").unlink(), "stats.jsonl holds 0 of the 4 logged steps of epochs 1-2"),
    (lambda run: (run / "stats.jsonl").write_text("".join((run / "stats.jsonl").read_text().splitlines(True)[:-1])
                                                  + '{"epoch": 2, "st'),
     "stats.jsonl holds 3 of the 4 logged steps of epochs 1-2 (missing steps [15]"),
    (lambda run: (run / "stats.jsonl").write_text("".join(
        line for i, line in enumerate((run / "stats.jsonl").read_text().splitlines(True)) if i != 1)),
     "stats.jsonl holds 3 of the 4 logged steps of epochs 1-2 (missing steps [5]"),
    (lambda run: (run / "stats_histograms.npz").unlink(), "stats_histograms.npz holds 0 of the 4 logged steps"),
]


@pytest.mark.parametrize("damage,message", LOST_STATISTICS, ids=["deleted", "cut", "record removed", "no histograms"])
def test_resume_refuses_to_go_on_over_lost_statistics(damage, message, tmp_path):
  from lab10 import config as C
  from lab10 import data, runs, train

  ds = data.synthetic(sizes=(200, 50))
  c = C.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=2, batch_size=20, log_stats_every=5,
                    log_histograms=True, workdir=str(tmp_path / "run"))
  train.fit(c, ds, verbose=False)
  damage(tmp_path / "run")
  import re

  with pytest.raises(runs.RunError, match=re.escape(f"{tmp_path / 'run'}/{message}")):
    train.fit(dataclasses.replace(c, epochs=3, resume=True), ds, verbose=False)
  assert [r["epoch"] for r in runs.read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [1, 2]  # nothing trained


def test_a_finished_run_with_lost_records_is_not_reported_finished(tmp_path):
  from lab10 import config as C
  from lab10 import data, train

  ds = data.synthetic(sizes=(200, 50))
  c = C.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=2, batch_size=20, workdir=str(tmp_path))
  train.fit(c, ds, verbose=False)
  metrics = tmp_path / "metrics.jsonl"
  metrics.write_text(metrics.read_text().splitlines(True)[0])
  with pytest.raises(C.ConfigError, match="has lost records: .*metrics.jsonl does not hold epochs 1-2 whole"):
    train.fit(dataclasses.replace(c, resume=True), ds, verbose=False)


def test_an_empty_newest_checkpoint_folder_falls_back_to_the_newest_intact_one(tmp_path, capsys):
  import shutil

  from lab10 import config as C
  from lab10 import data, train

  ds = data.synthetic(sizes=(200, 50))
  c = C.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=3, batch_size=20, workdir=str(tmp_path))
  whole = train.fit(c, ds, verbose=False).records
  shutil.rmtree(tmp_path / "checkpoints" / "3")
  (tmp_path / "checkpoints" / "3").mkdir()  # as a kill between orbax's mkdir and its first file leaves it
  (tmp_path / "summary.json").unlink()
  resumed = train.fit(dataclasses.replace(c, resume=True), ds, verbose=False).records
  assert "resuming from the checkpoint of epoch 2 instead" in capsys.readouterr().err
  assert resumed == whole  # epoch 3 trained again from checkpoint 2: the same numbers
  assert (tmp_path / "checkpoints.damaged" / "3").is_dir()
