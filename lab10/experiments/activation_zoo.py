"""Lab 10's exercise "try other activations and initializers": test accuracy (mean ± std over seeds) and the
first/last-layer weight-gradient ratio at init for every activation × initializer on the lab 10-4 network.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from flax import nnx

from lab10 import config as config_lib
from lab10 import data, plotting, probes, progress, runs, sweep
from lab10.activations import DEFAULT_LEAKY_SLOPE
from lab10.experiments.common import LAB_BATCH, NUM_CLASSES, mlp_config, mnist
from lab10.experiments.figure import Check, Figure, Result


ZOO_ACTIVATIONS = ("sigmoid", "tanh", "softsign", "relu", "leaky_relu", "elu", "selu", "gelu")


ZOO_INITS: dict[str, tuple[str, dict]] = {  # id: (column label, config overrides)
    "normal": ("normal N(0,1)", dict(init="normal", init_std=1.0)),
    "xavier": ("Xavier", dict(init="glorot_uniform")),
    "he": ("He", dict(init="he_normal")),
    "lecun": ("LeCun", dict(init="lecun_normal")),
}


ZOO_PROBE_EXAMPLES = 1000  # the zoo's gradient ratio at init, on 1000 fixed training images
ZOO_SEEDS = (0, 1, 2)


def sweep_records(configs: list[config_lib.Config], ds: data.Dataset) -> list[list[dict]]:
  """Train ``configs`` in one vmapped ``lab10.sweep``; each model's metrics.jsonl records, a diverged model's
  last one with NaN scores."""
  with tempfile.TemporaryDirectory() as tmp:
    folder = sweep.run(configs, ds, workdir=tmp, verbose=False)
    out = []
    for c in configs:
      records = runs.read_jsonl(folder / sweep.model_name(c) / "metrics.jsonl")
      if json.loads((folder / sweep.model_name(c) / "summary.json").read_text())["diverged_epoch"] is not None:
        records[-1] = {**records[-1], **{k: math.nan for k in records[-1] if k.endswith("_accuracy")}}
      out.append(records)
  return out


def _zoo_cell(c: config_lib.Config, seeds, ds: data.Dataset, probe_batch: dict) -> tuple[np.ndarray, np.ndarray]:
  """Per seed: (test accuracy after training, NaN where it diverged; ‖∂L/∂W_1‖ / ‖∂L/∂W_top‖ at init) of the
  networks ``c`` with those seeds, trained at once (``lab10.sweep``: one vmap, exactly ``fit``'s models)."""
  build = lambda key: config_lib.make_model(c, ds.input_shape, NUM_CLASSES, nnx.Rngs(params=key))
  keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))  # the networks the sweep trains
  stats = probes.probe_init(build, probe_batch, keys)
  ratio = stats["grads/dense_0/norm"] / stats[f"grads/dense_{c.depth - 1}/norm"]
  accuracy = np.array([records[-1]["test_accuracy"] for records in sweep_records(sweep.grid(c, seeds), ds)])
  return accuracy, ratio


def run(data_dir=None, depth: int = 4, width: int = 512, epochs: int = 1, n_train: int | None = None,
        activations=ZOO_ACTIVATIONS, inits=tuple(ZOO_INITS), seeds=ZOO_SEEDS) -> Result:
  """Test accuracy (mean ± std over seeds) and the first/last-layer weight-gradient-norm ratio at init for every
  activation × initializer, on the lab 10-4 network (Adam 1e-3, batch 100)."""
  ds = mnist(data_dir, n_train)
  probe_batch = {"x": jnp.asarray(ds.train_x[:ZOO_PROBE_EXAMPLES]), "y": jnp.asarray(ds.train_y[:ZOO_PROBE_EXAMPLES])}
  acc = np.zeros((len(activations), len(inits), len(seeds)))
  ratio = np.zeros_like(acc)
  ratio_name = f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init (geometric mean)"
  accuracy_name = f"test accuracy (mean ± std, {len(seeds)} seeds)"
  claims = {}
  cells = list(itertools.product(enumerate(activations), enumerate(inits)))
  lines = progress.Lines("activation_zoo cell", len(cells))  # a line per cell; a bar too on a terminal
  for k, ((i, act), (j, init)) in enumerate(progress.iterate(cells, "activation_zoo", "cell"), 1):
    label, overrides = ZOO_INITS[init]
    c = mlp_config(depth=depth, width=(width,), activation=act, epochs=epochs, val_size=0, **overrides)
    acc[i, j], ratio[i, j] = _zoo_cell(c, seeds, ds, probe_batch)
    lines.done(k, f"{act} / {label}: test accuracy {np.mean(acc[i, j]):.3f} (mean of {len(seeds)} seeds)")
    claims |= {
        f"{act}_{init}_accuracy_mean": (float(np.mean(acc[i, j])), f"{act} / {label}: test accuracy, mean over "
                                                                     f"seeds (NaN: a seed diverged)"),
        f"{act}_{init}_accuracy_std": (float(np.std(acc[i, j], ddof=1)),
                                       f"{act} / {label}: test accuracy, std over seeds (ddof 1)"),
        f"{act}_{init}_grad_ratio": (float(np.exp(np.mean(np.log(ratio[i, j])))),
                                     f"{act} / {label}: {ratio_name}")}
  mean, std = acc.mean(axis=2), acc.std(axis=2, ddof=1)  # the sample std, as every figure's
  text = [["diverged" if np.isnan(m) else f"{m:.3f}\n±{s:.3f}" for m, s in zip(row_m, row_s)]
          for row_m, row_s in zip(mean, std)]
  return Result.of(
      data=dict(rows=list(activations), cols=[ZOO_INITS[k][0] for k in inits],
                matrices={accuracy_name: mean.tolist(), ratio_name: np.exp(np.log(ratio).mean(axis=2)).tolist()},
                annotations={accuracy_name: text}, fmt={ratio_name: ".2g"}, cmaps={ratio_name: "coolwarm"},
                lognorm=[ratio_name],
                title=f"Activation × initializer: MNIST MLP {depth}×{width}, Adam 1e-3, {epochs} epoch(s), "
                      f"{len(seeds)} seeds"),
      claims=claims,
      setting=f"MLP {depth}×{width} (the lab 10-4 network), zero biases, Adam lr 1e-3, batch {LAB_BATCH}, "
              f"{epochs} epoch(s) on {len(ds.train_y)} MNIST training images (as the TF2 lab: 1 epoch), seeds "
              f"{', '.join(map(str, seeds))} trained at once (lab10.sweep); test accuracy on the 10k test set "
              f"(NaN: diverged); gradient ratio of the cross-entropy at init on {ZOO_PROBE_EXAMPLES} training "
              f"images, geometric mean over the seeds; colour scale logarithmic, centred at 1. leaky_relu slope "
              f"{DEFAULT_LEAKY_SLOPE}; normal = the labs' N(0, 1).")


