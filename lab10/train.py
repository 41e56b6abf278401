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
from lab10 import data, probes, runs

EVAL_BATCH = 1000
TRAIN_EVAL_SIZE = 10_000  # training examples re-scored in eval mode each epoch (train vs test gap)
STATS_FILE = "stats.jsonl"  # --log_stats_every: one record per logged step
HISTOGRAMS_FILE = "stats_histograms.npz"  # --log_histograms: counts per logged step and layer


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


def loss_fn(model, batch: dict, *, train: bool, dropout_key: jax.Array | None = None, taps: dict | None = None):
  """Mean softmax cross-entropy on logits; aux = (logits, per-layer activations). ``taps`` are added
  to the pre-activations (zeros: differentiate w.r.t. them for ∂L/∂z)."""
  logits, acts = model.forward(batch["x"], train=train, dropout_key=dropout_key, taps=taps)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
  return loss, (logits, acts)


def init_state(model: nnx.Module, tx: optax.GradientTransformation, dropout_key: jax.Array):
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  state = TrainState(params, rest, tx.init(params), jnp.zeros((), jnp.int32), dropout_key)
  return graphdef, state


def _step(graphdef, tx: optax.GradientTransformation, state: TrainState, batch: dict, taps: dict | None):
  """One update; returns (state, metrics, trace) with trace = (acts, ∂L/∂taps, grads, updates)."""

  def objective(params, taps):
    # Fresh Variables for this trace: batch norm mutates its statistics during the forward pass.
    model = nnx.merge(graphdef, params, jax.tree.map(lambda v: v, state.rest))
    key = jax.random.fold_in(state.dropout_key, state.step)
    loss, (logits, acts) = loss_fn(model, batch, train=True, dropout_key=key, taps=taps)
    _, _, rest = nnx.split(model, nnx.Param, ...)  # batch-norm statistics after this step
    return loss, (logits, acts, rest)

  (loss, (logits, acts, rest)), (grads, deltas) = jax.value_and_grad(
      objective, argnums=(0, 1), has_aux=True)(state.params, taps)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
  new_state = TrainState(params, rest, opt_state, state.step + 1, state.dropout_key)
  return new_state, {"loss": loss, "accuracy": accuracy}, (acts, deltas, grads, updates)


def make_train_step(graphdef, tx: optax.GradientTransformation) -> Callable:
  """``train_step(state, batch) -> (state, metrics)``, pure; jit it or scan it."""

  def train_step(state: TrainState, batch: dict):
    return _step(graphdef, tx, state, batch, None)[:2]

  return train_step


def make_logged_train_step(graphdef, tx: optax.GradientTransformation, every: int, *,
                           bounds: tuple[float, float] | None = None, edges: np.ndarray | None = None) -> Callable:
  """``make_train_step`` that also returns per-layer statistics (``probes.layer_stats`` keys) in
  ``metrics["stats"]`` on the steps where ``step % every == 0`` (zeros elsewhere, ``metrics["logged"]``
  says which), and activation histograms in ``metrics["histograms"]`` when ``edges`` are given.

  The statistics are those of the training step itself — train mode: the dropout masks and
  batch-norm batch statistics the update used (``post`` is taken before dropout, but with dropout
  the next layer's z sees the masked, rescaled h). A separate dropout-free pass would double the
  cost of a logged step, and the gradients measured are then exactly those the optimizer applied.
  """

  def logged(state: TrainState, batch: dict):
    model = nnx.merge(graphdef, state.params, jax.tree.map(lambda v: v, state.rest))
    new_state, metrics, (acts, deltas, grads, updates) = _step(
        graphdef, tx, state, batch, probes.zero_taps(model, batch["x"]))
    names = list(acts)
    metrics["stats"] = probes.layer_stats(
        acts, deltas, bounds=bounds, kernels=probes.layer_kernels(state.params, names),
        grads=probes.layer_kernels(grads, names), updates=probes.layer_kernels(updates, names))
    if edges is not None:
      metrics["histograms"] = probes.activation_histograms(acts, jnp.asarray(edges))
    return new_state, metrics

  def plain(state: TrainState, batch: dict):
    new_state, metrics, _ = _step(graphdef, tx, state, batch, None)
    shapes = jax.eval_shape(logged, state, batch)[1]
    zeros = {k: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), v) for k, v in shapes.items() if k not in metrics}
    return new_state, {**metrics, **zeros}

  def train_step(state: TrainState, batch: dict):
    log_now = state.step % every == 0
    new_state, metrics = jax.lax.cond(log_now, logged, plain, state, batch)
    return new_state, {**metrics, "logged": log_now}

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


