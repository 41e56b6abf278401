"""Training: the loss, a pure jitted train step, whole epochs as one ``lax.scan``, evaluation, ``fit``.

The model lives as ``nnx.split`` state (``graphdef`` + parameter and non-parameter
``nnx.State``) so every step is a pure function ``(state, batch) -> (state, metrics)``;
``nnx.merge`` inside the traced function costs nothing at run time.

Random keys all derive from ``config.seed``: ``init`` (parameters), ``data``
(``fold_in(epoch)`` → the epoch's permutation) and ``dropout`` (``fold_in(step)``).
"""

from __future__ import annotations

import math
import os
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
from lab10 import data, devices, probes, runs

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
  """Loss or parameters became non-finite: ``step`` is the first step where anything did, ``layer`` the
  first layer that did (``dense_3`` / ``conv_1`` / ``head``, or ``loss``), ``part`` what went non-finite
  (see ``locate_divergence``)."""

  def __init__(self, epoch: int, step: int | None, layer: str | None = None, part: str | None = None):
    where = f"at step {step}" if step is not None else "in the parameters"
    what = "non-finite loss" if layer is None else f"{layer} went non-finite first ({part})"
    kept = f"the newest checkpoint is epoch {epoch - 1}" if epoch > 1 else "no checkpoint was saved"
    super().__init__(f"training diverged in epoch {epoch} {where}: {what}; "
                     f"metrics.jsonl keeps epoch{f's 1-{epoch}' if epoch > 1 else ' 1'}, {kept}")
    self.epoch, self.step, self.layer, self.part = epoch, step, layer, part


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
  """One update; returns (state, metrics, trace) with trace = (acts, ∂L/∂taps, grads): the gradients as the
  backward pass wrote them, the values the optimizer applied (``after_backward`` adds an exact zero)."""

  def objective(params, taps):
    # Fresh Variables for this trace: batch norm mutates its statistics during the forward pass.
    model = nnx.merge(graphdef, params, jax.tree.map(lambda v: v, state.rest))
    key = jax.random.fold_in(state.dropout_key, state.step)
    loss, (logits, acts) = loss_fn(model, batch, train=True, dropout_key=key, taps=taps)
    _, _, rest = nnx.split(model, nnx.Param, ...)  # batch-norm statistics after this step
    return loss, (logits, acts, rest)

  (loss, (logits, acts, rest)), (grads, deltas) = jax.value_and_grad(
      objective, argnums=(0, 1), has_aux=True)(state.params, taps)
  # The trace keeps the gradients as the backward pass wrote them: statistics that read ``after_backward``'s
  # copy would make XLA write that copy out in full (it is otherwise fused into the optimizer's update).
  updates, opt_state = tx.update(after_backward(grads), state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
  new_state = TrainState(params, rest, opt_state, state.step + 1, state.dropout_key)
  metrics = {"loss": loss, "accuracy": accuracy, "forward_finite": forward_finiteness(acts, logits)}
  return new_state, metrics, (acts, deltas, grads)


def exact_zero(tree) -> jax.Array:
  """0.0 computed from one element of every array in ``tree`` (exactly 0 whatever they hold, NaN included).

  Adding it makes a value data-dependent on ``tree``: XLA's copy insertion orders buffer reuse by data
  dependence only, so where an array is overwritten in place while another computation still reads its
  old contents, XLA copies the array unless the overwrite depends on that reader's result.
  """
  firsts = [v.reshape(-1)[0] for v in jax.tree.leaves(tree) if v.size]
  return sum((v != v).astype(jnp.float32) for v in firsts) * 0.0


def after_backward(grads):
  """``grads`` + ``exact_zero(grads)``: each weight's update then depends on the whole backward pass, and
  so on the backward matmul that last reads the old weight, and is written in place after it. Without
  this XLA copies every weight the backward pass reads, once per step (the three 512 × 512 kernels of
  lab10-4-deep, 3 MB per step; the plain step is 6.5% faster without the copies)."""
  zero = exact_zero(grads)
  return jax.tree.map(lambda g: g + zero.astype(g.dtype), grads)


def make_train_step(graphdef, tx: optax.GradientTransformation) -> Callable:
  """``train_step(state, batch) -> (state, metrics)``, pure; jit it or scan it."""

  def train_step(state: TrainState, batch: dict):
    return _step(graphdef, tx, state, batch, None)[:2]

  return train_step


def make_logged_train_step(graphdef, tx: optax.GradientTransformation, *, bounds: tuple[float, float] | None = None,
                           edges: np.ndarray | None = None) -> Callable:
  """``make_train_step`` that also returns the step's per-layer statistics (``probes.layer_stats`` keys)
  in ``metrics["stats"]``, and activation histograms in ``metrics["histograms"]`` when ``edges`` are given.

  The statistics are those of the training step itself — train mode: the dropout masks and
  batch-norm batch statistics the update used (``post`` is taken before dropout, but with dropout
  the next layer's z sees the masked, rescaled h). A separate dropout-free pass would double the
  cost of a logged step, and the gradients measured are then exactly those the optimizer applied.
  """

  def train_step(state: TrainState, batch: dict):
    model = nnx.merge(graphdef, state.params, jax.tree.map(lambda v: v, state.rest))
    new_state, metrics, (acts, deltas, grads) = _step(
        graphdef, tx, state, batch, probes.zero_taps(model, batch["x"]))
    names = model.layer_names  # not list(acts): JAX returns dicts sorted, dense_10 before dense_2
    # The update as applied, W_{t+1} − W_t (exact in float32 wherever the two are within a factor 2). Reading it
    # from the new and old parameters lets XLA fuse the optimizer's update into the parameter write as in a plain
    # step; reading the optimizer's ``updates`` would make it write them out in full for the norms.
    kernels, new_kernels = probes.layer_kernels(state.params, names), probes.layer_kernels(new_state.params, names)
    metrics["stats"] = probes.layer_stats(
        acts, deltas, bounds=bounds, kernels=kernels, grads=probes.layer_kernels(grads, names),
        updates={name: new_kernels[name] - kernel for name, kernel in kernels.items()})
    if edges is not None:
      metrics["histograms"] = probes.activation_histograms(acts, jnp.asarray(edges))
    return new_state, metrics


  return train_step


def _all_finite(tree) -> jax.Array:
  # Σ x·0 is 0 when every x is finite and NaN otherwise (no overflow, unlike Σ x): one vectorised float
  # reduction per array, which XLA on CPU runs several times faster than all(isfinite(x)).
  return jnp.isfinite(sum(jnp.sum(x * 0) for x in jax.tree.leaves(tree)))


def forward_finiteness(acts, logits) -> jax.Array:
  """Per layer, in forward order (hidden layers, then the logits): are this step's pre-activations z all finite?

  Only z: every activation in lab10 maps finite z to finite h = φ(z) (tests/test_activations.py; SELU
  overflows above |z| = 3.2e38, which the next layer's z then shows), so h adds nothing. Checking z and h cost
  7% of a lab10-4-deep step on the 2-core CPU, z alone within the noise (±1%)."""
  # Pytree round trips sort dict keys (dense_10 before dense_2): order the layers by their index.
  in_order = sorted(acts, key=lambda name: int(name.rsplit("_", 1)[1]))
  return jnp.stack([_all_finite(acts[n]["pre"]) for n in in_order] + [_all_finite(logits)])


def params_finiteness(params) -> jax.Array:
  """Per layer (hidden blocks in order, then ``head``): are its parameters all finite?"""
  blocks = params["blocks"] if "blocks" in params else {}
  return jnp.stack([_all_finite(blocks[i]) for i in sorted(blocks.keys())] + [_all_finite(params["head"])])


def locate_divergence(steps: dict, names: list[str]) -> tuple[int, str, str] | None:
  """``(index of the step, layer, part)`` where the epoch first went non-finite, or None.

  Within a step things happen in this order: forward pass layer by layer, loss, update. Parameters made
  non-finite by update k show up in step k + 1's forward pass at their own layer, so only the epoch's last
  update needs the end-of-epoch check (``final_params_finite``); the per-step cost is only that of checking
  the (small) activations, not every parameter after every update."""
  for i, loss in enumerate(steps["loss"]):
    bad = np.flatnonzero(~steps["forward_finite"][i])
    if bad.size:
      return i, names[bad[0]], "activations in the forward pass"
    if not np.isfinite(loss):
      return i, "loss", "every layer's activations finite"
  bad = np.flatnonzero(~steps["final_params_finite"])
  if bad.size:
    return len(steps["loss"]) - 1, names[bad[0]], "parameters after the update"
  return None


def make_epoch(train_step: Callable, batch_size: int, *, logged_step: Callable | None = None,
               log_every: int = 0) -> Callable:
  """``epoch(state, x, y, key) -> (state, per-step metrics)``: one compiled ``lax.scan`` over the
  batches of a fresh permutation; the remainder of n / batch_size examples is skipped that epoch.

  With ``logged_step``, the steps at epoch-local indices 0, N, 2N, … (N = ``log_every``) run it
  instead, and ``metrics["stats"]`` (one entry per logged step, at ``metrics["logged_index"]``)
  holds what it measured. The epoch is then scanned in blocks of one logged step followed by N − 1
  plain ones, so plain steps cost exactly what they cost without statistics (no per-step branch).
  """

  def epoch(state: TrainState, x: jax.Array, y: jax.Array, key: jax.Array):
    steps = x.shape[0] // batch_size
    order = jax.random.permutation(key, x.shape[0])[: steps * batch_size].reshape(steps, batch_size)

    def plain(state, idx):
      return train_step(state, {"x": x[idx], "y": y[idx]})

    if logged_step is None:
      state, metrics = jax.lax.scan(plain, state, order)
    else:
      def block(state, idx):  # idx: (n, batch) — one logged step, then n − 1 plain ones
        state, logged = logged_step(state, {"x": x[idx[0]], "y": y[idx[0]]})
        # The plain steps overwrite the parameters in place: their batches wait for the statistics to read them.
        state, rest = jax.lax.scan(plain, state, idx[1:] + exact_zero(logged).astype(idx.dtype))
        return state, (logged, rest)

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
    metrics["final_params_finite"] = params_finiteness(state.params)
    metrics["params_finite"] = jnp.all(metrics["final_params_finite"])
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


# --- run directory: guard, resume, checkpoints -----------------------------------------------------


def _writable(path: Path) -> bool:
  """Whether ``path`` is, or could be created as, a folder we may write in."""
  path = path.absolute()
  while not path.exists():
    path = path.parent
  return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def plan_run(config: config_lib.Config, workdir: Path) -> str:
  """What ``fit`` will do in ``workdir`` — ``"new"``, ``"resume"``, or ``"done"`` (--resume of a run that
  has finished) — decided before any work; ConfigError where the workdir must not be touched:

  * no run there (no config.json): a new run (also with --resume: there is nothing to continue);
  * --overwrite: a new run; the old run's files are deleted once every input has been checked;
  * --resume: continue from the newest checkpoint; the config must be the run's, but --epochs may grow;
  * neither: refused, whether the config differs or is the same (finished or not).
  """
  if workdir.exists() and not workdir.is_dir():
    raise config_lib.ConfigError(f"--workdir {workdir} exists and is not a folder")
  if not _writable(workdir):
    raise config_lib.ConfigError(f"--workdir {workdir} cannot be created or written")
  if not (workdir / "config.json").exists() or config.overwrite:
    return "new"
  run = config_lib.load_json(workdir / "config.json")
  summary = runs.read_json(workdir / "summary.json")
  finished = summary is not None and summary.get("epoch") == run.epochs
  trained = max(runs.checkpoint_epochs(workdir), default=0)
  if config.resume:
    clash = config_lib.differences(config, run, ignore=(*config_lib.RUN_CONTROL, "epochs"))
    if clash:
      raise config_lib.ConfigError(f"--resume: the run in {workdir} has another config: {'; '.join(clash)}; "
                                   "pass --overwrite to replace it, or choose another --workdir")
    if config.epochs < trained:
      raise config_lib.ConfigError(f"--epochs {config.epochs} is fewer than the {trained} epochs the run in "
                                   f"{workdir} has already trained; expected {trained} or more")
    return "done" if finished and config.epochs == run.epochs else "resume"
  clash = config_lib.differences(config, run)
  if clash:
    shown = "; ".join(clash[:3]) + ("; …" if len(clash) > 3 else "")
    raise config_lib.ConfigError(f"--workdir {workdir} holds a run with another config ({shown}); pass --resume "
                                 "to continue it with its own config, --overwrite to replace it, or choose "
                                 "another --workdir")
  if finished:
    raise config_lib.ConfigError(f"--workdir {workdir} holds a finished run with this config ({run.epochs} "
                                 "epochs); pass --overwrite to train it again, or choose another --workdir")
  progress = f"checkpoint of epoch {trained} of {run.epochs}" if trained else "no checkpoint yet"
  raise config_lib.ConfigError(f"--workdir {workdir} holds an unfinished run with this config ({progress}); "
                               "pass --resume to continue it, or --overwrite to start it again")


def _check_data_dir(config: config_lib.Config) -> None:
  if config.data_dir and not Path(config.data_dir).expanduser().is_dir():
    raise config_lib.ConfigError(f"--data_dir {config.data_dir} does not exist or is not a folder; expected "
                                 f"the folder holding the raw {config.dataset} files")


def _checkpoint(state: TrainState, data_key: jax.Array, epoch: int) -> dict:
  """What a checkpoint holds: model, optimizer, step, dropout key; data order = (data key, epoch)."""
  return {"state": state, "data_key": data_key, "epoch": jnp.asarray(epoch, jnp.int32)}


def _restore(checkpoints: runs.Checkpoints, state: TrainState, data_key: jax.Array):
  """``(state, data_key, epoch)`` from the newest checkpoint, or the given ones at epoch 0 if none."""
  epoch = checkpoints.latest()
  if epoch is None:
    return state, data_key, 0
  saved = checkpoints.restore(epoch, _checkpoint(state, data_key, 0))
  return saved["state"], saved["data_key"], int(saved["epoch"])


def _sync_logs(workdir: Path, epoch: int) -> list[dict]:
  """Cut the logs back to ``epoch`` (the checkpoint resumed from) and return metrics.jsonl's records,
  which must then be exactly epochs 1..``epoch``."""
  runs.truncate_logs(workdir, epoch)
  records = runs.read_jsonl(workdir / "metrics.jsonl") if epoch else []
  if [r["epoch"] for r in records] != list(range(1, epoch + 1)):
    raise runs.RunError(f"{workdir / 'metrics.jsonl'} holds epochs {[r['epoch'] for r in records]}, but the "
                        f"checkpoint resumed from is epoch {epoch}; cannot resume without losing records")
  return records


def _epoch_for(config: config_lib.Config, graphdef, tx, edges: np.ndarray | None, mesh) -> Callable:
  step = devices.split_batches(make_train_step(graphdef, tx), mesh)
  if not config.log_stats_every:
    return make_epoch(step, config.batch_size)
  logged = make_logged_train_step(graphdef, tx, bounds=config_lib.activation_bounds(config), edges=edges)
  return make_epoch(step, config.batch_size, logged_step=devices.split_batches(logged, mesh),
                    log_every=config.log_stats_every)


def _log_stats(workdir: Path, epoch: int, first_step: int, steps: dict, histograms: dict[str, list],
               edges: np.ndarray | None) -> None:
  """Append one stats.jsonl record per logged step of the epoch (host arrays, already read); with
  histograms, rewrite stats_histograms.npz with every logged step so far."""
  index = steps["logged_index"]
  runs.extend_jsonl(workdir / STATS_FILE, [
      {"epoch": epoch, "step": first_step + int(i), "loss": float(steps["loss"][i]),
       **{k: float(v[j]) for k, v in steps["stats"].items()}} for j, i in enumerate(index)])
  if "histograms" in steps:
    histograms.setdefault("step", []).append(first_step + index)
    histograms.setdefault("epoch", []).append(np.full(len(index), epoch))
    for name, counts in steps["histograms"].items():
      histograms.setdefault(name, []).append(counts)
    arrays = {k: np.concatenate(v) for k, v in histograms.items()}
    runs.write_npz(workdir / HISTOGRAMS_FILE, {**arrays, "edges": edges})


def _load_histograms(workdir: Path, epoch: int) -> dict[str, list]:
  """The histograms of epochs <= ``epoch`` already written (a resumed run appends to them)."""
  path = workdir / HISTOGRAMS_FILE
  if not epoch or not path.exists():
    return {}
  with np.load(path) as saved:
    keep = saved["epoch"] <= epoch
    return {k: [saved[k][keep]] for k in saved.files if k != "edges"}


def fit(config: config_lib.Config, dataset: data.Dataset | None = None, *, verbose: bool = True) -> Path:
  """Train as ``config`` says, writing config.json, metrics.jsonl, a checkpoint per epoch and, at the
  end, summary.json; return the workdir. ``plan_run`` says what happens in an existing workdir.

  Raises ``Diverged`` (after writing the epoch's metrics, without checkpointing it) if the loss or
  parameters become non-finite.
  """
  config = config_lib.validate(config)
  workdir = Path(config.workdir) if config.workdir else runs.default_workdir(config.preset or config.model)
  plan = plan_run(config, workdir)
  if plan == "done":
    if verbose:
      print(f"{workdir} holds a finished run of {config.epochs} epochs: nothing to resume (pass a larger "
            "--epochs to train it further, or --overwrite to train it again)", flush=True)
    return workdir
  _check_data_dir(config)
  ds = dataset or data.load(config.dataset, config.data_dir, val_size=config.val_size)
  n_train = len(ds.train_y)
  if config.batch_size > n_train:
    raise config_lib.ConfigError(f"--batch_size {config.batch_size} is larger than the {n_train} "
                                 f"training examples of {ds.name}; expected 1..{n_train}")
  # Every input is checked: from here on, work and writes.
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise config_lib.ConfigError(f"--workdir {workdir} cannot be created ({e.strerror})") from None
  if plan == "new":
    runs.clear_run(workdir)
  if verbose:
    print(runs.device_summary(), flush=True)

  init_key, data_key, dropout_key = jax.random.split(jax.random.key(config.seed), 3)
  model = config_lib.make_model(config, ds.input_shape, ds.num_classes, nnx.Rngs(params=init_key))
  layer_names = [*model.layer_names, "head"]
  tx = config_lib.make_optimizer(config)
  graphdef, state = init_state(model, tx, dropout_key)
  mesh = devices.mesh(devices.DATA)  # None on one device; else batches split over all devices
  edges = probes.histogram_edges(config_lib.activation_bounds(config)) if config.log_histograms else None
  run_epoch = _epoch_for(config, graphdef, tx, edges, mesh)
  evaluate = make_evaluate(graphdef)
  state, x, y = devices.place((state, ds.train_x, ds.train_y), mesh)
  eval_sets = devices.place(eval_arrays(ds), mesh)

  metrics_path = workdir / "metrics.jsonl"
  with runs.Checkpoints(workdir, config.keep_checkpoints) as checkpoints:
    start_epoch = 0
    if plan == "resume":
      state, data_key, start_epoch = _restore(checkpoints, state, data_key)
      state = devices.place(state, mesh)  # restored arrays land on the default device
    records = _sync_logs(workdir, start_epoch)
    histograms = _load_histograms(workdir, start_epoch)
    info = run_info(config, ds, state.params)
    if plan == "resume":  # keep the first environment; note each resumption's own
      first = runs.read_json(workdir / "config.json")
      resumed = first.get("resumed", []) + [{"from_epoch": start_epoch, "environment": info.pop("environment")}]
      info = {**first, **info, "resumed": resumed}
    runs.write_json(workdir / "config.json", info)
    if verbose:
      resuming = f", resuming after epoch {start_epoch}" if plan == "resume" else ""
      resuming = ", nothing to resume: a new run" if config.resume and plan == "new" else resuming
      print(f"run directory {workdir}{resuming}", flush=True)

    start, start_step = time.perf_counter(), int(state.step)
    record = records[-1] if records else {}
    for epoch in range(start_epoch + 1, config.epochs + 1):
      t0 = time.perf_counter()
      state, steps = run_epoch(state, x, y, jax.random.fold_in(data_key, epoch))
      scores = {k: evaluate(state.params, state.rest, *v) for k, v in eval_sets.items()}
      steps, scores = jax.device_get((steps, scores))  # the epoch's one device→host sync
      record = epoch_record(epoch, int(state.step), steps, scores)
      runs.append_jsonl(metrics_path, record)
      if "stats" in steps:
        _log_stats(workdir, epoch, int(state.step) - len(steps["loss"]), steps, histograms, edges)
      if verbose:
        text = f"loss {record['train_loss']:.4f} test acc {record['test_accuracy']:.4f} ({time.perf_counter() - t0:.1f}s)"
        runs.progress(epoch, config.epochs, text)
      bad = locate_divergence(steps, layer_names)
      if bad is not None or not steps["params_finite"]:
        if bad is None:
          raise Diverged(epoch, None)
        index, layer, part = bad
        raise Diverged(epoch, int(state.step) - len(steps["loss"]) + index + 1, layer, part)
      # Only finite states are checkpointed, after their epoch's records: a kill in between is undone
      # on resume by cutting the logs back to the checkpoint. (The save copies the state to the host.)
      checkpoints.save(epoch, _checkpoint(state, data_key, epoch))
    checkpoints.wait()

  wall = time.perf_counter() - start
  runs.write_json(workdir / "summary.json", {
      **record, "wall_time_s": wall, "steps_per_s": (int(state.step) - start_step) / wall,
      "resumed_from_epoch": start_epoch, "params_sha256": runs.tree_sha256(state.params)})
  if verbose:
    print(f"done: {config.epochs} epochs, test accuracy {record['test_accuracy']:.4f}, "
          f"test loss {record['test_loss']:.4f}, {wall:.1f}s; wrote {workdir}", flush=True)
  return workdir
