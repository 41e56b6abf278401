"""What ``fit`` writes into its run directory while it trains: config.json, each epoch's records in
metrics.jsonl and stats.jsonl, the activation histograms, summary.json; and, on resume, the newest intact
checkpoint with the logs cut back to it. The rules for the directory itself are ``lab10.workdir``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from lab10 import checkpoints as checkpoints_lib
from lab10 import devices, runs, workdir


def epoch_record(epoch: int, step: int, steps: dict, scores: dict) -> dict:
  """One metrics.jsonl line from an epoch's per-step metrics and its eval scores (host values)."""
  record = {"epoch": epoch, "step": step,
            "train_loss": float(np.mean(steps["loss"])), "train_accuracy": float(np.mean(steps["accuracy"]))}
  for split, s in scores.items():
    record[f"{split}_loss"], record[f"{split}_accuracy"] = float(s["loss"]), float(s["accuracy"])
  return record


def stats_records(epoch: int, first_step: int, steps: dict) -> list[dict]:
  """stats.jsonl's lines of one epoch: one per logged step, its global step, loss and every statistic."""
  return [{"epoch": epoch, "step": first_step + int(i), "loss": float(steps["loss"][i]),
           **{k: float(v[j]) for k, v in steps["stats"].items()}} for j, i in enumerate(steps["logged_index"])]


def add_histograms(store: dict[str, list], steps, epoch: int, histograms: dict[str, dict]) -> None:
  """Append logged steps' histograms to ``store``, as stats_histograms.npz holds them: ``step``, ``epoch`` and, per
  histogram ``T`` (``activations/dense_0``, ``weights/head``, ``grads/head``), ``T/edges`` and ``T/counts``, one
  row per logged step (``histograms[T]["edges"|"counts"]`` have one row per step of ``steps``)."""
  store.setdefault("step", []).append(np.asarray(steps))
  store.setdefault("epoch", []).append(np.full(len(steps), epoch))
  for tag, h in histograms.items():
    for part in ("edges", "counts"):
      store.setdefault(f"{tag}/{part}", []).append(np.asarray(h[part]))


def histogram_arrays(store: dict[str, list]) -> dict[str, np.ndarray]:
  """stats_histograms.npz's arrays from what ``add_histograms`` collected."""
  return {k: np.concatenate(v) for k, v in store.items()}


def checkpoint(state, data_key: jax.Array, epoch: int) -> dict:
  """What a checkpoint holds: model, optimizer, step, dropout key; data order = (data key, epoch)."""
  return {"state": state, "data_key": data_key, "epoch": jnp.asarray(epoch, jnp.int32)}


