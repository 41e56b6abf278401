import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lab10 import activations, config as C, initializers, models, probes, runs, theory, train


def _mlp(activation="tanh", widths=(16, 8), init="glorot_normal", seed=0, in_features=12):
  return models.MLP(in_features, widths, 3, activation=activations.get(activation),
                    kernel_init=initializers.kernel(init), bias_init=initializers.bias("normal", std=0.5),
                    rngs=nnx.Rngs(params=jax.random.key(seed)))


def _batch(n=20, d=12, scale=2.0, seed=1):
  rng = np.random.default_rng(seed)
  return {"x": (scale * rng.standard_normal((n, d))).astype(np.float32), "y": rng.integers(0, 3, n).astype(np.int32)}


def _numpy_reference(model, batch, phi, dphi, bounds):
  """Forward and backward pass of the MLP in float64 NumPy, and every statistic from its definition."""
  f64 = lambda v: np.asarray(v[...], np.float64)
  kernels = [f64(b.layer.kernel) for b in model.blocks] + [f64(model.head.kernel)]
  biases = [f64(b.layer.bias) for b in model.blocks] + [f64(model.head.bias)]
  h, zs, hs = np.asarray(batch["x"], np.float64), [], []
  for w, b in zip(kernels[:-1], biases[:-1]):
    zs.append(h @ w + b)
    h = phi(zs[-1])
    hs.append(h)
  logits = h @ kernels[-1] + biases[-1]
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  n = len(batch["y"])
  delta = (p - np.eye(3)[batch["y"]]) / n  # ∂L/∂logits of the mean cross-entropy
  grads, deltas = [None] * len(kernels), [None] * len(zs)
  grads[-1] = hs[-1].T @ delta
  for l in range(len(zs) - 1, -1, -1):
    delta = (delta @ kernels[l + 1].T) * dphi(zs[l])
    deltas[l] = delta
    grads[l] = (hs[l - 1] if l else np.asarray(batch["x"], np.float64)).T @ delta
  ref = {}
  for l, (z, h, d) in enumerate(zip(zs, hs, deltas)):
    name = f"dense_{l}"
    ref.update({f"forward/{name}/pre_mean": z.mean(), f"forward/{name}/pre_var": z.var(),
                f"forward/{name}/act_mean": h.mean(), f"forward/{name}/act_var": h.var(),
                f"forward/{name}/act_abs_p98": np.percentile(np.abs(h), 98),
                f"forward/{name}/dead": np.mean(np.all(z <= 0, axis=0)),
                f"backward/{name}/grad_mean": d.mean(), f"backward/{name}/grad_var": d.var()})
    if bounds is not None:
      lo, hi = bounds
      ref[f"forward/{name}/saturated"] = np.mean((h < lo + 0.01 * (hi - lo)) | (h > hi - 0.01 * (hi - lo)))
  for name, w, g in zip([f"dense_{l}" for l in range(len(zs))] + ["head"], kernels, grads):
    ref.update({f"params/{name}/norm": np.sqrt(np.sum(w**2)), f"grads/{name}/norm": np.sqrt(np.sum(g**2)),
                f"grads/{name}/var": g.var()})
  return ref, grads


def _assert_close(got, ref, rtol=1e-5, atol=1e-9):
  assert set(got) == set(ref), f"keys differ: {set(got) ^ set(ref)}"
  bad = {k: (float(got[k]), ref[k]) for k in ref if not math.isclose(float(got[k]), ref[k], rel_tol=rtol, abs_tol=atol)}
  assert not bad, bad


TANH = (np.tanh, lambda z: 1 - np.tanh(z) ** 2, (-1.0, 1.0))
RELU = (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(np.float64), None)


@pytest.mark.parametrize("activation,reference", [("tanh", TANH), ("relu", RELU)])
def test_every_statistic_matches_a_float64_numpy_reference(activation, reference):
  model, batch = _mlp(activation), _batch()
  if activation == "relu":  # make dead units: biases far below any pre-activation
    model.blocks[0].layer.bias[...] = model.blocks[0].layer.bias[...].at[:5].set(-100.0)
  phi, dphi, bounds = reference
  with jax.default_matmul_precision("highest"):
    got = jax.jit(lambda m, b: probes.init_stats(m, b, bounds=bounds))(model, batch)
  ref, _ = _numpy_reference(model, batch, phi, dphi, bounds)
  _assert_close(got, ref)
  if activation == "relu":
    assert float(got["forward/dense_0/dead"]) >= 5 / 16
  else:
    assert 0 < float(got["forward/dense_0/saturated"]) < 1  # the check is not vacuous


