"""Training: the loss, a pure jitted train step, whole epochs as one ``lax.scan``, evaluation, ``fit``.

The model lives as ``nnx.split`` state (``graphdef`` + parameter and non-parameter
``nnx.State``) so every step is a pure function ``(state, batch) -> (state, metrics)``;
``nnx.merge`` inside the traced function costs nothing at run time.

Random keys all derive from ``config.seed``: ``init`` (parameters), ``data``
(``fold_in(epoch)`` → the epoch's permutation) and ``dropout`` (``fold_in(step)``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lab10 import config as config_lib
from lab10 import data, devices, runs

EVAL_BATCH = 1000
TRAIN_EVAL_SIZE = 10_000  # training examples re-scored in eval mode each epoch (train vs test gap)


class TrainState(NamedTuple):
  params: nnx.State        # nnx.Param variables
  rest: nnx.State          # everything else: batch-norm statistics
  opt_state: optax.OptState
  step: jax.Array          # int32, steps taken so far
  dropout_key: jax.Array   # folded with ``step`` for each step's dropout masks


class Diverged(RuntimeError):
  """Loss or parameters became non-finite; ``step`` is the first step whose loss was not finite."""

  def __init__(self, epoch: int, step: int | None):
    where = f"at step {step}" if step is not None else "in the parameters"
    super().__init__(f"training diverged in epoch {epoch}: non-finite loss {where}")
    self.epoch, self.step = epoch, step


def loss_fn(model, batch: dict, *, train: bool, dropout_key: jax.Array | None = None):
  """Mean softmax cross-entropy on logits; aux = (logits, per-layer activations)."""
  logits, acts = model.forward(batch["x"], train=train, dropout_key=dropout_key)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
  return loss, (logits, acts)


def init_state(model: nnx.Module, tx: optax.GradientTransformation, dropout_key: jax.Array):
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  state = TrainState(params, rest, tx.init(params), jnp.zeros((), jnp.int32), dropout_key)
  return graphdef, state


def make_train_step(graphdef, tx: optax.GradientTransformation) -> Callable:
  """``train_step(state, batch) -> (state, metrics)``, pure; jit it or scan it."""

  def train_step(state: TrainState, batch: dict):
    def objective(params):
      # Fresh Variables for this trace: batch norm mutates its statistics during the forward pass.
      model = nnx.merge(graphdef, params, jax.tree.map(lambda v: v, state.rest))
      key = jax.random.fold_in(state.dropout_key, state.step)
      loss, (logits, _) = loss_fn(model, batch, train=True, dropout_key=key)
      _, _, rest = nnx.split(model, nnx.Param, ...)  # batch-norm statistics after this step
      return loss, (logits, rest)

    (loss, (logits, rest)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
    new_state = TrainState(params, rest, opt_state, state.step + 1, state.dropout_key)
    return new_state, {"loss": loss, "accuracy": accuracy}

  return train_step


def make_epoch(train_step: Callable, batch_size: int) -> Callable:
  """``epoch(state, x, y, key) -> (state, per-step metrics)``: one compiled ``lax.scan`` over the
  batches of a fresh permutation; the remainder of n / batch_size examples is skipped that epoch."""

  def epoch(state: TrainState, x: jax.Array, y: jax.Array, key: jax.Array):
    steps = x.shape[0] // batch_size
    order = jax.random.permutation(key, x.shape[0])[: steps * batch_size].reshape(steps, batch_size)

    def body(state, idx):
      return train_step(state, {"x": x[idx], "y": y[idx]})

    state, metrics = jax.lax.scan(body, state, order)
    metrics["params_finite"] = jnp.all(jnp.stack(
        [jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(state.params)]))
    return state, metrics

  return jax.jit(epoch, donate_argnums=0)


def make_evaluate(graphdef, batch_size: int = EVAL_BATCH) -> Callable:
  """``evaluate(params, rest, x, y) -> {"loss", "accuracy"}`` in eval mode (no dropout, BN running stats)."""

  def evaluate(params, rest, x, y):
    model = nnx.merge(graphdef, params, rest)
    n = x.shape[0]
    chunks = -(-n // batch_size)
    pad = chunks * batch_size - n
    xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(chunks, batch_size, *x.shape[1:])
    ys = jnp.pad(y, (0, pad)).reshape(chunks, batch_size)
    valid = (jnp.arange(chunks * batch_size) < n).reshape(chunks, batch_size)

    def body(totals, chunk):
      xb, yb, mask = chunk
      logits = model(xb, train=False)
      losses = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
      correct = jnp.argmax(logits, -1) == yb
      return (totals[0] + jnp.sum(losses * mask), totals[1] + jnp.sum(correct * mask)), None

    (loss_sum, correct), _ = jax.lax.scan(body, (0.0, 0), (xs, ys, valid))
    return {"loss": loss_sum / n, "accuracy": correct / n}

  return jax.jit(evaluate)


def run_info(config: config_lib.Config, ds: data.Dataset, params) -> dict:
  """config.json's contents: every resolved setting, the parameter count, the data and the environment."""
  n_params = sum(math.prod(p.shape) for p in jax.tree.leaves(params))
  return {"config": config.to_json(), "hidden_widths": list(config.hidden_widths), "num_params": n_params,
          "dataset": {"name": ds.name, "train": len(ds.train_y), "test": len(ds.test_y),
                      "val": 0 if ds.val_y is None else len(ds.val_y), "input_shape": list(ds.input_shape)},
          "environment": runs.environment()}


