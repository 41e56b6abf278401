"""Progress on the terminal and in logs: tqdm bars on stderr, one plain line per finished unit on stdout.

A bar redraws itself with carriage returns, which in a log file (CI, ``> log``) becomes one endless line; so
bars are drawn only when stderr is a terminal (tqdm's ``disable=None``), and every finished epoch, run or
figure also prints one line to stdout with its count, the time elapsed and an estimate of the time left. A
terminal shows both (the lines scroll above the live bars); a log keeps only the lines. ``verbose=False``
prints nothing.
"""

from __future__ import annotations

import math
import sys
import time

from tqdm import tqdm


def bar(total: int, desc: str, unit: str, *, initial: int = 0, verbose: bool = True, leave: bool = True) -> tqdm:
  """A tqdm bar on stderr: count/total, elapsed, time left and rate; drawn only when stderr is a terminal."""
  return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, file=sys.stderr,
              disable=None if verbose else True, dynamic_ncols=True)


def iterate(items, desc: str, unit: str, *, verbose: bool = True):
  """``items`` with a transient tqdm bar (count, elapsed, time left), drawn only when stderr is a terminal."""
  return tqdm(items, desc=desc, unit=unit, leave=False, file=sys.stderr, disable=None if verbose else True,
              dynamic_ncols=True)


class Lines:
  """One stdout line per finished unit: ``epoch 3/15 | <text> | 2.1s, elapsed 0:06, left 0:25``.

  The time left assumes the remaining units take as long as the mean of those done in this process (a resumed
  run starts counting at ``initial``), each counted without one-time costs where ``done`` is told its ``steady``
  duration (an epoch's without compilation)."""

  def __init__(self, name: str, total: int, *, initial: int = 0, verbose: bool = True):
    self.name, self.total, self.initial, self.verbose = name, total, initial, verbose
    self.start = self.last = time.perf_counter()
    self.count = initial  # the highest unit index reported
    self.steady = 0.0  # the units' durations so far, one-time costs removed

  def done(self, index: int, text: str = "", steady: float | None = None) -> None:
    """Unit ``index`` (1-based, of ``total``) is finished; ``steady``: how long it would have taken without
    one-time costs (default: as long as it took)."""
    self.count = max(self.count, index)
    now = time.perf_counter()
    took, elapsed = now - self.last, now - self.start
    self.last = now
    self.steady += took if steady is None else min(steady, took)
    if not self.verbose:
      return
    left = self.steady / max(index - self.initial, 1) * (self.total - index)
    fields = [f"{self.name} {index:>{len(str(self.total))}}/{self.total}", *([text] if text else []),
              f"{took:.1f}s, elapsed {tqdm.format_interval(elapsed)}, left {tqdm.format_interval(left)}"]
    tqdm.write(" | ".join(fields), file=sys.stdout)  # clears and redraws any bar on the terminal
    sys.stdout.flush()


class Epochs:
  """A training run's progress: a bar of epochs (with ``postfix``), with ``steps_per_epoch`` a transient bar of
  the steps inside each epoch, and one ``Lines`` line per finished epoch. A context manager: closes the bars."""

  def __init__(self, epochs: int, *, steps_per_epoch: int | None = None, initial: int = 0, verbose: bool = True):
    self.lines = Lines("epoch", epochs, initial=initial, verbose=verbose)
    self.epochs = bar(epochs, "epochs", "epoch", initial=initial, verbose=verbose)
    self.steps = bar(steps_per_epoch, "steps", "step", verbose=verbose, leave=False) if steps_per_epoch else None
    self.steps_per_epoch = steps_per_epoch
    # The first epoch of this process compiles during its first piece: (time, steps done) when that piece ended.
    self.first_piece: tuple[float, int] | None = None
    self.first_epoch = True

  def step(self, done: int) -> None:
    """``done`` steps of the current epoch have run."""
    if self.first_epoch and self.first_piece is None:
      self.first_piece = (time.perf_counter(), done)
    if self.steps is not None:
      self.steps.update(done - self.steps.n)

  def done(self, epoch: int, text: str, **postfix) -> None:
    """Epoch ``epoch`` (1-based) is finished: ``text`` in its line, ``postfix`` beside the bar. The time left
    counts the first epoch without its first piece, which compiled: the rest of that epoch's steps at the
    rate of the pieces after it."""
    steady = None
    if self.first_epoch and self.first_piece is not None and self.first_piece[1] < self.steps_per_epoch:
      ended, done = self.first_piece
      steady = (time.perf_counter() - ended) * self.steps_per_epoch / (self.steps_per_epoch - done)
    self.first_epoch = False
    self.epochs.set_postfix(**postfix)
    self.epochs.update()
    if self.steps is not None:
      self.steps.reset()
    self.lines.done(epoch, text, steady)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    for b in (self.steps, self.epochs):  # the transient bar of steps first: the last line is then whole
      if b is not None:
        b.close()


class Pace:
  """Piece lengths for ``train.loop(chunk=pace)`` so that an epoch shows its progress about every ``seconds`` and a
  short one runs whole: pieces are multiples of ``align`` (--log_stats_every: logged steps stay at epoch-local
  0, N, 2N, …). The first epoch starts in probe pieces of about 1/32 epoch; the second probe piece (the first
  one compiles) is timed, and from then on pieces last about ``seconds``, or the epoch runs whole if it would
  take under ``whole_below`` seconds. Each length is one compilation of the epoch function: the probe, the
  chosen length and the remainders, so a run compiles at most four."""

  def __init__(self, steps_per_epoch: int, align: int = 1, seconds: float = 1.0, whole_below: float = 5.0):
    self.steps, self.align, self.seconds, self.whole_below = steps_per_epoch, align, seconds, whole_below
    self.probe = min(steps_per_epoch, self._aligned(-(-steps_per_epoch // 32)))
    self.size: int | None = None  # decided after the timed probe piece
    self._timed: tuple[int, float] | None = None  # (start, time) of the probe piece being timed

  def _aligned(self, steps: int) -> int:
    return -(-max(steps, 1) // self.align) * self.align

  def __call__(self, start: int) -> int:
    now = time.perf_counter()
    if self.size is None:
      if self._timed is not None and start == self._timed[0] + self.probe:
        per_step = (now - self._timed[1]) / self.probe
        whole = per_step * self.steps < self.whole_below
        self.size = self.steps if whole else min(self.steps, self._aligned(math.ceil(self.seconds / per_step)))
      elif start == self.probe:
        self._timed = (start, now)
    return self.size or self.probe
