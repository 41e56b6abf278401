"""One figure style and one function per paper figure. Each takes plain data and returns a Figure.

Nothing here trains or probes; nothing here writes files (``scripts/make_figures.py`` saves).
Conventions: Okabe–Ito colour-blind-safe palette; measurements solid with markers, theory dashed;
log axes wherever a quantity spans decades; every axis labelled with its quantity and unit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np

MARKERS = "osD^vx<>"
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
RC = {
    "figure.dpi": 100, "savefig.dpi": 200, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "legend.fontsize": 7.5, "legend.frameon": False, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.4, "lines.markersize": 3.5,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
}


@contextlib.contextmanager
def style():
  with plt.rc_context(RC):
    yield


def _colors(n: int) -> list[str]:
  if n <= len(OKABE_ITO):
    return OKABE_ITO[:n]
  return [plt.cm.viridis(v) for v in np.linspace(0, 0.92, n)]


def close(fig) -> None:
  plt.close(fig)


def _figure(ncols: int, nrows: int = 1, width: float = 3.4, height: float = 2.8, **kw):
  fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                           constrained_layout=True, **kw)
  return fig, axes.ravel()


def variance_vs_depth(layers: Sequence[int], forward: Mapping[str, Sequence[float]],
                      backward: Mapping[str, Sequence[float]], theory_forward: Mapping[str, Sequence[float]] = {},
                      theory_backward: Mapping[str, Sequence[float]] = {}, title: str = "",
                      ylim: tuple[float, float] = (1e-11, 1e5)):
  """He et al. 2015 Eq. 9/13: E[z²] forward (relative to layer 1) and E[δ²] backward (relative to the top
  layer) per layer, one line per initializer. Lines leaving ``ylim`` are cut and labelled with their end value."""
  fig, (ax_f, ax_b) = _figure(2, width=4.0, height=3.2)
  top = layers[-1]
  for ax, measured, theory, what in (
      (ax_f, forward, theory_forward, "forward: E[$z_l^2$] / E[$z_1^2$]"),
      (ax_b, backward, theory_backward, f"backward: E[$\\delta_l^2$] / E[$\\delta_{{{top}}}^2$]")):
    for k, (color, (label, values)) in enumerate(zip(_colors(len(measured)), measured.items())):
      # Distinct markers and sizes: several initializers coincide (equal fans) and must stay visible.
      ax.plot(layers, values, MARKERS[k % len(MARKERS)], color=color, label=label,
              markersize=6 - 0.6 * k, markerfacecolor="none" if k % 2 else color, linestyle="none")
      if label in theory:
        ax.plot(layers, theory[label], "--", color=color, linewidth=1.0)
      far = max(values, key=lambda v: abs(np.log10(v)))
      if not ylim[0] <= far <= ylim[1]:
        at = int(np.argmax([abs(np.log10(v)) for v in values]))
        ax.annotate(f"{label}: {far:.1e} at layer {layers[at]} (off scale)",
                    xy=(layers[at], ylim[1] if far > ylim[1] else ylim[0]), xytext=(0.5, 0.93),
                    textcoords="axes fraction", ha="center", va="top", fontsize=7, color=color,
                    arrowprops=dict(arrowstyle="->", color=color))
    ax.set_yscale("log")
    ax.set_ylim(*ylim)
    ax.set_xlabel("layer l")
    ax.set_ylabel(what)
  ax_b.plot([], [], "k--", linewidth=1.0, label="theory: (½·n·Var[W])$^{\\Delta l}$")
  ax_b.legend(*ax_b.get_legend_handles_labels(), loc="lower left", fontsize=6.5)
  fig.suptitle(title)
  return fig


def layer_histograms(panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], xlabel: str,
                     title: str = "", logy: bool = False, stds: Mapping[str, Mapping[str, float]] = {}):
  """Glorot & Bengio 2010 Figs. 6–8: one normalised histogram per layer, one panel per initialisation.

  ``panels[panel][layer] = (bin_edges, counts)``; ``stds[panel][layer]``, if given, joins the legend."""
  fig, axes = _figure(len(panels), width=3.8)
  for ax, (panel, hists) in zip(axes, panels.items()):
    for color, (layer, (edges, counts)) in zip(_colors(len(hists)), hists.items()):
      edges, counts = np.asarray(edges, float), np.asarray(counts, float)
      centres = (edges[:-1] + edges[1:]) / 2
      density = counts / max(counts.sum(), 1) / np.diff(edges)
      label = f"{layer} (std {stds[panel][layer]:.2g})" if panel in stds else layer
      ax.plot(centres, np.where(density > 0, density, np.nan), color=color, label=label)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    if logy:
      ax.set_yscale("log")
    ax.legend(loc="best")
    ax.set_ylabel("probability density")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
  fig.suptitle(title)
  return fig


def activation_trajectories(steps: Sequence[int], mean: Mapping[str, Sequence[float]],
                            spread: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                            ylabel: str = "activation value", title: str = ""):
  """Glorot & Bengio 2010 Fig. 2: per-layer mean activation over training, with a band (e.g. ±std)."""
  fig, (ax,) = _figure(1, width=5.0, height=3.2)
  for color, (layer, values) in zip(_colors(len(mean)), mean.items()):
    ax.plot(steps, values, color=color, label=layer)
    lo, hi = spread[layer]
    ax.fill_between(steps, lo, hi, color=color, alpha=0.15, linewidth=0)
  ax.set_xlabel("training step (mini-batches)")
  ax.set_ylabel(ylabel)
  ax.legend(loc="best")
  ax.set_title(title)
  return fig


def curves(panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
           xlabel: str, ylabels: Sequence[str], logy: Sequence[bool] = (), title: str = "",
           styles: Mapping[str, str] = {}, sharey: bool = False):
  """Generic side-by-side line panels: ``panels[title][label] = (x, y)``; ``styles[label]`` a format string."""
  fig, axes = _figure(len(panels), width=3.8, sharey=sharey)
  labels = list(dict.fromkeys(label for lines in panels.values() for label in lines))
  color_of = dict(zip(labels, _colors(len(labels))))
  for i, (ax, (panel, lines)) in enumerate(zip(axes, panels.items())):
    for label, (x, y) in lines.items():
      ax.plot(x, y, styles.get(label, "-"), color=color_of[label], label=label)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    if i == 0 or not sharey:
      ax.set_ylabel(ylabels[i])
    if i < len(logy) and logy[i]:
      ax.set_yscale("log")
    if not sharey:
      ax.legend(loc="best")
  if sharey:  # one legend for panels that share their lines, beside the last panel
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
  fig.suptitle(title)
  return fig


def heatmaps(rows: Sequence[str], cols: Sequence[str], matrices: Mapping[str, np.ndarray],
             fmt: Mapping[str, str] = {}, cmaps: Mapping[str, str] = {}, lognorm: Sequence[str] = (),
             title: str = ""):
  """Annotated heatmaps sharing row (e.g. activation) and column (e.g. initializer) labels."""
  fig, axes = _figure(len(matrices), width=0.55 * len(cols) + 2.2, height=0.38 * len(rows) + 1.2)
  for ax, (name, m) in zip(axes, matrices.items()):
    m = np.asarray(m, dtype=float)
    norm = matplotlib.colors.LogNorm() if name in lognorm else None
    im = ax.imshow(m, cmap=cmaps.get(name, "viridis"), norm=norm, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(m):  # NaN: the run diverged
      ax.text(j, i, "diverged" if np.isnan(v) else format(v, fmt.get(name, ".3f")), ha="center", va="center",
              fontsize=6.5, color="black" if np.isnan(v) or im.norm(v) >= 0.5 else "white")
    ax.set_title(name)
    fig.colorbar(im, ax=ax, shrink=0.8)
  fig.suptitle(title)
  return fig


def _cell_position(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
  """Fractional index of ``values`` on the ascending ``grid`` (cell i at grid[i]), linear between grid points and
  extrapolated with the slope of the outermost pair beyond them."""
  index = np.interp(values, grid, np.arange(len(grid)))
  if len(grid) > 1:
    index = np.where(values < grid[0], (values - grid[0]) / (grid[1] - grid[0]), index)
    index = np.where(values > grid[-1], len(grid) - 1 + (values - grid[-1]) / (grid[-1] - grid[-2]), index)
  return index


def phase_diagram(sigma_w2: np.ndarray, sigma_b2: np.ndarray, depth_scale: np.ndarray,
                  critical_w2: np.ndarray, trained: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  bias_for_grid: float | None = None, title: str = ""):
  """Poole et al. 2016 / Schoenholz et al. 2017: ξ over (σ_w², σ_b²) with the χ₁ = 1 line; optionally a
  measured trainability grid (``trained = (sigma_w2_values, depths, accuracy[depth, sigma_w2])``) with the 6ξ curve."""
  sigma_w2, sigma_b2 = np.asarray(sigma_w2, float), np.asarray(sigma_b2, float)
  depth_scale, critical_w2 = np.asarray(depth_scale, float), np.asarray(critical_w2, float)
  ncols = 2 if trained is not None else 1
  fig, axes = _figure(ncols, width=4.2, height=3.4)
  ax = axes[0]
  im = ax.pcolormesh(sigma_w2, sigma_b2, depth_scale, cmap="magma",
                     norm=matplotlib.colors.LogNorm(vmin=1, vmax=1e3), shading="auto")
  ax.plot(critical_w2, sigma_b2, "w--", label=r"$\chi_1 = 1$ (order ↔ chaos)")
  ax.text(0.05, 0.5, "ordered\n(gradients vanish)", transform=ax.transAxes, color="w", fontsize=7)
  ax.text(0.96, 0.12, "chaotic\n(gradients explode)", transform=ax.transAxes, color="w", fontsize=7, ha="right")
  ax.set_xlabel(r"$\sigma_w^2$ (weight variance × fan_in)")
  ax.set_ylabel(r"$\sigma_b^2$ (bias variance)")
  ax.set_title(r"depth scale $\xi_c$ (layers), tanh")
  ax.legend(loc="upper left")
  ax.grid(False)
  fig.colorbar(im, ax=ax, label=r"$\xi_c$ (layers)")
  if trained is not None:
    w2, depths, accuracy = (np.asarray(v, float) for v in trained)
    ax2 = axes[1]
    # One equal cell per trained network (σ_w² and depth are not evenly spaced); the 6ξ curve is mapped onto the
    # cells piecewise-linearly in σ_w² and in log depth, extrapolated past the outermost cells.
    columns, rows = np.arange(len(w2)), np.arange(len(depths))
    im2 = ax2.pcolormesh(columns, rows, accuracy, cmap=matplotlib.colormaps["viridis"].with_extremes(bad="0.85"),
                         vmin=0.1, vmax=1.0, shading="nearest")
    for (i, j), v in np.ndenumerate(accuracy):  # NaN: the run diverged
      label, color = ("diverged", "black") if np.isnan(v) else (f"{v:.2f}", "black" if v > 0.6 else "white")
      ax2.text(j, i, label, ha="center", va="center", fontsize=6.5, color=color)
    row = depth_scale[np.argmin(np.abs(sigma_b2 - bias_for_grid))]
    inside = (sigma_w2 >= w2[0]) & (sigma_w2 <= w2[-1])
    ax2.plot(np.interp(sigma_w2[inside], w2, columns), _cell_position(np.log(6 * row[inside]), np.log(depths)),
             "w--", linewidth=1.6, label=r"$6\xi_c$ (theory)")
    ax2.set_xlim(-0.5, len(w2) - 0.5)
    ax2.set_ylim(-0.5, len(depths) - 0.5)
    ax2.set_xticks(columns, [f"{v:g}" for v in w2])
    ax2.set_yticks(rows, [f"{v:g}" for v in depths])
    ax2.set_xlabel(r"$\sigma_w^2$")
    ax2.set_ylabel("depth L (hidden layers)")
    ax2.set_title(f"test accuracy after training ($\\sigma_b^2$ = {bias_for_grid})")
    ax2.legend(loc="upper right")
    ax2.grid(False)
    fig.colorbar(im2, ax=ax2, label="test accuracy")
  fig.suptitle(title)
  return fig


def accuracy_bars(names: Sequence[str], ours_mean: Sequence[float], ours_std: Sequence[float],
                  published: Mapping[str, Sequence[float | None]], title: str = ""):
  """Our test accuracy (mean ± std over seeds) beside the published numbers of each lab version."""
  fig, (ax,) = _figure(1, width=7.0, height=3.2)
  groups = 1 + len(published)
  width = 0.8 / groups
  x = np.arange(len(names))
  colors = _colors(groups)
  ax.bar(x, ours_mean, width, yerr=ours_std, color=colors[0], label="lab10 (mean ± std over seeds)", capsize=2)
  for k, (version, values) in enumerate(published.items(), start=1):
    vals = np.array([np.nan if v is None else v for v in values], dtype=float)
    ax.bar(x + k * width, vals, width, color=colors[k], label=version)
  ax.set_xticks(x + width * (groups - 1) / 2, names, rotation=20, ha="right")
  ax.set_ylabel("test accuracy")
  finite = [v for v in [*ours_mean, *[u for vs in published.values() for u in vs if u is not None]] if v == v]
  ax.set_ylim(max(0.0, min(finite) - 0.02), 1.0)
  ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=groups, frameon=False)
  fig.suptitle(title)
  return fig


def self_normalization(layers: Sequence[int], mean: Mapping[str, Sequence[float]], var: Mapping[str, Sequence[float]],
                       input_mean: float, input_var: float, title: str = ""):
  """Klambauer et al. 2017: per-layer mean and variance of the activations at init, SELU's fixed point
  (0, 1) dashed; the inputs' mean and variance marked at layer 0."""
  fig, (ax_m, ax_v) = _figure(2, width=3.8)
  for ax, values, fixed, start, what in ((ax_m, mean, 0.0, input_mean, "mean of activations"),
                                         (ax_v, var, 1.0, input_var, "variance of activations")):
    for k, (color, (label, v)) in enumerate(zip(_colors(len(values)), values.items())):
      ax.plot([0, *layers], [start, *v], MARKERS[k] + "-", color=color, label=label, markersize=3)
    ax.axhline(fixed, color="k", linestyle="--", linewidth=1.0, label=f"SELU fixed point ({fixed:g})")
    ax.set_xlabel("layer l (0 = input)")
    ax.set_ylabel(what)
  ax_v.set_yscale("log")
  ax_m.legend(loc="best")
  fig.suptitle(title)
  return fig
