"""Glorot & Bengio 2010, Figs. 6–8: per-layer histograms of a 5×1000 tanh net at initialization, standard vs
normalized init — activations (Fig. 6), back-propagated gradients ∂L/∂z (Fig. 7), weight gradients ∂L/∂W (Fig. 8).
One family: the three figures share the same two networks and one backward pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from lab10 import plotting, probes
from lab10.experiments.common import GLOROT_PROBE_EXAMPLES, backprop, build_model, floats, mlp_config, mnist
from lab10.experiments.figure import Check, Figure, Result


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


def _glorot_tanh_at_init(data_dir, width: int, depth: int, n_examples: int, seed: int) -> dict:
  """Per init and layer: values of h, ∂L/∂z and ∂L/∂W on ``n_examples`` MNIST test images (cross-entropy).
  Figs. 6–8 share the networks; each figure computes them itself, so that its recorded time is its own."""
  ds = mnist(data_dir)
  x, y = jnp.asarray(ds.test_x[:n_examples]), jnp.asarray(ds.test_y[:n_examples])
  out = {}
  for panel, (_, init) in GLOROT_INITS.items():
    model = build_model(mlp_config(depth=depth, width=(width,), activation="tanh", init=init), ds.input_shape, seed)
    stats = backprop(model, x, probes.xent(y))
    out[panel] = [{k: np.asarray(stats[name][k]).ravel() for k in ("post", "dz", "dw")}
                  for name in model.layer_names]
  return out


def _histograms(layers: list[np.ndarray], bins: int, limit: float | None) -> dict:
  """``{"layer l": (edges, counts)}`` of each layer's values, with bins shared over ±``limit`` (default ±the
  HISTOGRAM_RANGE percentile of all layers' |values|)."""
  top = limit or max(float(np.percentile(np.abs(v), HISTOGRAM_RANGE)) for v in layers)
  edges = np.linspace(-top, top, bins + 1)
  return {f"layer {i + 1}": (floats(edges), floats(np.histogram(v, edges)[0])) for i, v in enumerate(layers)}


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


def run_fig6(data_dir=None, width: int = 1000, depth: int = 5,
             n_examples: int = GLOROT_PROBE_EXAMPLES, seed: int = 0,
             bins: int = HISTOGRAM_BINS) -> Result:
  """Glorot & Bengio 2010 Fig. 6: per-layer histograms of tanh activations at init."""
  return _glorot_figure(FIG6, data_dir, width, depth, n_examples, seed, bins)


def run_fig7(data_dir=None, width: int = 1000, depth: int = 5,
             n_examples: int = GLOROT_PROBE_EXAMPLES, seed: int = 0,
             bins: int = HISTOGRAM_BINS) -> Result:
  """Glorot & Bengio 2010 Fig. 7: per-layer histograms of back-propagated gradients ∂L/∂z at init."""
  return _glorot_figure(FIG7, data_dir, width, depth, n_examples, seed, bins)


def run_fig8(data_dir=None, width: int = 1000, depth: int = 5,
             n_examples: int = GLOROT_PROBE_EXAMPLES, seed: int = 0,
             bins: int = HISTOGRAM_BINS) -> Result:
  """Glorot & Bengio 2010 Fig. 8: per-layer histograms of weight gradients ∂L/∂W at init."""
  return _glorot_figure(FIG8, data_dir, width, depth, n_examples, seed, bins)


def _layer_ratios(c: dict, panel: str, depth: int = 5) -> list[float]:
  """std of layer l+1 / std of layer l, for l = 1..depth-1."""
  return [c[f"{panel}_std_layer{i + 1}"] / c[f"{panel}_std_layer{i}"] for i in range(1, depth)]


CHECKS_FIG6 = (
    Check("standard init: the tanh activations' std shrinks at every layer, to under 0.2 of layer 1's at layer 5",
          lambda c: all(r < 1 for r in _layer_ratios(c, "standard")) and c["standard_std_ratio"] < 0.2),
    Check("normalized init: the std stays within a factor 1.5 over the 5 layers",
          lambda c: c["normalized_std_max_over_min"] < 1.5),
)


