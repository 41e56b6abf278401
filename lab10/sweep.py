"""Many models at once: one architecture trained for several seeds × init gains σ_w × learning rates, compiled
once, with the same pure ``train_step`` that ``fit`` scans (``OverModels``: one ``jax.vmap`` program on
accelerators, the models one after the other through the single model's program on a CPU).

Model i is exactly the model ``fit(configs[i])`` trains: the same init, data-order and dropout keys from its
own seed, the same steps. On a CPU its arithmetic is ``fit``'s, bit for bit; through the vmap only numerics
differ (batched matmuls sum in another order), so the metrics agree to float tolerance. On several devices the
models are split along a ``models`` mesh axis (``lab10.devices``) and vmapped.

Each model's folder is what ``fit`` writes for it (``lab10.runlog``): config.json, metrics.jsonl and, as the
shared config asks, per-layer statistics (stats.jsonl, computed inside the compiled step of every model),
histograms, TensorBoard events and a checkpoint per epoch; summary.json at the end.

A learning-rate sweep needs one optimizer for all models, so the rate moves into the optimizer state:
``chain(optimizer(lr=1), inject_hyperparams(scale)(lr))``. Every lab10 optimizer ends by scaling with −lr,
so this computes (−u)·lr = u·(−lr), the same float as the single-model optimizer.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from lab10 import checkpoints as checkpoints_lib
from lab10 import flags
from lab10 import runlog
from lab10 import config as config_lib
from lab10 import data, devices, loggers, progress, runs, tensorboard, train
from lab10 import step as step_lib
from lab10 import workdir as workdir_lib

SWEPT = ("seed", "init_gain", "lr")  # the fields that may differ between the models of one sweep


def grid(base: config_lib.Config, seeds: Sequence[int], init_gains: Sequence[float] = (),
         lrs: Sequence[float] = ()) -> list[config_lib.Config]:
  """The product seeds × init_gains × lrs over ``base`` (empty = ``base``'s value), each validated."""
  return [config_lib.validate(dataclasses.replace(base, seed=s, init_gain=g, lr=lr))
          for s, g, lr in itertools.product(seeds, init_gains or [base.init_gain], lrs or [base.lr])]


def model_name(c: config_lib.Config) -> str:
  return f"seed{c.seed}_gain{c.init_gain:g}_lr{c.lr:g}"


def _check_sweepable(configs: Sequence[config_lib.Config]) -> None:
  if not configs:
    raise config_lib.ConfigError("a sweep needs at least one model")
  names = [model_name(c) for c in configs]
  twice = sorted({n for n in names if names.count(n) > 1})
  if twice:
    raise config_lib.ConfigError(f"the sweep names model {twice[0]} twice (repeated --seeds, --init_gains or --lrs); "
                                 "each model needs its own values")
  fixed = lambda c: dataclasses.replace(c, seed=0, init_gain=1.0, lr=1.0, workdir=None)
  for c in configs[1:]:
    if fixed(c) != fixed(configs[0]):
      diff = [f.name for f in dataclasses.fields(c) if getattr(fixed(c), f.name) != getattr(fixed(configs[0]), f.name)]
      raise config_lib.ConfigError(f"models of one sweep may differ only in {', '.join(SWEPT)}; "
                                   f"these differ too: {', '.join(diff)}")


def _optimizer(c: config_lib.Config, sweep_lr: bool) -> optax.GradientTransformation:
  if not sweep_lr:
    return config_lib.make_optimizer(c)
  unit = config_lib.make_optimizer(dataclasses.replace(c, lr=1.0))
  return optax.chain(unit, optax.inject_hyperparams(optax.scale)(step_size=c.lr))


def init_models(configs: Sequence[config_lib.Config], input_shape: Sequence[int], num_classes: int):
  """``(graphdef, tx, states, data_keys)``: each model set up as ``fit`` sets it up, stacked on a leading axis."""
  _check_sweepable(configs)
  sweep_lr = len({c.lr for c in configs}) > 1
  # One transformation for all models; a swept lr is each model's own, in its opt_state (tx.init of its config's).
  setups = [train.setup(c, input_shape, num_classes, _optimizer(c, sweep_lr)) for c in configs]
  stack = lambda *leaves: jnp.stack(leaves)
  return (setups[0].graphdef, setups[0].tx, jax.tree.map(stack, *[s.state for s in setups]),
          jnp.stack([s.data_key for s in setups]))


class OverModels:
  """``fn`` applied to each model, compiled: the arguments whose ``in_axes`` entry is 0 carry a leading model
  axis, the others (None) are shared; the results are stacked along a leading model axis.

  ``sequential``: the models one after the other, each through the one compiled program of ``fn`` — the single
  model's program, so each model's arithmetic and speed are the single run's; else one ``jax.vmap`` of ``fn``
  (batched operations). None picks by backend: sequential on a CPU, where XLA's batched matmuls run slower per
  model than M plain ones and a loop over the models inside one program (``lax.map``) ran 2–8 % slower than the
  single run (``scripts/benchmark.py``); vmap on accelerators."""

  def __init__(self, fn, in_axes: tuple, sequential: bool | None = None, donate_argnums: tuple = ()):
    self.in_axes = in_axes
    self.sequential = jax.default_backend() == "cpu" if sequential is None else sequential
    self._fn = jax.jit(fn if self.sequential else jax.vmap(fn, in_axes=in_axes), donate_argnums=donate_argnums)

  def _model(self, args, i: int) -> list:
    return [jax.tree.map(lambda a: a[i], a) if axis == 0 else a for a, axis in zip(args, self.in_axes)]

  def compile(self, *args) -> OverModels:
    """Compile now for these arguments (their shapes), not at the first call."""
    self._fn = self._fn.lower(*(self._model(args, 0) if self.sequential else args)).compile()
    return self

  def __call__(self, *args):
    if not self.sequential:
      return self._fn(*args)
    models = len(jax.tree.leaves(next(a for a, axis in zip(args, self.in_axes) if axis == 0))[0])
    results = [self._fn(*self._model(args, i)) for i in range(models)]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *results)


