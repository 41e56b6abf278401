"""He et al. 2015, Eq. 9 and 13 (§2.2): forward and backward variance over depth in a ReLU MLP at initialization,
per initializer, beside the theory's per-layer factor ½·n·Var[W].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lab10 import compat, plotting
from lab10.experiments.common import NUM_CLASSES, backprop, build_model, floats, mlp_config
from lab10.experiments.figure import Check, Figure, Result


VARIANCE_INITS: dict[str, tuple[str, dict]] = {  # id: (legend label, config overrides)
    "normal": ("N(0, 1)", dict(init="normal", init_std=1.0)),
    "lecun": ("Xavier / LeCun, Var 1/n", dict(init="lecun_normal")),
    "glorot": ("Xavier, Var 2/(n_in+n_out)", dict(init="glorot_normal")),
    "he_fan_in": ("He fan_in, Var 2/n_in", dict(init="he_normal", init_mode="fan_in")),
    "he_fan_out": ("He fan_out, Var 2/n_out", dict(init="he_normal", init_mode="fan_out")),
    "orthogonal": ("orthogonal", dict(init="orthogonal")),
}


def run(width: int = 1000, depth: int = 30, batch: int = 200, inits=tuple(VARIANCE_INITS),
        seed: int = 0) -> Result:
  """He et al. 2015 Eq. 9 (forward) and Eq. 13 (backward) for a ReLU MLP at init, per initializer.

  Forward: E[z_l²] relative to layer 1; backward: E[(∂L/∂z_l)²] relative to the top hidden layer, with
  L = Σ logits·g for a fixed Gaussian g (so ∂L/∂logits is unit Gaussian). Theory: both change by the factor
  ½·n·Var[W] per layer (width n everywhere, so fan_in = fan_out). Computed in float64: N(0, 1) grows by
  500× per layer at width 1000, past float32's range.
  """
  layers = list(range(1, depth + 1))
  forward, backward, theory_f, theory_b, claims = {}, {}, {}, {}, {}
  with compat.enable_x64(True):
    kx, kg = jax.random.split(jax.random.key(seed + 1))  # inputs from seed + 1, parameters from seed
    x = jax.random.normal(kx, (batch, width), jnp.float64)
    g = jax.random.normal(kg, (batch, NUM_CLASSES), jnp.float64)
    for init in inits:
      label, overrides = VARIANCE_INITS[init]
      model = build_model(mlp_config(depth=depth, width=(width,), activation="relu", **overrides), (width,), seed)
      stats = backprop(model, x, lambda logits: jnp.sum(logits * g))
      z2 = np.array([float(jnp.mean(stats[n]["pre"] ** 2)) for n in model.layer_names])
      d2 = np.array([float(jnp.mean(stats[n]["dz"] ** 2)) for n in model.layer_names])
      forward[label], backward[label] = floats(z2 / z2[0]), floats(d2 / d2[-1])
      var_w = float(np.mean(np.asarray(model.blocks[1].layer.kernel[...], np.float64) ** 2))
      factor = 0.5 * width * var_w  # He Eq. 9: ½·n_l·Var[w_l]
      theory_f[label] = floats(factor ** np.arange(depth))
      theory_b[label] = floats(factor ** (depth - np.array(layers)))
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


HALVING_30 = 2.0**-29  # ReLU with Var 1/n: E[z²] halves at each of the 29 layers after the first


def _within(value: float, target: float, factor: float) -> bool:
  return target / factor <= value <= target * factor


CHECKS = (
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


def draw(layers: Sequence[int], forward: Mapping[str, Sequence[float]],
         backward: Mapping[str, Sequence[float]], theory_forward: Mapping[str, Sequence[float]] = {},
         theory_backward: Mapping[str, Sequence[float]] = {}, title: str = "",
         ylim: tuple[float, float] = (1e-11, 1e5)):
  """He et al. 2015 Eq. 9/13: E[z²] forward (relative to layer 1) and E[δ²] backward (relative to the top
  layer) per layer, one line per initializer. Lines leaving ``ylim`` are cut and labelled with their end value."""
  fig, (ax_f, ax_b) = plotting.figure(2, width=4.0, height=3.2)
  top = layers[-1]
  initializers = list(dict.fromkeys([*forward, *backward]))
  color_of = plotting.color_map(initializers)
  for ax, measured, theory, what in (
      (ax_f, forward, theory_forward, "forward: E[$z_l^2$] / E[$z_1^2$]"),
      (ax_b, backward, theory_backward, f"backward: E[$\\delta_l^2$] / E[$\\delta_{{{top}}}^2$]")):
    for label, values in measured.items():
      values, k, color = plotting.floats(values), initializers.index(label), color_of[label]
      # Distinct markers and sizes: several initializers coincide (equal fans) and must stay visible.
      ax.plot(layers, values, plotting.MARKERS[k % len(plotting.MARKERS)], color=color, label=label,
              markersize=6 - 0.6 * k, markerfacecolor="none" if k % 2 else color, linestyle="none")
      if label in theory:
        ax.plot(layers, plotting.floats(theory[label]), "--", color=color, linewidth=1.0)
      decades = np.abs(np.log10(values))
      if np.isnan(decades).all():  # nothing measured
        continue
      at = int(np.nanargmax(decades))  # the value farthest from 1, missing ones (NaN) skipped
      far = values[at]
      if not ylim[0] <= far <= ylim[1]:
        ax.annotate(f"{label}: {far:.1e} at layer {layers[at]} (off scale)",
                    xy=(layers[at], ylim[1] if far > ylim[1] else ylim[0]), xytext=(0.5, 0.93),
                    textcoords="axes fraction", ha="center", va="top", fontsize=7, color=color,
                    arrowprops=dict(arrowstyle="->", color=color))
    ax.set_yscale("log")
    ax.set_ylim(*ylim)
    ax.set_xlabel("layer l")
    ax.set_ylabel(what)
  if theory_forward or theory_backward:  # a legend sample for the dashed lines, which carry no label of their own
    ax_b.plot([], [], "k--", linewidth=1.0, label="theory: (½·n·Var[W])$^{\\Delta l}$")
  plotting.legend_below(fig, (ax_f, ax_b))
  plotting.suptitle(fig, title)
  return fig


FIGURES = (Figure(
    name="variance_vs_depth",
    mirrors="He et al. 2015, Eq. 9 and 13 (§2.2): with ReLU, ½·n·Var[W] = 1 keeps forward and backward variances "
            "flat over depth; Var 1/n shrinks them by ½ per layer (≈ 2⁻²⁹ ≈ 1.9e−9 over 30 layers).",
    differences=("Gaussian inputs of the layer width instead of images, and a fixed random linear loss Σ logits·g "
                 "(so ∂L/∂logits is unit Gaussian) instead of the paper's analysis of a trained conv net's layers.",
                 "An MLP of 30 square layers of 1000 (fan_in = fan_out), so He's fan_in and fan_out variants coincide, "
                 "as do LeCun's and Glorot's Var 1/n; the paper's conv layers have k²c inputs."),
    rejected=(),
    caveats=("Computed in float64: N(0, 1) grows E[z²] by 500× per layer, past float32's range by layer 15.",),
    run=run, draw=draw, checks=CHECKS,
    quick=dict(width=500, batch=40)),)