def test_logged_train_step_reports_the_update_it_made():
  model, batch = _mlp("tanh"), _batch()
  tx = optax.sgd(0.1)
  graphdef, state = train.init_state(model, tx, jax.random.key(0))
  with jax.default_matmul_precision("highest"):
    new_state, metrics = jax.jit(train.make_logged_train_step(graphdef, tx, bounds=TANH[2]))(state, batch)
  ref, grads = _numpy_reference(model, batch, *TANH)
  kernels = lambda params: [np.asarray(k, np.float64) for k in probes.layer_kernels(params, model.layer_names).values()]
  for name, g, new, old in zip(["dense_0", "dense_1", "head"], grads, kernels(new_state.params), kernels(state.params)):
    ref[f"updates/{name}/norm"] = np.sqrt(np.sum((new - old) ** 2))  # the change made, W_{t+1} − W_t
    ref[f"updates/{name}/ratio"] = ref[f"updates/{name}/norm"] / ref[f"params/{name}/norm"]
    # ... which is SGD's −0.1·∂L/∂W up to float32 rounding of W_{t+1}
    assert ref[f"updates/{name}/norm"] == pytest.approx(0.1 * np.sqrt(np.sum(g**2)), rel=1e-4)
  _assert_close(metrics["stats"], ref)
  assert float(metrics["loss"]) > 0


def test_kernel_statistics_name_the_right_layer_past_dense_9():
  # JAX hands dicts back with sorted keys (dense_10 before dense_2): kernels must be matched to layers by
  # the model's order, not by the order of the returned activations.
  widths = tuple(range(20, 32))  # 12 hidden layers of distinct widths
  model, batch = _mlp("tanh", widths=widths), _batch()
  loss = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(batch["x"]), batch["y"]).mean()
  grads = nnx.grad(loss)(model)
  build = lambda key: models.MLP(12, widths, 3, activation=jnp.tanh, kernel_init=initializers.kernel("glorot_normal"),
                                 bias_init=initializers.bias("normal", std=0.5), rngs=nnx.Rngs(params=key))
  stats = probes.probe_init(build, batch, jax.random.key(0)[None])  # the one key of _mlp(): the same network
  tx = optax.sgd(0.1)
  graphdef, state = train.init_state(model, tx, jax.random.key(0))
  _, metrics = jax.jit(train.make_logged_train_step(graphdef, tx))(state, batch)
  for i, name in enumerate(model.layer_names):
    kernel, grad = model.blocks[i].layer.kernel[...], grads.blocks[i].layer.kernel[...]
    assert float(stats[f"params/{name}/norm"]) == pytest.approx(float(jnp.linalg.norm(kernel)), rel=1e-5), name
    assert float(stats[f"grads/{name}/norm"]) == pytest.approx(float(jnp.linalg.norm(grad)), rel=1e-3), name
    assert float(metrics["stats"][f"params/{name}/norm"]) == pytest.approx(float(jnp.linalg.norm(kernel)), rel=1e-5)


@pytest.mark.parametrize("every", [1, 3, 10, 25])
def test_logged_epoch_trains_exactly_like_the_plain_one(every):
  model = _mlp("tanh")
  tx = optax.adam(1e-2)
  graphdef, state = train.init_state(model, tx, jax.random.key(0))
  rng = np.random.default_rng(3)
  x = rng.standard_normal((50, 3, 4, 1)).astype(np.float32)  # 10 steps of 5
  y = rng.integers(0, 3, 50).astype(np.int32)
  key = jax.random.key(4)
  plain = train.make_epoch(train.make_train_step(graphdef, tx), 5)
  logged = train.make_epoch(train.make_train_step(graphdef, tx), 5, log_every=every,
                            logged_step=train.make_logged_train_step(graphdef, tx, bounds=TANH[2]))
  copy = jax.tree.map(jnp.array, state)
  s1, m1 = plain(state, x, y, key)
  s2, m2 = logged(copy, x, y, key)
  np.testing.assert_allclose(m2["loss"], m1["loss"], rtol=1e-6)
  np.testing.assert_array_equal(m2["forward_finite"], m1["forward_finite"])
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert m2["logged_index"].tolist() == list(range(0, 10, every))
  assert m2["stats"]["forward/dense_0/act_var"].shape == (len(range(0, 10, every)),)