class Log:
  """The run directory of one ``fit`` while it trains: restores the newest checkpoint on resume, keeps
  the logs in step with it, writes config.json, each epoch's records and, at the end, summary.json. With
  several processes (``--distributed``) every one keeps the records, and process 0 alone writes them."""

  def __init__(self, workdir: Path, plan: str, checkpoints: checkpoints_lib.Checkpoints, histograms: bool = False):
    self.workdir, self.plan, self.checkpoints, self.logs_histograms = workdir, plan, checkpoints, histograms
    self.writes = devices.primary()
    self.epoch, self.records, self.histograms = 0, [], {}

  def restore(self, state, data_key: jax.Array):
    """``(state, data_key)`` from the newest checkpoint on resume (the given ones for a new run); then the
    logs are cut back to that checkpoint's epoch, which metrics.jsonl must then hold exactly."""
    saved = self._newest_intact(checkpoint(state, data_key, 0)) if self.plan == "resume" else None
    if saved is not None:
      state, data_key, self.epoch = saved["state"], saved["data_key"], int(saved["epoch"])
    if self.epoch and not (self.workdir / workdir.METRICS).exists():
      raise runs.RunError(f"{self.workdir / workdir.METRICS} is missing, but the run has a checkpoint of epoch {self.epoch}; "
                          "restore the file to --resume, or pass --overwrite to start the run again")
    if self.writes:
      workdir.truncate_logs(self.workdir, self.epoch)
    devices.barrier("logs truncated")
    self.records = workdir.read_records(self.workdir) if self.epoch else []
    if [r["epoch"] for r in self.records] != list(range(1, self.epoch + 1)):
      raise runs.RunError(f"{self.workdir / workdir.METRICS} holds epochs {[r['epoch'] for r in self.records]}, but the "
                          f"checkpoint resumed from is epoch {self.epoch}; cannot resume without losing records: "
                          f"move the checkpoints after epoch {len(self.records)} out of {self.workdir / workdir.CHECKPOINTS} "
                          "to resume from there, or pass --overwrite to start the run again")
    self.histograms = self._load_histograms()
    return state, data_key

  def check_statistics(self, steps_per_epoch: int, every: int) -> None:
    """RunError unless stats.jsonl (and stats_histograms.npz, when histograms are logged) hold exactly the
    logged steps of the epochs up to the checkpoint: a resumed run must not go on over statistics that were
    lost (a deleted file, a cut line, a removed record)."""
    if not every or not self.epoch:
      return
    expected = [(epoch - 1) * steps_per_epoch + i for epoch in range(1, self.epoch + 1)
                for i in range(0, steps_per_epoch, every)]
    path = self.workdir / workdir.STATS
    found = [r.get("step") for r in runs.read_jsonl(path)] if path.exists() else []
    logs = [(path, found)]
    if self.logs_histograms:
      logs.append((self.workdir / workdir.HISTOGRAMS, [int(s) for s in np.concatenate(self.histograms.get("step", [[]]))]))
    for log, steps in logs:
      if steps != expected:
        missing = sorted(set(expected) - set(steps))
        raise runs.RunError(f"{log} holds {len(steps)} of the {len(expected)} logged steps of epochs 1-{self.epoch}"
                            f"{f' (missing steps {missing[:3]}…)' if missing else ''}: resuming would lose them; "
                            "restore the file, or pass --overwrite to start the run again")

  def _newest_intact(self, like) -> dict | None:
    """The newest checkpoint that passes verification, or None if there is none; damaged newer ones are
    moved to checkpoints.damaged/ with one line on stderr. RunError naming the newest if none is intact."""
    damaged = []
    for epoch in reversed(self.checkpoints.epochs()):
      try:
        saved = self.checkpoints.restore(epoch, like)
        break
      except checkpoints_lib.CheckpointError as e:
        damaged.append((epoch, e))
    else:
      if damaged:
        raise runs.RunError(f"{damaged[0][1]}; no intact checkpoint to resume from: pass --overwrite to start the "
                            "run again")
      return None
    if damaged:
      for epoch, _ in damaged:
        aside = self.checkpoints.set_aside(epoch)
      print(f"warning: {damaged[0][1]}; resuming from the checkpoint of epoch {int(saved['epoch'])} instead "
            f"({len(damaged)} damaged moved to {aside})", file=sys.stderr, flush=True)
    return saved

  def _load_histograms(self) -> dict[str, list]:
    """The histograms of epochs <= ``self.epoch`` already written (a resumed run appends to them)."""
    path = self.workdir / workdir.HISTOGRAMS
    if not self.epoch or not path.exists():
      return {}
    with np.load(path) as saved:
      keep = saved["epoch"] <= self.epoch
      return {k: [saved[k][keep]] for k in saved.files}

  def write_config(self, run_info: dict) -> None:
    """config.json; a resumed run keeps the first environment and notes each resumption's own."""
    if self.plan == "resume":
      first = runs.read_json(self.workdir / workdir.CONFIG)
      resumed = first.get("resumed", []) + [{"from_epoch": self.epoch, "environment": run_info.pop("environment")}]
      run_info = {**first, **run_info, "resumed": resumed}
    if self.writes:
      runs.write_json(self.workdir / workdir.CONFIG, run_info)

  def write_epoch(self, epoch: int, step: int, steps: dict, scores: dict) -> tuple[dict, list[dict]]:
    """Append the epoch's metrics.jsonl line and its statistics and histograms, if logged; return the
    metrics.jsonl record and the epoch's stats.jsonl records (none without --log_stats_every)."""
    record, stats = epoch_record(epoch, step, steps, scores), []
    self.records.append(record)
    first_step = step - len(steps["loss"])
    if "stats" in steps:
      stats = stats_records(epoch, first_step, steps)
    if not self.writes:
      return record, stats
    runs.append_jsonl(self.workdir / workdir.METRICS, record)
    if stats:
      runs.extend_jsonl(self.workdir / workdir.STATS, stats)
    if "histograms" in steps:
      self._write_histograms(epoch, first_step + steps["logged_index"], steps["histograms"])
    return record, stats

  def _write_histograms(self, epoch: int, logged_steps: np.ndarray, histograms: dict[str, dict]) -> None:
    """Rewrite stats_histograms.npz with every logged step so far."""
    add_histograms(self.histograms, logged_steps, epoch, histograms)
    runs.write_npz(self.workdir / workdir.HISTOGRAMS, histogram_arrays(self.histograms))

  def write_summary(self, summary: dict) -> None:
    if self.writes:
      runs.write_json(self.workdir / workdir.SUMMARY, {**(self.records[-1] if self.records else {}), **summary})
