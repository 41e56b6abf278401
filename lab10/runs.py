"""File primitives of a run: atomic JSON and NPZ, append-only JSONL, failed writes, the environment.

Each JSONL record is written as one line with a single ``write`` and fsynced; a reader skips a trailing line
without its newline, so a crash never leaves a half record. What a run directory holds, and the rules for
it, are ``lab10.workdir``'s.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path

import jax
import numpy as np

from lab10 import cli

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorflow-datasets", "lab10")


class RunError(Exception):
  """A run directory's files cannot be resumed from; the message is one line for the user."""


class WriteError(Exception):
  """A file could not be written (full disk, I/O error, permission); the message is one line naming it."""

  def __init__(self, path, error: OSError):
    code = errno.errorcode.get(error.errno, str(error.errno)) if error.errno else type(error).__name__
    super().__init__(f"cannot write {path}: {error.strerror or error} ({code})")


@contextlib.contextmanager
def writing(path: Path, tmp: Path | None = None):
  """Turn an OSError of the block into WriteError naming ``path``; remove ``tmp`` (if any) on any failure.
  The block is ``cli.deferred``: a signal never leaves it half done."""
  with cli.deferred():
    try:
      yield
    except BaseException as e:
      if tmp is not None:
        with contextlib.suppress(OSError):
          tmp.unlink()
      if isinstance(e, OSError):
        raise WriteError(path, e) from None
      raise


def environment() -> dict:
  """Package versions and devices, recorded beside every run."""
  versions = {}
  for pkg in PACKAGES:
    try:
      versions[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
      versions[pkg] = None
  return {
      "python": platform.python_version(),
      "packages": versions,
      "backend": jax.default_backend(),
      "devices": [str(d) for d in jax.devices()],
      "process_count": jax.process_count(),
      "cpu": _cpu_model(),
  }


def machine() -> dict:
  """What a figure or a long run records of where it was made: the versions of jax, flax and optax, and the
  processor and accelerator."""
  env = environment()
  return {"packages": {k: env["packages"][k] for k in ("jax", "flax", "optax")}, "backend": env["backend"],
          "devices": env["devices"], "cpu": env["cpu"]}


def _cpu_model() -> str:
  """The processor's model name (Linux's /proc/cpuinfo; elsewhere what Python's platform module knows)."""
  with contextlib.suppress(OSError):
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  return platform.processor() or platform.machine()


def device_summary() -> str:
  devices = jax.devices()
  return f"backend {jax.default_backend()}: {len(devices)} device(s): {', '.join(str(d) for d in devices)}"


def _clean(value):
  """JSON-safe: non-finite floats become null (JSON has no NaN)."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _clean(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_clean(v) for v in value]
  return value


def write_json(path: Path, obj: dict, *, sort_keys: bool = True) -> None:
  """Write atomically: a temporary file renamed over the target. ``sort_keys=False`` keeps the dicts' order (a
  figure's panels and legend entries)."""
  write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=sort_keys) + "\n")


@contextlib.contextmanager
def atomic(path: Path):
  """A temporary path beside ``path`` for the block to write, renamed over ``path`` when the block succeeds (a
  reader sees the old file or the new one, never part of one); on failure as ``writing``."""
  tmp = path.with_name(path.name + ".tmp")
  with writing(path, tmp):
    if tmp.is_symlink():  # never write through a link planted where the temporary file goes
      tmp.unlink()
    yield tmp
    os.replace(tmp, path)  # replaces a link at ``path`` itself, not the file it points to


def write_text(path: Path, text: str) -> None:
  """Write atomically: a temporary file renamed over the target."""
  with atomic(path) as tmp:
    tmp.write_text(text)


def write_figure(fig, stem: Path, kinds=("png", "pdf")) -> list[Path]:
  """``fig`` as ``stem.png`` and ``stem.pdf``, each atomically; the PDF without a creation date, so that a redraw
  of the same data writes the same bytes."""
  paths = []
  for kind in kinds:
    path = stem.with_name(f"{stem.name}.{kind}")
    with atomic(path) as tmp:
      fig.savefig(tmp, format=kind, dpi=200, metadata={"CreationDate": None} if kind == "pdf" else None)
    paths.append(path)
  return paths


def write_csv(path: Path, rows: list[dict]) -> None:
  """One row per dict, atomically; the columns are the union of the rows' keys in first-seen order."""
  table = io.StringIO(newline="")
  writer = csv.DictWriter(table, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
  writer.writeheader()
  writer.writerows(rows)
  write_text(path, table.getvalue())


def markdown_table(rows: list[dict], fmt=str) -> str:
  """The rows as a Markdown table, the first row's keys as its header, each cell ``fmt(value)``."""
  lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
  lines += ["| " + " | ".join(fmt(v) for v in row.values()) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def append_jsonl(path: Path, record: dict) -> None:
  extend_jsonl(path, [record])


def extend_jsonl(path: Path, records: list[dict]) -> None:
  """Append lines with one ``write`` call (a kill lands before or after it) and fsync them; a failed write is
  cut off again, so the file never ends in part of a line."""
  data = "".join(json.dumps(_clean(r), sort_keys=True) + "\n" for r in records).encode()
  with writing(path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    size = os.fstat(fd).st_size
    try:
      written = os.write(fd, data)
      while written < len(data):  # only on a full disk or a signal; finish the lines
        written += os.write(fd, data[written:])
      os.fsync(fd)
    except OSError:
      with contextlib.suppress(OSError):
        os.ftruncate(fd, size)
      raise
    finally:
      os.close(fd)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
  """Write arrays atomically (a temporary file renamed over the target)."""
  with atomic(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, **arrays)


def read_jsonl(path: Path) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.endswith("\n")]


def read_json(path: Path) -> dict | None:
  """A JSON file's object, or None if the file does not exist."""
  try:
    return json.loads(Path(path).read_text())
  except FileNotFoundError:
    return None
  except ValueError as e:
    raise RunError(f"{path} is not valid JSON ({e}); pass --overwrite or choose another --workdir") from None


def is_key(leaf) -> bool:
  return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def tree_sha256(tree) -> str:
  """SHA-256 of a pytree's arrays (dtype, shape and bytes, in tree order): equal hashes, equal values."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(tree):
    leaf = np.asarray(jax.device_get(jax.random.key_data(leaf) if is_key(leaf) else leaf))
    h.update(f"{leaf.dtype}{leaf.shape}".encode())
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()
