"""Runs too long for one sitting: each trained with early stopping, in pieces of a few epochs, resumable from its
checkpoint and cumulative through a small record per run.

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
from collections.abc import Iterator
from pathlib import Path

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


def train_run(c: config_lib.Config, ds: data.Dataset, name: str, records: Path, setting: dict, stopping: Stopping,
              deadline: float = math.inf) -> dict | None:
  """Train run ``name`` (``c``; its run directory ``c.workdir``) until it stops or ``time.monotonic()`` passes
  ``deadline``, in pieces of at most ``stopping.patience`` epochs, rewriting its record after each; return the
  record (``stop`` None if it is unfinished), or None if another process is training it."""
  done = read(records, name, setting)
  if done is not None and done["stop"] in FINISHED:
    return done
  path = Path(c.workdir)
  with _claimed(path.parent / f"{path.name}.claim") as mine:
    if not mine:
      return None
    done = read(records, name, setting)  # again: another process may have worked on it since
    if done is not None and done["stop"] in FINISHED:
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
