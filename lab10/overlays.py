"""One statistic per layer over training, for several runs or a sweep's models: ``panels`` groups the runs of
``lab10.loaders`` tables, ``draw`` draws them in lab10's style (``plotting.curves``); ``scripts/plot_runs.py`` is
the command.

Runs whose configs differ only in ``seed`` (and where they were written, for how many epochs, how often they
logged) are one panel: each layer's line is the mean over those seeds at each logged step, shaded from the lowest
to the highest seed. A seed given twice starts another panel of that setting (marked ′), never counted twice. Each other config is a
panel of its own, titled by the settings in which the panels differ (a run without config.json: by its folder).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lab10 import loaders, plotting

# Config fields that do not tell runs apart as settings: they are pooled over (seed) or name where a run went.
_NOT_SETTINGS = ("seed", "workdir", "data_dir", "resume", "overwrite", "keep_checkpoints", "checkpoint_every",
                 "tensorboard", "preset", "log_histograms", "log_stats_every", "epochs")


def stat_names(frame) -> list[str]:
  """The ``group/stat`` names a stats table holds, e.g. ``grads/norm``."""
  return sorted(set(frame["group"] + "/" + frame["stat"]))


def panels(frames: Sequence, stat: str, layers: Sequence[str] = (), x: str = "step"):
  """``(panels, bands, seeds)`` for ``plotting.curves`` from ``load_run`` tables: ``panels[title][layer] = (x,
  mean)``, ``bands[title][layer] = (lowest, highest)`` over the seeds of a panel with several, ``seeds[title]`` their
  count. ``stat`` is ``group/stat`` (``grads/norm``); ``layers`` keeps those layers only (default: all, in the
  run's order). LoadError naming the valid choices for an unknown stat, layer or x."""
  if x not in ("step", "epoch"):
    raise loaders.LoadError(f"x {x!r} is not valid; choose from: step, epoch")
  group, _, name = stat.partition("/")
  runs = []
  for frame in frames:
    picked = frame[(frame["group"] == group) & (frame["stat"] == name)]
    if picked.empty:
      raise loaders.LoadError(f"{frame['run'].iloc[0]} has no statistic {stat!r}; choose from: "
                              f"{', '.join(stat_names(frame))}")
    order = list(dict.fromkeys(picked["layer"]))
    unknown = [layer for layer in layers if layer not in order]
    if unknown:
      raise loaders.LoadError(f"{frame['run'].iloc[0]} has no layer {unknown[0]!r} with {stat}; choose from: "
                              f"{', '.join(order)}")
    runs.append((picked, [layer for layer in order if not layers or layer in layers]))

  def setting(picked) -> tuple:
    columns = [c for c in picked.columns if c not in (*_NOT_SETTINGS, "run", "model_name", "epoch", "step", "key",
                                                       "group", "layer", "stat", "value", "loss")]
    if "dataset" not in picked.columns:  # no config.json: the run is its own setting
      return (("run", picked["run"].iloc[0]),)
    return tuple((c, picked[c].iloc[0]) for c in columns)

  grouped: dict[tuple, list] = {}
  for picked, order in runs:
    key, seed, copy = setting(picked), picked["seed"].iloc[0] if "seed" in picked.columns else None, 0
    while seed is not None and seed in [m[0]["seed"].iloc[0] for m in grouped.get((key, copy), [])]:
      copy += 1
    grouped.setdefault((key, copy), []).append((picked, order))
  varying = [c for c in dict(next(iter(grouped))[0]) if len({dict(k).get(c) for k, _ in grouped}) > 1]

  out, bands, seeds = {}, {}, {}
  for (key, copy), members in grouped.items():
    values = dict(key)
    title = (", ".join(f"{c}={values[c]}" for c in varying) or _title(members[0][0])) + "′" * copy
    out[title], bands[title], seeds[title] = {}, {}, len(members)
    for layer in members[0][1]:
      per_run = [p[p["layer"] == layer].groupby(x)["value"].mean() for p, _ in members]
      table = np.array([s.reindex(per_run[0].index).to_numpy(dtype=float) for s in per_run])
      steps = per_run[0].index.to_numpy()
      out[title][layer] = (steps, np.nanmean(table, axis=0) if len(members) > 1 else table[0])
      if len(members) > 1:
        bands[title][layer] = (np.nanmin(table, axis=0), np.nanmax(table, axis=0))
  return out, bands, seeds


def _title(picked) -> str:
  """A panel's title where all panels share their settings: the network and the run's folder."""
  run = picked["run"].iloc[0]
  if "activation" not in picked.columns:
    return run
  row = picked.iloc[0]
  return f"{row['activation']}, {row['init']}, {row['optimizer']} lr {row['lr']:g}"


def draw(frames: Sequence, stat: str, layers: Sequence[str] = (), x: str = "step", title: str | None = None):
  """The figure: one panel per setting (``panels``), one line per layer, a log axis where every value is > 0."""
  lines, bands, seeds = panels(frames, stat, layers, x)
  titled = {f"{t}\n{n} seeds: mean, band min–max" if n > 1 else t: v for (t, v), n in zip(lines.items(), seeds.values())}
  bands = {new: bands[old] for new, old in zip(titled, lines)}
  positive = all(np.all(np.asarray(y)[np.isfinite(y)] > 0) for panel in lines.values() for _, y in panel.values())
  label = {"step": "training step", "epoch": "epoch"}[x]
  with plotting.style():
    return plotting.curves(titled, label, [stat] * len(titled), logy=[positive] * len(titled), bands=bands,
                           title=title if title is not None else f"{stat} per layer")
