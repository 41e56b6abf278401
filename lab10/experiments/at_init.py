"""Experiments on networks at initialisation: nothing is trained, every number is one forward/backward pass.

He et al. 2015's variance over depth, Glorot & Bengio 2010's per-layer histograms (Figs. 6–8), SELU's
self-normalisation (Klambauer et al. 2017), and the probe grid of scripts/probe_init.py.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lab10 import config as config_lib
from lab10 import probes, progress
from lab10.experiments.common import (GLOROT_PROBE_EXAMPLES, NUM_CLASSES, Check, Result, _f, _mlp_config, _mnist,
                                      _model, backprop)

CHECKS: dict[str, tuple[Check, ...]] = {}  # each figure's claims, tested on its committed JSON

# --- He et al. Eq. 9/13: variance over depth at init ----------------------------------------------

VARIANCE_INITS: dict[str, tuple[str, dict]] = {  # id: (legend label, config overrides)
    "normal": ("N(0, 1)", dict(init="normal", init_std=1.0)),
    "lecun": ("Xavier / LeCun, Var 1/n", dict(init="lecun_normal")),
    "glorot": ("Xavier, Var 2/(n_in+n_out)", dict(init="glorot_normal")),
    "he_fan_in": ("He fan_in, Var 2/n_in", dict(init="he_normal", init_mode="fan_in")),
    "he_fan_out": ("He fan_out, Var 2/n_out", dict(init="he_normal", init_mode="fan_out")),
    "orthogonal": ("orthogonal", dict(init="orthogonal")),
}


def variance_vs_depth(width: int = 1000, depth: int = 30, batch: int = 200, inits=tuple(VARIANCE_INITS),
                      seed: int = 0) -> Result:
  """He et al. 2015 Eq. 9 (forward) and Eq. 13 (backward) for a ReLU MLP at init, per initializer.

  Forward: E[z_l²] relative to layer 1; backward: E[(∂L/∂z_l)²] relative to the top hidden layer, with
  L = Σ logits·g for a fixed Gaussian g (so ∂L/∂logits is unit Gaussian). Theory: both change by the factor
  ½·n·Var[W] per layer (width n everywhere, so fan_in = fan_out). Computed in float64: N(0, 1) grows by
  500× per layer at width 1000, past float32's range.
  """
  layers = list(range(1, depth + 1))
  forward, backward, theory_f, theory_b, claims = {}, {}, {}, {}, {}
  with jax.enable_x64(True):
    kx, kg = jax.random.split(jax.random.key(seed + 1))  # inputs from seed + 1, parameters from seed
    x = jax.random.normal(kx, (batch, width), jnp.float64)
    g = jax.random.normal(kg, (batch, NUM_CLASSES), jnp.float64)
    for init in inits:
      label, overrides = VARIANCE_INITS[init]
      model = _model(_mlp_config(depth=depth, width=(width,), activation="relu", **overrides), (width,), seed)
      stats = backprop(model, x, lambda logits: jnp.sum(logits * g))
      z2 = np.array([float(jnp.mean(stats[n]["pre"] ** 2)) for n in model.layer_names])
      d2 = np.array([float(jnp.mean(stats[n]["dz"] ** 2)) for n in model.layer_names])
      forward[label], backward[label] = _f(z2 / z2[0]), _f(d2 / d2[-1])
      var_w = float(np.mean(np.asarray(model.blocks[1].layer.kernel[...], np.float64) ** 2))
      factor = 0.5 * width * var_w  # He Eq. 9: ½·n_l·Var[w_l]
      theory_f[label] = _f(factor ** np.arange(depth))
      theory_b[label] = _f(factor ** (depth - np.array(layers)))
      claims[f"{init}_forward_ratio"] = (forward[label][-1], f"{label}: forward E[z_{depth}²]/E[z_1²]")
      claims[f"{init}_backward_ratio"] = (backward[label][0], f"{label}: backward E[δ_1²]/E[δ_{depth}²]")
      claims[f"{init}_theory_factor"] = (factor, f"{label}: theory per-layer factor ½·n·Var[W]")
  return Result.of(
      data=dict(layers=layers, forward=forward, backward=backward, theory_forward=theory_f,
                theory_backward=theory_b,
                title=f"ReLU MLP at init, width {width}, depth {depth}: He et al. Eq. 9 and 13 (square layers: "
                      f"fan_in = fan_out, so the two He and the two Xavier variants coincide)"),
      claims=claims,
      setting=f"ReLU MLP, {depth} hidden layers of {width}, zero biases, {batch} Gaussian inputs of dimension "
              f"{width}, seed {seed}, float64.")


# --- Glorot & Bengio Figs. 6–8: tanh nets at init, standard vs normalized --------------------------

GLOROT_INITS = {  # id: (panel title, initializer)
    "standard": ("standard U[±1/√n]", "glorot_standard"),
    "normalized": ("normalized (Xavier)", "glorot_uniform"),
}
HISTOGRAM_BINS = 81     # bins shared by the histograms of one panel
HISTOGRAM_RANGE = 99.9  # an unbounded quantity is histogrammed over ± this percentile of the panel's |values|


class _Histograms(NamedTuple):
  """What one of Figs. 6–8 histograms, and how it is drawn."""
  key: str               # ``backprop``'s array: "post", "dz" or "dw"
  quantity: str          # its symbol in the claims' text
  xlabel: str
  title: str
  limit: float | None    # the histograms' range ±limit; None: ±HISTOGRAM_RANGE percentile
  logy: bool


FIG6 = _Histograms("post", "h", "activation value h = tanh(z)", "Glorot & Bengio Fig. 6: tanh activations at init",
                   1.0, False)
FIG7 = _Histograms("dz", "∂L/∂z", r"back-propagated gradient $\partial L/\partial z$",
                   "Glorot & Bengio Fig. 7: back-propagated gradients at init", None, True)
FIG8 = _Histograms("dw", "∂L/∂W", r"weight gradient $\partial L/\partial W$",
                   "Glorot & Bengio Fig. 8: weight gradients at init", None, True)


@functools.lru_cache(maxsize=4)
def _glorot_tanh_at_init(data_dir, width: int, depth: int, n_examples: int, seed: int) -> dict:
  """Per init and layer: values of h, ∂L/∂z and ∂L/∂W on ``n_examples`` MNIST test images (cross-entropy).
  Cached: Figs. 6–8 share the networks."""
  ds = _mnist(data_dir)
  x, y = jnp.asarray(ds.test_x[:n_examples]), jnp.asarray(ds.test_y[:n_examples])
  out = {}
  for panel, (_, init) in GLOROT_INITS.items():
    model = _model(_mlp_config(depth=depth, width=(width,), activation="tanh", init=init), ds.input_shape, seed)
    stats = backprop(model, x, probes.xent(y))
    out[panel] = [{k: np.asarray(stats[name][k]).ravel() for k in ("post", "dz", "dw")}
                  for name in model.layer_names]
  return out


def _histograms(layers: list[np.ndarray], bins: int, limit: float | None) -> dict:
  """``{"layer l": (edges, counts)}`` of each layer's values, with bins shared over ±``limit`` (default ±the
  HISTOGRAM_RANGE percentile of all layers' |values|)."""
  top = limit or max(float(np.percentile(np.abs(v), HISTOGRAM_RANGE)) for v in layers)
  edges = np.linspace(-top, top, bins + 1)
  return {f"layer {i + 1}": (_f(edges), _f(np.histogram(v, edges)[0])) for i, v in enumerate(layers)}


