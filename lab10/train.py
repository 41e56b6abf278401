"""Training: setup from one seed, epochs as ``lax.scan`` over the pure step of ``lab10.step``, the one training
loop, evaluation, ``fit``.

The key plan: every random key derives from ``config.seed``, split into ``init`` (parameters), ``data``
(``fold_in(epoch)`` → that epoch's permutation of the training set) and ``dropout`` (``fold_in(step)``).
``fit``, ``lab10.sweep`` and the experiments all train through ``setup`` and ``loop``, so one seed means
the same network, data order and dropout masks everywhere. ``epoch_for`` and ``evaluate_for`` build each
network's programs once per process (``compiled``), so its fits compile it once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lab10 import checkpoints as checkpoints_lib
from lab10 import config as config_lib
from lab10 import data, devices, divergence, loggers, progress, runs, tensorboard, workdir
from lab10 import runlog
from lab10 import step as step_lib

EVAL_BATCH = 1000
TRAIN_EVAL_SIZE = 10_000  # training examples re-scored in eval mode each epoch (train vs test gap)


class Setup(NamedTuple):
  graphdef: nnx.GraphDef   # the model's structure; ``nnx.merge(graphdef, state.params, state.rest)``
  tx: optax.GradientTransformation
  state: step_lib.TrainState
  data_key: jax.Array      # folded with the epoch for its data order
  names: list[str]         # the hidden layers' names in order, then "head"


Callback = loggers.Callback  # ``callback(record, stats)`` after each epoch, or a ``loggers.StepLogger``


class FitResult(NamedTuple):
  workdir: Path
  records: list[dict]      # metrics.jsonl's lines, one per epoch


def setup(config: config_lib.Config, input_shape: Sequence[int], num_classes: int,
          tx: optax.GradientTransformation | None = None) -> Setup:
  """Model, optimizer (``tx``, default ``config``'s) and train state from ``config.seed`` (the key plan above)."""
  init_key, data_key, dropout_key = jax.random.split(jax.random.key(config.seed), 3)
  model = config_lib.make_model(config, input_shape, num_classes, nnx.Rngs(params=init_key))
  tx = tx or config_lib.make_optimizer(config)
  graphdef, state = step_lib.init_state(model, tx, dropout_key)
  return Setup(graphdef, tx, state, data_key, [*model.layer_names, "head"])


def make_epoch(train_step: Callable, batch_size: int, *, logged_step: Callable | None = None,
               log_every: int = 0) -> Callable:
  """``epoch(state, x, y, data_key, epoch, start=0, count=None) -> (state, per-step metrics)``: one compiled
  ``lax.scan`` over the batches of epoch ``epoch``'s permutation of the training set (``fold_in(data_key,
  epoch)``); the remainder of n / batch_size examples is skipped that epoch. With ``count`` (static), only
  steps start … start + count − 1 of the epoch: an epoch can run in pieces with the same data order.

  With ``logged_step``, the steps at epoch-local indices 0, N, 2N, … (N = ``log_every``, which must then
  divide every piece's ``start``) run it instead, and ``metrics["stats"]`` (one entry per logged step, at
  ``metrics["logged_index"]``) holds what it measured. The epoch is then scanned in blocks of one logged step
  followed by N − 1 plain ones, so plain steps cost exactly what they cost without statistics.
  """

  def epoch(state: step_lib.TrainState, x: jax.Array, y: jax.Array, data_key: jax.Array, epoch, start=0, count=None):
    steps = x.shape[0] // batch_size
    key = jax.random.fold_in(data_key, epoch)
    order = jax.random.permutation(key, x.shape[0])[: steps * batch_size].reshape(steps, batch_size)
    if count is not None:
      order = jax.lax.dynamic_slice_in_dim(order, start, count)

    def plain(state, idx):
      return train_step(state, {"x": x[idx], "y": y[idx]})

    if logged_step is None:
      state, metrics = jax.lax.scan(plain, state, order)
    else:
      state, metrics = _logged_scan(plain, logged_step, state, order, x, y, log_every)
      metrics["logged_index"] = start + metrics["logged_index"]
    metrics["final_params_finite"] = divergence.params_finiteness(state.params)
    metrics["params_finite"] = jnp.all(metrics["final_params_finite"])
    return state, metrics

  return jax.jit(epoch, donate_argnums=0, static_argnames="count")


def _logged_scan(plain: Callable, logged_step: Callable, state, order, x, y, log_every: int):
  """``lax.scan`` over ``order`` in blocks of one ``logged_step`` and ``log_every`` − 1 ``plain`` steps."""

  def block(state, idx):  # idx: (n, batch) — one logged step, then n − 1 plain ones
    state, logged = logged_step(state, {"x": x[idx[0]], "y": y[idx[0]]})
    # The plain steps overwrite the parameters in place: their batches wait for the statistics to read them.
    state, rest = jax.lax.scan(plain, state, idx[1:] + step_lib.exact_zero(logged).astype(idx.dtype))
    return state, (logged, rest)

  steps = order.shape[0]
  full, remainder = divmod(steps, log_every)
  parts = []
  if full:
    state, (logged, rest) = jax.lax.scan(block, state, order[:full * log_every].reshape(full, log_every, -1))
    parts.append((logged, rest))
  if remainder:
    state, (logged, rest) = block(state, order[full * log_every:])
    parts.append((jax.tree.map(lambda v: v[None], logged), jax.tree.map(lambda v: v[None], rest)))
  metrics = {k: jnp.concatenate([jnp.concatenate([lg[k][:, None], rs[k]], axis=1).reshape(-1, *rs[k].shape[2:])
                                 for lg, rs in parts]) for k in parts[0][1]}
  for k in parts[0][0].keys() - parts[0][1].keys():  # stats, histograms: logged steps only
    metrics[k] = jax.tree.map(lambda *v: jnp.concatenate(v), *[lg[k] for lg, _ in parts])
  metrics["logged_index"] = jnp.arange(0, steps, log_every)
  return state, metrics


def loop(run_epoch: Callable, state, x: jax.Array, y: jax.Array, data_key: jax.Array, *, epochs: range,
         steps_per_epoch: int, measure: Callable, chunk: int | Callable[[int], int] | None = None,
         precision: str = config_lib.Config.matmul_precision) -> Iterator[tuple]:
  """The training loop of ``fit``, ``lab10.sweep`` and the experiments: ``epochs`` of ``run_epoch``
  (``make_epoch``), whole or, with ``chunk``, in pieces of ``chunk`` steps (a callable: ``chunk(start)`` is
  the length of the piece that starts at step ``start`` of the epoch, e.g. a ``Pace``). After each piece it
  yields ``(epoch, steps done in the epoch, state, per-step metrics, measure(state))``, the metrics and the
  measurement as host values. Stop iterating to stop training.

  ``run_epoch`` and ``measure`` run under ``jax.default_matmul_precision(precision)`` (``--matmul_precision``):
  jit fixes a matmul's precision when it traces, at the first call, and traces again under another one."""
  for epoch in epochs:
    start = 0
    while start < steps_per_epoch:
      count = steps_per_epoch - start if chunk is None else min(chunk(start) if callable(chunk) else chunk,
                                                                steps_per_epoch - start)
      with jax.default_matmul_precision(precision):
        state, steps = run_epoch(state, x, y, data_key, epoch, *(() if chunk is None else (start, count)))
        steps, measured = jax.device_get((steps, measure(state)))  # the piece's one device→host sync
      start += count
      yield epoch, start, state, steps, measured


# Whole-epoch values of the last piece; every other metric has one entry per step or per logged step.
_LAST_PIECE = ("final_params_finite", "params_finite")


def whole_epochs(pieces: Iterator[tuple], steps_per_epoch: int,
                 on_piece: Callable[[int], None] = lambda done: None) -> Iterator[tuple]:
  """``(epoch, state, per-step metrics)`` once per epoch from ``loop``'s pieces, joined (``join_pieces``);
  ``on_piece(steps done in the epoch)`` after each piece."""
  joined = []
  for epoch, done, state, piece, _ in pieces:
    joined.append(piece)
    on_piece(done)
    if done == steps_per_epoch:
      yield epoch, state, join_pieces(joined)
      joined = []


def join_pieces(pieces: Sequence[dict]) -> dict:
  """An epoch's per-step metrics from those of its pieces (host values, in order), as one whole-epoch call
  returns them: per-step and per-logged-step arrays concatenated, the parameter checks of the last piece."""
  per_step = [{k: v for k, v in p.items() if k not in _LAST_PIECE} for p in pieces]
  joined = jax.tree.map(lambda *v: np.concatenate(v), *per_step)
  return {**joined, **{k: pieces[-1][k] for k in _LAST_PIECE if k in pieces[-1]}}


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


def eval_arrays(ds: data.Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The splits scored after every epoch: test, a training subset in eval mode, and validation if held out."""
  sets = {"test": (ds.test_x, ds.test_y), "train_eval": (ds.train_x[:TRAIN_EVAL_SIZE], ds.train_y[:TRAIN_EVAL_SIZE])}
  if ds.val_y is not None:
    sets["val"] = (ds.val_x, ds.val_y)
  return sets




# What ``compiled`` built in this process, oldest first: a program traced and compiled once serves every fit of it.
_COMPILED: dict = {}
_COMPILED_MAX = 64


def compiled(key, build: Callable[[], Callable]) -> Callable:
  """``build()`` once per ``key`` in this process: the jitted function it returns keeps its compilations, so
  the fits, experiments and seeds that share a network compile it once (JAX compiles again for another shape)."""
  if key not in _COMPILED:
    if len(_COMPILED) >= _COMPILED_MAX:
      _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[key] = build()
  return _COMPILED[key]


def program_key(config: config_lib.Config) -> config_lib.Config:
  """``config`` with every field that cannot change a compiled step or evaluation reset: the seed, the epochs
  and how the run is carried out (RUN_CONTROL, --log_histograms aside). Two configs with one key train the
  same program."""
  defaults = config_lib.Config()
  return dataclasses.replace(config, seed=0, epochs=1, preset=None,
                             **{name: getattr(defaults, name) for name in config_lib.RUN_CONTROL})


def epoch_for(config: config_lib.Config, s: Setup, *, mesh=None) -> Callable:
  """``make_epoch`` of ``setup(config, …)``'s network (per-layer statistics and histograms as ``config`` says,
  batches split over ``mesh``), built once per process for every config with its ``program_key``."""
  key = ("epoch", s.graphdef, program_key(config), mesh)
  return compiled(key, lambda: _make_run_epoch(config, s, mesh))


def evaluate_for(graphdef, batch_size: int = EVAL_BATCH) -> Callable:
  """``make_evaluate(graphdef, batch_size)``, built once per process for each network."""
  return compiled(("evaluate", graphdef, batch_size), lambda: make_evaluate(graphdef, batch_size))


def _make_run_epoch(config: config_lib.Config, s: Setup, mesh) -> Callable:
  step = devices.split_batches(step_lib.make_train_step(s.graphdef, s.tx), mesh)
  if not config.log_stats_every:
    return make_epoch(step, config.batch_size)
  logged = step_lib.make_logged_train_step(s.graphdef, s.tx, bounds=config_lib.activation_bounds(config),
                                           histograms=config.log_histograms)
  return make_epoch(step, config.batch_size, logged_step=devices.split_batches(logged, mesh),
                    log_every=config.log_stats_every)


@contextlib.contextmanager
def _loggers(config: config_lib.Config, path: Path, callbacks: Sequence[Callback]) -> Iterator[list[Callback]]:
  """``callbacks``, then with --tensorboard the TensorBoard writer, closed when the context ends."""
  if not config.tensorboard or not devices.primary():  # one process writes the events
    yield list(callbacks)
    return
  with tensorboard.Writer(path) as writer:
    yield [*callbacks, writer]


def _checked_data(config: config_lib.Config, dataset: data.Dataset | None) -> data.Dataset:
  """The training data, once every input that depends on them is checked (ConfigError / DataError)."""
  config_lib.check_data_dir(config)
  ds = dataset or data.load(config.dataset, config.data_dir, val_size=config.val_size)
  config_lib.check_batch_size(config, len(ds.train_y), ds.name)
  config_lib.check_model_size(config, ds.input_shape, ds.num_classes)
  return ds


def fit(config: config_lib.Config, dataset: data.Dataset | None = None, *, verbose: bool = True,
        callbacks: Sequence[Callback] = ()) -> FitResult:
  """Train as ``config`` says in its run directory (``lab10.workdir``: config.json, metrics.jsonl, a checkpoint
  per epoch, summary.json at the end); return the directory and metrics.jsonl's records.

  ``callbacks``: each is called once per epoch, after that epoch's records are written (a diverged epoch's
  too): a plain callable as ``callback(record, stats)`` (the epoch's metrics.jsonl line and its stats.jsonl
  lines), a ``loggers.StepLogger`` with every logged step in step order (statistics and histograms), then the
  record (``lab10.loggers``). --tensorboard adds one (``lab10.tensorboard.Writer``). A resumed run calls them
  for the epochs after its checkpoint only.

  Raises ``divergence.Diverged`` (after writing the epoch's metrics, without checkpointing it) if the loss or
  parameters become non-finite.
  """
  config = config_lib.validate(config)
  if jax.process_count() > 1 and not config.workdir:  # a default name holds the time, which processes differ on
    raise config_lib.ConfigError("--distributed: give every process the same --workdir")
  path = workdir.path_for(config)
  plan = workdir.plan(config, path, locked=not devices.primary())  # (the other processes' lock is process 0's)
  if plan == "done":
    if verbose:
      print(f"{path} holds a finished run of {config.epochs} epochs: nothing to resume (pass a larger "
            "--epochs to train it further, or --overwrite to train it again)", flush=True)
    return FitResult(path, workdir.read_records(path))
  ds = _checked_data(config, dataset)
  # Every input is checked: from here on, work and writes, by this job alone (process 0 holds the lock).
  with workdir.Lock(path) if devices.primary() else contextlib.nullcontext():
    if devices.primary():
      plan = workdir.plan(config, path, locked=True)  # again, under the lock: another job may have written since
      if plan != "done":
        workdir.prepare(path, plan, workdir.info(config, ds) if plan == "new" else None)
    devices.barrier("prepared")  # every process planned before process 0 wrote
    if plan == "done":
      return FitResult(path, workdir.read_records(path))
    return _train(config, ds, path, plan, verbose, callbacks)


def _train(config: config_lib.Config, ds: data.Dataset, path: Path, plan: str, verbose: bool,
           callbacks: Sequence[Callback]) -> FitResult:
  """``fit``'s training, in the prepared and locked run directory ``path``."""
  if verbose:
    print(runs.device_summary(), flush=True)
  s = setup(config, ds.input_shape, ds.num_classes)
  mesh = devices.mesh(devices.DATA)  # None on one device; else batches split over all devices
  run_epoch, evaluate = epoch_for(config, s, mesh=mesh), evaluate_for(s.graphdef)
  eval_sets = devices.place(eval_arrays(ds), mesh)
  steps_per_epoch = len(ds.train_y) // config.batch_size
  # Long epochs run in pieces of about a second (one host sync each) for the bar of steps; the records are
  # those of whole epochs (join_pieces).
  pace = progress.Pace(steps_per_epoch, align=config.log_stats_every or 1)

  def scores_of(state) -> dict:  # the epoch's evaluation: a host sync
    with jax.default_matmul_precision(config.matmul_precision):
      return jax.device_get({k: evaluate(state.params, state.rest, *v) for k, v in eval_sets.items()})

  stamp = {"config_sha256": config_lib.sha256(config, ignore=(*config_lib.RUN_CONTROL, "epochs"))}
  with (checkpoints_lib.Checkpoints(path / workdir.CHECKPOINTS, config.keep_checkpoints, stamp) as checkpoints,
        _loggers(config, path, callbacks) as callbacks):
    log = runlog.Log(path, plan, checkpoints, config.log_histograms)
    state, data_key = log.restore(s.state, s.data_key)
    log.check_statistics(steps_per_epoch, config.log_stats_every)
    state, x, y = devices.place((state, ds.train_x, ds.train_y), mesh)
    log.write_config(workdir.info(config, ds, state.params))
    if verbose:
      resumed = {"resume": f", resuming after epoch {log.epoch}", "new": ", nothing to resume: a new run"}
      print(f"run directory {path}{resumed[plan] if config.resume else ''}", flush=True)
    start, start_step = time.perf_counter(), int(state.step)
    with progress.Epochs(config.epochs, steps_per_epoch=steps_per_epoch, initial=log.epoch, verbose=verbose) as shown:
      pieces = loop(run_epoch, state, x, y, data_key, epochs=range(log.epoch + 1, config.epochs + 1),
                    steps_per_epoch=steps_per_epoch, chunk=pace, measure=lambda state: None,
                    precision=config.matmul_precision)
      for epoch, state, steps in whole_epochs(pieces, steps_per_epoch, shown.step):
        record, stats = log.write_epoch(epoch, int(state.step), steps, scores_of(state))
        loggers.notify(callbacks, record, stats, loggers.step_histograms(steps))
        loss, accuracy = f"{record['train_loss']:.4f}", f"{record['test_accuracy']:.4f}"
        shown.done(epoch, f"loss {loss} test acc {accuracy}", loss=loss, test_acc=accuracy)
        divergence.check(epoch, int(state.step), steps, s.names)
        # Only finite states are checkpointed, after their epoch's records: a kill in between is undone on resume
        # by cutting the logs back to the checkpoint. (The save copies the state to the host.)
        if config.checkpoints_after(epoch):
          checkpoints.save(epoch, runlog.checkpoint(state, data_key, epoch))
    checkpoints.wait()
  wall = time.perf_counter() - start
  log.write_summary({"wall_time_s": wall, "steps_per_s": (int(state.step) - start_step) / wall,
                     "resumed_from_epoch": log.epoch, "params_sha256": runs.tree_sha256(state.params)})
  if verbose:
    print(f"done: {config.epochs} epochs, test accuracy {log.records[-1]['test_accuracy']:.4f}, test loss "
          f"{log.records[-1]['test_loss']:.4f}, {wall:.1f}s; wrote {path}", flush=True)
  return FitResult(path, log.records)