def _first_nonfinite(losses: np.ndarray) -> int | None:
  bad = np.flatnonzero(~np.isfinite(losses))
  return int(bad[0]) if bad.size else None


def _train_step_for(config: config_lib.Config, graphdef, tx, edges: np.ndarray | None) -> Callable:
  if not config.log_stats_every:
    return make_train_step(graphdef, tx)
  bounds = config_lib.activation_bounds(config)
  return make_logged_train_step(graphdef, tx, config.log_stats_every, bounds=bounds, edges=edges)


def _log_stats(workdir: Path, epoch: int, first_step: int, steps: dict, histograms: dict[str, list],
               edges: np.ndarray | None) -> None:
  """Append one stats.jsonl record per logged step of the epoch (host arrays, already read); with
  histograms, rewrite stats_histograms.npz with every logged step so far."""
  logged = np.flatnonzero(steps["logged"])
  runs.extend_jsonl(workdir / STATS_FILE, [
      {"epoch": epoch, "step": first_step + int(i), "loss": float(steps["loss"][i]),
       **{k: float(v[i]) for k, v in steps["stats"].items()}} for i in logged])
  if "histograms" in steps:
    histograms.setdefault("step", []).append(first_step + logged)
    for name, counts in steps["histograms"].items():
      histograms.setdefault(name, []).append(counts[logged])
    arrays = {k: np.concatenate(v) for k, v in histograms.items()}
    runs.write_npz(workdir / HISTOGRAMS_FILE, {**arrays, "edges": edges})


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
  n_params = sum(math.prod(p.shape) for p in jax.tree.leaves(state.params))
  runs.write_json(workdir / "config.json", {
      "config": config.to_json(), "hidden_widths": list(config.hidden_widths), "num_params": n_params,
      "dataset": {"name": ds.name, "train": n_train, "test": len(ds.test_y),
                  "val": 0 if ds.val_y is None else len(ds.val_y), "input_shape": list(ds.input_shape)},
      "environment": runs.environment()})

  edges = probes.histogram_edges(config_lib.activation_bounds(config)) if config.log_histograms else None
  run_epoch = make_epoch(_train_step_for(config, graphdef, tx, edges), config.batch_size)
  evaluate = make_evaluate(graphdef)
  x, y = jax.device_put(ds.train_x), jax.device_put(ds.train_y)
  eval_sets = {"test": (ds.test_x, ds.test_y), "train_eval": (ds.train_x[:TRAIN_EVAL_SIZE], ds.train_y[:TRAIN_EVAL_SIZE])}
  if ds.val_y is not None:
    eval_sets["val"] = (ds.val_x, ds.val_y)
  eval_sets = {k: jax.device_put(v) for k, v in eval_sets.items()}

  metrics_path = workdir / "metrics.jsonl"
  metrics_path.unlink(missing_ok=True)
  for stale in (STATS_FILE, HISTOGRAMS_FILE):
    (workdir / stale).unlink(missing_ok=True)
  histograms: dict[str, list] = {}
  start = time.perf_counter()
  record = {}
  for epoch in range(1, config.epochs + 1):
    t0 = time.perf_counter()
    state, steps = run_epoch(state, x, y, jax.random.fold_in(data_key, epoch))
    scores = {k: evaluate(state.params, state.rest, *v) for k, v in eval_sets.items()}
    steps, scores = jax.device_get((steps, scores))  # the epoch's one device→host sync
    record = {"epoch": epoch, "step": int(state.step),
              "train_loss": float(np.mean(steps["loss"])), "train_accuracy": float(np.mean(steps["accuracy"]))}
    for split, s in scores.items():
      record[f"{split}_loss"], record[f"{split}_accuracy"] = float(s["loss"]), float(s["accuracy"])
    runs.append_jsonl(metrics_path, record)
    if "stats" in steps:
      _log_stats(workdir, epoch, int(state.step) - len(steps["loss"]), steps, histograms, edges)
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
