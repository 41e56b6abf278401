"""Runs too long for one sitting: each trained with early stopping, in pieces of a few epochs (``train_run``), or
for a fixed number of epochs with measurements every N steps (``train_probed_run``); resumable from its checkpoint
and cumulative through a small record per run.

A run's record (``<records>/<name>.json``, a few KB: its per-epoch errors, how it stopped, its wall time and the
machine) is rewritten after every piece. A finished record is reused, never retrained; an unfinished run continues
from its checkpoint in its run directory when that is there (``train.fit``'s resume), else starts again. Records
are meant to be committed, so a table can be completed over several sittings on different machines; a run
directory (checkpoints) is not. Several processes may work through the same runs: each run is claimed by one
process at a time (an ``flock``), the others pass it by.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from lab10 import checkpoints as checkpoints_lib
from lab10 import config as config_lib
from lab10 import data, divergence, runs, train, workdir

FINISHED = ("early stopping", "epoch cap", "diverged")  # a record whose ``stop`` is one of these is done


@dataclasses.dataclass(frozen=True)
class Stopping:
  """Early stopping: a run stops once ``patience`` epochs pass without a lower validation error than its best,
  or at ``max_epochs``; its result is read at the best epoch (lowest validation error, the first of ties)."""
  patience: int
  max_epochs: int


def best_epoch(epochs: list[dict]) -> dict | None:
  """The epoch record of the lowest validation error (the first of ties); None before any epoch."""
  return min(epochs, key=lambda e: (e["val_error"], e["epoch"])) if epochs else None


def _stop(epochs: list[dict], stopping: Stopping) -> str | None:
  """How a run with these epochs has stopped, or None while it goes on."""
  if not epochs:
    return None
  if len(epochs) - best_epoch(epochs)["epoch"] >= stopping.patience:
    return "early stopping"
  return "epoch cap" if len(epochs) >= stopping.max_epochs else None


def _epochs(metrics: list[dict]) -> list[dict]:
  """metrics.jsonl's records as errors in %, one per epoch (NaN where a score is missing or non-finite)."""
  error = lambda r, split: 100 * (1 - r[f"{split}_accuracy"]) if r.get(f"{split}_accuracy") is not None else math.nan
  return [{"epoch": r["epoch"], "train_loss": r["train_loss"], "train_error": error(r, "train_eval"),
           "val_error": error(r, "val"), "test_error": error(r, "test")} for r in metrics]


def read(records: Path, name: str, setting: dict) -> dict | None:
  """Run ``name``'s record if there is one made with ``setting`` (else None: another setting's runs are not reused)."""
  record = runs.read_json(records / f"{name}.json")
  return record if record is not None and record.get("setting") == setting else None


