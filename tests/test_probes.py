"""lab10.probes: per-layer statistics against float64 NumPy, the at-init probe, and the papers' numbers at init."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import reference
from lab10 import activations, config as C, initializers, models, probes, theory


def _mlp(activation="tanh", widths=(16, 8), init="glorot_normal", seed=0, in_features=12):
  return models.MLP(in_features, widths, 3, activation=activations.get(activation),
                    kernel_init=initializers.kernel(init), bias_init=initializers.bias("normal", std=0.5),
                    rngs=nnx.Rngs(params=jax.random.key(seed)))


def _batch(n=20, d=12, scale=2.0, seed=1):
  rng = np.random.default_rng(seed)
  return {"x": (scale * rng.standard_normal((n, d))).astype(np.float32), "y": rng.integers(0, 3, n).astype(np.int32)}


@pytest.mark.parametrize("activation,functions", [("tanh", reference.TANH), ("relu", reference.RELU)])
def test_every_statistic_matches_a_float64_numpy_reference(activation, functions):
  model, batch = _mlp(activation), _batch()
  if activation == "relu":  # make dead units: biases far below any pre-activation
    model.blocks[0].layer.bias[...] = model.blocks[0].layer.bias[...].at[:5].set(-100.0)
  phi, dphi, bounds = functions
  with jax.default_matmul_precision("highest"):
    got = jax.jit(lambda m, b: probes.init_stats(m, b, bounds=bounds))(model, batch)
  ref = reference.stats(reference.mlp_pass(model, batch, phi, dphi), bounds)
  reference.assert_close(got, ref)
  if activation == "relu":
    assert float(got["forward/dense_0/dead"]) >= 5 / 16
  else:
    assert 0 < float(got["forward/dense_0/saturated"]) < 1  # the check is not vacuous


def test_probe_init_measures_each_network_drawn_and_names_layers_past_dense_9():
  # JAX hands dicts back with sorted keys (dense_10 before dense_2): kernels must be matched to layers by
  # the model's order, not by the order of any returned dict.
  widths = (20,) * 12  # 12 hidden layers (of one width: one percentile search for all)
  batch = _batch()
  build = lambda key: models.MLP(12, widths, 3, activation=jnp.tanh, kernel_init=initializers.kernel("glorot_normal"),
                                 bias_init=initializers.bias("normal", std=0.5), rngs=nnx.Rngs(params=key))
  keys = jax.random.split(jax.random.key(3), 3)
  stats = probes.probe_init(build, batch, keys)
  assert all(isinstance(v, np.ndarray) and v.shape == (3,) for v in stats.values())
  for k, key in enumerate(keys):  # value k: the network drawn from keys[k]
    model = build(key)
    loss = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(batch["x"]), batch["y"]).mean()
    grads = nnx.grad(loss)(model)
    for i, name in enumerate(model.layer_names):
      kernel, grad = model.blocks[i].layer.kernel[...], grads.blocks[i].layer.kernel[...]
      assert stats[f"params/{name}/norm"][k] == pytest.approx(float(jnp.linalg.norm(kernel)), rel=1e-5), name
      assert stats[f"grads/{name}/norm"][k] == pytest.approx(float(jnp.linalg.norm(grad)), rel=1e-3), name
  assert len(set(stats["params/dense_11/norm"].tolist())) == 3  # three different networks


def test_layer_gradients_are_per_layer_lists_aligned_with_the_layer_names():
  model, batch = _mlp("relu", widths=(16, 8, 4)), _batch()
  taps = probes.zero_taps(model, jnp.asarray(batch["x"]))
  assert [t.shape for t in taps] == [(20, 16), (20, 8), (20, 4)] and not any(jnp.any(t) for t in taps)
  loss = probes.xent(jnp.asarray(batch["y"]))
  acts, deltas, grads = probes.layer_gradients(model, jnp.asarray(batch["x"]), loss)
  ref = reference.mlp_pass(model, batch, *reference.RELU[:2])
  assert float(loss(model(batch["x"]))) == pytest.approx(ref["loss"], rel=1e-6)
  for i in range(3):
    np.testing.assert_allclose(acts[i]["pre"], ref["zs"][i], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(deltas[i], ref["deltas"][i], rtol=1e-4, atol=1e-8)
  kernels = probes.layer_kernels(grads)
  assert [k.shape for k in kernels] == [(12, 16), (16, 8), (8, 4), (4, 3)]
  for got, want in zip(kernels, ref["grads"]):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-8)


def test_layer_stats_reports_the_groups_it_is_given():
  model, batch = _mlp(), _batch()
  _, acts = model.forward(jnp.asarray(batch["x"]))
  kernels = probes.layer_kernels(nnx.state(model, nnx.Param))
  forward_only = probes.layer_stats(model.layer_names, acts)
  assert {k.split("/")[0] for k in forward_only} == {"forward"} and len(forward_only) == 2 * 6
  with_kernels = probes.layer_stats(model.layer_names, acts, bounds=(-1.0, 1.0), kernels=kernels)
  assert sorted(k for k in with_kernels if not k.startswith("forward")) == [
      "params/dense_0/norm", "params/dense_1/norm", "params/head/norm"]
  assert float(with_kernels["params/head/norm"]) == pytest.approx(float(np.linalg.norm(model.head.kernel[...])))
  assert "forward/dense_1/saturated" in with_kernels and "forward/dense_1/saturated" not in forward_only


def test_fitted_histograms_span_each_tensors_range_and_match_numpy():
  rng = np.random.default_rng(0)
  for x in (rng.standard_normal(1000) * 3, np.maximum(rng.standard_normal((50, 40)), 0), rng.uniform(-1e-6, 2e-6, 999)):
    h = jax.jit(probes.fitted_histogram, static_argnums=1)(jnp.asarray(x, jnp.float32), 20)
    edges, counts = np.asarray(h["edges"]), np.asarray(h["counts"])
    x32 = np.asarray(x, np.float32).ravel()
    assert edges[0] == x32.min() and edges[-1] == x32.max() and len(edges) == 21
    np.testing.assert_allclose(np.diff(edges), (x32.max() - x32.min()) / 20, rtol=1e-4)
    expected = np.histogram(x32.astype(np.float64), edges.astype(np.float64))[0]
    assert counts.sum() == x32.size and np.abs(counts - expected).sum() <= 2  # an edge value may round either way
  h = probes.fitted_histogram(jnp.array([2.0, 2.0, np.nan, np.inf]), 4)  # constant; non-finite values not counted
  np.testing.assert_array_equal(h["edges"], [1.5, 1.75, 2.0, 2.25, 2.5])
  np.testing.assert_array_equal(h["counts"], [0, 0, 2, 0])
  assert probes.fitted_histogram(jnp.full(3, np.nan), 2)["counts"].sum() == 0


def test_jacobian_mean_singular_value_matches_numpy_svd():
  model, batch = _mlp("tanh", widths=(16, 8, 8)), _batch(n=4)
  got = probes.jacobian_singular_values(model, jnp.asarray(batch["x"]))
  _, acts = model.forward(jnp.asarray(batch["x"]))
  for i in range(2):
    z = np.asarray(acts[i]["pre"], np.float64)
    w = np.asarray(model.blocks[i + 1].layer.kernel[...], np.float64)
    ref = np.mean([np.linalg.svd(w.T * (1 - np.tanh(zb) ** 2)[None], compute_uv=False) for zb in z])
    assert float(got[f"jacobian/dense_{i}/mean_sv"]) == pytest.approx(ref, rel=1e-5)


# --- the papers' numbers at init ----------------------------------------------------------------


def _gaussian_batch(n, d, mean=0.0, std=1.0, seed=0):
  rng = np.random.default_rng(seed)
  return {"x": (mean + std * rng.standard_normal((n, d))).astype(np.float32),
          "y": rng.integers(0, 10, n).astype(np.int32)}


def _probe(batch, seeds=2, **settings):
  """``probe_init``'s statistics averaged over ``seeds`` parameter draws."""
  c = C.with_preset(None, **settings)
  build = lambda key: C.make_model(c, batch["x"].shape[1:], 10, nnx.Rngs(params=key))
  keys = jax.random.split(jax.random.key(0), seeds)
  return {k: v.mean() for k, v in probes.probe_init(build, batch, keys, bounds=C.activation_bounds(c)).items()}


