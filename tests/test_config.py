"""lab10.config: presets, flags → Config, resumption's rules, names → callables. (Bad values: one table per
script, tests/test_script_*.py.)"""

import dataclasses
import hashlib
import importlib.util
import json

import jax
import numpy as np
import pytest
from flax import nnx

from lab10 import config as C
from lab10 import flags


def _config_json(values: dict) -> str:
  """config.json as a run writes it: the settings and their hash."""
  digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
  return json.dumps({"config": values, "config_sha256": digest})


def test_presets_follow_the_seed_labs():
  p = {name: C.with_preset(name) for name in C.PRESETS}
  for c in p.values():
    assert (c.epochs, c.batch_size, c.optimizer, c.lr, c.val_size) == (15, 100, "adam", 1e-3, 5000)
  assert p["lab10-1-softmax"].hidden_widths == ()
  assert p["lab10-2-relu"].hidden_widths == (256, 256) and p["lab10-2-relu"].init == "normal"
  assert (p["lab10-2-relu"].init_std, p["lab10-2-relu"].bias_init, p["lab10-2-relu"].bias_std) == (1.0, "normal", 1.0)
  assert p["lab10-1-sigmoid"].activation == "sigmoid" and p["lab10-1-sigmoid"].init_std == 0.05
  assert p["lab10-3-xavier"].init == "glorot_uniform" and p["lab10-3-xavier"].bias_init == "normal"
  assert p["lab10-4-deep"].hidden_widths == (512,) * 4
  assert p["lab10-5-dropout"].dropout == 0.3
  assert p["lab10-6-batchnorm"].batchnorm


def test_explicit_values_override_the_preset():
  c = C.with_preset("lab10-5-dropout", dropout=0.5, epochs=2)
  assert (c.dropout, c.epochs, c.hidden_widths) == (0.5, 2, (512,) * 4)


def test_flags_parse_into_config():
  args = flags.parser("t").parse_args(["--preset", "lab10-3-xavier", "--width", "64,32", "--batchnorm", "true",
                                   "--lr", "0.01", "--activation", "tanh"])
  c = flags.from_args(args)
  assert c.width == (64, 32) and c.hidden_widths == (64, 32) and c.batchnorm and c.lr == 0.01
  assert c.activation == "tanh" and c.preset == "lab10-3-xavier" and c.epochs == 15


def test_leaky_relu_he_uses_the_activation_slope():
  c = C.with_preset(None, activation="leaky_relu", leaky_slope=0.5, init="he_normal", depth=1, width=(4000,))
  model = C.make_model(c, (1000,), 10, nnx.Rngs(params=jax.random.key(0)))
  var = float(np.var(np.asarray(model.blocks[0].layer.kernel[...])))
  assert var == pytest.approx(2 / (1.25 * 1000), rel=0.02)


def test_weight_decay_is_l2_on_kernels_only():
  c = C.with_preset(None, optimizer="sgd", lr=1.0, weight_decay=0.1)
  tx = C.make_optimizer(c)
  params = {"kernel": np.ones((2, 2), np.float32), "bias": np.ones((2,), np.float32)}
  zeros = {k: np.zeros_like(v) for k, v in params.items()}
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates["kernel"], -0.1)
  np.testing.assert_allclose(updates["bias"], 0.0)


def test_config_round_trips_through_json(tmp_path):
  c = C.with_preset("lab10-4-deep", seed=3)
  (tmp_path / "config.json").write_text(_config_json(c.to_json()))
  assert C.load_json(tmp_path / "config.json") == c


def test_differences_name_each_setting_that_differs_outside_run_control():
  run = C.with_preset("lab10-4-deep", workdir="a")
  new = C.with_preset("lab10-4-deep", lr=0.01, width=(64,), workdir="b", keep_checkpoints=1, epochs=20)
  assert C.differences(new, run) == ["--width 64 (run: 512)", "--lr 0.01 (run: 0.001)", "--epochs 20 (run: 15)"]
  assert C.differences(new, run, ignore=(*C.RUN_CONTROL, "epochs", "lr", "width")) == []


def test_resume_flags_take_the_runs_own_config(tmp_path):
  stored = C.with_preset(None, dataset="synthetic", depth=2, width=(32,), batchnorm=True, lr=0.05,
                         workdir=str(tmp_path))
  (tmp_path / "config.json").write_text(_config_json(stored.to_json()))

  def parse(*given):
    return flags.from_args(flags.parser("t").parse_args([*given, "--workdir", str(tmp_path), "--resume"]))

  c = parse()
  assert c.lr == 0.05 and c.batchnorm and c.resume and c.width == (32,)
  assert parse("--lr", "0.05", "--epochs", "9").epochs == 9
  assert parse("--keep_checkpoints", "1").keep_checkpoints == 1  # how a run is carried out may change
  with pytest.raises(C.ConfigError, match=r"these flags differ from it: --lr 0.1 \(run: 0.05\); drop them"):
    parse("--lr", "0.1")
  (tmp_path / "config.json").write_text(_config_json({"lr": 1}))
  with pytest.raises(C.ConfigError, match=r"config.json cannot be read as a lab10 run config \(KeyError: 'width'\)"):
    parse()


