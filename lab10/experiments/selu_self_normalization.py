"""Klambauer et al. 2017: per-layer mean and variance of the activations at initialization from inputs off the
fixed point (mean 0.5, variance 4), SELU + LeCun beside ReLU + He and tanh + Xavier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from lab10 import plotting
from lab10.experiments.common import build_model, floats, mlp_config
from lab10.experiments.figure import Check, Figure, Result


SELU_NETS = {  # id: (legend label, config overrides)
    "selu": ("SELU + LeCun", dict(activation="selu", init="lecun_normal")),
    "relu": ("ReLU + He", dict(activation="relu", init="he_normal")),
    "tanh": ("tanh + Xavier", dict(activation="tanh", init="glorot_normal")),
}


NORMALIZED_TOLERANCE = 0.05  # a layer is self-normalised when |mean| and |var − 1| are both below this


def run(width: int = 1000, depth: int = 32, batch: int = 500, input_mean: float = 0.5,
        input_var: float = 4.0, seed: int = 0) -> Result:
  """Klambauer et al. 2017: per-layer mean and variance of the activations at init, from inputs off the
  fixed point (mean 0.5, variance 4), for SELU + LeCun beside ReLU + He and tanh + Xavier."""
  # inputs from seed + 1, parameters from seed
  x = input_mean + math.sqrt(input_var) * jax.random.normal(jax.random.key(seed + 1), (batch, width))
  layers = list(range(1, depth + 1))
  mean, var, claims = {}, {}, {}
  for net, (label, overrides) in SELU_NETS.items():
    _, acts = build_model(mlp_config(depth=depth, width=(width,), **overrides), (width,), seed).forward(x)
    mean[label] = floats([jnp.mean(a["post"]) for a in acts])
    var[label] = floats([jnp.var(a["post"]) for a in acts])
    claims[f"{net}_mean_top"] = (mean[label][-1], f"{label}: mean at layer {depth}")
    claims[f"{net}_var_top"] = (var[label][-1], f"{label}: variance at layer {depth}")
    claims[f"{net}_var_first"] = (var[label][0], f"{label}: variance at layer 1")
  label = SELU_NETS["selu"][0]
  ok = [l for l, m, v in zip(layers, mean[label], var[label])
        if abs(m) < NORMALIZED_TOLERANCE and abs(v - 1) < NORMALIZED_TOLERANCE]
  claims["selu_first_normalized_layer"] = (
      float(ok[0]) if ok else float("nan"),
      f"{label}: first layer with |mean| < {NORMALIZED_TOLERANCE} and |var − 1| < {NORMALIZED_TOLERANCE} "
      "(NaN: none)")
  return Result.of(
      data=dict(layers=layers, mean=mean, var=var, input_mean=input_mean, input_var=input_var,
                title=f"Self-normalisation at init: width {width}, inputs with mean {input_mean}, "
                      f"variance {input_var}"),
      claims=claims,
      setting=f"MLPs of {depth} hidden layers of {width}, zero biases, at init (seed {seed}); {batch} Gaussian "
              f"inputs of dimension {width} with mean {input_mean} and variance {input_var}; mean and variance "
              "over all units and examples of each layer's activations h.")


CHECKS = (
    Check(f"SELU + LeCun reaches |mean| < {NORMALIZED_TOLERANCE} and |var − 1| < {NORMALIZED_TOLERANCE} by layer 32 "
          "(Klambauer: by layer 16–32) and stays there at layer 32",
          lambda c: c["selu_first_normalized_layer"] <= 32 and abs(c["selu_mean_top"]) < NORMALIZED_TOLERANCE
          and abs(c["selu_var_top"] - 1) < NORMALIZED_TOLERANCE),
    Check("ReLU + He keeps the inputs' scale instead of normalising it: its variance at layer 32 is within a factor "
          "1.5 of layer 1's, and over 2 (the inputs' variance is 4); tanh + Xavier shrinks it toward 0 (below 0.05 "
          "at layer 32, from over 0.5 at layer 1)",
          lambda c: 1 / 1.5 < c["relu_var_top"] / c["relu_var_first"] < 1.5 and c["relu_var_top"] > 2
          and c["tanh_var_top"] < 0.05 < 0.5 < c["tanh_var_first"]),
)


def draw(layers: Sequence[int], mean: Mapping[str, Sequence[float]], var: Mapping[str, Sequence[float]],
         input_mean: float, input_var: float, title: str = ""):
  """Klambauer et al. 2017: per-layer mean and variance of the activations at init, SELU's fixed point
  (0, 1) dashed; the inputs' mean and variance marked at layer 0."""
  fig, (ax_m, ax_v) = plotting.figure(2, width=3.8)
  networks = list(dict.fromkeys([*mean, *var]))
  color_of = plotting.color_map(networks)
  for ax, values, fixed, start, what in ((ax_m, mean, 0.0, input_mean, "mean of activations"),
                                         (ax_v, var, 1.0, input_var, "variance of activations")):
    for label, v in values.items():
      ax.plot([0, *layers], [start, *plotting.floats(v)], plotting.MARKERS[networks.index(label) % len(plotting.MARKERS)] + "-",
              color=color_of[label], label=label, markersize=3)
    ax.axhline(fixed, color="k", linestyle="--", linewidth=1.0, label="SELU fixed point (mean 0, variance 1)")
    ax.set_xlabel("layer l (0 = input)")
    ax.set_ylabel(what)
  ax_v.set_yscale("log")
  plotting.legend_below(fig, (ax_m, ax_v))
  plotting.suptitle(fig, title)
  return fig


FIGURES = (Figure(
    name="selu_self_normalization",
    mirrors="Klambauer et al. 2017: (mean 0, variance 1) attracts SELU + LeCun activations from inputs with mean "
            "0.5 and variance 4 (|mean|, |var − 1| < 0.05 by layer 16–32).",
    differences=("Gaussian inputs of dimension 1000 at initialization (the paper's fixed-point analysis; no "
                 "training), width 1000, 32 layers, seed 0.",),
    rejected=(),
    caveats=(),
    run=run, draw=draw, checks=CHECKS,
    quick=dict(batch=100)),)