def eval_arrays(ds: data.Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The splits scored after every epoch: test, a training subset in eval mode, and validation if held out."""
  sets = {"test": (ds.test_x, ds.test_y), "train_eval": (ds.train_x[:TRAIN_EVAL_SIZE], ds.train_y[:TRAIN_EVAL_SIZE])}
  if ds.val_y is not None:
    sets["val"] = (ds.val_x, ds.val_y)
  return sets


def epoch_record(epoch: int, step: int, steps: dict, scores: dict) -> dict:
  """One metrics.jsonl line from an epoch's per-step metrics and its eval scores (host values)."""
  record = {"epoch": epoch, "step": step,
            "train_loss": float(np.mean(steps["loss"])), "train_accuracy": float(np.mean(steps["accuracy"]))}
  for split, s in scores.items():
    record[f"{split}_loss"], record[f"{split}_accuracy"] = float(s["loss"]), float(s["accuracy"])
  return record


def _first_nonfinite(losses: np.ndarray) -> int | None:
  bad = np.flatnonzero(~np.isfinite(losses))
  return int(bad[0]) if bad.size else None


def fit(config: config_lib.Config, dataset: data.Dataset | None = None, *, verbose: bool = True) -> Path:
  """Train as ``config`` says, writing config.json, metrics.jsonl and summary.json; return the workdir.

  Raises ``Diverged`` (after writing the epoch's metrics) if the loss or parameters become non-finite.
  """
  config = config_lib.validate(config)
  ds = dataset or data.load(config.dataset, config.data_dir, val_size=config.val_size)
  n_train = len(ds.train_y)
  if config.batch_size > n_train:
    raise config_lib.ConfigError(f"--batch_size {config.batch_size} is larger than the {n_train} "
                                 f"training examples of {ds.name}; expected 1..{n_train}")
  workdir = Path(config.workdir) if config.workdir else runs.default_workdir(config.preset or config.model)
  workdir.mkdir(parents=True, exist_ok=True)
  if verbose:
    print(runs.device_summary(), flush=True)

  init_key, data_key, dropout_key = jax.random.split(jax.random.key(config.seed), 3)
  model = config_lib.make_model(config, ds.input_shape, ds.num_classes, nnx.Rngs(params=init_key))
  tx = config_lib.make_optimizer(config)
  graphdef, state = init_state(model, tx, dropout_key)
  runs.write_json(workdir / "config.json", run_info(config, ds, state.params))

  mesh = devices.mesh(devices.DATA)  # None on one device; else batches split over all devices
  run_epoch = make_epoch(devices.split_batches(make_train_step(graphdef, tx), mesh), config.batch_size)
  evaluate = make_evaluate(graphdef)
  state, x, y = devices.place((state, ds.train_x, ds.train_y), mesh)
  eval_sets = devices.place(eval_arrays(ds), mesh)

  metrics_path = workdir / "metrics.jsonl"
  metrics_path.unlink(missing_ok=True)
  start = time.perf_counter()
  record = {}
  for epoch in range(1, config.epochs + 1):
    t0 = time.perf_counter()
    state, steps = run_epoch(state, x, y, jax.random.fold_in(data_key, epoch))
    scores = {k: evaluate(state.params, state.rest, *v) for k, v in eval_sets.items()}
    steps, scores = jax.device_get((steps, scores))  # the epoch's one device→host sync
    record = epoch_record(epoch, int(state.step), steps, scores)
    runs.append_jsonl(metrics_path, record)
    if verbose:
      text = f"loss {record['train_loss']:.4f} test acc {record['test_accuracy']:.4f} ({time.perf_counter() - t0:.1f}s)"
      runs.progress(epoch, config.epochs, text)
    bad_step = _first_nonfinite(steps["loss"])
    if bad_step is not None or not steps["params_finite"]:
      first = None if bad_step is None else (epoch - 1) * len(steps["loss"]) + bad_step + 1
      raise Diverged(epoch, first)

  wall = time.perf_counter() - start
  runs.write_json(workdir / "summary.json", {**record, "wall_time_s": wall,
                                             "steps_per_s": int(state.step) / wall})
  if verbose:
    print(f"done: {config.epochs} epochs, test accuracy {record['test_accuracy']:.4f}, "
          f"test loss {record['test_loss']:.4f}, {wall:.1f}s; wrote {workdir}", flush=True)
  return workdir
