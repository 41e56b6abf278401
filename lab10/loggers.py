"""What ``fit`` hands to other loggers while it trains (W&B, MLflow, CLU writers, your own).

A callback is called once per epoch, after the epoch's records are written, in one of two ways:

* a plain callable, as ``callback(record, stats)``: ``record`` the epoch's metrics.jsonl line, ``stats`` its
  stats.jsonl lines (empty without --log_stats_every);
* a ``StepLogger``: its ``log_step(step, stats, histograms)`` once per logged step of the epoch, in increasing
  step order, then ``log_epoch(record)``. The epoch's record carries the step after its last one, so a logger
  that refuses to go back in steps (W&B) receives every statistic: the steps arrive as they were taken.

``histograms`` (with --log_histograms, else empty) maps each tag — ``activations/<layer>``, ``weights/<layer>``,
``grads/<layer>`` — to that step's ``(edges, counts)``: 50 bins from the tensor's smallest to its largest value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# ``callback(record, stats)``: see the module's doc.
Callback = Callable[[dict, list[dict]], None]


class StepLogger:
  """A ``fit`` callback that receives each logged step and then each epoch's record, in step order. Subclass it
  and override ``log_step`` and ``log_epoch`` (both do nothing here)."""

  def log_step(self, step: int, stats: dict, histograms: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """``stats``: the step's stats.jsonl line (``epoch``, ``step``, ``loss``, every ``group/layer/stat``)."""

  def log_epoch(self, record: dict) -> None:
    """``record``: the epoch's metrics.jsonl line; ``record["step"]`` is the number of steps taken by its end."""

  def __call__(self, record: dict, stats: list[dict], histograms: Sequence[dict] = ()) -> None:
    histograms = list(histograms) or [{} for _ in stats]
    for line, step_histograms in sorted(zip(stats, histograms, strict=True), key=lambda pair: pair[0]["step"]):
      self.log_step(line["step"], line, step_histograms)
    self.log_epoch(record)


def step_histograms(steps: dict) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
  """Per logged step of an epoch's host metrics (``train.make_epoch``), ``{tag: (edges, counts)}``; empty dicts
  where no histograms were logged."""
  logged = len(steps.get("logged_index", ()))
  if "histograms" not in steps:
    return [{} for _ in range(logged)]
  return [{tag: (h["edges"][i], h["counts"][i]) for tag, h in steps["histograms"].items()} for i in range(logged)]


def notify(callbacks: Sequence, record: dict, stats: list[dict], histograms: Sequence[dict]) -> None:
  """Hand one epoch to every callback, each in its own way (the module's doc)."""
  for callback in callbacks:
    if isinstance(callback, StepLogger):
      callback(record, stats, histograms)
    else:
      callback(record, stats)