def _glorot_figure(fig: _Histograms, data_dir, width: int, depth: int, n_examples: int, seed: int,
                   bins: int) -> Result:
  values = _glorot_tanh_at_init(data_dir, width, depth, n_examples, seed)
  hists, stds, claims = {}, {}, {}
  for panel, (label, _) in GLOROT_INITS.items():
    layers = [v[fig.key] for v in values[panel]]
    s = [float(np.std(v)) for v in layers]
    hists[label] = _histograms(layers, bins, fig.limit)
    stds[label] = {f"layer {i + 1}": v for i, v in enumerate(s)}
    for i, v in enumerate(s):
      claims[f"{panel}_std_layer{i + 1}"] = (v, f"{label}: std of {fig.quantity}, layer {i + 1}")
    claims[f"{panel}_std_ratio"] = (s[-1] / s[0], f"{label}: std ratio layer {depth} / layer 1")
    claims[f"{panel}_std_max_over_min"] = (max(s) / min(s), f"{label}: max/min std over layers")
  return Result.of(
      data=dict(panels=hists, xlabel=fig.xlabel, title=fig.title, logy=fig.logy, stds=stds),
      claims=claims,
      setting=f"tanh MLP, {depth} hidden layers of {width}, zero biases, at init (seed {seed}); statistics on "
              f"the first {n_examples} MNIST test images, cross-entropy loss; {bins} shared bins.")