@contextlib.contextmanager
def _claimed(path: Path) -> Iterator[bool]:
  """True while this process alone holds ``path``'s ``flock``; False (at once) if another process holds it."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      yield False
      return
    yield True
  finally:
    os.close(fd)  # releases the lock


@contextlib.contextmanager
def _unfinished(records: Path, name: str, setting: dict, path: Path, finished) -> Iterator[tuple[bool, dict | None]]:
  """``(True, its record or None)`` while this process alone holds run ``name``'s claim (beside its run directory
  ``path``) and the run is not finished; else at once ``(False, its finished record)``, or ``(False, None)`` if
  another process holds it."""
  done = read(records, name, setting)
  if done is not None and done["stop"] in finished:
    yield False, done
    return
  with _claimed(path.parent / f"{path.name}.claim") as mine:
    if not mine:
      yield False, None
      return
    done = read(records, name, setting)  # again: another process may have worked on it since
    yield (False, done) if done is not None and done["stop"] in finished else (True, done)


def train_run(c: config_lib.Config, ds: data.Dataset, name: str, records: Path, setting: dict, stopping: Stopping,
              deadline: float = math.inf) -> dict | None:
  """Train run ``name`` (``c``; its run directory ``c.workdir``) until it stops or ``time.monotonic()`` passes
  ``deadline``, in pieces of at most ``stopping.patience`` epochs, rewriting its record after each; return the
  record (``stop`` None if it is unfinished), or None if another process is training it."""
  path = Path(c.workdir)
  with _unfinished(records, name, setting, path, FINISHED) as (mine, done):
    if not mine:
      return done
    records.mkdir(parents=True, exist_ok=True)
    wall, diverged = 0.0, False
    kept = len(runs.read_jsonl(path / workdir.METRICS)) if (path / workdir.METRICS).exists() else 0
    # The time of the epochs this run directory keeps: a record made elsewhere, whose run starts again here, counts 0.
    before = (done or {}).get("wall_time_s", 0.0) if kept >= len((done or {}).get("epochs", [])) else 0.0
    while True:
      metrics = runs.read_jsonl(path / workdir.METRICS) if (path / workdir.METRICS).exists() else []
      epochs = _epochs(metrics)
      stop = "diverged" if diverged else _stop(epochs, stopping)
      summary = runs.read_json(path / workdir.SUMMARY) or {}
      record = {"name": name, "setting": setting, "stop": stop, "epochs": epochs,
                "best_epoch": (best_epoch(epochs) or {}).get("epoch"),
                "wall_time_s": before + wall, "machine": runs.machine(),
                "steps_per_s": summary.get("steps_per_s")}
      runs.write_json(records / f"{name}.json", record)
      if stop is not None or time.monotonic() > deadline:
        if stop is not None:
          shutil.rmtree(path / workdir.CHECKPOINTS, ignore_errors=True)  # the record is what is kept
        return record
      best = (best_epoch(epochs) or {}).get("epoch", 0)
      target = min(stopping.max_epochs, max(best + stopping.patience, len(epochs) + 1))
      start = time.perf_counter()
      try:
        train.fit(dataclasses.replace(c, epochs=target, resume=True), ds, verbose=False)
      except divergence.Diverged:  # fit wrote the epoch's metrics and kept the last finite checkpoint
        diverged = True
      wall += time.perf_counter() - start


PROBED_FINISHED = ("finished", "diverged")  # a probed run's record whose ``stop`` is one of these is done


def train_probed_run(c: config_lib.Config, ds: data.Dataset, name: str, records: Path, setting: dict, *,
                     epochs: int, every: int, probe: Callable[[nnx.Module], dict],
                     final: Callable[[nnx.Module], dict] = lambda model: {},
                     deadline: float = math.inf) -> dict | None:
  """Train run ``name`` (``c``; its run directory ``c.workdir``) for ``epochs`` epochs, calling ``probe(model)``
  (jitted; a dict of arrays) at step 0 and every ``every`` steps (which must divide an epoch), and ``final(model)``
  and the test error at the end. After each epoch its checkpoint is saved (the newest two kept) and its record
  rewritten: ``steps``, ``probes`` (one dict of lists per probe point), ``train_loss`` (mean over the ``every``
  steps before each point after the first), ``epochs_done``, ``stop`` ("finished", "diverged", or None while it is
  unfinished), ``final``, ``test_error`` (%), wall time and machine. A record with epochs the run directory has no
  checkpoint of (made elsewhere, or the directory removed) starts again. Stops after the epoch during which
  ``time.monotonic()`` passes ``deadline``. Returns the record, or None if another process is training it."""
  path = Path(c.workdir)
  with _unfinished(records, name, setting, path, PROBED_FINISHED) as (mine, done):
    if not mine:
      return done
    steps_per_epoch = len(ds.train_y) // c.batch_size
    if steps_per_epoch % every:
      raise ValueError(f"every={every} does not divide an epoch of {steps_per_epoch} steps")
    s = train.setup(c, ds.input_shape, ds.num_classes)
    run_epoch = train.epoch_for(c, s)
    model_of = lambda state: nnx.merge(s.graphdef, state.params, state.rest)
    run_probe = jax.jit(lambda state: probe(model_of(state)))
    like = {"state": s.state}
    records.mkdir(parents=True, exist_ok=True)
    with checkpoints_lib.Checkpoints(path / workdir.CHECKPOINTS, 2, {"run": name}) as saved:
      record, state = None, s.state
      if done is not None and done["epochs_done"] in saved.epochs():
        record, state = done, saved.restore(done["epochs_done"], like)["state"]
      if record is None:
        with jax.default_matmul_precision(c.matmul_precision):
          first = jax.device_get(run_probe(state))
        record = {"name": name, "setting": setting, "stop": None, "epochs_done": 0, "steps": [0],
                  "probes": [_plain(first)], "train_loss": [None], "final": None, "test_error": None,
                  "wall_time_s": 0.0, "machine": runs.machine()}
      x, y = jax.device_put(ds.train_x), jax.device_put(ds.train_y)
      kept = dict(record)
      for key in ("steps", "probes", "train_loss"):  # appended to in place: the record read stays as it was
        kept[key] = list(record[key])
      start, before = time.perf_counter(), record["wall_time_s"]
      for epoch, at, state, metrics, probed in train.loop(
          run_epoch, state, x, y, s.data_key, epochs=range(record["epochs_done"] + 1, epochs + 1),
          steps_per_epoch=steps_per_epoch, measure=run_probe, chunk=every, precision=c.matmul_precision):
        loss = float(np.mean(metrics["loss"]))
        if not (math.isfinite(loss) and bool(metrics["params_finite"])):
          kept |= {"stop": "diverged", "wall_time_s": before + time.perf_counter() - start, "machine": runs.machine()}
          runs.write_json(records / f"{name}.json", kept)
          return kept
        kept["steps"].append(int(state.step))
        kept["probes"].append(_plain(probed))
        kept["train_loss"].append(loss)
        if at < steps_per_epoch:
          continue
        kept["epochs_done"] = epoch
        saved.save(epoch, {"state": state})
        saved.wait()  # the record names only epochs whose checkpoint is on disk
        if epoch == epochs:
          with jax.default_matmul_precision(c.matmul_precision):
            model = model_of(state)
            kept["final"] = _plain(jax.device_get(jax.jit(final)(model)))
            scores = train.evaluate_for(s.graphdef)(state.params, state.rest, ds.test_x, ds.test_y)
          kept["test_error"] = 100 * (1 - float(scores["accuracy"]))
          kept["stop"] = "finished"
        kept |= {"wall_time_s": before + time.perf_counter() - start, "machine": runs.machine()}
        runs.write_json(records / f"{name}.json", kept)
        if kept["stop"] is not None or time.monotonic() > deadline:
          break
  if kept["stop"] is not None:
    shutil.rmtree(path / workdir.CHECKPOINTS, ignore_errors=True)  # the record is what is kept
  return kept


def _plain(tree: dict) -> dict:
  """A probe's arrays as JSON values: floats and nested lists of floats."""
  return {k: np.asarray(v, dtype=float).tolist() for k, v in tree.items()}