def test_relu_depth_30_he_keeps_variance_xavier_halves_it_per_layer():
  batch = _gaussian_batch(64, 512)
  he = _probe(batch, activation="relu", init="he_normal", depth=30, width=(512,))
  lecun = _probe(batch, activation="relu", init="lecun_normal", depth=30, width=(512,))  # Var[W] = 1/fan_in
  for s, low, high in ((he, 0.5, 2.0), (lecun, 2.0**-29 / 3, 2.0**-29 * 3)):
    forward = s["forward/dense_29/pre_var"] / s["forward/dense_0/pre_var"]
    backward = s["backward/dense_0/grad_var"] / s["backward/dense_29/grad_var"]
    assert low <= forward <= high and low <= backward <= high, (forward, backward)


def test_tanh_standard_init_gradients_shrink_toward_the_input_xavier_stays_level(mnist):
  rng = np.random.default_rng(0)
  idx = rng.choice(len(mnist.train_y), 300, replace=False)  # Glorot & Bengio: a fixed set of 300 examples
  batch = {"x": mnist.train_x[idx], "y": mnist.train_y[idx]}
  std = {}
  for init in ("glorot_standard", "glorot_uniform"):
    s = _probe(batch, activation="tanh", init=init, depth=5, width=(1000,))
    std[init] = np.sqrt([s[f"backward/dense_{i}/grad_var"] for i in range(5)])
  per_layer = std["glorot_standard"][:-1] / std["glorot_standard"][1:]
  np.testing.assert_allclose(per_layer, 1 / np.sqrt(3), rtol=0.06)  # 1 → 0.57 → 0.33 → 0.18 → 0.10
  xavier = std["glorot_uniform"] / std["glorot_uniform"].max()
  assert xavier.min() >= 0.75, xavier