def make_sweep_epoch(graphdef, tx: optax.GradientTransformation, batch_size: int, sequential: bool | None = None, *,
                     log_every: int = 0, bounds: tuple[float, float] | None = None, histograms: bool = False):
  """``epoch(states, x, y, data_keys, epoch) -> (states, per-model per-step metrics)``: ``train.make_epoch``
  over the models (states and data keys; ``OverModels``); the data are shared. With ``log_every``, every
  model's logged steps measure its statistics (and ``histograms``) inside the compiled step, as ``fit``'s do."""
  plain = step_lib.make_train_step(graphdef, tx)
  if log_every:
    logged = step_lib.make_logged_train_step(graphdef, tx, bounds=bounds, histograms=histograms)
    epoch = train.make_epoch(plain, batch_size, logged_step=logged, log_every=log_every)
  else:
    epoch = train.make_epoch(plain, batch_size)
  return OverModels(lambda *a: epoch(*a), (0, None, None, 0, None), sequential, donate_argnums=(0,))


def make_sweep_evaluate(graphdef, sequential: bool | None = None):
  return OverModels(train.make_evaluate(graphdef), (0, 0, None, None), sequential)


def _pad(tree, m_padded: int):
  """Repeat model 0 so that the model axis divides evenly over the devices; the copies are dropped later."""
  def pad(leaf):
    extra = jnp.repeat(leaf[:1], m_padded - leaf.shape[0], axis=0)
    return jnp.concatenate([leaf, extra])
  return jax.tree.map(pad, tree)


def _write_table(path: Path, rows: list[dict]) -> None:
  runs.write_csv(path.with_suffix(".csv"), rows)
  runs.write_text(path.with_suffix(".md"),
                  runs.markdown_table(rows, lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)))


def run(configs: Sequence[config_lib.Config], dataset: data.Dataset | None = None, *, workdir: str | Path,
        verbose: bool = True) -> Path:
  """Train ``configs`` at once; write ``workdir/<model>/{config,summary}.json, metrics.jsonl`` as ``fit`` does,
  and ``workdir/summary.{csv,md}``. A diverging model is marked in the table; the others go on."""
  configs = [dataclasses.replace(c, workdir=str(Path(workdir) / model_name(c))) for c in configs]
  base, folder = configs[0], Path(workdir)
  plan = workdir_lib.plan_sweep(configs, folder)
  if plan == "done":
    if verbose:
      print(f"{folder} holds this finished sweep: nothing to resume (pass --overwrite to train it again)", flush=True)
    return folder
  ds = dataset or data.load(base.dataset, base.data_dir, val_size=base.val_size)
  config_lib.check_batch_size(base, len(ds.train_y), ds.name)
  config_lib.check_model_size(base, ds.input_shape, ds.num_classes, models=len(configs))
  with workdir_lib.Lock(folder):  # one process per sweep folder; the plan again, under the lock
    if workdir_lib.plan_sweep(configs, folder, locked=True) == "new":
      workdir_lib.prepare_sweep(folder, [Path(c.workdir).name for c in configs])
    return _train(configs, ds, folder, verbose)


