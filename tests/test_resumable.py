"""lab10.experiments.resumable: runs trained to early stopping in pieces, resumed from their checkpoints, reused
from their records, and shared between processes."""

import dataclasses
import fcntl
import json
import math
import os

import pytest

from lab10 import data, train
from lab10.experiments import resumable
from lab10.experiments.common import mlp_config

SETTING = {"what": "tiny"}


@pytest.fixture(scope="module")
def tiny(mnist_dir):
  ds = data.load("mnist", mnist_dir, val_size=300)
  return dataclasses.replace(ds, train_x=ds.train_x[:200], train_y=ds.train_y[:200], test_x=ds.test_x[:300],
                             test_y=ds.test_y[:300])


def _config(tmp_path, lr=0.05, seed=0):
  return mlp_config(depth=1, width=(16,), optimizer="sgd", lr=lr, batch_size=20, val_size=300, seed=seed,
                    keep_checkpoints=1, workdir=str(tmp_path / "work" / "run"))


def test_best_epoch_and_stopping_rule():
  epochs = [{"epoch": e, "val_error": v} for e, v in enumerate([9.0, 5.0, 6.0, 5.0, 7.0], 1)]
  assert resumable.best_epoch(epochs)["epoch"] == 2  # the first of ties
  assert resumable._stop(epochs, resumable.Stopping(patience=3, max_epochs=10)) == "early stopping"
  assert resumable._stop(epochs, resumable.Stopping(patience=4, max_epochs=10)) is None
  assert resumable._stop(epochs, resumable.Stopping(patience=4, max_epochs=5)) == "epoch cap"
  assert resumable._stop([], resumable.Stopping(patience=1, max_epochs=1)) is None


def test_a_run_stops_early_keeps_its_record_and_is_reused(tiny, tmp_path, monkeypatch):
  stopping = resumable.Stopping(patience=2, max_epochs=6)
  record = resumable.train_run(_config(tmp_path), tiny, "run", tmp_path / "records", SETTING, stopping)
  metrics = [json.loads(line) for line in (tmp_path / "work" / "run" / "metrics.jsonl").read_text().splitlines()]
  assert [e["epoch"] for e in record["epochs"]] == [m["epoch"] for m in metrics] == list(range(1, len(metrics) + 1))
  assert record["epochs"][0]["val_error"] == pytest.approx(100 * (1 - metrics[0]["val_accuracy"]))
  assert record["epochs"][-1]["test_error"] == pytest.approx(100 * (1 - metrics[-1]["test_accuracy"]))
  best = min(record["epochs"], key=lambda e: (e["val_error"], e["epoch"]))
  assert record["best_epoch"] == best["epoch"]
  if record["stop"] == "early stopping":
    assert len(metrics) - best["epoch"] == 2
  else:
    assert record["stop"] == "epoch cap" and len(metrics) == 6
  assert json.loads((tmp_path / "records" / "run.json").read_text())["stop"] == record["stop"]
  assert not (tmp_path / "work" / "run" / "checkpoints").exists()  # a finished run keeps its record, not its weights
  assert set(record["machine"]["packages"]) == {"jax", "flax", "optax"}
  monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("a finished run was trained again"))
  assert resumable.train_run(_config(tmp_path), tiny, "run", tmp_path / "records", SETTING, stopping) == record
  # Another setting's record is not reused.
  assert resumable.read(tmp_path / "records", "run", {"what": "else"}) is None


def test_a_stopped_run_continues_from_its_checkpoint(tiny, tmp_path):
  stopping = resumable.Stopping(patience=50, max_epochs=4)
  records = tmp_path / "records"
  first = resumable.train_run(_config(tmp_path), tiny, "run", records, SETTING, stopping, deadline=-math.inf)
  assert first["stop"] is None and first["epochs"] == []  # past its deadline: nothing trained, record unfinished
  real_fit = train.fit

  def killed(c, ds, **kw):  # trains 2 epochs of the piece, then the process is stopped
    real_fit(dataclasses.replace(c, epochs=2), ds, **kw)
    raise KeyboardInterrupt

  stopping_short = resumable.Stopping(patience=2, max_epochs=4)
  with pytest.MonkeyPatch.context() as m, pytest.raises(KeyboardInterrupt):
    m.setattr(train, "fit", killed)
    resumable.train_run(_config(tmp_path), tiny, "run", records, SETTING, stopping_short)
  metrics = (tmp_path / "work" / "run" / "metrics.jsonl").read_text().splitlines()
  piece = resumable._epochs([json.loads(line) for line in metrics])
  assert len(piece) == 2
  done = resumable.train_run(_config(tmp_path), tiny, "run", records, SETTING, stopping_short)
  assert done["stop"] in resumable.FINISHED and done["epochs"][:2] == piece  # resumed, not restarted
  uninterrupted = resumable.train_run(_config(tmp_path / "again"), tiny, "run", tmp_path / "again" / "records",
                                      SETTING, stopping_short)
  assert [e["val_error"] for e in uninterrupted["epochs"]] == [e["val_error"] for e in done["epochs"]]


def test_a_run_another_process_holds_is_passed_by(tiny, tmp_path):
  c = _config(tmp_path)
  claim = tmp_path / "work" / "run.claim"
  claim.parent.mkdir(parents=True)
  fd = os.open(claim, os.O_RDWR | os.O_CREAT)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)  # (a lock of another open file: as another process's)
    stopping = resumable.Stopping(patience=1, max_epochs=1)
    assert resumable.train_run(c, tiny, "run", tmp_path / "records", SETTING, stopping) is None
  finally:
    os.close(fd)
  assert not (tmp_path / "records" / "run.json").exists()


