"""What several figures' experiments share: MNIST subsets, MLP configs, one backward pass that keeps every
per-layer array, a probed training run, and the sizes several figures use."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lab10 import config as config_lib
from lab10 import data, probes, sweep, train
from lab10 import step as step_lib

GLOROT_PROBE_EXAMPLES = 300  # Glorot & Bengio: statistics on 300 fixed test images
GRAD_PROBE_EXAMPLES = 500    # weight-gradient norms during training, on 500 fixed training images
LAB_BATCH = 100              # the seed labs' minibatch size
MOMENTUM = 0.9               # the heavy-ball momentum of every "SGD with momentum" run
NUM_CLASSES = 10             # MNIST's digits


def mnist(data_dir, n_train: int | None = None, n_test: int | None = None) -> data.Dataset:
  ds = data.load("mnist", data_dir)
  return dataclasses.replace(ds, train_x=ds.train_x[:n_train], train_y=ds.train_y[:n_train],
                             test_x=ds.test_x[:n_test], test_y=ds.test_y[:n_test])


def build_model(c: config_lib.Config, input_shape, seed: int = 0, num_classes: int = NUM_CLASSES):
  return config_lib.make_model(c, input_shape, num_classes, nnx.Rngs(params=jax.random.key(seed)))


def mlp_config(**overrides) -> config_lib.Config:
  """An MLP config with zero biases (the papers' setting) unless overridden."""
  return config_lib.with_preset(None, **{"bias_init": "zeros", **overrides})


def floats(values) -> list:
  """Plain floats for JSON (NaN stays NaN; runs.write_json turns it into null)."""
  return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def backprop(model, x: jax.Array, loss: Callable[[jax.Array], jax.Array]) -> dict:
  """One forward/backward pass (``probes.layer_gradients`` of ``loss(logits) -> scalar``): per hidden layer
  the full arrays ``post`` = h, ``pre`` = z, ``dz`` = ∂L/∂z and ``dw`` = ∂L/∂W.

  Kept beside ``probes.init_stats``, which reduces these to moments of the cross-entropy's gradients: the
  Glorot histograms need every value, and variance_vs_depth needs E[z²] of another loss in float64.
  """
  acts, deltas, grads = probes.layer_gradients(model, x, loss)
  dw = probes.layer_kernels(grads)
  return {name: {"pre": a["pre"], "post": a["post"], "dz": d, "dw": w}
          for name, a, d, w in zip(model.layer_names, acts, deltas, dw)}


def train_probed(c: config_lib.Config, ds: data.Dataset, *, steps: int, every: int,
                  probe: Callable[[nnx.Module], dict] | None = None) -> dict:
  """Train ``c`` on ``ds`` for ``steps`` minibatch steps through ``train.loop`` (``c.seed``'s key plan); at
  step 0 and every ``every`` steps call ``probe(model)`` (jitted; returns a dict of arrays). Returns ``steps``
  (probe points), ``loss`` and ``accuracy`` (means over each piece of ``every`` training steps), ``probes``
  (one dict per probe point) and ``test_accuracy`` at the end.

  These figures probe a fixed set of examples in eval mode, where ``fit``'s ``--log_stats_every`` measures
  each logged training minibatch in train mode."""
  s = train.setup(c, ds.input_shape, ds.num_classes)
  steps_per_epoch = len(ds.train_y) // c.batch_size
  run_epoch = train.epoch_for(c, s)  # compiled once per network in this process
  run_probe = jax.jit(lambda state: probe(nnx.merge(s.graphdef, state.params, state.rest)) if probe else {})
  x, y = jax.device_put(ds.train_x), jax.device_put(ds.train_y)
  out = {"steps": [0], "loss": [], "accuracy": [], "probes": [jax.device_get(run_probe(s.state))]}
  state, done, losses, accuracies = s.state, 0, [], []
  # Pieces that end at every probe point and every epoch's end.
  for _, _, state, metrics, probed in train.loop(run_epoch, s.state, x, y, s.data_key,
                                                 chunk=math.gcd(every, steps_per_epoch),
                                                 epochs=range(1, -(-steps // steps_per_epoch) + 1),
                                                 steps_per_epoch=steps_per_epoch, measure=run_probe,
                                                 precision=c.matmul_precision):
    done += len(metrics["loss"])
    losses.append(metrics["loss"])
    accuracies.append(metrics["accuracy"])
    if done % every and done < steps:
      continue
    out["steps"].append(done)
    out["probes"].append(probed)
    out["loss"].append(float(np.mean(np.concatenate(losses))))
    out["accuracy"].append(float(np.mean(np.concatenate(accuracies))))
    losses, accuracies = [], []
    if done >= steps:
      break
  evaluate = train.evaluate_for(s.graphdef)
  out["test_accuracy"] = float(evaluate(state.params, state.rest, ds.test_x, ds.test_y)["accuracy"])
  return out


def train_seeds(c: config_lib.Config, seeds, ds: data.Dataset, *, steps: int, every: int) -> dict:
  """``c`` trained for each of ``seeds`` at once as ``lab10.sweep`` trains its models (model i is ``c`` with seed
  ``seeds[i]``, its init and data order as ``fit``'s), ``steps`` minibatch steps. Returns ``steps`` (the points
  every ``every`` steps), ``loss`` and ``accuracy`` as arrays (points, models) of means over each piece of
  ``every`` training steps, and ``test_accuracy`` (models,) at the end."""
  configs = sweep.grid(c, seeds)
  graphdef, tx, states, data_keys = sweep.init_models(configs, ds.input_shape, ds.num_classes)
  epoch = train.make_epoch(step_lib.make_train_step(graphdef, tx), c.batch_size)

  @functools.cache
  def pieces_of(count: int):  # the models' epoch pieces of ``count`` steps (sweep.OverModels: vmap or in turn)
    return sweep.OverModels(lambda s, x, y, k, e, start: epoch(s, x, y, k, e, start, count),
                            (0, None, None, 0, None, None))

  steps_per_epoch = len(ds.train_y) // c.batch_size
  out, losses, accuracies, done = {"steps": [], "loss": [], "accuracy": []}, [], [], 0
  for _, _, states, metrics, _ in train.loop(lambda s, x, y, k, e, start, count: pieces_of(count)(s, x, y, k, e, start),
                                             states, jax.device_put(ds.train_x), jax.device_put(ds.train_y), data_keys,
                                             chunk=math.gcd(every, steps_per_epoch),
                                             epochs=range(1, -(-steps // steps_per_epoch) + 1),
                                             steps_per_epoch=steps_per_epoch, measure=lambda states: None,
                                             precision=c.matmul_precision):
    done += metrics["loss"].shape[1]
    losses.append(metrics["loss"])
    accuracies.append(metrics["accuracy"])
    if done % every and done < steps:
      continue
    out["steps"].append(done)
    out["loss"].append(np.concatenate(losses, axis=1).mean(axis=1))
    out["accuracy"].append(np.concatenate(accuracies, axis=1).mean(axis=1))
    losses, accuracies = [], []
    if done >= steps:
      break
  evaluate = sweep.make_sweep_evaluate(graphdef)
  with jax.default_matmul_precision(c.matmul_precision):
    out["test_accuracy"] = np.asarray(evaluate(states.params, states.rest, ds.test_x, ds.test_y)["accuracy"])
  return {**out, "loss": np.array(out["loss"]), "accuracy": np.array(out["accuracy"])}


def grad_norms(batch: dict) -> Callable:
  """A probe: the weight-gradient norm ‖∂L/∂W_l‖ of every hidden layer, of the cross-entropy on ``batch``."""

  def probe(model):
    stats = probes.init_stats(model, batch)  # jitted: XLA drops the statistics not returned
    return {"norms": jnp.stack([stats[f"grads/{n}/norm"] for n in model.layer_names])}

  return probe


def paired_difference(a, b) -> dict:
  """``a`` − ``b`` paired by seed (NaN where either is missing): ``mean``, ``std`` (ddof 1), ``n`` pairs, and
  ``resolved``: every paired difference has the same sign and the mean exceeds their std — a difference claimed
  only beyond its seed spread."""
  d = np.array([x - y for x, y in zip(a, b) if x == x and y == y])
  std = float(d.std(ddof=1)) if len(d) > 1 else math.nan
  resolved = len(d) > 1 and bool(np.all(d > 0) or np.all(d < 0)) and abs(float(d.mean())) > std
  return {"mean": float(d.mean()) if len(d) else math.nan, "std": std, "n": len(d), "resolved": resolved}
