"""lab10.step: the pure train step, its per-layer tensors, and the logged step's statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import reference
from lab10 import activations, initializers, models, probes, step
from lab10 import config as C


def _tiny_state(seed=0, **overrides):
  """The golden network: set up from ``seed`` as ``train.setup`` sets it up (init key, —, dropout key)."""
  c = C.with_preset(None, depth=2, width=(16,), activation="tanh", init="glorot_normal", bias_init="normal",
                    bias_std=0.1, seed=seed, **overrides)
  init_key, _, dropout_key = jax.random.split(jax.random.key(c.seed), 3)
  model = C.make_model(c, (4, 4, 1), 3, nnx.Rngs(params=init_key))
  tx = C.make_optimizer(c)
  return tx, *step.init_state(model, tx, dropout_key)


def _tiny_batch():
  rng = np.random.default_rng(0)
  return {"x": rng.standard_normal((8, 4, 4, 1)).astype(np.float32), "y": rng.integers(0, 3, 8).astype(np.int32)}


def _mlp(activation="tanh", widths=(16, 8), seed=0, **kw):
  return models.MLP(12, widths, 3, activation=activations.get(activation),
                    kernel_init=initializers.kernel("glorot_normal"), bias_init=initializers.bias("normal", std=0.5),
                    rngs=nnx.Rngs(params=jax.random.key(seed)), **kw)


def _batch(n=20, d=12, seed=1):
  rng = np.random.default_rng(seed)
  return {"x": (2 * rng.standard_normal((n, d))).astype(np.float32), "y": rng.integers(0, 3, n).astype(np.int32)}


# Pinned at jax 0.10.2 / flax 0.12.8 on CPU. Parameters come from jax.random's threefry, which is stable
# across versions; if these change on purpose (new init or loss), re-pin them and say why in the commit.
GOLDEN_LOSS = 1.1464938  # float64 NumPy forward pass of the same parameters: 1.14649369
GOLDEN_GRAD_NORMS = {"dense_0": 0.6676442, "dense_1": 0.4795167, "head": 0.4704558}


def _step_tensors(graphdef, tx, state, batch):
  """``step.step_tensors`` jitted, as a researcher would call it."""
  return jax.jit(step.step_tensors, static_argnums=(0, 1))(graphdef, tx, state, batch)


def test_golden_one_step():
  tx, graphdef, state = _tiny_state()
  batch = _tiny_batch()

  def loss(params):
    return step.loss_fn(nnx.merge(graphdef, params, state.rest), batch, train=False)[0]

  value, grads = jax.value_and_grad(loss)(state.params)
  norms = dict(zip(GOLDEN_GRAD_NORMS, (float(np.linalg.norm(k)) for k in probes.layer_kernels(grads))))
  assert float(value) == pytest.approx(GOLDEN_LOSS, rel=1e-5), "golden loss moved; see comment above"
  assert norms == pytest.approx(GOLDEN_GRAD_NORMS, rel=1e-5), "golden gradient norms moved"
  new_state, metrics = jax.jit(step.make_train_step(graphdef, tx))(state, batch)
  assert float(metrics["loss"]) == pytest.approx(GOLDEN_LOSS, rel=1e-5)
  assert int(new_state.step) == 1


def test_train_step_matches_a_hand_written_adam_step():
  tx, graphdef, state = _tiny_state()
  batch = _tiny_batch()
  grads = jax.grad(lambda p: step.loss_fn(nnx.merge(graphdef, p, state.rest), batch, train=True)[0])(state.params)
  new_state, _ = step.make_train_step(graphdef, tx)(state, batch)
  g = np.asarray(grads["head"]["kernel"][...], np.float64)
  # First Adam step: m̂ = g, v̂ = g², update = −lr·g/(|g| + ε).
  expected = np.asarray(state.params["head"]["kernel"][...], np.float64) - 1e-3 * g / (np.abs(g) + 1e-8)
  np.testing.assert_allclose(new_state.params["head"]["kernel"][...], expected, rtol=1e-5, atol=1e-7)


def test_after_backward_adds_an_exact_zero():
  grads = {"a": np.array([[-0.0, 1e-30], [3.0, -7.5]], np.float32), "b": np.array([np.inf, 2.0], np.float32)}
  out = step.after_backward(grads)
  np.testing.assert_array_equal(out["a"], grads["a"])
  np.testing.assert_array_equal(out["b"], grads["b"])
  assert np.isnan(step.after_backward({"a": np.array([np.nan, 1.0], np.float32)})["a"][0])
  for tree in ({"a": np.array([np.nan], np.float32)}, {"a": np.array([np.inf, 1.0], np.float32)}):
    zero = step.exact_zero(tree)
    assert float(zero) == 0.0 and not np.signbit(zero)


def test_step_tensors_match_a_float64_numpy_step():
  model, batch = _mlp("tanh", widths=(5, 4)), _batch(n=6)
  tx = optax.sgd(0.1)
  graphdef, state = step.init_state(model, tx, jax.random.key(0))
  with jax.default_matmul_precision("highest"):
    new_state, metrics, t = _step_tensors(graphdef, tx, state, batch)
  ref = reference.mlp_pass(model, batch, *reference.TANH[:2])
  assert model.layer_names == ["dense_0", "dense_1"] and set(t) == {"acts", "dz", "kernel", "dw", "update"}
  assert float(metrics["loss"]) == pytest.approx(ref["loss"], rel=1e-6)
  for i in range(2):
    np.testing.assert_allclose(t["acts"][i]["pre"], ref["zs"][i], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t["acts"][i]["post"], ref["hs"][i], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t["dz"][i], ref["deltas"][i], rtol=1e-5, atol=1e-8)
  assert len(t["dz"]) == 2 and len(t["kernel"]) == len(t["dw"]) == len(t["update"]) == 3
  old, new = probes.layer_kernels(state.params), probes.layer_kernels(new_state.params)
  for i in range(3):
    np.testing.assert_array_equal(t["kernel"][i], old[i])
    np.testing.assert_allclose(t["dw"][i], ref["grads"][i], rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(t["update"][i], np.asarray(new[i]) - np.asarray(old[i]))  # W_{t+1} − W_t
    np.testing.assert_allclose(t["update"][i], -0.1 * ref["grads"][i], rtol=1e-3, atol=1e-8)  # SGD's step
  # ... and it is the train step's own update.
  plain, _ = jax.jit(step.make_train_step(graphdef, tx))(state, batch)
  for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(new_state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_step_tensors_take_the_training_steps_dropout_masks_and_batch_statistics():
  model, batch = _mlp("relu", widths=(32, 16), dropout_rate=0.5, batchnorm=True), _batch(n=16)
  tx = optax.adam(1e-2)
  graphdef, state = step.init_state(model, tx, jax.random.key(5))
  state = state._replace(step=jnp.asarray(3, jnp.int32))  # the masks of step 3: fold_in(dropout_key, 3)
  _, _, t = _step_tensors(graphdef, tx, state, batch)

  def independent(key):
    """∂L/∂W and ∂L/∂z of the loss in train mode with dropout ``key``, taken apart from lab10.step."""
    def loss(params, taps):
      m = nnx.merge(graphdef, params, jax.tree.map(lambda v: v, state.rest))
      return step.loss_fn(m, batch, train=True, dropout_key=key, taps=taps)

    taps = [jnp.zeros((16, w)) for w in (32, 16)]
    (grads, dz), (_, acts) = jax.grad(loss, argnums=(0, 1), has_aux=True)(state.params, taps)
    return probes.layer_kernels(grads), dz, acts

  dw, dz, acts = independent(jax.random.fold_in(jax.random.key(5), 3))
  for i in range(3):
    np.testing.assert_allclose(t["dw"][i], dw[i], rtol=1e-5, atol=1e-7)
  for i in range(2):
    np.testing.assert_allclose(t["dz"][i], dz[i], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(t["acts"][i]["pre"], acts[i]["pre"], rtol=1e-5, atol=1e-6)
  # Batch statistics: z is normalised over the batch, unit by unit.
  np.testing.assert_allclose(np.mean(t["acts"][0]["pre"], axis=0), 0, atol=1e-5)
  other, _, _ = independent(jax.random.fold_in(jax.random.key(5), 2))  # another step's masks: other gradients
  assert not np.allclose(t["dw"][0], other[0], rtol=1e-3)


def test_step_tensors_of_a_cnn_have_each_layers_shapes():
  c = C.with_preset(None, model="cnn", depth=3, width=(2,), activation="relu", init="he_normal")
  model = C.make_model(c, (8, 8, 1), 5, nnx.Rngs(params=jax.random.key(0)))
  tx = C.make_optimizer(c)
  graphdef, state = step.init_state(model, tx, jax.random.key(1))
  batch = {"x": np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32), "y": np.array([0, 4])}
  _, _, t = _step_tensors(graphdef, tx, state, batch)
  assert model.layer_names == ["conv_0", "conv_1", "conv_2"] and len(t["acts"]) == 3 and len(t["kernel"]) == 4
  # 2, 4, 8 channels; a 2 × 2 max-pool after each stage but the last.
  z_shapes = [(2, 8, 8, 2), (2, 4, 4, 4), (2, 2, 2, 8)]
  assert [a["pre"].shape for a in t["acts"]] == [a["post"].shape for a in t["acts"]] == z_shapes
  assert [d.shape for d in t["dz"]] == z_shapes
  kernel_shapes = [(3, 3, 1, 2), (3, 3, 2, 4), (3, 3, 4, 8), (8, 5)]
  for key in ("kernel", "dw", "update"):
    assert [k.shape for k in t[key]] == kernel_shapes, key
  assert all(float(jnp.linalg.norm(u)) > 0 for u in t["update"])


def test_logged_train_step_reports_the_update_it_made():
  model, batch = _mlp("tanh"), _batch()
  tx = optax.sgd(0.1)
  graphdef, state = step.init_state(model, tx, jax.random.key(0))
  with jax.default_matmul_precision("highest"):
    new_state, metrics = jax.jit(step.make_logged_train_step(graphdef, tx, bounds=reference.TANH[2]))(state, batch)
  passed = reference.mlp_pass(model, batch, *reference.TANH[:2])
  ref = reference.stats(passed, reference.TANH[2])
  kernels = lambda params: [np.asarray(k, np.float64) for k in probes.layer_kernels(params)]
  for name, g, new, old in zip(["dense_0", "dense_1", "head"], passed["grads"], kernels(new_state.params),
                               kernels(state.params)):
    ref[f"updates/{name}/norm"] = np.sqrt(np.sum((new - old) ** 2))  # the change made, W_{t+1} − W_t
    ref[f"updates/{name}/ratio"] = ref[f"updates/{name}/norm"] / ref[f"params/{name}/norm"]
    # ... which is SGD's −0.1·∂L/∂W up to float32 rounding of W_{t+1}
    assert ref[f"updates/{name}/norm"] == pytest.approx(0.1 * np.sqrt(np.sum(g**2)), rel=1e-4)
  reference.assert_close(metrics["stats"], ref)
  assert float(metrics["loss"]) == pytest.approx(passed["loss"], rel=1e-6)


def test_logged_step_names_each_kernel_by_its_layer_past_dense_9():
  # JAX hands dicts back with sorted keys (dense_10 before dense_2): kernels must be matched to layers by
  # the model's order, not by the order of any returned dict.
  widths = (20,) * 12  # 12 hidden layers (of one width: one percentile search for all)
  model, batch = _mlp("tanh", widths=widths), _batch()
  loss = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(batch["x"]), batch["y"]).mean()
  grads = nnx.grad(loss)(model)
  tx = optax.sgd(0.1)
  graphdef, state = step.init_state(model, tx, jax.random.key(0))
  _, metrics = jax.jit(step.make_logged_train_step(graphdef, tx))(state, batch)
  for i, name in enumerate(model.layer_names):
    kernel, grad = model.blocks[i].layer.kernel[...], grads.blocks[i].layer.kernel[...]
    assert float(metrics["stats"][f"params/{name}/norm"]) == pytest.approx(float(jnp.linalg.norm(kernel)), rel=1e-5)
    assert float(metrics["stats"][f"grads/{name}/norm"]) == pytest.approx(float(jnp.linalg.norm(grad)), rel=1e-3)
