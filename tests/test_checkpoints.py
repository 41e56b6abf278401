"""lab10.checkpoints: a checkpoint round trip, its digest, and refusing damaged or foreign checkpoints."""

import json
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lab10 import checkpoints as checkpoints_lib
from lab10 import runs, step


def _state():
  params = {"dense": {"kernel": jnp.arange(6.0).reshape(2, 3), "bias": jnp.zeros(3)}}
  tx = optax.adam(1e-3)
  return step.TrainState(params, {}, tx.init(params), jnp.asarray(3, jnp.int32), jax.random.key(9))


def test_to_tree_names_every_leaf_by_its_path_and_from_tree_inverts_it():
  state = _state()
  tree = checkpoints_lib.to_tree(state)
  assert tree["params"]["dense"]["kernel"].tolist() == [[0, 1, 2], [3, 4, 5]]
  assert tree["step"] == 3 and tree["dropout_key"].dtype == np.uint32  # a key's raw data
  back = checkpoints_lib.from_tree(tree, state)
  assert jax.tree.structure(back) == jax.tree.structure(state)
  np.testing.assert_array_equal(jax.random.key_data(back.dropout_key), jax.random.key_data(state.dropout_key))
  for a, b in zip(jax.tree.leaves(back.opt_state), jax.tree.leaves(state.opt_state), strict=True):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


def test_checkpoints_round_trip_keep_the_newest_with_their_digests(tmp_path):
  state = _state()
  folder = tmp_path / "checkpoints"
  with checkpoints_lib.Checkpoints(folder, keep=2, stamp={"config_sha256": "abc"}) as checkpoints:
    assert checkpoints.latest() is None
    for epoch in (1, 2, 3):
      saved_state = state._replace(step=jnp.asarray(epoch, jnp.int32))
      checkpoints.save(epoch, {"state": saved_state, "epoch": jnp.asarray(epoch)})
    checkpoints.wait()
    assert checkpoints.latest() == 3 and checkpoints.epochs() == [2, 3]
    restored = checkpoints.restore(2, {"state": state, "epoch": jnp.asarray(0)})
    saved = checkpoints.restore(3)  # as saved: nested dicts of arrays
  assert sorted(p.name for p in folder.iterdir()) == ["2", "2.sha256.json", "3", "3.sha256.json"]
  digest = json.loads((folder / "3.sha256.json").read_text())
  assert digest["config_sha256"] == "abc"
  assert digest["arrays"]["state/params/dense/kernel"].startswith("float32[2, 3] ")
  assert int(restored["state"].step) == 2 and int(restored["epoch"]) == 2
  assert jax.dtypes.issubdtype(restored["state"].dropout_key.dtype, jax.dtypes.prng_key)
  assert runs.tree_sha256(restored["state"].params) == runs.tree_sha256(state.params)
  assert int(saved["state"]["step"]) == 3 and saved["state"]["params"]["dense"]["kernel"].shape == (2, 3)


def _flip_bit(path, byte):
  data = bytearray(path.read_bytes())
  data[byte] ^= 1
  path.write_bytes(bytes(data))


def _model(width):
  params = {"dense": {"kernel": jnp.asarray(np.random.default_rng(0).normal(size=(64, width)), jnp.float32)}}
  return step.TrainState(params, {}, optax.sgd(1e-3).init(params), jnp.asarray(0, jnp.int32), jax.random.key(0))


def _largest_file(folder):
  return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


# Each case damages a copy of one saved checkpoint (a fresh path: tensorstore caches what it read by path).
DAMAGE = [(f"bit {at:.2f}", lambda c, at=at: _flip_bit(f := _largest_file(c), int(at * f.stat().st_size)))
          for at in (0.01, 0.3, 0.6, 0.9)] + [
    ("truncated", lambda c: (f := _largest_file(c)).write_bytes(f.read_bytes()[: f.stat().st_size // 2])),
    ("no digest", lambda c: (c.parent / "1.sha256.json").unlink()),
    ("digest not JSON", lambda c: (c.parent / "1.sha256.json").write_text("{")),
]


@pytest.mark.parametrize("name,damage", DAMAGE, ids=[name for name, _ in DAMAGE])
def test_a_damaged_checkpoint_is_refused_by_name(name, damage, tmp_path):
  with checkpoints_lib.Checkpoints(tmp_path / "saved", keep=1) as checkpoints:
    checkpoints.save(1, _model(64))
  shutil.copytree(tmp_path / "saved", tmp_path / "checkpoints")
  damage(tmp_path / "checkpoints" / "1")
  with checkpoints_lib.Checkpoints(tmp_path / "checkpoints", keep=1) as checkpoints:
    with pytest.raises(checkpoints_lib.CheckpointError) as err:
      checkpoints.restore(1, _model(64))
  assert re.fullmatch(re.escape(str(tmp_path / "checkpoints" / "1")) + r"(: array params/dense/kernel does not "
                      r"match its digest \(the checkpoint is damaged\)| cannot be read \(.*\)| has no valid digest "
                      r"1.sha256.json: it cannot be verified)", str(err.value)), err.value
  with checkpoints_lib.Checkpoints(tmp_path / "saved", keep=1) as checkpoints:  # the undamaged original restores
    assert runs.tree_sha256(checkpoints.restore(1, _model(64))) == runs.tree_sha256(_model(64))


def test_a_checkpoint_of_another_run_or_model_is_refused_and_can_be_set_aside(tmp_path):
  with checkpoints_lib.Checkpoints(tmp_path, keep=2, stamp={"config_sha256": "abc"}) as checkpoints:
    checkpoints.save(1, _model(32))
  with checkpoints_lib.Checkpoints(tmp_path, keep=2, stamp={"config_sha256": "xyz"}) as checkpoints:
    with pytest.raises(checkpoints_lib.CheckpointError, match=r"/1 was written by another run \(config_sha256 differs"):
      checkpoints.restore(1, _model(32))
  with checkpoints_lib.Checkpoints(tmp_path, keep=2, stamp={"config_sha256": "abc"}) as checkpoints:
    with pytest.raises(checkpoints_lib.CheckpointError, match=r"/1 holds params/dense/kernel as float32\[64, 32\], but this "
                                                   r"model's is float32\[64, 64\]: a checkpoint of another model"):
      checkpoints.restore(1, _model(64))
    aside = checkpoints.set_aside(1)
    assert checkpoints.epochs() == [] and sorted(p.name for p in aside.iterdir()) == ["1", "1.sha256.json"]


def test_closed_event_loop_echoes_of_a_failed_save_are_dropped_while_checkpoints_are_open(tmp_path, monkeypatch):
  """A failed background save makes tensorstore's callbacks raise "Event loop is closed" while training goes on;
  Python reports them through its exception hooks. Those echoes are dropped (the save's failure is raised by
  wait()); any other exception is reported; the hooks come back on leaving."""
  import sys
  import threading

  reported = []
  monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: reported.append(str(value)))
  monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(str(args.exc_value)))

  def raise_in_thread(error):
    def body():
      raise error
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()

  hooks = sys.excepthook, threading.excepthook
  with checkpoints_lib.Checkpoints(tmp_path / "checkpoints", keep=1):
    echo = RuntimeError("Event loop is closed")
    sys.excepthook(RuntimeError, echo, None)  # what PyErr_Print does for a callback with no Python caller
    raise_in_thread(echo)
    assert reported == []
    sys.excepthook(RuntimeError, RuntimeError("something else"), None)
    raise_in_thread(ValueError("a thread's own failure"))
    assert reported == ["something else", "a thread's own failure"]
  assert (sys.excepthook, threading.excepthook) == hooks