@pytest.mark.parametrize("shape,q", [((100, 64), 98.0), ((7,), 98.0), ((1,), 50.0), ((3, 5, 5, 2), 0.0),
                                     ((40,), 100.0), ((64, 32), 98.0)])
def test_abs_percentile_equals_numpy(shape, q):
  x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
  x.reshape(-1)[: x.size // 3] = 1.5  # ties
  assert float(probes.abs_percentile(jnp.asarray(x), q)) == pytest.approx(
      np.percentile(np.abs(x.astype(np.float64)), q), rel=1e-6)


def test_abs_percentiles_equal_numpy_on_hard_cases_searched_together():
  rng = np.random.default_rng(1)
  cases = [np.maximum(rng.standard_normal((50, 64)), 0),                  # relu: half exact zeros
           np.tanh(3 * rng.standard_normal((50, 64))),                    # saturated near ±1
           np.zeros((50, 64)),                                            # a dead layer
           np.where(rng.random((50, 64)) < 0.99, 0.0, rng.random((50, 64))),  # 99% zeros
           rng.standard_cauchy((50, 64)),                                 # heavy tails
           np.exp(5 * rng.standard_normal((50, 64))),                     # values over 10 decades
           rng.integers(0, 3, (50, 64)).astype(float),                    # three values only
           rng.standard_normal(7), np.array([2.5])]                       # other sizes: their own searches
  xs = [jnp.asarray(c, jnp.float32) for c in cases]
  for q in (98.0, 50.0, 0.0, 100.0, 99.9):
    got = jax.jit(lambda xs: probes.abs_percentiles(xs, q))(xs)
    for c, g in zip(cases, got):
      want = np.percentile(np.abs(c.astype(np.float32).astype(np.float64)), q)
      assert float(g) == pytest.approx(want, rel=1e-6, abs=0), (q, c.shape)


@pytest.mark.parametrize("rows_fn", [probes.search_percentile_rows, probes.sort_percentile_rows])
def test_percentile_rows_equal_numpy_at_layer_size(rows_fn):
  # 100 × 512, where the search's first passes count a sample (every 17th element) before the full data.
  rng = np.random.default_rng(2)
  unit = np.arange(51200) % 512
  cases = [np.maximum(rng.standard_normal(51200) * np.exp(rng.standard_normal(512))[unit], 0),  # unit scales
           np.tanh(3 * rng.standard_normal(51200)),
           np.exp(5 * rng.standard_normal(51200)),
           np.zeros(51200),
           np.where(np.arange(51200) % 17 == 0, 100.0, rng.random(51200)),  # the sample sees only the 100s
           np.where(np.arange(51200) % 17 == 0, 0.0, 1 + rng.random(51200)),  # … only zeros
           rng.integers(0, 3, 51200).astype(float)]
  a = np.abs(np.stack(cases)).astype(np.float32)
  for q in (98.0, 50.0, 99.9, 5.0):
    got = np.asarray(jax.jit(lambda a: rows_fn(a, q))(jnp.asarray(a)))
    want = np.percentile(a.astype(np.float64), q, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=f"q={q}")


def test_cpu_percentile_is_the_search_not_a_sort():
  hlo = jax.jit(probes.abs_percentile).lower(jnp.ones((100, 512))).compile().as_text()
  assert re.search(r" while\(", hlo) and not re.search(r" sort\(", hlo)


def test_histogram_counts_clip_into_the_end_bins():
  x = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 3
  edges = probes.histogram_edges((-1.0, 1.0), bins=20)
  counts = np.asarray(probes.histogram(jnp.asarray(x), jnp.asarray(edges)))
  expected = np.histogram(np.clip(x, -1, 1), edges)[0]
  np.testing.assert_array_equal(counts, expected)
  assert counts.sum() == 1000


def test_jacobian_mean_singular_value_matches_numpy_svd():
  model, batch = _mlp("tanh", widths=(16, 8, 8)), _batch(n=4)
  got = probes.jacobian_singular_values(model, jnp.asarray(batch["x"]))
  _, acts = model.forward(jnp.asarray(batch["x"]))
  for i in range(2):
    z = np.asarray(acts[f"dense_{i}"]["pre"], np.float64)
    w = np.asarray(model.blocks[i + 1].layer.kernel[...], np.float64)
    ref = np.mean([np.linalg.svd(w.T * (1 - np.tanh(zb) ** 2)[None], compute_uv=False) for zb in z])
    assert float(got[f"jacobian/dense_{i}/mean_sv"]) == pytest.approx(ref, rel=1e-5)


# --- the papers' numbers at init ----------------------------------------------------------------


def _gaussian_batch(n, d, mean=0.0, std=1.0, seed=0):
  rng = np.random.default_rng(seed)
  return {"x": (mean + std * rng.standard_normal((n, d))).astype(np.float32),
          "y": rng.integers(0, 10, n).astype(np.int32)}


def _probe(batch, seeds=2, **settings):
  c = C.with_preset(None, **settings)
  build = lambda key: C.make_model(c, batch["x"].shape[1:], 10, nnx.Rngs(params=key))
  return probes.probe_init(build, batch, jax.random.split(jax.random.key(0), seeds), bounds=C.activation_bounds(c))


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
  stats = jax.jit(lambda m, x: probes.forward_stats(**m.forward(x)[1]["dense_31"]))(model, x)
  assert abs(float(stats["act_mean"])) < 0.05 and abs(float(stats["act_var"]) - 1) < 0.05, stats


# --- during training ----------------------------------------------------------------------------


def test_training_with_log_stats_every_writes_every_logged_step(tmp_path):
  from lab10 import data

  args = C.parser("test").parse_args(["--dataset", "synthetic", "--depth", "3", "--width", "16", "--activation",
                                      "tanh", "--epochs", "2", "--batch_size", "100", "--log_stats_every", "3",
                                      "--log_histograms", "true", "--workdir", str(tmp_path)])
  workdir = train.fit(C.from_args(args), data.synthetic(sizes=(1000, 200)), verbose=False)
  records = runs.read_jsonl(workdir / "stats.jsonl")
  # 10 steps per epoch; every epoch logs its local steps 0, 3, 6, 9.
  assert [r["step"] for r in records] == [0, 3, 6, 9, 10, 13, 16, 19] and [r["epoch"] for r in records][-1] == 2
  for r in records:
    for layer in ("dense_0", "dense_1", "dense_2"):
      for key in ("forward/{}/act_var", "forward/{}/saturated", "backward/{}/grad_var", "grads/{}/norm",
                  "updates/{}/ratio"):
        assert math.isfinite(r[key.format(layer)]), key.format(layer)
    assert r["forward/dense_0/act_var"] > 0 and r["grads/head/norm"] > 0
  metrics = runs.read_jsonl(workdir / "metrics.jsonl")
  assert records[0]["loss"] == pytest.approx(runs.read_jsonl(workdir / "metrics.jsonl")[0]["train_loss"], rel=0.2)
  assert len(metrics) == 2
  hist = np.load(workdir / "stats_histograms.npz")
  assert hist["step"].tolist() == [0, 3, 6, 9, 10, 13, 16, 19] and hist["edges"].tolist()[0] == -1.0
  assert hist["epoch"].tolist() == [1] * 4 + [2] * 4
  assert (hist["dense_2"].sum(axis=1) == 100 * 16).all()


def test_probe_init_script_writes_one_row_per_network_and_layer(tmp_path):
  import csv
  import subprocess
  import sys

  from conftest import ROOT

  out = tmp_path / "probe" / "init.csv"
  result = subprocess.run([sys.executable, str(ROOT / "scripts" / "probe_init.py"), "--activations", "tanh",
                           "--inits", "glorot_standard,glorot_uniform", "--depths", "3", "--widths", "64",
                           "--seeds", "2", "--batch", "40", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  rows = list(csv.DictReader(open(out)))
  assert [(r["init"], r["layer"]) for r in rows] == [(i, str(l)) for i in ("glorot_standard", "glorot_uniform")
                                                     for l in range(3)]
  var = {(r["init"], int(r["layer"])): float(r["forward/pre_var"]) for r in rows}
  # Standard init: n·Var[W] = 1/3, so the (near-linear) tanh signal loses variance layer after layer.
  assert var["glorot_standard", 2] < 0.5 * var["glorot_standard", 1] < 0.25 * var["glorot_standard", 0]
  assert (out.with_suffix(".json")).exists()
