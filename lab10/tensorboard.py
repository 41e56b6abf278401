"""TensorBoard event files from a run's records: live, as a ``fit`` callback (``--tensorboard``), or afterwards
from a run directory's files (``convert``, scripts/to_tensorboard.py). Written with tensorboardX on the caller's
thread (a failed write raises at once), imported only when a writer opens (TensorFlow is no dependency of lab10).

What becomes what, each at its record's global ``step`` (lab10.workdir):

* metrics.jsonl: every number but ``step`` as scalar ``metrics/<key>`` (``metrics/test_accuracy``);
* stats.jsonl: every number but ``step`` as a scalar under its own key (``forward/dense_0/act_var``, ``loss``);
* stats_histograms.npz: each histogram under its own tag (``activations/<layer>``, ``weights/<layer>``,
  ``grads/<layer>``) in the bins it was counted in (sum and sum of squares are from bin centres).

Scalars are float32 in TensorBoard, exactly the float32 values lab10 measured. The events are derived from the
logs: a resumed run rewrites them from its logs, cut back to its checkpoint (``Writer``), so TensorBoard shows
each logged step once, never the epochs an earlier process logged but did not checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lab10 import config as config_lib
from lab10 import runs, workdir

METRICS_PREFIX, HISTOGRAM_PREFIX = "metrics/", "activations/"
EVENT_FILES = "events.out.tfevents.*"


def _number(value) -> float | None:
  """A logged number as a float (None in JSONL, JSON's NaN, comes back as NaN); None for anything else."""
  if value is None:
    return math.nan
  return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def scalars(record: dict, prefix: str = "") -> Iterable[tuple[str, float]]:
  """``(tag, value)`` for every number of ``record`` but its ``step``."""
  for key, value in record.items():
    if key != "step" and (number := _number(value)) is not None:
      yield prefix + key, number


def histograms(path: Path, epoch: int | None = None) -> Iterable[tuple[str, int, np.ndarray, np.ndarray]]:
  """``(tag, step, edges, counts)`` of every logged step in stats_histograms.npz (of ``epoch`` only, if given):
  ``T/edges`` and ``T/counts`` per tag T, one row per step (``lab10.runlog``). A file of an older lab10, with
  one set of fixed ``edges`` and activation counts per layer, reads as ``activations/<layer>``."""
  if not path.exists():
    return
  with np.load(path) as saved:
    steps, epochs = saved["step"], saved["epoch"]
    if "edges" in saved.files:  # older lab10: fixed bins, activations only
      tags = {HISTOGRAM_PREFIX + k: (np.broadcast_to(saved["edges"], (len(steps), saved["edges"].size)), saved[k])
              for k in saved.files if k not in ("edges", "step", "epoch")}
    else:
      tags = {k.removesuffix("/counts"): (saved[k.removesuffix("counts") + "edges"], saved[k])
              for k in saved.files if k.endswith("/counts")}
  for i, step in enumerate(steps):
    if epoch is None or epochs[i] == epoch:
      for tag, (edges, counts) in tags.items():
        yield tag, int(step), edges[i], counts[i]


class _EventFile:
  """One event file in ``folder``, written synchronously on the caller's thread with tensorboardX's record writer
  (tensorboardX's SummaryWriter writes on a thread of its own, which a full disk leaves blocked forever). A failed
  write or flush raises runs.WriteError naming the file; the folder is emptied of event files first."""

  def __init__(self, folder: Path):
    try:  # lazy: only --tensorboard and scripts/to_tensorboard.py need it
      from tensorboardX import summary
      from tensorboardX.event_file_writer import EventsWriter
      from tensorboardX.proto import event_pb2
    except ImportError:
      raise config_lib.ConfigError("TensorBoard events need tensorboardX, which is not installed; pip install "
                                   "'lab10[tensorboard]' (or tensorboardX)") from None
    self._summary, self._event = summary, event_pb2.Event
    with runs.writing(folder):
      folder.mkdir(parents=True, exist_ok=True)
      for old in folder.glob(EVENT_FILES):
        old.unlink()
      self._file = EventsWriter(str(folder / "events"))  # events.out.tfevents.<time>.<host>, its header written
    self.path = Path(self._file._file_name)

  def _add(self, summary, step: int) -> None:
    with runs.writing(self.path):
      self._file.write_event(self._event(summary=summary, step=step, wall_time=time.time()))

  def add_scalar(self, tag: str, value: float, step: int) -> None:
    self._add(self._summary.scalar(tag, value), step)

  def add_histogram_raw(self, tag: str, *, global_step: int, **histogram) -> None:
    self._add(self._summary.histogram_raw(tag, **histogram), global_step)

  def flush(self) -> None:
    with runs.writing(self.path):
      self._file.flush()

  def close(self) -> None:
    with runs.writing(self.path):
      self._file.close()


def logged(run_dir: Path) -> list[tuple[dict, list[dict]]]:
  """``(record, stats)`` of every epoch in ``run_dir``'s metrics.jsonl and stats.jsonl, as ``fit`` passes them
  to its callbacks."""
  stats_path, by_epoch = run_dir / workdir.STATS, {}
  for s in runs.read_jsonl(stats_path) if stats_path.exists() else []:
    by_epoch.setdefault(s["epoch"], []).append(s)
  return [(record, by_epoch.get(record["epoch"], [])) for record in workdir.read_records(run_dir)]


class Writer:
  """A ``fit`` callback writing each epoch's records of the run in ``run_dir`` as events into ``folder``
  (default ``run_dir/tensorboard``), with the epoch's activation histograms from its stats_histograms.npz.

  The first call starts the folder afresh from the run's logs: it deletes the folder's event files and writes
  the epochs before its own from metrics.jsonl, stats.jsonl and stats_histograms.npz. A resumed run's logs are
  cut back to its checkpoint, so its events hold every logged step once, as the logs do. Flushed every epoch."""

  def __init__(self, run_dir: Path, folder: Path | None = None):
    self._run_dir = Path(run_dir)
    self._folder = Path(folder) if folder is not None else self._run_dir / workdir.TENSORBOARD
    self._own = folder is None  # the run directory's own folder: never written through a link out of it
    self._writer = None

  def __call__(self, record: dict, stats: list[dict]) -> None:
    if self._writer is None:
      if self._own and self._folder.is_symlink():
        self._folder.unlink()  # the link goes, not the events of whatever it points to
      self._writer = _EventFile(self._folder)
      for earlier, earlier_stats in logged(self._run_dir):
        if earlier["epoch"] < record["epoch"]:
          self._write(earlier, earlier_stats)
    self._write(record, stats)
    self._writer.flush()  # an epoch's events are on disk before the next epoch starts

  def _write(self, record: dict, stats: list[dict]) -> None:
    for tag, value in scalars(record, METRICS_PREFIX):
      self._writer.add_scalar(tag, value, record["step"])
    for s in stats:
      for tag, value in scalars(s):
        self._writer.add_scalar(tag, value, s["step"])
    for tag, step, edges, counts in histograms(self._run_dir / workdir.HISTOGRAMS, record["epoch"]):
      centres = (edges[:-1] + edges[1:]) / 2
      # TensorBoard reads bucket i as (limit[i-1], limit[i]] with min and max as the outer edges.
      self._writer.add_histogram_raw(tag, min=float(edges[0]), max=float(edges[-1]), num=int(counts.sum()),
                                     sum=float(counts @ centres), sum_squares=float(counts @ centres**2),
                                     bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(),
                                     global_step=step)

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if exc[0] is None:
      self.close()
    else:  # already failing (a full disk, say): that error is the one to report
      with contextlib.suppress(runs.WriteError):
        self.close()


def _check_logs(run_dir: Path) -> None:
  """RunError naming the first of the run's logs that cannot be read whole (before any event is written)."""
  for path in (run_dir / workdir.METRICS, run_dir / workdir.STATS, run_dir / workdir.HISTOGRAMS):
    if not path.exists():
      continue
    try:
      if path.suffix == ".npz":
        list(histograms(path))
        continue
      records = runs.read_jsonl(path)
      if path.name == workdir.METRICS and not records:
        raise ValueError("no line: no epoch has ended")
      for record in records:
        if not (isinstance(record, dict) and isinstance(record.get("epoch"), int)
                and isinstance(record.get("step"), int)):
          raise ValueError(f"a line without an integer epoch and step: {str(record)[:60]}")
        text = [k for k, v in record.items() if not (v is None or isinstance(v, (int, float)))]
        if text:  # null is a non-finite number (lab10 writes NaN so); anything else is no measurement
          raise ValueError(f"{text[0]!r} is not a number in the line of step {record['step']}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
      raise runs.RunError(f"{path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                          "it is damaged: nothing converted") from None


def convert_all(path: Path, out: Path | None = None) -> list[Path]:
  """``convert`` a run directory, or every model of a sweep folder (into ``out/<model>``, default each model's
  own tensorboard/); all are checked before any is written. Returns the event folders."""
  from lab10 import loaders  # reads files only

  path = Path(path)
  if not loaders.is_sweep(path):
    return [convert(path, out)]
  models = loaders.run_dirs([path])
  if not models:
    raise runs.RunError(f"{path} is a sweep folder whose models have written nothing yet")
  outs = [None if out is None else Path(out) / m.name for m in models]
  for model, model_out in zip(models, outs):
    _check_convertible(model, model_out)
  return [convert(model, model_out) for model, model_out in zip(models, outs)]


def _check_convertible(run_dir: Path, out: Path | None) -> Path:
  """``out`` (default ``run_dir/tensorboard``) once ``run_dir`` is a readable run and ``out`` holds no events."""
  out = Path(out) if out is not None else run_dir / workdir.TENSORBOARD
  if not run_dir.is_dir():
    raise runs.RunError(f"{run_dir} does not exist or is not a folder; expected a lab10 run directory")
  if not (run_dir / workdir.METRICS).exists():
    raise runs.RunError(f"{run_dir} holds no {workdir.METRICS}: not a lab10 run directory (or no epoch has ended)")
  _check_logs(run_dir)
  if out.is_dir() and any(out.glob(EVENT_FILES)):
    raise config_lib.ConfigError(f"{out} already holds TensorBoard event files (from --tensorboard or an earlier "
                                 "conversion); delete them, or pass another --out")
  return out


def convert(run_dir: Path, out: Path | None = None) -> Path:
  """Event files in ``out`` (default ``run_dir/tensorboard``) from the run directory's metrics.jsonl,
  stats.jsonl and stats_histograms.npz, as ``--tensorboard`` would have written them; returns ``out``.
  RunError for a folder that is no run directory, ConfigError if ``out`` already holds event files."""
  run_dir = Path(run_dir)
  out = _check_convertible(run_dir, out)
  with Writer(run_dir, out) as write:
    for record, stats in logged(run_dir):
      write(record, stats)
  return out
