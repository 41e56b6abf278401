"""How every script stops: a signal or a failed write ends it in one stderr line with its own exit status.

Exit statuses of ``scripts/*.py``::

  0    done
  2    bad input (flags, data files, run directory): refused before any work, nothing written
  3    training diverged (train.py): the epoch's records are written, its state is not checkpointed
  4    a file could not be written (full disk, I/O error, permission): the run stops at that epoch, resumable
  5    another process of a --distributed job failed or left (train.py): the run stops, resumable
  130  SIGINT (Ctrl-C)   ┐ the run stops where it is, resumable: a checkpoint being written is finished first,
  143  SIGTERM           ┘ a log line or JSON file is never half written

Signals: ``exit_on_signals()``, called at the top of a script before its heavy imports, replaces Python's
KeyboardInterrupt (which JAX can swallow in a callback, and whose interpreter teardown with XLA and orbax
threads still running can segfault) by a handler that prints one line and leaves with ``os._exit``. Code that
must not be cut in the middle runs inside ``deferred()``: a signal there takes effect when the block ends.
``at_exit(fn)`` registers what to finish first (the checkpoint being written). A second signal leaves at once.
This module imports nothing heavy: it is imported before JAX.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator

DONE, BAD_INPUT, DIVERGED, WRITE_FAILED, PEER_FAILED = 0, 2, 3, 4, 5
SIGNAL_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}

_installed = False
_hint = ""
_depth = 0          # nesting of deferred() blocks
_pending: int | None = None
_stopping = False
_finishers: list[Callable[[], None]] = []


def exit_on_signals(hint: str = "") -> None:
  """Handle SIGINT and SIGTERM from now on: one line (``interrupted (SIGINT)`` + ``hint``), exit 130 / 143."""
  global _installed, _hint
  _installed, _hint = True, hint
  for signum in SIGNAL_STATUS:
    signal.signal(signum, _handler)


def _handler(signum, frame) -> None:
  global _pending
  if _stopping:  # a second signal while finishing: leave now
    os._exit(SIGNAL_STATUS[signum])
  _pending = signum
  if not _depth:
    _stop()


def _stop() -> None:
  global _stopping
  _stopping = True
  signum = _pending
  what = "interrupted" if signum == signal.SIGINT else "terminated"
  with contextlib.suppress(Exception):
    sys.stdout.flush()
  print(f"{what} ({signal.Signals(signum).name}){_hint}", file=sys.stderr, flush=True)
  for finish in reversed(_finishers):
    with contextlib.suppress(BaseException):
      finish()
  with contextlib.suppress(Exception):
    sys.stdout.flush()
  os._exit(SIGNAL_STATUS[signum])  # no interpreter teardown: XLA and orbax threads may still run


def run(main: Callable[[], int], hint: str = "") -> None:
  """``leave(main())``, where a file that could not be written (``runs.WriteError``, or an ``OSError`` that reached
  the script, e.g. a figure's PNG on a full disk) ends the script in one line and status 4."""
  try:
    status = main()
  except Exception as e:
    from lab10 import runs  # here, not above: runs imports JAX, and main() may answer --help without it

    if not isinstance(e, (runs.WriteError, OSError)):
      raise
    if isinstance(e, OSError):
      e = runs.WriteError(e.filename if e.filename is not None else "a file", e)
    print(f"error: {e}{hint}", file=sys.stderr)
    status = WRITE_FAILED
  leave(status)


def native_stderr_to(fd: int) -> None:
  """From now on, what is written straight to file descriptor 2 (C++ libraries: XLA, gRPC, tensorstore) goes to
  ``fd``, while ``sys.stderr`` (Python's writes, the scripts' one-line errors) stays where fd 2 went before."""
  sys.stderr.flush()
  terminal = os.dup(2)
  os.dup2(fd, 2)
  sys.stderr = os.fdopen(terminal, "w", buffering=1)


def leave(status: int) -> None:
  """End the script with ``status`` once its output is flushed, skipping interpreter teardown: orbax's and
  XLA's threads (a failed save's event loop among them) must not print or crash after the one-line error."""
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(Exception):
      stream.flush()
  os._exit(status)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
  """Run the block whole: a signal inside it takes effect when it ends (at once without handlers)."""
  global _depth
  _depth += 1
  try:
    yield
  finally:
    _depth -= 1
    if not _depth and _pending is not None and _installed:
      _stop()


@contextlib.contextmanager
def at_exit(finish: Callable[[], None]) -> Iterator[None]:
  """While the block runs, a signal calls ``finish()`` before the process leaves."""
  _finishers.append(finish)
  try:
    yield
  finally:
    _finishers.remove(finish)


def quiet_logs() -> None:
  """Keep absl (JAX, orbax) log lines off stderr: every failure is reported by the script in one line."""
  import logging

  logging.getLogger("absl").setLevel(logging.CRITICAL)
  with contextlib.suppress(ImportError):
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.FATAL)
    absl_logging.set_stderrthreshold(absl_logging.FATAL)