def glorot_fig6_activations(data_dir=None, width: int = 1000, depth: int = 5,
                            n_examples: int = GLOROT_PROBE_EXAMPLES, seed: int = 0,
                            bins: int = HISTOGRAM_BINS) -> Result:
  """Glorot & Bengio 2010 Fig. 6: per-layer histograms of tanh activations at init."""
  return _glorot_figure(FIG6, data_dir, width, depth, n_examples, seed, bins)


def glorot_fig7_backprop_gradients(data_dir=None, width: int = 1000, depth: int = 5,
                                   n_examples: int = GLOROT_PROBE_EXAMPLES, seed: int = 0,
                                   bins: int = HISTOGRAM_BINS) -> Result:
  """Glorot & Bengio 2010 Fig. 7: per-layer histograms of back-propagated gradients ∂L/∂z at init."""
  return _glorot_figure(FIG7, data_dir, width, depth, n_examples, seed, bins)


def glorot_fig8_weight_gradients(data_dir=None, width: int = 1000, depth: int = 5,
                                 n_examples: int = GLOROT_PROBE_EXAMPLES, seed: int = 0,
                                 bins: int = HISTOGRAM_BINS) -> Result:
  """Glorot & Bengio 2010 Fig. 8: per-layer histograms of weight gradients ∂L/∂W at init."""
  return _glorot_figure(FIG8, data_dir, width, depth, n_examples, seed, bins)


# --- Klambauer et al. 2017: SELU self-normalisation -------------------------------------------------

SELU_NETS = {  # id: (legend label, config overrides)
    "selu": ("SELU + LeCun", dict(activation="selu", init="lecun_normal")),
    "relu": ("ReLU + He", dict(activation="relu", init="he_normal")),
    "tanh": ("tanh + Xavier", dict(activation="tanh", init="glorot_normal")),
}
NORMALIZED_TOLERANCE = 0.05  # a layer is self-normalised when |mean| and |var − 1| are both below this


def selu_self_normalization(width: int = 1000, depth: int = 32, batch: int = 500, input_mean: float = 0.5,
                            input_var: float = 4.0, seed: int = 0) -> Result:
  """Klambauer et al. 2017: per-layer mean and variance of the activations at init, from inputs off the
  fixed point (mean 0.5, variance 4), for SELU + LeCun beside ReLU + He and tanh + Xavier."""
  # inputs from seed + 1, parameters from seed
  x = input_mean + math.sqrt(input_var) * jax.random.normal(jax.random.key(seed + 1), (batch, width))
  layers = list(range(1, depth + 1))
  mean, var, claims = {}, {}, {}
  for net, (label, overrides) in SELU_NETS.items():
    _, acts = _model(_mlp_config(depth=depth, width=(width,), **overrides), (width,), seed).forward(x)
    mean[label] = _f([jnp.mean(a["post"]) for a in acts])
    var[label] = _f([jnp.var(a["post"]) for a in acts])
    claims[f"{net}_mean_top"] = (mean[label][-1], f"{label}: mean at layer {depth}")
    claims[f"{net}_var_top"] = (var[label][-1], f"{label}: variance at layer {depth}")
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


