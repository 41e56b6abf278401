"""lab10.anymodel on models lab10 did not write — the Flax NNX MNIST tutorial's CNN as published, a residual MLP
and a pre-LayerNorm Transformer — against float64 references (tests/anymodel_reference.py); lab10's own MLP
through both paths; the errors for layers it cannot take and for linen models."""

import json
import math
import os
import subprocess
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from conftest import ROOT
from lab10 import anymodel, config, probes

_List = getattr(nnx, "List", list)


class TutorialCNN(nnx.Module):
  """The CNN of the Flax NNX MNIST tutorial (flax.readthedocs.io, "MNIST tutorial"), as published."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
    self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
    self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
    self.linear2 = nnx.Linear(256, 10, rngs=rngs)

  def __call__(self, x):
    x = self.avg_pool(nnx.relu(self.conv1(x)))
    x = self.avg_pool(nnx.relu(self.conv2(x)))
    x = x.reshape(x.shape[0], -1)  # flatten
    x = nnx.relu(self.linear1(x))
    x = self.linear2(x)
    return x


class ResidualMLP(nnx.Module):
  def __init__(self, d_in: int, width: int, depth: int, classes: int, *, rngs: nnx.Rngs):
    self.inp = nnx.Linear(d_in, width, rngs=rngs)
    self.layers = _List([nnx.Linear(width, width, rngs=rngs) for _ in range(depth)])
    self.head = nnx.Linear(width, classes, rngs=rngs)

  def __call__(self, x):
    h = self.inp(x)
    for layer in self.layers:
      h = h + nnx.relu(layer(h))
    return self.head(h)


class Block(nnx.Module):
  def __init__(self, d: int, heads: int, *, rngs: nnx.Rngs):
    self.ln1 = nnx.LayerNorm(d, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=d, decode=False, rngs=rngs)
    self.ln2 = nnx.LayerNorm(d, rngs=rngs)
    self.up = nnx.Linear(d, 4 * d, rngs=rngs)
    self.down = nnx.Linear(4 * d, d, rngs=rngs)

  def __call__(self, x):
    x = x + self.attn(self.ln1(x))
    return x + self.down(nnx.gelu(self.up(self.ln2(x))))


class PreLNTransformer(nnx.Module):
  def __init__(self, vocab: int, d: int, heads: int, depth: int, *, rngs: nnx.Rngs):
    self.embed = nnx.Embed(vocab, d, rngs=rngs)
    self.blocks = _List([Block(d, heads, rngs=rngs) for _ in range(depth)])
    self.ln = nnx.LayerNorm(d, rngs=rngs)
    self.head = nnx.Linear(d, vocab, rngs=rngs)

  def __call__(self, tokens):
    x = self.embed(tokens)
    for block in self.blocks:
      x = block(x)
    return self.head(self.ln(x))


def xent_loss(model, batch):
  return optax.softmax_cross_entropy_with_integer_labels(model(batch["x"]), batch["y"]).mean()


def next_token_loss(model, batch):
  logits = model(batch["tokens"])
  return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], batch["tokens"][:, 1:]).mean()


def _cases():
  rng = np.random.default_rng(0)
  tokens = np.stack([(np.arange(9) * s + o) % 13 for s, o in zip([1, 2, 3, 5], [0, 4, 7, 2])]).astype(np.int32)
  return {
      "tutorial_cnn": (TutorialCNN(rngs=nnx.Rngs(0)), xent_loss,
                       {"x": rng.random((4, 28, 28, 1), np.float32), "y": np.array([3, 1, 4, 1], np.int32)}),
      "residual_mlp": (ResidualMLP(20, 32, 4, 5, rngs=nnx.Rngs(1)), xent_loss,
                       {"x": rng.standard_normal((16, 20)).astype(np.float32), "y": rng.integers(0, 5, 16).astype(np.int32)}),
      "pre_ln_transformer": (PreLNTransformer(13, 16, 2, 2, rngs=nnx.Rngs(2)), next_token_loss, {"tokens": tokens}),
  }


def _params(model) -> dict[str, np.ndarray]:
  return {".".join(map(str, path)): np.asarray(node[...]) for path, node in nnx.iter_graph(model)
          if isinstance(node, nnx.Param)}


@pytest.fixture(scope="module")
def measured_and_reference(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("anymodel")
  out = {}
  for name, (model, loss_fn, batch) in _cases().items():
    with jax.default_matmul_precision("highest"):
      loss, grads, stats = jax.jit(lambda m, b: anymodel.value_and_grad(loss_fn)(m, b))(model, batch)
    np.savez(tmp / f"{name}.npz", model=name, **{f"P.{k}": v for k, v in _params(model).items()},
             **{f"batch.{k}": v for k, v in batch.items()})
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "anymodel_reference.py"), str(tmp / f"{name}.npz"),
                           str(tmp / f"{name}.json")], env={**os.environ, "JAX_ENABLE_X64": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out[name] = (float(loss), grads, {k: float(v) for k, v in stats.items()},
                 json.loads((tmp / f"{name}.json").read_text()))
  return out


@pytest.mark.parametrize("name", ["tutorial_cnn", "residual_mlp", "pre_ln_transformer"])
def test_every_statistic_matches_a_float64_reference(measured_and_reference, name):
  _, _, got, ref = measured_and_reference[name]
  want, scale = ref["stats"], ref["scale"]
  assert set(got) == set(want), set(got) ^ set(want)
  # A mean's float32 error is relative to its tensor's spread, not to the mean (which may be near 0).
  bad = {k: (got[k], v) for k, v in want.items()
         if not math.isclose(got[k], v, rel_tol=1e-5, abs_tol=1e-5 * scale.get(k, 0.0) + 1e-12)}
  assert not bad, bad
  # Names are the layers' paths in the model; call_order lists them as the forward pass calls them.
  model, loss_fn, batch = _cases()[name]
  assert anymodel.call_order(loss_fn)(model, batch) == ref["order"]


def test_the_transformers_attention_layers_are_all_there(measured_and_reference):
  got = measured_and_reference["pre_ln_transformer"][2]
  for block in (0, 1):
    for layer in ("attn.query", "attn.key", "attn.value", "attn.out", "up", "down"):
      assert f"backward/blocks.{block}.{layer}/grad_var" in got and got[f"grads/blocks.{block}.{layer}/norm"] > 0


def test_loss_and_gradients_are_nnx_value_and_grads(measured_and_reference):
  for name, (model, loss_fn, batch) in _cases().items():
    loss, grads, _, _ = measured_and_reference[name]
    with jax.default_matmul_precision("highest"):
      want_loss, want_grads = nnx.value_and_grad(loss_fn)(model, batch)
    assert loss == pytest.approx(float(want_loss), rel=1e-6)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):  # (the key bias's are 0 ± 1e-8)
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_lab10s_own_mlp_gives_the_numbers_of_lab10_probes():
  c = config.with_preset(None, depth=3, width=(24,), activation="relu", init="he_normal", bias_init="normal",
                         bias_std=0.1)
  model = config.make_model(c, (4, 4, 1), 10, nnx.Rngs(params=3))
  rng = np.random.default_rng(3)
  batch = {"x": rng.random((32, 4, 4, 1), np.float32), "y": rng.integers(0, 10, 32).astype(np.int32)}
  with jax.default_matmul_precision("highest"):
    theirs = probes.init_stats(model, batch)
    _, _, ours = anymodel.value_and_grad(lambda m, b: probes.xent(b["y"])(m(b["x"])))(model, batch)
  shared = {}
  for i in range(3):
    layer = f"blocks.{i}.layer"
    shared.update({f"forward/{layer}/out_mean": f"forward/dense_{i}/pre_mean",
                   f"forward/{layer}/out_var": f"forward/dense_{i}/pre_var",
                   f"backward/{layer}/grad_mean": f"backward/dense_{i}/grad_mean",
                   f"backward/{layer}/grad_var": f"backward/dense_{i}/grad_var",
                   f"params/{layer}/norm": f"params/dense_{i}/norm", f"grads/{layer}/norm": f"grads/dense_{i}/norm",
                   f"grads/{layer}/var": f"grads/dense_{i}/var"})
    below = f"blocks.{i + 1}.layer" if i < 2 else "head"  # the layer the signal of dense_i enters
    shared.update({f"forward/{below}/in_mean": f"forward/dense_{i}/act_mean",
                   f"forward/{below}/in_var": f"forward/dense_{i}/act_var",
                   f"forward/{below}/in_abs_p98": f"forward/dense_{i}/act_abs_p98",
                   f"forward/{below}/in_dead": f"forward/dense_{i}/dead"})
  shared.update({"params/head/norm": "params/head/norm", "grads/head/norm": "grads/head/norm"})
  assert {k: float(ours[k]) for k in shared} == {k: float(theirs[v]) for k, v in shared.items()}
  assert 0 < float(ours["forward/head/in_dead"]) < 1  # the comparison includes dead units of a ReLU net


def test_updates_and_a_users_own_optax_step_under_nnx_jit():
  model = ResidualMLP(20, 32, 2, 5, rngs=nnx.Rngs(0))
  tx = optax.sgd(0.1)
  opt_state = tx.init(nnx.state(model, nnx.Param))
  rng = np.random.default_rng(0)
  batch = {"x": rng.standard_normal((8, 20)).astype(np.float32), "y": rng.integers(0, 5, 8).astype(np.int32)}

  @nnx.jit
  def step(model, opt_state, batch):
    before = anymodel.kernels(model)
    loss, grads, stats = anymodel.value_and_grad(xent_loss)(model, batch)
    updates, opt_state = tx.update(grads, opt_state)
    nnx.update(model, optax.apply_updates(nnx.state(model, nnx.Param), updates))
    return loss, opt_state, {**stats, **anymodel.update_stats(before, anymodel.kernels(model))}

  w0 = np.asarray(model.layers[0].kernel[...])
  loss, opt_state, stats = step(model, opt_state, batch)
  step_taken = np.asarray(model.layers[0].kernel[...]) - w0
  # SGD: the update is −lr·∂L/∂W, so its norm is lr × the gradient norm the same call measured.
  assert float(stats["updates/layers.0/norm"]) == pytest.approx(np.linalg.norm(step_taken), rel=1e-5)
  assert float(stats["updates/layers.0/norm"]) == pytest.approx(0.1 * float(stats["grads/layers.0/norm"]), rel=1e-5)
  assert float(stats["updates/layers.0/ratio"]) == pytest.approx(np.linalg.norm(step_taken) / np.linalg.norm(w0),
                                                                rel=1e-5)


def test_state_the_loss_changes_is_written_back_and_a_layer_called_twice_is_recorded_twice():
  class Shared(nnx.Module):
    def __init__(self, rngs):
      self.layer = nnx.Linear(6, 6, rngs=rngs)
      self.norm = nnx.BatchNorm(6, rngs=rngs)

    def __call__(self, x):
      return self.layer(self.norm(self.layer(x), use_running_average=False)).sum()

  model = Shared(nnx.Rngs(0))
  x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
  loss, _, stats = anymodel.value_and_grad(lambda m, x: m(x))(model, x)
  assert {k.split("/")[1] for k in stats} == {"layer", "layer@2"}
  assert "params/layer/norm" in stats and "params/layer@2/norm" not in stats
  assert not np.allclose(model.norm.mean[...], 0)  # the batch statistics the forward pass computed


def test_a_layer_of_an_unknown_kind_is_named_and_a_linen_model_refused():
  class MyDense(nnx.Module):
    def __init__(self, rngs):
      self.kernel = nnx.Param(jax.random.normal(rngs.params(), (3, 3)))

    def __call__(self, x):
      return x @ self.kernel[...]

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.first = nnx.Linear(3, 3, rngs=rngs)
      self.mine = MyDense(rngs)

  with pytest.raises(anymodel.UnknownLayer, match=r"layer mine \(MyDense\) holds a kernel"):
    anymodel.value_and_grad(lambda m, x: m.mine(m.first(x)).sum())(Net(nnx.Rngs(0)), jnp.ones((2, 3)))
  from flax import linen

  with pytest.raises(TypeError, match="Flax linen module; lab10.anymodel takes flax.nnx modules"):
    anymodel.value_and_grad(lambda m, x: 0.0)(linen.Dense(3), jnp.ones((2, 3)))


def test_the_readmes_example_runs_and_writes_a_run_to_tensorboard_can_read(tmp_path):
  readme = (ROOT / "README.md").read_text()
  code = readme.split("### Probe your own model\n")[1].split("```python\n")[1].split("```")[0]
  done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.strip().splitlines()[-1] == "['hidden', 'out']"
  lines = [json.loads(line) for line in (tmp_path / "runs" / "mine" / "stats.jsonl").read_text().splitlines()]
  assert [r["step"] for r in lines] == [0, 1, 2] and all(r["epoch"] == 1 for r in lines)
  assert lines[1]["loss"] < lines[0]["loss"] and lines[0]["updates/hidden/ratio"] > 0
  assert {"forward/hidden/in_var", "backward/out/grad_var", "grads/hidden/norm"} <= lines[0].keys()
  converted = subprocess.run([sys.executable, str(ROOT / "scripts" / "to_tensorboard.py"), "runs/mine"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert converted.returncode == 0, converted.stderr
  assert any((tmp_path / "runs" / "mine" / "tensorboard").glob("events.out.tfevents*"))


def test_the_logger_writes_due_steps_and_tensorboard_events_as_it_goes(tmp_path):
  with anymodel.Logger(tmp_path / "run", every=2, tensorboard=True) as log:
    for step in range(5):
      log.stats(step, {"grads/a/norm": jnp.float32(step)}, loss=1.0 / (step + 1))
    log.epoch(1, 5, test_accuracy=0.5)
    log.stats(6, {"grads/a/norm": jnp.float32(6.0)})
    assert any((tmp_path / "run" / "tensorboard").glob("events.out.tfevents*"))  # the first epoch, as it ended
  lines = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
  assert [(r["epoch"], r["step"], r["grads/a/norm"]) for r in lines] == [(1, 0, 0.0), (1, 2, 2.0), (1, 4, 4.0),
                                                                          (2, 6, 6.0)]
  assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text()) == {"epoch": 1, "step": 5, "test_accuracy": 0.5}
  with pytest.raises(ValueError, match="every=0 is out of range"):
    anymodel.Logger(tmp_path / "other", every=0)


def test_histograms_of_inputs_weights_and_gradients_reach_the_logger_and_tensorboard(tmp_path):
  import tb_events

  class Two(nnx.Module):
    def __init__(self, rngs):
      self.hidden, self.out = nnx.Linear(6, 5, rngs=rngs), nnx.Linear(5, 3, rngs=rngs)

    def __call__(self, x):
      return self.out(nnx.relu(self.hidden(x)))

  loss_fn = lambda model, x: jnp.mean(model(x) ** 2)
  model = Two(nnx.Rngs(0))
  x = jax.random.normal(jax.random.key(1), (8, 6))
  _, grads, stats = nnx.jit(lambda m, x: anymodel.value_and_grad(loss_fn, histograms=True)(m, x))(model, x)
  h = stats["histograms"]
  assert set(h) == {f"{kind}/{layer}" for kind in ("inputs", "weights", "grads") for layer in ("hidden", "out")}
  hidden_out = np.maximum(np.asarray(x) @ np.asarray(model.hidden.kernel[...]) + np.asarray(model.hidden.bias[...]), 0)
  for tag, values in [("inputs/hidden", np.asarray(x)), ("inputs/out", hidden_out),
                      ("weights/out", np.asarray(model.out.kernel[...])), ("grads/hidden", np.asarray(grads["hidden"]["kernel"][...]))]:
    assert int(h[tag]["counts"].sum()) == values.size, tag
    np.testing.assert_allclose(np.asarray(h[tag]["edges"])[[0, -1]], [values.min(), values.max()], rtol=1e-5, atol=1e-7)
  with anymodel.Logger(tmp_path / "run", every=1) as log:
    for step in range(2):
      log.stats(step, stats, loss=0.5)
    log.epoch(1, 2)
    log.stats(2, stats)
  with np.load(tmp_path / "run" / "stats_histograms.npz") as saved:
    assert saved["step"].tolist() == [0, 1, 2] and saved["epoch"].tolist() == [1, 1, 2]
    assert saved["weights/out/counts"].shape == (3, 50) and saved["grads/hidden/edges"].shape == (3, 51)
  assert "histograms" not in json.loads((tmp_path / "run" / "stats.jsonl").read_text().splitlines()[0])
  from lab10 import tensorboard
  tensorboard.convert(tmp_path / "run")
  _, hists = tb_events.read(tmp_path / "run" / "tensorboard")
  assert sorted(hists) == sorted(h) and [s for s, _ in hists["inputs/out"]] == [0, 1]  # the ended epoch
