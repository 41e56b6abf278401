"""JAX's persistent compilation cache, which every lab10 script turns on: a program compiled once (a network's
epoch, its evaluation) is read back from disk by the next process instead of compiled again.

Where: ``$LAB10_COMPILATION_CACHE`` if set to a folder, else ``$XDG_CACHE_HOME/lab10/jax`` (``~/.cache/lab10/jax``).
``LAB10_COMPILATION_CACHE=off`` (or ``0``) turns it off; a cache the user configured for JAX itself
(``JAX_COMPILATION_CACHE_DIR``, ``jax.config.update("jax_compilation_cache_dir", …)``) is kept as it is. Clearing
it is deleting the folder. JAX loads an entry only for the exact program, compiler version and devices it was
compiled for, so results are bit-identical with and without it.

Shared safely: JAX writes an entry in place (``jax/_src/lru_cache.py``), so a process killed in the middle of a
write would leave a truncated entry that every later process fails to read, warns about and compiles again, and
two processes writing one entry could interleave. ``enable`` makes JAX's writes atomic where it can (a local
folder, no size cap): each entry is written to a temporary file of its own process and renamed into place, so
readers see a whole entry or none.

``enable`` must run before the process compiles anything: JAX reads the setting once, at its first compilation.
The library itself never calls it (importing lab10 changes nothing); scripts do, first thing after their flags.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV = "LAB10_COMPILATION_CACHE"
OFF = ("0", "off", "false", "no")
MIN_COMPILE_TIME_S = 0.0  # every program is written: even the small eager ones of model init add up (JAX default: 1 s)
STALE_TMP_S = 3600        # a temporary file older than this was left by a killed process


def default_dir() -> Path:
  return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lab10" / "jax"


def enable() -> Path | None:
  """Turn on the persistent compilation cache as the module docstring says; return its folder, or None when
  it is off. Idempotent."""
  import jax

  own = jax.config.jax_compilation_cache_dir  # the user's JAX setting (JAX_COMPILATION_CACHE_DIR included)
  setting = os.environ.get(ENV, "").strip()
  if own is None and setting.lower() in OFF:
    return None
  path = Path(own) if own is not None else Path(setting).expanduser() if setting else default_dir()
  if own is None:
    jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
      jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
  _atomic_writes()
  _remove_stale_tmp(path)
  return path


def _tmp_name(entry: Path) -> Path:
  return entry.with_name(f".{entry.name}.{os.getpid()}.tmp")


def _atomic_writes() -> None:
  """Replace ``LRUCache.put`` of this JAX by a write to a temporary file and a rename, for a local folder
  without a size cap (with a cap JAX's own put holds its lock and evicts; it is left as it is)."""
  try:
    from jax._src import lru_cache
  except ImportError:  # another JAX layout: its own writes stay
    return
  cache = getattr(lru_cache, "LRUCache", None)
  suffix = getattr(lru_cache, "_CACHE_SUFFIX", None)
  if cache is None or suffix is None or getattr(cache.put, "atomic", False):
    return
  in_place = cache.put

  def put(self, key: str, value: bytes) -> None:
    folder = str(getattr(self, "path", ""))
    if getattr(self, "eviction_enabled", True) or not folder or "://" in folder or not key:
      return in_place(self, key, value)
    entry = Path(folder) / f"{key}{suffix}"
    if entry.exists():
      return
    tmp = _tmp_name(entry)
    try:
      tmp.write_bytes(value)
      os.replace(tmp, entry)  # atomic on one filesystem: readers see the whole entry or none
    finally:
      tmp.unlink(missing_ok=True)

  put.atomic = True
  cache.put = put


def _remove_stale_tmp(path: Path) -> None:
  """Temporary files that killed processes left (never read: their names are not entries')."""
  now = time.time()
  try:
    for tmp in path.glob(".*.tmp"):
      if now - tmp.stat().st_mtime > STALE_TMP_S:
        tmp.unlink(missing_ok=True)
  except OSError:  # a folder not created yet, or another process removed the file first
    pass