def test_matmul_precision_is_exact_by_default_and_part_of_what_a_run_computes(tmp_path):
  assert C.Config().matmul_precision == "highest"
  run = C.with_preset(None, dataset="synthetic", workdir=str(tmp_path))
  assert C.differences(dataclasses.replace(run, matmul_precision="default"), run) == [
      "--matmul_precision default (run: highest)"]
  # A run recorded before the field existed loads with the default.
  old = {k: v for k, v in run.to_json().items() if k not in ("matmul_precision", "tensorboard")}
  (tmp_path / "config.json").write_text(_config_json(old))
  assert C.load_json(tmp_path / "config.json") == run

  def parse(*given):
    return flags.from_args(flags.parser("t").parse_args([*given, "--workdir", str(tmp_path), "--resume"]))

  with pytest.raises(C.ConfigError, match=r"--matmul_precision high \(run: highest\)"):
    parse("--matmul_precision", "high")
  assert parse("--tensorboard").tensorboard  # logging is how a run is carried out, not what it computes


def test_tensorboard_without_tensorboardx_is_a_one_line_error(monkeypatch):
  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboardX" else find_spec(name, *a))
  with pytest.raises(C.ConfigError, match=r"^--tensorboard needs tensorboardX, which is not installed; pip install "):
    C.with_preset(None, tensorboard=True)
  assert not C.with_preset(None).tensorboard


def test_a_config_json_without_its_hash_is_refused_in_one_line(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"config": C.Config().to_json()}))  # as an older lab10 wrote it
  with pytest.raises(C.ConfigError, match=r"has no config_sha256 \(an older lab10 wrote it\), so whether it was "
                                          r"edited cannot be told; pass --overwrite"):
    C.load_json(tmp_path / "config.json")


def _config_from(argv):
  return flags.from_args(flags.parser("t").parse_args(argv))


def test_config_files_set_fields_under_explicit_flags(tmp_path):
  (tmp_path / "a.json").write_text('{"lr": 0.01, "width": [64, 32], "depth": 2, "activation": "tanh", "epochs": 3}')
  (tmp_path / "b.yaml").write_text("preset: lab10-3-xavier\nwidth: 128\nseed: 4\n")
  c = _config_from(["--config", str(tmp_path / "a.json"), "--lr", "0.5"])
  assert (c.lr, c.width, c.activation, c.epochs) == (0.5, (64, 32), "tanh", 3)
  c = _config_from(["--config", str(tmp_path / "b.yaml")])
  xavier = C.with_preset("lab10-3-xavier")
  assert (c.preset, c.init, c.width, c.seed, c.epochs) == ("lab10-3-xavier", xavier.init, (128,), 4, xavier.epochs)
  # A --preset flag replaces the file's preset; the file's fields still override the preset.
  c = _config_from(["--config", str(tmp_path / "b.yaml"), "--preset", "lab10-4-deep"])
  assert (c.preset, c.depth, c.width) == ("lab10-4-deep", C.with_preset("lab10-4-deep").depth, (128,))


def test_a_runs_own_config_json_repeats_it_with_another_seed(tmp_path):
  run = dataclasses.replace(C.with_preset("lab10-2-relu", lr=0.003, workdir=str(tmp_path / "run")), seed=7)
  path = tmp_path / "C.json"
  path.write_text(json.dumps({"config": run.to_json(), "config_sha256": C.sha256(run), "environment": {}}))
  again = _config_from(["--config", str(path), "--seed", "1"])
  assert again == dataclasses.replace(run, seed=1, workdir=None)  # its settings; not its run directory


@pytest.mark.parametrize("text, suffix, message", [
    ("lrate: 1\n", ".yaml", "unknown field 'lrate'; valid fields: dataset,"),
    ("activation: foo\n", ".yml", "field activation 'foo' is not valid; choose from: sigmoid, tanh"),
    ("lr: abc\n", ".yaml", "field lr 'abc' is not a number"),
    ('{"width": [64, "x"]}', ".json", "field width [64, 'x'] is not an integer or a list of integers"),
    ('{"batch_size": 1.5}', ".json", "field batch_size 1.5 is not an integer"),
    ('{"dropout": 1.5}', ".json", "field dropout 1.5 is out of range; expected a probability in [0, 1)"),
    ("preset: nope\n", ".yaml", "field preset 'nope' is not valid; choose from: lab10-1-softmax"),
    ('{"resume": true}', ".json", "unknown field 'resume'"),
    ("[1, 2]", ".json", "expected a mapping of Config fields"),
    ("{bad", ".json", "not valid JSON"),
    ("a: [", ".yaml", "not valid YAML"),
])
def test_a_bad_config_file_is_one_line_naming_the_file_and_field(tmp_path, text, suffix, message):
  path = tmp_path / f"c{suffix}"
  path.write_text(text)
  with pytest.raises(C.ConfigError) as e:
    _config_from(["--config", str(path)])
  assert str(path) in str(e.value) and message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_missing_config_file_is_one_line(tmp_path):
  with pytest.raises(C.ConfigError, match=r"--config .*nope.json: cannot be read \(No such file"):
    _config_from(["--config", str(tmp_path / "nope.json")])
