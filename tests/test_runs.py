"""lab10.runs: atomic JSON and NPZ, append-only JSONL, tree hashes, orbax checkpoints, the environment."""

import json
import re
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lab10 import runs, step


def test_write_json_is_atomic_and_writes_non_finite_floats_as_null(tmp_path):
  path = tmp_path / "a.json"
  runs.write_json(path, {"b": [1.5, float("nan")], "a": {"c": float("-inf"), "d": (1, 2)}})
  assert path.read_text() == json.dumps({"a": {"c": None, "d": [1, 2]}, "b": [1.5, None]}, indent=2) + "\n"
  runs.write_json(path, {"x": 1})
  assert runs.read_json(path) == {"x": 1} and [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no .tmp left


def test_read_json_of_a_missing_or_broken_file(tmp_path):
  assert runs.read_json(tmp_path / "absent.json") is None
  (tmp_path / "bad.json").write_text('{"a": ')
  with pytest.raises(runs.RunError) as err:
    runs.read_json(tmp_path / "bad.json")
  assert str(err.value).startswith(f"{tmp_path / 'bad.json'} is not valid JSON (Expecting value: line 1 column 7")
  assert str(err.value).endswith("; pass --overwrite or choose another --workdir") and "\n" not in str(err.value)


def test_jsonl_appends_whole_lines_and_reads_past_a_partial_last_one(tmp_path):
  path = tmp_path / "log.jsonl"
  runs.append_jsonl(path, {"epoch": 1, "loss": float("nan")})
  runs.extend_jsonl(path, [{"epoch": 2}, {"epoch": 3, "z": [1, 2]}])
  runs.extend_jsonl(path, [])
  assert path.read_text() == '{"epoch": 1, "loss": null}\n{"epoch": 2}\n{"epoch": 3, "z": [1, 2]}\n'
  with open(path, "a") as f:
    f.write('{"epoch": 4, "lo')  # a kill inside a write
  assert runs.read_jsonl(path) == [{"epoch": 1, "loss": None}, {"epoch": 2}, {"epoch": 3, "z": [1, 2]}]


def test_write_npz_round_trips(tmp_path):
  arrays = {"counts": np.arange(6, dtype=np.int32).reshape(2, 3), "edges": np.linspace(-1, 1, 4, dtype=np.float32)}
  runs.write_npz(tmp_path / "h.npz", arrays)
  with np.load(tmp_path / "h.npz") as saved:
    assert set(saved.files) == set(arrays)
    for k, v in arrays.items():
      assert saved[k].dtype == v.dtype
      np.testing.assert_array_equal(saved[k], v)
  assert [p.name for p in tmp_path.iterdir()] == ["h.npz"]


def test_tree_sha256_tells_equal_trees_from_different_ones():
  tree = {"a": np.arange(4, dtype=np.float32), "b": [np.ones((2, 2), np.int32)]}
  h = runs.tree_sha256(tree)
  assert len(h) == 64 and h == runs.tree_sha256(jax.device_put(tree))  # host or device: the same values
  changed = {"a": np.arange(4, dtype=np.float32), "b": [np.ones((2, 2), np.int32)]}
  changed["a"][3] = np.nextafter(np.float32(3), np.float32(4))  # one ulp
  assert runs.tree_sha256(changed) != h
  assert runs.tree_sha256({"a": np.arange(4, dtype=np.float64), "b": tree["b"]}) != h  # dtype counts
  assert runs.tree_sha256({"a": np.arange(4, dtype=np.float32).reshape(2, 2), "b": tree["b"]}) != h  # shape too


def _state():
  params = {"dense": {"kernel": jnp.arange(6.0).reshape(2, 3), "bias": jnp.zeros(3)}}
  tx = optax.adam(1e-3)
  return step.TrainState(params, {}, tx.init(params), jnp.asarray(3, jnp.int32), jax.random.key(9))


def test_to_tree_names_every_leaf_by_its_path_and_from_tree_inverts_it():
  state = _state()
  tree = runs.to_tree(state)
  assert tree["params"]["dense"]["kernel"].tolist() == [[0, 1, 2], [3, 4, 5]]
  assert tree["step"] == 3 and tree["dropout_key"].dtype == np.uint32  # a key's raw data
  back = runs.from_tree(tree, state)
  assert jax.tree.structure(back) == jax.tree.structure(state)
  np.testing.assert_array_equal(jax.random.key_data(back.dropout_key), jax.random.key_data(state.dropout_key))
  for a, b in zip(jax.tree.leaves(back.opt_state), jax.tree.leaves(state.opt_state), strict=True):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


def test_checkpoints_round_trip_keep_the_newest_with_their_digests(tmp_path):
  state = _state()
  folder = tmp_path / "checkpoints"
  with runs.Checkpoints(folder, keep=2, stamp={"config_sha256": "abc"}) as checkpoints:
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
  with runs.Checkpoints(tmp_path / "saved", keep=1) as checkpoints:
    checkpoints.save(1, _model(64))
  shutil.copytree(tmp_path / "saved", tmp_path / "checkpoints")
  damage(tmp_path / "checkpoints" / "1")
  with runs.Checkpoints(tmp_path / "checkpoints", keep=1) as checkpoints:
    with pytest.raises(runs.CheckpointError) as err:
      checkpoints.restore(1, _model(64))
  assert re.fullmatch(re.escape(str(tmp_path / "checkpoints" / "1")) + r"(: array params/dense/kernel does not "
                      r"match its digest \(the checkpoint is damaged\)| cannot be read \(.*\)| has no valid digest "
                      r"1.sha256.json: it cannot be verified)", str(err.value)), err.value
  with runs.Checkpoints(tmp_path / "saved", keep=1) as checkpoints:  # the undamaged original restores
    assert runs.tree_sha256(checkpoints.restore(1, _model(64))) == runs.tree_sha256(_model(64))


def test_a_checkpoint_of_another_run_or_model_is_refused_and_can_be_set_aside(tmp_path):
  with runs.Checkpoints(tmp_path, keep=2, stamp={"config_sha256": "abc"}) as checkpoints:
    checkpoints.save(1, _model(32))
  with runs.Checkpoints(tmp_path, keep=2, stamp={"config_sha256": "xyz"}) as checkpoints:
    with pytest.raises(runs.CheckpointError, match=r"/1 was written by another run \(config_sha256 differs"):
      checkpoints.restore(1, _model(32))
  with runs.Checkpoints(tmp_path, keep=2, stamp={"config_sha256": "abc"}) as checkpoints:
    with pytest.raises(runs.CheckpointError, match=r"/1 holds params/dense/kernel as float32\[64, 32\], but this "
                                                   r"model's is float32\[64, 64\]: a checkpoint of another model"):
      checkpoints.restore(1, _model(64))
    aside = checkpoints.set_aside(1)
    assert checkpoints.epochs() == [] and sorted(p.name for p in aside.iterdir()) == ["1", "1.sha256.json"]


def test_environment_and_device_summary_describe_this_process():
  env = runs.environment()
  assert env["packages"]["jax"] == jax.__version__ and env["backend"] == jax.default_backend()
  assert env["devices"] == [str(d) for d in jax.devices()] and env["process_count"] == 1
  assert set(env["packages"]) == set(runs.PACKAGES)
  assert runs.device_summary().startswith(f"backend {jax.default_backend()}: {jax.device_count()} device(s): ")
