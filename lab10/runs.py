"""Run directories: config.json, append-only JSONL logs, the console progress line.

Each JSONL record is written as one line with a single ``write`` and flushed, so a
crash never leaves a half record that a reader would take for data.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import jax
import numpy as np

PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "tensorflow-datasets", "lab10")


def default_workdir(name: str) -> Path:
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return Path("runs") / f"{name}-{stamp}"


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
  }


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


def write_json(path: Path, obj: dict) -> None:
  """Write atomically: a temporary file renamed over the target."""
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n")
  os.replace(tmp, path)


def append_jsonl(path: Path, record: dict) -> None:
  extend_jsonl(path, [record])


def extend_jsonl(path: Path, records: list[dict]) -> None:
  """Append several records with one write and one fsync (e.g. an epoch's logged steps)."""
  lines = "".join(json.dumps(_clean(r), sort_keys=True) + "\n" for r in records)
  with open(path, "a") as f:
    f.write(lines)
    f.flush()
    os.fsync(f.fileno())


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
  """Write arrays atomically (a temporary file renamed over the target)."""
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "wb") as f:
    np.savez(f, **arrays)
  os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.endswith("\n")]


def progress(epoch: int, epochs: int, text: str, width: int = 20) -> None:
  """One progress-bar line per epoch: ``epoch  3/15 [####------] text``."""
  done = round(width * epoch / epochs)
  print(f"epoch {epoch:>{len(str(epochs))}}/{epochs} [{'#' * done}{'-' * (width - done)}] {text}",
        file=sys.stdout, flush=True)
