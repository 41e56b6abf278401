"""Checkpoints: one orbax checkpoint per epoch, each verified against a digest of its arrays before it is used.

Arrays are stored as nested dictionaries named by their paths (``state/params/blocks/0/layer/kernel``), so
``orbax.checkpoint`` alone can read them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import jax
import numpy as np

from lab10 import cli, devices, runs


class CheckpointError(runs.RunError):
  """One checkpoint is damaged, unverifiable or another model's; an older one may still be intact."""


def _key_name(key) -> str:
  for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey / FlattenedIndexKey
    if hasattr(key, attr):
      return str(getattr(key, attr))
  raise TypeError(f"unsupported pytree path entry {key!r}")


def _names(path) -> list[str]:
  names = [_key_name(k) for k in path]
  return names[:-1] if len(names) > 1 and names[-1] == "value" else names  # an NNX Variable's payload


def to_tree(pytree) -> dict:
  """Host copy of ``pytree`` as nested dicts of NumPy arrays named by their paths
  (``params/blocks/0/layer/kernel``); PRNG keys become their raw ``key_data``. Independent of
  how orbax treats NNX ``State`` or optax NamedTuples, and readable without lab10."""
  out: dict = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(pytree)[0]:
    names = _names(path)
    node = out
    for name in names[:-1]:
      node = node.setdefault(name, {})
    # np.array copies: the device buffers are donated to the next epoch while orbax writes.
    node[names[-1]] = np.array(jax.random.key_data(leaf) if runs.is_key(leaf) else leaf)
  return out


def from_tree(tree: dict, like):
  """Inverse of ``to_tree``: ``tree``'s arrays in the structure (and PRNG key types) of ``like``."""
  paths, treedef = jax.tree_util.tree_flatten_with_path(like)
  leaves = []
  for path, leaf in paths:
    value = tree
    for name in _names(path):
      value = value[name]
    if runs.is_key(leaf):
      leaves.append(jax.random.wrap_key_data(value, impl=jax.random.key_impl(leaf)))
    else:
      leaves.append(jax.numpy.asarray(value, dtype=leaf.dtype))
  return jax.tree.unflatten(treedef, leaves)


