"""lab10.runs: atomic JSON and NPZ, append-only JSONL, tree hashes, the environment."""

import json

import jax
import numpy as np
import pytest

from lab10 import runs


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


def test_environment_and_device_summary_describe_this_process():
  env = runs.environment()
  assert env["packages"]["jax"] == jax.__version__ and env["backend"] == jax.default_backend()
  assert env["devices"] == [str(d) for d in jax.devices()] and env["process_count"] == 1
  assert set(env["packages"]) == set(runs.PACKAGES)
  assert runs.device_summary().startswith(f"backend {jax.default_backend()}: {jax.device_count()} device(s): ")