def _train(configs: list[config_lib.Config], ds: data.Dataset, workdir: Path, verbose: bool) -> Path:
  base = configs[0]
  if verbose:
    print(runs.device_summary(), flush=True)
  graphdef, tx, states, data_keys = init_models(configs, ds.input_shape, ds.num_classes)
  m = len(configs)
  for c in configs:
    workdir_lib.prepare(Path(c.workdir), "new")

  mesh = devices.mesh(devices.MODELS)  # None on one device; else models split over all devices
  m_padded = m if mesh is None else -(-m // mesh.size) * mesh.size
  states = devices.place(_pad(states, m_padded), mesh, P(devices.MODELS))
  data_keys = devices.place(_pad(data_keys, m_padded), mesh, P(devices.MODELS))
  x, y = devices.place((ds.train_x, ds.train_y), mesh)
  eval_sets = devices.place(train.eval_arrays(ds), mesh)
  # Models split over devices train as one vmap; on one CPU one after the other (``OverModels``).
  sequential = None if mesh is None else False
  run_epoch = make_sweep_epoch(graphdef, tx, base.batch_size, sequential, log_every=base.log_stats_every,
                               bounds=config_lib.activation_bounds(base), histograms=base.log_histograms)
  evaluate = make_sweep_evaluate(graphdef, sequential)
  measure = lambda states: ({k: evaluate(states.params, states.rest, *v) for k, v in eval_sets.items()}, states.step)

  diverged = [None] * m
  records = [{}] * m
  start = time.perf_counter()
  with jax.default_matmul_precision(base.matmul_precision):  # compiled before the epochs' clock: time left is training's
    run_epoch = run_epoch.compile(states, x, y, data_keys, 1)
  if verbose:
    print(f"compiled the epoch of {m} models in {time.perf_counter() - start:.1f}s", flush=True)
  with contextlib.ExitStack() as files, progress.Epochs(base.epochs, verbose=verbose) as shown:
    logs, writers = _model_logs(configs, ds, states, files)
    for epoch, _, states, steps, (scores, step) in train.loop(
        run_epoch, states, x, y, data_keys, epochs=range(1, base.epochs + 1),
        steps_per_epoch=len(ds.train_y) // base.batch_size, measure=measure, precision=base.matmul_precision):
      for i, c in enumerate(configs):
        pick = lambda tree: jax.tree.map(lambda a: a[i], tree)
        records[i] = runlog.epoch_record(epoch, int(step[i]), pick(steps), pick(scores))
        if diverged[i] is None:  # a diverged model's records stop at the epoch it diverged in, as fit's do
          record, stats = logs[i].write_epoch(epoch, int(step[i]), pick(steps), pick(scores))
          loggers.notify(writers[i], record, stats, loggers.step_histograms(pick(steps)))
          if not (np.all(np.isfinite(steps["loss"][i])) and steps["params_finite"][i]):
            diverged[i] = epoch
          elif c.checkpoints_after(epoch):
            logs[i].checkpoints.save(epoch, runlog.checkpoint(pick(states), data_keys[i], epoch))
      losses = np.array([r["train_loss"] for r in records], dtype=float)
      median = np.nanmedian(losses) if np.isfinite(losses).any() else np.nan
      n_diverged = sum(d is not None for d in diverged)
      shown.done(epoch, f"{m} models: train loss median {median:.4f}, {n_diverged} diverged",
                 median_loss=f"{median:.4f}", diverged=n_diverged)
    for log in logs:
      log.checkpoints.wait()

  wall = time.perf_counter() - start
  rows = []
  for i, c in enumerate(configs):
    runs.write_json(Path(c.workdir) / workdir_lib.SUMMARY, {**records[i], "wall_time_s": wall, "sweep_models": m,
                                                            "diverged_epoch": diverged[i]})
    final = {k: records[i][k] for k in records[i] if k.endswith(("_loss", "_accuracy"))}
    rows.append({"model": model_name(c), "seed": c.seed, "init_gain": c.init_gain, "lr": c.lr, **final,
                 "diverged_epoch": "" if diverged[i] is None else diverged[i]})
  _write_table(Path(workdir) / "summary", rows)
  if verbose:
    steps_total = m * int(step[0])
    print(f"done: {m} models × {base.epochs} epochs in {wall:.1f}s ({steps_total / wall:.0f} model-steps/s); "
          f"wrote {workdir}/summary.md", flush=True)
  return Path(workdir)


def _model_logs(configs: list[config_lib.Config], ds: data.Dataset, states, files: contextlib.ExitStack):
  """Each model's ``runlog.Log`` (config.json written, checkpoints opened) and its loggers (--tensorboard), their
  files closed with ``files``."""
  logs, writers = [], []
  for i, c in enumerate(configs):
    path = Path(c.workdir)
    stamp = {"config_sha256": config_lib.sha256(c, ignore=(*config_lib.RUN_CONTROL, "epochs"))}
    checkpoints = files.enter_context(checkpoints_lib.Checkpoints(path / workdir_lib.CHECKPOINTS, c.keep_checkpoints,
                                                                  stamp))
    log = runlog.Log(path, "new", checkpoints, c.log_histograms)
    log.write_config(workdir_lib.info(c, ds, jax.tree.map(lambda p: p[i], states.params)))
    logs.append(log)
    writers.append([files.enter_context(tensorboard.Writer(path))] if c.tensorboard and devices.primary() else [])
  return logs, writers


def from_args(args: argparse.Namespace) -> list[config_lib.Config]:
  base = flags.from_args(args)
  configs = grid(base, args.seeds or [base.seed], args.init_gains or (), args.lrs or ())
  _check_sweepable(configs)
  return configs