# --- the probe grid of scripts/probe_init.py --------------------------------------------------------

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


# --- the claims each figure's README entry states, tested on its committed JSON ---------------------

HALVING_30 = 2.0**-29  # ReLU with Var 1/n: E[z²] halves at each of the 29 layers after the first


def _within(value: float, target: float, factor: float) -> bool:
  return target / factor <= value <= target * factor


def _layer_ratios(c: dict, panel: str, depth: int = 5) -> list[float]:
  """std of layer l+1 / std of layer l, for l = 1..depth-1."""
  return [c[f"{panel}_std_layer{i + 1}"] / c[f"{panel}_std_layer{i}"] for i in range(1, depth)]


CHECKS["variance_vs_depth"] = (
    Check("He (fan_in or fan_out): E[z²] at layer 30 over layer 1, and E[δ²] at layer 1 over layer 30, stay within "
          "[0.5, 2]", lambda c: all(0.5 <= c[f"{i}_{d}_ratio"] <= 2 for i in ("he_fan_in", "he_fan_out")
                                    for d in ("forward", "backward"))),
    Check("Var 1/n (Xavier/LeCun, Glorot's Xavier at equal fans, orthogonal) shrinks both by 2⁻²⁹ ≈ 1.9e−9 over 30 "
          "layers, within a factor 2",
          lambda c: all(_within(c[f"{i}_{d}_ratio"], HALVING_30, 2) for i in ("lecun", "glorot", "orthogonal")
                        for d in ("forward", "backward"))),
    Check("N(0, 1) multiplies E[z²] by ½·n = 500 per layer: over 10⁷⁰ at layer 30",
          lambda c: c["normal_forward_ratio"] > 1e70 and abs(c["normal_theory_factor"] / 500 - 1) < 0.01),
)
CHECKS["glorot_fig6_activations"] = (
    Check("standard init: the tanh activations' std shrinks at every layer, to under 0.2 of layer 1's at layer 5",
          lambda c: all(r < 1 for r in _layer_ratios(c, "standard")) and c["standard_std_ratio"] < 0.2),
    Check("normalized init: the std stays within a factor 1.5 over the 5 layers",
          lambda c: c["normalized_std_max_over_min"] < 1.5),
)
CHECKS["glorot_fig7_backprop_gradients"] = (
    Check("standard init: the back-propagated gradient's std shrinks toward the input by 0.45–0.7 per layer "
          "(Glorot's ≈ 1/√3 ≈ 0.58): layer 1's is under 0.2 of layer 5's",
          lambda c: all(0.45 < 1 / r < 0.7 for r in _layer_ratios(c, "standard")) and c["standard_std_ratio"] > 5),
    Check("normalized init: the std stays within a factor 1.5 over the 5 layers",
          lambda c: c["normalized_std_max_over_min"] < 1.5),
)
CHECKS["glorot_fig8_weight_gradients"] = (
    Check("the weight gradients' std is within a factor 1.25 across the 5 layers, under either init",
          lambda c: c["standard_std_max_over_min"] < 1.25 and c["normalized_std_max_over_min"] < 1.25),
)
CHECKS["selu_self_normalization"] = (
    Check(f"SELU + LeCun reaches |mean| < {NORMALIZED_TOLERANCE} and |var − 1| < {NORMALIZED_TOLERANCE} by layer 32 "
          "(Klambauer: by layer 16–32) and stays there at layer 32",
          lambda c: c["selu_first_normalized_layer"] <= 32 and abs(c["selu_mean_top"]) < NORMALIZED_TOLERANCE
          and abs(c["selu_var_top"] - 1) < NORMALIZED_TOLERANCE),
    Check("neither ReLU + He nor tanh + Xavier ends near (0, 1): |var − 1| > 0.5 at layer 32",
          lambda c: abs(c["relu_var_top"] - 1) > 0.5 and abs(c["tanh_var_top"] - 1) > 0.5),
)