def test_a_record_made_elsewhere_whose_run_starts_again_counts_only_the_new_time(tiny, tmp_path):
  elsewhere = {"name": "run", "setting": SETTING, "stop": None, "wall_time_s": 1e6, "machine": {},
               "epochs": [{"epoch": e, "val_error": 50.0, "test_error": 50.0, "train_error": 50.0, "train_loss": 1.0}
                          for e in (1, 2, 3)]}
  (tmp_path / "records").mkdir()
  (tmp_path / "records" / "run.json").write_text(json.dumps(elsewhere))
  record = resumable.train_run(_config(tmp_path), tiny, "run", tmp_path / "records", SETTING,
                               resumable.Stopping(patience=1, max_epochs=1))
  assert record["stop"] == "epoch cap" and len(record["epochs"]) == 1  # trained again from epoch 1, here
  assert record["wall_time_s"] < 600


def _probed(tmp_path, tiny, name="probed", **kw):
  """A 3-epoch probed run of the tiny net: the mean and std of its logits on 50 test images every 5 steps, the
  logits' sum at the end."""
  import jax.numpy as jnp

  x = jnp.asarray(tiny.test_x[:50])
  probe = lambda model: {"mean": jnp.mean(model(x, train=False)), "std": jnp.std(model(x, train=False))}
  final = lambda model: {"sum": jnp.sum(model(x, train=False), axis=0)}
  c = dataclasses.replace(_config(tmp_path), workdir=str(tmp_path / "work" / name))
  return resumable.train_probed_run(c, tiny, name, tmp_path / "records", SETTING, epochs=3, every=5, probe=probe,
                                    final=final, **kw)


def test_a_probed_run_probes_every_n_steps_and_finishes_with_its_final_measurements(tiny, tmp_path, monkeypatch):
  import numpy as np
  from flax import nnx

  record = _probed(tmp_path, tiny)
  assert record["stop"] == "finished" and record["epochs_done"] == 3
  assert record["steps"] == list(range(0, 31, 5))  # 10 steps per epoch (200 images, batch 20): probes at 0, 5, ...
  assert len(record["probes"]) == len(record["train_loss"]) == 7 and record["train_loss"][0] is None
  # The first probe is the initial net's, as a float64 NumPy computation of it gives it.
  c = _config(tmp_path)
  s = train.setup(c, tiny.input_shape, tiny.num_classes)
  logits = np.asarray(nnx.merge(s.graphdef, s.state.params, s.state.rest)(tiny.test_x[:50], train=False), np.float64)
  assert record["probes"][0]["mean"] == pytest.approx(logits.mean(), rel=1e-5)
  assert record["probes"][0]["std"] == pytest.approx(logits.std(), rel=1e-5)
  assert record["probes"][-1] != record["probes"][0] and len(record["final"]["sum"]) == 10
  assert 0 <= record["test_error"] <= 100
  assert not (tmp_path / "work" / "probed" / "checkpoints").exists()  # finished: the record is what is kept
  assert json.loads((tmp_path / "records" / "probed.json").read_text()) == json.loads(json.dumps(record))
  monkeypatch.setattr(train, "loop", lambda *a, **k: pytest.fail("a finished run was trained again"))
  assert _probed(tmp_path, tiny) == record


def test_a_stopped_probed_run_continues_from_its_checkpoint_as_if_never_stopped(tiny, tmp_path):
  piece = _probed(tmp_path, tiny, deadline=-math.inf)  # stops after its first epoch
  assert piece["stop"] is None and piece["epochs_done"] == 1 and piece["steps"] == [0, 5, 10]
  assert (tmp_path / "work" / "probed" / "checkpoints" / "1").exists()
  real_loop = train.loop
  resumed_from = []

  def loop(*a, epochs, **k):
    resumed_from.append(epochs.start)
    return real_loop(*a, epochs=epochs, **k)

  with pytest.MonkeyPatch.context() as m:
    m.setattr(train, "loop", loop)
    done = _probed(tmp_path, tiny)
  assert resumed_from == [2]  # continued after epoch 1, not started again
  uninterrupted = _probed(tmp_path / "again", tiny)
  for key in ("steps", "probes", "train_loss", "final", "test_error"):
    assert done[key] == uninterrupted[key], key


def test_a_probed_record_without_its_checkpoint_starts_again(tiny, tmp_path):
  import shutil

  piece = _probed(tmp_path, tiny, deadline=-math.inf)
  shutil.rmtree(tmp_path / "work")  # (the record was made elsewhere: its checkpoints are not here)
  (tmp_path / "records" / "probed.json").write_text(json.dumps({**piece, "wall_time_s": 1e6}))
  done = _probed(tmp_path, tiny)
  assert done["stop"] == "finished" and done["steps"] == list(range(0, 31, 5)) and done["wall_time_s"] < 600
  assert done["probes"] == _probed(tmp_path / "again", tiny)["probes"]


def test_a_diverging_probed_run_stops_with_what_it_had(tiny, tmp_path):
  c = dataclasses.replace(_config(tmp_path, lr=1e30), workdir=str(tmp_path / "work" / "big"))
  record = resumable.train_probed_run(c, tiny, "big", tmp_path / "records", SETTING, epochs=3, every=5,
                                      probe=lambda model: {})
  assert record["stop"] == "diverged" and record["test_error"] is None
  assert json.loads((tmp_path / "records" / "big.json").read_text())["stop"] == "diverged"
  with pytest.raises(ValueError, match="every=3 does not divide an epoch of 10 steps"):
    resumable.train_probed_run(c, tiny, "odd", tmp_path / "records", SETTING, epochs=1, every=3,
                               probe=lambda model: {})
