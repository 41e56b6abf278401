import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lab10 import activations, initializers, models


def _mlp(widths=(16, 8), activation="tanh", dropout=0.0, batchnorm=False, seed=0):
  return models.MLP(12, widths, 3, activation=activations.get(activation),
                    kernel_init=initializers.kernel("glorot_normal"), bias_init=initializers.bias("normal", std=0.1),
                    dropout_rate=dropout, batchnorm=batchnorm, rngs=nnx.Rngs(params=jax.random.key(seed)))


def _x(shape=(5, 3, 4, 1), seed=1):
  return jax.random.normal(jax.random.key(seed), shape)


def test_mlp_captures_the_values_the_forward_pass_used():
  model = _mlp()
  x = _x()
  logits, acts = model.forward(x)
  assert isinstance(acts, list) and len(acts) == 2 and model.layer_names == ["dense_0", "dense_1"]
  assert acts[0]["pre"].shape == (5, 16) and acts[1]["post"].shape == (5, 8)
  # Recompute the forward pass in float64 NumPy from the parameters.
  h = np.asarray(x, np.float64).reshape(5, -1)
  for block, a in zip(model.blocks, acts, strict=True):
    z = h @ np.asarray(block.layer.kernel[...], np.float64) + np.asarray(block.layer.bias[...], np.float64)
    np.testing.assert_allclose(a["pre"], z, rtol=1e-5, atol=1e-6)
    h = np.tanh(z)
    np.testing.assert_allclose(a["post"], h, rtol=1e-5, atol=1e-6)
  out = h @ np.asarray(model.head.kernel[...], np.float64) + np.asarray(model.head.bias[...], np.float64)
  np.testing.assert_allclose(logits, out, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(model(x), logits)


def test_depth_zero_mlp_is_softmax_regression():
  model = _mlp(widths=())
  logits, acts = model.forward(_x())
  assert acts == [] and model.layer_names == [] and logits.shape == (5, 3)
  assert set(nnx.state(model, nnx.Param)["head"]) == {"kernel", "bias"} and len(model.blocks) == 0


def test_taps_add_to_preactivations_and_give_dL_dz():
  model = _mlp()
  x = _x()
  taps = [jnp.zeros((5, 16)), jnp.zeros((5, 8))]

  def loss(taps):
    logits, _ = model.forward(x, taps=taps)
    return jnp.sum(logits**2)

  g = jax.grad(loss)(taps)
  # Backprop by hand: δ_out = 2·logits; δ_z1 = (δ_out Wᵀ) ⊙ tanh'(z1).
  logits, acts = model.forward(x)
  d_out = 2 * np.asarray(logits, np.float64)
  d_h1 = d_out @ np.asarray(model.head.kernel[...], np.float64).T
  d_z1 = d_h1 * (1 - np.asarray(acts[1]["post"], np.float64) ** 2)
  np.testing.assert_allclose(g[1], d_z1, rtol=1e-5, atol=1e-6)
  _, acts2 = model.forward(x, taps=[jnp.ones((5, 16)), None])  # None: no tap on that layer
  np.testing.assert_allclose(acts2[0]["pre"], acts[0]["pre"] + 1, rtol=1e-6)


def test_dropout_only_in_train_mode_with_inverted_scaling():
  model = _mlp(widths=(2000,), activation="relu", dropout=0.3)
  x = _x((4, 3, 4, 1))
  assert np.array_equal(model(x), model(x))  # eval: deterministic
  a = model(x, train=True, dropout_key=jax.random.key(0))
  b = model(x, train=True, dropout_key=jax.random.key(1))
  assert not np.allclose(a, b)
  # The block's output: post·mask/(1−rate); check the drop fraction and scale on the hidden layer.
  block = model.blocks[0]
  h = block.activation(block.layer(x.reshape(4, -1)))
  out, _, post = block(x.reshape(4, -1), train=True, rngs=nnx.Rngs(dropout=jax.random.key(2)), tap=None)
  np.testing.assert_array_equal(post, h)
  kept = np.asarray(out) != 0
  live = np.asarray(h) != 0
  assert 0.65 < kept[live].mean() < 0.75
  np.testing.assert_allclose(np.asarray(out)[kept], np.asarray(h)[kept] / 0.7, rtol=1e-6)


def test_batchnorm_normalises_in_train_mode_and_uses_running_stats_in_eval():
  model = _mlp(widths=(32,), activation="relu", batchnorm=True)
  x = 3 + 2 * _x((256, 3, 4, 1))
  _, acts = model.forward(x, train=True)
  z = np.asarray(acts[0]["pre"])
  np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(z.var(0), 1, rtol=1e-2)
  mean = np.asarray(model.blocks[0].norm.mean[...])
  assert np.abs(mean).max() > 0  # running mean moved towards the batch mean
  assert model.blocks[0].layer.bias is None  # BN's β replaces the affine bias


def test_cnn_shapes_pooling_and_captures():
  model = models.CNN(3, 5, 4, 10, activation=activations.get("relu"), kernel_init=initializers.kernel("he_normal"),
                     bias_init=initializers.bias("zeros"), rngs=nnx.Rngs(params=jax.random.key(0)))
  x = _x((2, 32, 32, 3))
  logits, acts = model.forward(x)
  assert logits.shape == (2, 10)
  assert [a["pre"].shape for a in acts] == [
      (2, 32, 32, 4), (2, 32, 32, 4), (2, 16, 16, 8), (2, 16, 16, 8), (2, 8, 8, 16)]
  np.testing.assert_array_equal(acts[2]["post"], jax.nn.relu(acts[2]["pre"]))
  assert model.layer_names == [f"conv_{i}" for i in range(5)]
  assert model.blocks[0].layer.kernel[...].shape == (3, 3, 3, 4)


@pytest.mark.parametrize("depth,expected", [(1, [8]), (4, [8, 8, 16, 32]), (7, [8, 8, 8, 16, 16, 32, 32])])
def test_cnn_stage_channels(depth, expected):
  assert models.cnn_stage_channels(depth, 8) == expected


def test_hidden_blocks_come_in_layer_order_past_ten_layers():
  model = _mlp(widths=(4,) * 12)
  params = nnx.state(model, nnx.Param)
  blocks = models.hidden_blocks(params)
  assert len(blocks) == 12
  for block, module in zip(blocks, model.blocks, strict=True):  # block 10 after block 9, not after block 1
    np.testing.assert_array_equal(block["layer"]["kernel"][...], module.layer.kernel[...])
  assert models.hidden_blocks(nnx.state(_mlp(widths=()), nnx.Param)) == []