def _flat(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
  out = {}
  for name, value in tree.items():
    out.update(_flat(value, f"{prefix}{name}/") if isinstance(value, dict) else {f"{prefix}{name}": value})
  return out


def array_digests(tree: dict) -> dict[str, str]:
  """``{path: "dtype shape sha256"}`` of each array of a ``to_tree`` tree."""
  return {k: f"{v.dtype}{list(v.shape)} {hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}"
          for k, v in _flat(tree).items()}


class Checkpoints:
  """``<folder>/<epoch>/``: one orbax checkpoint per epoch, the newest ``keep`` kept, each with its digest
  ``<folder>/<epoch>.sha256.json``: every array's dtype, shape and SHA-256, and ``stamp`` (the run's config hash).

  orbax writes each checkpoint into a temporary folder and renames it when complete, so a kill at any moment
  leaves only complete checkpoints (temporaries are removed on the next open). The digest is computed from the
  host copy and written before orbax starts, so a complete checkpoint always has one; a checkpoint that does
  not match its digest (a flipped bit, a truncated file, one copied in from another run) is refused by
  ``restore``. Saving is asynchronous: it overlaps the next epoch; ``wait`` blocks until it is on disk. A save that
  failed raises runs.WriteError at the next ``save`` or ``wait``, its temporary folder removed. Inside ``with``,
  a signal (``lab10.cli``) lets the checkpoint being written finish before the process leaves.
  """

  def __init__(self, folder: Path, keep: int, stamp: dict | None = None):
    import orbax.checkpoint as ocp  # lazy: importing orbax costs half a second

    cli.quiet_logs()  # orbax logs a failed save's tracebacks; runs.WriteError says it in one line
    self._ocp, self.folder, self.stamp, self._saving = ocp, Path(folder).absolute(), stamp or {}, None
    self._keep = keep
    with runs.writing(self.folder):
      self._manager = self._open()

  def _open(self):
    # Checkpoints beyond ``keep`` are deleted on orbax's background thread (``close`` waits for it): deleting them
    # on the training thread cost about 6% of a 15-epoch lab run (scripts/benchmark.py's notes in the README).
    return self._ocp.CheckpointManager(
        self.folder, options=self._ocp.CheckpointManagerOptions(max_to_keep=self._keep, create=True,
                                                                cleanup_tmp_directories=True,
                                                                enable_background_delete=True))

  def latest(self) -> int | None:
    """The newest complete checkpoint's epoch, or None."""
    return self._manager.latest_step()

  def epochs(self) -> list[int]:
    """The epochs of the complete checkpoints, oldest first."""
    return sorted(self._manager.all_steps())

  def digest_path(self, epoch: int) -> Path:
    return self.folder / f"{epoch}.sha256.json"

  def save(self, epoch: int, pytree) -> None:
    tree = to_tree(pytree)
    self.wait()  # the previous save had an epoch to finish: raise its failure; its digest is no orphan
    if devices.primary():  # one writer for the digest; every process takes part in orbax's save
      runs.write_json(self.digest_path(epoch), {**self.stamp, "arrays": array_digests(tree)})
    self._saving = epoch
    with cli.deferred():
      try:
        self._manager.save(epoch, args=self._ocp.args.StandardSave(tree))
      except Exception as e:
        raise self._failed(e) from None

  def restore(self, epoch: int, like=None):
    """The checkpoint of ``epoch``, verified against its digest, in the structure of ``like`` (e.g. a freshly
    initialised state), whose arrays' paths, dtypes and shapes it must have; as saved (nested dicts of arrays)
    without ``like``. CheckpointError if it is damaged, has no digest, or is another run's or model's."""
    path = self.folder / str(epoch)
    try:
      digest = runs.read_json(self.digest_path(epoch))
    except runs.RunError:
      digest = "broken"
    if not isinstance(digest, dict) or not isinstance(digest.get("arrays"), dict):
      raise CheckpointError(f"{path} has no valid digest {self.digest_path(epoch).name}: it cannot be verified")
    try:
      tree = self._manager.restore(epoch, args=self._ocp.args.StandardRestore(None))
    except Exception as e:  # orbax and tensorstore raise many types; say which checkpoint and why
      # A failed restore can leave orbax's manager unable to restore any other step (an empty step folder makes
      # it expect a Composite of items): the next restore starts from a fresh one.
      self._manager.close()
      self._manager = self._open()
      raise CheckpointError(f"{path} cannot be read ({e.__class__.__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''})") from None
    actual = array_digests(tree)
    for name in sorted(actual.keys() | digest["arrays"].keys()):
      if actual.get(name) != digest["arrays"].get(name):
        raise CheckpointError(f"{path}: array {name} does not match its digest (the checkpoint is damaged)")
    for key, value in self.stamp.items():
      if digest.get(key) != value:
        raise CheckpointError(f"{path} was written by another run ({key} differs from this run's)")
    if like is None:
      return tree
    expected = {k: v.rsplit(" ", 1)[0] for k, v in array_digests(to_tree(like)).items()}
    found = {k: v.rsplit(" ", 1)[0] for k, v in actual.items()}
    for name in sorted(expected.keys() | found.keys()):
      if expected.get(name) != found.get(name):
        raise CheckpointError(f"{path} holds {name} as {found.get(name, 'nothing')}, but this model's is "
                              f"{expected.get(name, 'absent')}: a checkpoint of another model")
    return from_tree(tree, like)

  def set_aside(self, epoch: int) -> Path:
    """Move the checkpoint of ``epoch`` and its digest to ``<folder>.damaged/`` (kept, out of the way)."""
    self._manager.wait_until_finished()
    aside = self.folder.with_name(self.folder.name + ".damaged")
    aside.mkdir(exist_ok=True)
    for path in (self.folder / str(epoch), self.digest_path(epoch)):
      target, n = aside / path.name, 1
      while target.exists():
        target, n = aside / f"{path.name}.{n}", n + 1
      if path.exists():
        os.replace(path, target)
    self._manager.reload()
    return aside

  def wait(self) -> None:
    """Block until the checkpoint being written is on disk; runs.WriteError if runs.writing it failed."""
    try:
      with _stray_tracebacks_dropped_on_failure():
        self._manager.wait_until_finished()
    except Exception as e:
      raise self._failed(e) from None
    self._saving = None
    kept = set(self._manager.all_steps())
    for path in self.folder.glob("*.sha256.json"):  # digests of checkpoints orbax dropped, or never finished
      if path.name.split(".")[0] not in map(str, kept) and devices.primary():
        path.unlink(missing_ok=True)

  def _failed(self, e: Exception) -> runs.WriteError:
    """runs.WriteError naming the checkpoint and the OS error (tensorstore reports it as text); no temporaries left."""
    epoch, self._saving = self._saving, None
    for tmp in self.folder.glob("*.orbax-checkpoint-tmp*"):
      shutil.rmtree(tmp, ignore_errors=True)
    if not isinstance(e, OSError):
      code = re.search(r"os_error_code='?(\d+)", str(e))
      e = (OSError(int(code[1]), os.strerror(int(code[1]))) if code
           else OSError(None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
    return runs.WriteError(self.folder / str(epoch) if epoch is not None else self.folder, e)

  def close(self) -> None:
    self.wait()
    self._manager.close()

  def __enter__(self):
    self._blocks = contextlib.ExitStack()
    self._blocks.enter_context(_closed_loop_echoes_dropped())
    self._blocks.enter_context(cli.at_exit(self._manager.wait_until_finished))
    return self

  def __exit__(self, *exc):
    with self._blocks:
      if exc[0] is None:
        self.close()
      else:  # already failing: a failed save's error is not the one to report
        with contextlib.suppress(Exception):
          self.close()


@contextlib.contextmanager
def _stray_tracebacks_dropped_on_failure():
  """Hold what is written to file descriptor 2 while the block runs, and pass it on if the block succeeds. If it
  fails (a save that could not be written), tensorstore's callbacks into orbax's closed event loop print
  "Event loop is closed" tracebacks straight to fd 2, during the failure and after it: from then on fd 2 is
  /dev/null and ``sys.stderr`` a copy of the real one, so the run still ends with its one line."""
  sys.stderr.flush()
  real = os.dup(2)
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    try:
      yield
    except BaseException:
      os.dup2(real, 2)  # back to where it went, then away from there for good
      os.close(real)
      devnull = os.open(os.devnull, os.O_WRONLY)
      cli.native_stderr_to(devnull)
      os.close(devnull)
      raise
    os.dup2(real, 2)
    os.close(real)
    held.seek(0)
    passed_on = held.read()
    if passed_on:
      os.write(2, passed_on)


def _is_closed_loop_echo(kind, value) -> bool:
  return kind is RuntimeError and str(value) == "Event loop is closed"


@contextlib.contextmanager
def _closed_loop_echoes_dropped():
  """While checkpoints are written in the background, a save that fails (a full disk) leaves tensorstore calling
  back into orbax's closed event loop; each callback's ``RuntimeError: Event loop is closed`` is reported through
  Python's exception hooks as a traceback on stderr while training goes on. The save's own failure is raised by
  ``wait`` (one line); these echoes of it are dropped, every other exception is reported as before."""
  hooks = sys.excepthook, threading.excepthook, sys.unraisablehook

  def excepthook(kind, value, traceback):
    if not _is_closed_loop_echo(kind, value):
      hooks[0](kind, value, traceback)

  def thread_excepthook(args):
    if not _is_closed_loop_echo(args.exc_type, args.exc_value):
      hooks[1](args)

  def unraisablehook(unraisable):
    if not _is_closed_loop_echo(unraisable.exc_type, unraisable.exc_value):
      hooks[2](unraisable)

  sys.excepthook, threading.excepthook, sys.unraisablehook = excepthook, thread_excepthook, unraisablehook
  try:
    yield
  finally:
    sys.excepthook, threading.excepthook, sys.unraisablehook = hooks
