
import jax
import numpy as np
import pytest
from flax import nnx

from lab10 import config as C


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
  args = C.parser("t").parse_args(["--preset", "lab10-3-xavier", "--width", "64,32", "--batchnorm", "true",
                                   "--lr", "0.01", "--activation", "tanh"])
  c = C.from_args(args)
  assert c.width == (64, 32) and c.hidden_widths == (64, 32) and c.batchnorm and c.lr == 0.01
  assert c.activation == "tanh" and c.preset == "lab10-3-xavier" and c.epochs == 15


@pytest.mark.parametrize("overrides,message", [
    (dict(activation="swish2"), "--activation 'swish2' is not valid; choose from: sigmoid, tanh, relu"),
    (dict(init="xavier"), "--init 'xavier' is not valid; choose from: normal, glorot_uniform"),
    (dict(dataset="imagenet"), "--dataset 'imagenet' is not valid; choose from: mnist, fashion_mnist"),
    (dict(optimizer="rmsprop"), "--optimizer 'rmsprop' is not valid; choose from: adam, sgd, momentum"),
    (dict(depth=-1), "--depth -1 is out of range"),
    (dict(width=(0,)), "--width 0 is out of range; expected positive integers"),
    (dict(width=(3, 4, 5), depth=2), "gives 3 widths but --depth is 2"),
    (dict(dropout=1.0), r"--dropout 1.0 is out of range; expected a probability in \[0, 1\)"),
    (dict(lr=0.0), "--lr 0.0 is out of range; expected a finite number > 0"),
    (dict(lr=float("nan")), "--lr nan is out of range"),
    (dict(batch_size=0), "--batch_size 0 is out of range"),
    (dict(epochs=0), "--epochs 0 is out of range"),
])
def test_bad_values_give_one_line(overrides, message):
  with pytest.raises(C.ConfigError, match=message) as err:
    C.with_preset(None, **overrides)
  assert "\n" not in str(err.value)


def test_unknown_preset():
  with pytest.raises(C.ConfigError, match="--preset 'lab10-9' is not valid; choose from: lab10-1-softmax"):
    C.with_preset("lab10-9")


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
  import json

  c = C.with_preset("lab10-4-deep", seed=3)
  (tmp_path / "config.json").write_text(json.dumps({"config": c.to_json()}))
  assert C.load_json(tmp_path / "config.json") == c
