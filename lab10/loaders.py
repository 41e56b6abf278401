"""Tidy tables of what runs wrote, for overlays and for your own pandas: ``load_run`` and ``load_sweep``.

``load_run(dir)``: one row per logged step × layer × statistic of the run's stats.jsonl — columns ``run``,
``epoch``, ``step``, ``key`` (the stats.jsonl key, ``grads/dense_0/norm``), ``group``, ``layer``, ``stat``,
``value``, the other per-step scalars the run logged (``loss``), then every field of the run's config.json
(``width`` as the flag writes it, ``512,256``). ``table="metrics"``: one row per epoch × metric of metrics.jsonl
(``metric``, ``value``). ``load_sweep(dir)``: the tables of the sweep's models, one after the other, with their
folder's name in ``model_name``. ``run_dirs`` expands a list of runs and sweeps into run directories.

Reads files only (JSON lines), no JAX: a run still training can be read, up to its last complete line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from lab10.names import CONFIG, METRICS, STATS, SWEEP_MODELS

TABLES = ("stats", "metrics")


class LoadError(ValueError):
  """A folder that is not a run or a sweep, or a log that cannot be read; the message is one line."""


def _pandas():
  try:
    import pandas
  except ImportError:  # pragma: no cover - a dependency of lab10
    raise LoadError("lab10's loaders need pandas: pip install pandas") from None
  return pandas


def is_sweep(path) -> bool:
  return (Path(path) / SWEEP_MODELS).is_file()


def is_run(path) -> bool:
  return any((Path(path) / name).is_file() for name in (CONFIG, METRICS, STATS))


def run_dirs(paths: Iterable) -> list[Path]:
  """Each path as run directories: a sweep folder → its models (sweep.json's order), a run → itself; LoadError
  naming a path that is neither."""
  out = []
  for path in map(Path, paths):
    if is_sweep(path):
      out.extend(_sweep_models(path))
    elif is_run(path):
      out.append(path)
    else:
      raise LoadError(f"{path} is neither a run directory (no {CONFIG}, {METRICS} or {STATS}) nor a sweep folder "
                      f"(no {SWEEP_MODELS})")
  return out


def _sweep_models(folder: Path) -> list[Path]:
  try:
    names = json.loads((folder / SWEEP_MODELS).read_text())["models"]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise LoadError(f"{folder / SWEEP_MODELS} cannot be read as a sweep's list of models ({e.__class__.__name__})"
                    ) from None
  return [folder / name for name in names if is_run(folder / name)]


def _read_jsonl(path: Path) -> list[dict]:
  """The complete lines of ``path``: a last line still being written is left out, any other bad line refused."""
  text = path.read_text()
  lines = text.split("\n")
  complete = lines if text.endswith("\n") else lines[:-1]
  records = []
  for number, line in enumerate(complete, 1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except ValueError:
      raise LoadError(f"{path}: line {number} is not JSON: {line[:60]!r}") from None
  return records


def config_columns(run) -> dict:
  """The fields of ``run``'s config.json as table columns (none if it has none)."""
  path = Path(run) / CONFIG
  if not path.is_file():
    return {}
  try:
    values = json.loads(path.read_text())["config"]
  except (ValueError, KeyError, TypeError) as e:
    raise LoadError(f"{path} cannot be read as a lab10 run config ({e.__class__.__name__})") from None
  return {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in values.items()}


def load_run(run, table: str = "stats"):
  """``run``'s stats.jsonl (or, ``table="metrics"``, metrics.jsonl) as a tidy pandas DataFrame (module doc)."""
  pd = _pandas()
  if table not in TABLES:
    raise LoadError(f"table {table!r} is not valid; choose from: {', '.join(TABLES)}")
  run = Path(run)
  if not is_run(run):
    raise LoadError(f"{run} is not a run directory (no {CONFIG}, {METRICS} or {STATS})"
                    f"{'; it is a sweep folder: use load_sweep' if is_sweep(run) else ''}")
  path = run / (STATS if table == "stats" else METRICS)
  if not path.is_file():
    hint = ": train with --log_stats_every N" if table == "stats" else ""
    raise LoadError(f"{run} has no {path.name}{hint}")
  frame = pd.DataFrame(_read_jsonl(path))
  if table == "stats":
    keys = [k for k in frame.columns if k.count("/") == 2]
    ids = [k for k in frame.columns if k not in keys]
    frame = frame.melt(id_vars=ids, value_vars=keys, var_name="key", value_name="value")
    frame[["group", "layer", "stat"]] = frame["key"].str.split("/", expand=True)
    front = ["run", "epoch", "step", "key", "group", "layer", "stat", "value"]
  else:
    ids = [k for k in ("epoch", "step") if k in frame.columns]
    frame = frame.melt(id_vars=ids, var_name="metric", value_name="value")
    front = ["run", *ids, "metric", "value"]
  frame.insert(0, "run", str(run))
  frame = frame.sort_values([c for c in ("step", "epoch") if c in frame.columns], kind="stable")
  frame = frame[front + [c for c in frame.columns if c not in front]].reset_index(drop=True)
  for name, value in config_columns(run).items():
    if name not in frame.columns:
      frame[name] = value
  return frame


def load_sweep(folder, table: str = "stats"):
  """The tables of the sweep's models in ``folder`` (``load_run``), one after the other, ``model_name`` = the folder name."""
  pd = _pandas()
  folder = Path(folder)
  if not is_sweep(folder):
    raise LoadError(f"{folder} is not a sweep folder (no {SWEEP_MODELS})"
                    f"{'; it is a run directory: use load_run' if is_run(folder) else ''}")
  models = _sweep_models(folder)
  if not models:
    raise LoadError(f"{folder} lists no model that has written a run yet")
  frames = [load_run(m, table) for m in models]
  for model, frame in zip(models, frames):
    frame.insert(1, "model_name", model.name)
  return pd.concat(frames, ignore_index=True)