CHECKS_FIG7 = (
    Check("standard init: the back-propagated gradient's std shrinks toward the input by 0.45–0.7 per layer "
          "(Glorot's ≈ 1/√3 ≈ 0.58): layer 1's is under 0.2 of layer 5's",
          lambda c: all(0.45 < 1 / r < 0.7 for r in _layer_ratios(c, "standard")) and c["standard_std_ratio"] > 5),
    Check("normalized init: the std stays within a factor 1.5 over the 5 layers",
          lambda c: c["normalized_std_max_over_min"] < 1.5),
)


CHECKS_FIG8 = (
    Check("the weight gradients' std is within a factor 1.25 across the 5 layers, under either init",
          lambda c: c["standard_std_max_over_min"] < 1.25 and c["normalized_std_max_over_min"] < 1.25),
)


def draw(panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], xlabel: str,
         title: str = "", logy: bool = False, stds: Mapping[str, Mapping[str, float]] = {}):
  """Glorot & Bengio 2010 Figs. 6–8: one normalised histogram per layer, one panel per initialisation.

  ``panels[panel][layer] = (bin_edges, counts)``; ``stds[panel][layer]``, if given, is listed in layer order on
  the panel title's second line (it differs per panel, so it cannot join the figure's one legend)."""
  fig, axes = plotting.figure(len(panels), width=3.8)
  color_of = plotting.color_map(layer for hists in panels.values() for layer in hists)
  for ax, (panel, hists) in zip(axes, panels.items()):
    for layer, (edges, counts) in hists.items():
      edges, counts = plotting.floats(edges), plotting.floats(counts)
      centres = (edges[:-1] + edges[1:]) / 2
      density = counts / max(np.nansum(counts), 1) / np.diff(edges)
      ax.plot(centres, np.where(density > 0, density, np.nan), color=color_of[layer], label=layer)
    if panel in stds:
      ax.set_title(f"{panel}\nstd, layers 1–{len(hists)}:\n" + ", ".join(f"{stds[panel][layer]:.2g}" for layer in hists))
    else:
      ax.set_title(panel)
    ax.set_xlabel(xlabel)
    if logy:
      ax.set_yscale("log")
    ax.set_ylabel("probability density")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
  plotting.legend_below(fig, axes)
  plotting.suptitle(fig, title)
  return fig


_DIFFERENCES = ("MNIST test images (the first 300) instead of the paper's Shapeset-3×2 examples; the paper also "
                "takes its statistics on 300 fixed examples.",
                "Cross-entropy of the untrained net's softmax on those images; seed 0; the histograms share 81 bins "
                "per panel.")
FIGURES = (
    Figure(name="glorot_fig6_activations",
           mirrors="Glorot & Bengio 2010, Fig. 6: under standard init the tanh activation histograms narrow with "
                   "depth; under normalized init they stay similar.",
           differences=_DIFFERENCES, rejected=(), caveats=(), run=run_fig6, draw=draw, checks=CHECKS_FIG6),
    Figure(name="glorot_fig7_backprop_gradients",
           mirrors="Glorot & Bengio 2010, Fig. 7: under standard init back-propagated gradients shrink toward the "
                   "input (≈ ×1/√3 per layer); under normalized init they stay level.",
           differences=_DIFFERENCES, rejected=(),
           caveats=(), run=run_fig7, draw=draw, checks=CHECKS_FIG7),
    Figure(name="glorot_fig8_weight_gradients",
           mirrors="Glorot & Bengio 2010, Fig. 8: weight-gradient spread is similar across layers (with normalized "
                   "init, the same at every layer).",
           differences=_DIFFERENCES, rejected=(),
           caveats=(), run=run_fig8, draw=draw, checks=CHECKS_FIG8),
)