FANS_SCALED = ("xavier", "he", "lecun")  # the initializers that scale with the fans
SATURATING = ("sigmoid", "tanh", "softsign")  # bounded on both sides


def _normal_cost(c: dict, act: str) -> float:
  """Test accuracy of ``act``'s best fan-scaled initializer minus N(0, 1)'s (means over seeds)."""
  return max(c[f"{act}_{i}_accuracy_mean"] for i in FANS_SCALED) - c[f"{act}_normal_accuracy_mean"]
CHECKS = (
    Check("with every fan-scaled initializer (Xavier, He, LeCun) every activation learns: mean test accuracy above "
          "0.92 after one epoch",
          lambda c: all(c[f"{a}_{i}_accuracy_mean"] > 0.92 for a in ZOO_ACTIVATIONS for i in FANS_SCALED)),
    Check("N(0, 1) costs the saturating activations most: tanh, softsign and sigmoid lose over 15 points of test "
          "accuracy against their best fan-scaled initializer, the others (ReLU family, ELU, SELU, GELU) 3 to 8",
          lambda c: all(_normal_cost(c, a) > 0.15 for a in SATURATING)
          and all(0.03 < _normal_cost(c, a) < 0.08 for a in ZOO_ACTIVATIONS if a not in SATURATING)),
    Check("at init, sigmoid's first-layer weight gradient is under 1/20 of the last layer's with every fan-scaled "
          "initializer; every other activation's ratio is between 1/3 and 3 with them",
          lambda c: all(c[f"sigmoid_{i}_grad_ratio"] < 0.05 for i in FANS_SCALED)
          and all(1 / 3 < c[f"{a}_{i}_grad_ratio"] < 3 for a in ZOO_ACTIVATIONS if a != "sigmoid"
                  for i in FANS_SCALED)),
)


def _lognorm_centred_at_1(m: np.ndarray) -> matplotlib.colors.LogNorm:
  """From 1/M to M, M the largest factor by which a value differs from 1 (at least 10): 1 sits mid-scale."""
  positive = m[np.isfinite(m) & (m > 0)]
  spread = float(np.max(np.maximum(positive, 1 / positive), initial=10.0))
  return matplotlib.colors.LogNorm(vmin=1 / spread, vmax=spread)


def draw(rows: Sequence[str], cols: Sequence[str], matrices: Mapping[str, np.ndarray],
         fmt: Mapping[str, str] = {}, cmaps: Mapping[str, str] = {}, lognorm: Sequence[str] = (),
         title: str = "", annotations: Mapping[str, Sequence[Sequence[str]]] = {}):
  """Annotated heatmaps sharing row (e.g. activation) and column (e.g. initializer) labels.

  A matrix named in ``lognorm`` gets a log colour scale centred at 1 (1/M … M): with a diverging map
  (``cmaps[name] = "coolwarm"``) values below and above 1 take opposite hues. Each cell prints
  ``annotations[name][i][j]`` if given (e.g. "0.97±0.01"), else its value in ``fmt[name]``; a NaN cell (the
  run diverged) is light grey and reads "diverged" unless annotated."""
  fig, axes = plotting.figure(len(matrices), width=0.55 * len(cols) + 2.2, height=0.38 * len(rows) + 1.2)
  for ax, (name, m) in zip(axes, matrices.items()):
    m = plotting.floats(m)
    norm = _lognorm_centred_at_1(m) if name in lognorm else None
    cmap = matplotlib.colormaps.get_cmap(cmaps.get(name, "viridis")).with_extremes(bad="0.85")
    im = ax.imshow(m, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(m):
      given = annotations[name][i][j] if name in annotations else None
      text = given or ("diverged" if np.isnan(v) else format(v, fmt.get(name, ".3f")))
      ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=plotting.text_color(im, v))
    ax.set_title(name)
    fig.colorbar(im, ax=ax, shrink=0.8)
  plotting.suptitle(fig, title)
  return fig


FIGURES = (Figure(
    name="activation_zoo",
    mirrors="Lab 10's exercise \"try other activations and initializers\": which pairs train, and how balanced the "
            "gradient is from first to last layer at init.",
    differences=("One epoch (the TF2 lab's budget) of Adam 1e-3, batch 100, on the lab 10-4 network (4×512, zero "
                 "biases), 3 seeds per cell; leaky_relu slope 0.01; normal = the labs' N(0, 1).",),
    rejected=(),
    caveats=(),
    run=run, draw=draw, checks=CHECKS,
    quick=dict(width=256, epochs=1, n_train=10_000, seeds=(0, 1)), long=dict(epochs=15)),)
