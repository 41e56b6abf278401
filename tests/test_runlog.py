"""lab10.runlog: each epoch's records, and the Log of one fit (a new run, a resumed one, a refused one)."""

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
          "histograms": {"dense_0": np.array([[1, 3], [2, 2]])}}


SCORES = {"test": {"loss": 1.0, "accuracy": 0.25}}


def test_log_writes_a_new_run_and_resumes_it_in_step_with_its_checkpoint(tmp_path):
  state, key = {"w": jnp.arange(3.0)}, jax.random.key(4)
  edges = np.array([-1.0, 0.0, 1.0], np.float32)
  with checkpoints_lib.Checkpoints(tmp_path / workdir.CHECKPOINTS, 3) as checkpoints:
    log = runlog.Log(tmp_path, "new", checkpoints, edges)
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
    assert saved["dense_0"].shape == (6, 2) and saved["edges"].tolist() == [-1.0, 0.0, 1.0]

  with checkpoints_lib.Checkpoints(tmp_path / workdir.CHECKPOINTS, 3) as checkpoints:
    log = runlog.Log(tmp_path, "resume", checkpoints, edges)
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
