"""scripts/probe_init.py's grid: ``probes.probe_init`` over activations × initializers × depths × widths, one row per
network, hidden layer and parameter draw, and the rows averaged over the draws."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx

from lab10 import config as config_lib
from lab10 import probes, progress

NUM_CLASSES = 10  # MNIST's digits, probe_init.py's default data


GRID_KEYS = ("activation", "init", "depth", "width", "layer")  # what identifies one row of seed_means


def probe_grid(activations: Sequence[str], inits: Sequence[str], depths: Sequence[int], widths: Sequence[int],
               batch: dict, *, seeds: int = 4, num_classes: int = NUM_CLASSES,
               base: config_lib.Config = config_lib.Config(), verbose: bool = False) -> list[dict]:
  """``probes.probe_init`` over activations × initializers × depths × widths (MLPs; other settings from
  ``base``) for ``seeds`` parameter draws. One row per network, hidden layer and draw (``seed`` 0 …
  seeds − 1) with that layer's forward and backward statistics; ``seed_means`` averages the draws.
  ``verbose``: a bar and one line per network probed (``lab10.progress``)."""
  rows = []
  keys = jax.random.split(jax.random.key(base.seed), seeds)
  grid = list(itertools.product(activations, inits, depths, widths))
  lines = progress.Lines("network", len(grid), verbose=verbose)
  for i, (activation, init, depth, width) in enumerate(progress.iterate(grid, "networks", "net", verbose=verbose), 1):
    c = config_lib.validate(dataclasses.replace(base, model="mlp", activation=activation, init=init, depth=depth,
                                                width=(width,)))
    build = lambda key: config_lib.make_model(c, batch["x"].shape[1:], num_classes, nnx.Rngs(params=key))
    stats = probes.probe_init(build, batch, keys, bounds=config_lib.activation_bounds(c))
    for layer, name in enumerate(f"dense_{i}" for i in range(depth)):
      values = {f"{group}/{stat}": v for k, v in stats.items() for group, layer_name, stat in [k.split("/")]
                if layer_name == name}
      for seed in range(seeds):
        rows.append({"activation": activation, "init": init, "depth": depth, "width": width, "layer": layer,
                     "seed": seed, **{k: float(v[seed]) for k, v in values.items()}})
    lines.done(i, f"{activation} / {init}, depth {depth}, width {width}")
  return rows


def seed_means(rows: list[dict]) -> list[dict]:
  """``probe_grid``'s rows averaged over the draws: one row per network and layer, ``seeds`` = their number."""
  groups: dict[tuple, list[dict]] = {}
  for row in rows:
    groups.setdefault(tuple(row[k] for k in GRID_KEYS), []).append(row)
  means = []
  for key, group in groups.items():
    stats = [k for k in group[0] if "/" in k]
    means.append({**dict(zip(GRID_KEYS, key)), "seeds": len(group),
                  **{k: float(np.mean([r[k] for r in group])) for k in stats}})
  return means