@pytest.mark.parametrize("activation,init", [("relu", "he_normal"), ("tanh", "glorot_normal"),
                                             ("selu", "lecun_normal")])
def test_measured_forward_variance_follows_theory(activation, init):
  batch = _gaussian_batch(128, 512)
  depth, width = 8, 512
  s = _probe(batch, seeds=8, activation=activation, init=init, depth=depth, width=(width,))
  measured = np.array([s[f"forward/dense_{i}/pre_var"] for i in range(depth)])
  weight_var = {"he_normal": 2 / width, "glorot_normal": 2 / (2 * width), "lecun_normal": 1 / width}[init]
  predicted = theory.predicted_forward(activations.get(activation), float(np.mean(batch["x"] ** 2)),
                                       [512] + [width] * (depth - 1), [weight_var] * depth)
  np.testing.assert_allclose(measured, predicted, rtol=0.10)


def test_selu_lecun_drives_mean_to_0_and_variance_to_1():
  # Klambauer et al. 2017: inputs with mean 0.5, variance 4 reach the (0, 1) fixed point by layer 16–32.
  c = C.with_preset(None, activation="selu", init="lecun_normal", depth=32, width=(1000,))
  x = _gaussian_batch(64, 1000, mean=0.5, std=2.0)["x"]
  model = C.make_model(c, (1000,), 10, nnx.Rngs(params=jax.random.key(0)))
  stats = jax.jit(lambda m, x: probes.forward_stats(**m.forward(x)[1][31]))(model, x)
  assert abs(float(stats["act_mean"])) < 0.05 and abs(float(stats["act_var"]) - 1) < 0.05, stats
