"""One figure style and one function per paper figure. Each takes plain data and returns a Figure.

Nothing here trains or probes; nothing here writes files (``scripts/make_figures.py`` saves).
Conventions: Okabe–Ito colour-blind-safe palette; a colour means the same thing in every panel of a figure;
measurements solid with markers, theory dashed; log axes wherever a quantity spans decades; every axis labelled
with its quantity and unit; one legend per figure, below the panels, never over data; text readable on whatever
it is drawn over. Missing values (None, NaN: a diverged run) leave gaps or grey cells, never an error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping, Sequence

import matplotlib
import matplotlib.patheffects as patheffects
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
# A white line outlined in black: it reads on a dark map and, as a legend sample, on the white page.
OUTLINED = [patheffects.withStroke(linewidth=3.0, foreground="black")]
# Behind text on a colour map: dark enough for white text on any colour of the map.
DARK_BOX = dict(facecolor="black", alpha=0.5, linewidth=0)


@contextlib.contextmanager
def style():
  with plt.rc_context(RC):
    yield


def _colors(n: int) -> list[str]:
  if n <= len(OKABE_ITO):
    return OKABE_ITO[:n]
  return [plt.cm.viridis(v) for v in np.linspace(0, 0.92, n)]


def _color_map(labels: Iterable[str]) -> dict[str, str]:
  """One colour per distinct label, in first-seen order, for use across all panels of a figure."""
  labels = list(dict.fromkeys(labels))
  return dict(zip(labels, _colors(len(labels))))


def _floats(values) -> np.ndarray:
  """Plain data (lists from JSON, where null marks a missing value) as floats, None → NaN."""
  return np.asarray(values, dtype=float)


def close(fig) -> None:
  plt.close(fig)


def _figure(ncols: int, nrows: int = 1, width: float = 3.4, height: float = 2.8, **kw):
  fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                           constrained_layout=True, **kw)
  return fig, axes.ravel()


def _title(fig, title: str) -> None:
  """The figure's title, wrapped onto more lines where it is wider than the figure."""
  fig.suptitle(title, wrap=True)


def _legend(fig, axes: Iterable, ncol: int | None = None) -> matplotlib.legend.Legend | None:
  """One legend for the whole figure, below the panels: each label once, in first-seen order over ``axes``.

  ``ncol`` defaults to as many columns as the figure's width holds, rows balanced."""
  entries = {}
  for ax in axes:
    for handle, label in zip(*ax.get_legend_handles_labels()):
      entries.setdefault(label, handle)
  if not entries:
    return None
  if ncol is None:
    ncol = _columns(list(entries), fig.get_figwidth())
  return fig.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=ncol)


def _columns(labels: list[str], width: float) -> int:
  """The most legend columns (filled top to bottom) whose entries fit ``width`` inches."""
  # An entry takes about 0.4 in of sample and padding plus 0.055 in per character at legend.fontsize 7.5.
  for ncol in range(len(labels), 1, -1):
    columns = np.array_split(np.array(labels), ncol)  # as matplotlib's Legend splits them
    if sum(0.4 + 0.055 * max(map(len, column)) for column in columns) <= width:
      return ncol
  return 1


def _text_color(mappable, value: float) -> str:
  """Black on a light cell, white on a dark one, judged by the colour actually drawn (NaN: the 'bad' colour)."""
  r, g, b, _ = mappable.cmap(mappable.norm(value))
  return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def variance_vs_depth(layers: Sequence[int], forward: Mapping[str, Sequence[float]],
                      backward: Mapping[str, Sequence[float]], theory_forward: Mapping[str, Sequence[float]] = {},
                      theory_backward: Mapping[str, Sequence[float]] = {}, title: str = "",
                      ylim: tuple[float, float] = (1e-11, 1e5)):
  """He et al. 2015 Eq. 9/13: E[z²] forward (relative to layer 1) and E[δ²] backward (relative to the top
  layer) per layer, one line per initializer. Lines leaving ``ylim`` are cut and labelled with their end value."""
  fig, (ax_f, ax_b) = _figure(2, width=4.0, height=3.2)
  top = layers[-1]
  initializers = list(dict.fromkeys([*forward, *backward]))
  color_of = _color_map(initializers)
  for ax, measured, theory, what in (
      (ax_f, forward, theory_forward, "forward: E[$z_l^2$] / E[$z_1^2$]"),
      (ax_b, backward, theory_backward, f"backward: E[$\\delta_l^2$] / E[$\\delta_{{{top}}}^2$]")):
    for label, values in measured.items():
      values, k, color = _floats(values), initializers.index(label), color_of[label]
      # Distinct markers and sizes: several initializers coincide (equal fans) and must stay visible.
      ax.plot(layers, values, MARKERS[k % len(MARKERS)], color=color, label=label,
              markersize=6 - 0.6 * k, markerfacecolor="none" if k % 2 else color, linestyle="none")
      if label in theory:
        ax.plot(layers, _floats(theory[label]), "--", color=color, linewidth=1.0)
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
  _legend(fig, (ax_f, ax_b))
  _title(fig, title)
  return fig


def layer_histograms(panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], xlabel: str,
                     title: str = "", logy: bool = False, stds: Mapping[str, Mapping[str, float]] = {}):
  """Glorot & Bengio 2010 Figs. 6–8: one normalised histogram per layer, one panel per initialisation.

  ``panels[panel][layer] = (bin_edges, counts)``; ``stds[panel][layer]``, if given, is listed in layer order on
  the panel title's second line (it differs per panel, so it cannot join the figure's one legend)."""
  fig, axes = _figure(len(panels), width=3.8)
  color_of = _color_map(layer for hists in panels.values() for layer in hists)
  for ax, (panel, hists) in zip(axes, panels.items()):
    for layer, (edges, counts) in hists.items():
      edges, counts = _floats(edges), _floats(counts)
      centres = (edges[:-1] + edges[1:]) / 2
      density = counts / max(np.nansum(counts), 1) / np.diff(edges)
      ax.plot(centres, np.where(density > 0, density, np.nan), color=color_of[layer], label=layer)
    if panel in stds:
      ax.set_title(f"{panel}\nstd by layer: " + ", ".join(f"{stds[panel][layer]:.2g}" for layer in hists))
    else:
      ax.set_title(panel)
    ax.set_xlabel(xlabel)
    if logy:
      ax.set_yscale("log")
    ax.set_ylabel("probability density")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
  _legend(fig, axes)
  _title(fig, title)
  return fig


def activation_trajectories(steps: Sequence[int], mean: Mapping[str, Sequence[float]],
                            spread: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                            ylabel: str = "activation value", title: str = "",
                            error: tuple[Sequence[int], Mapping[str, Sequence[float]]] | None = None):
  """Glorot & Bengio 2010 Fig. 2: per-layer mean activation over training, with a band (e.g. ±std); with
  ``error = (steps, {label: values})`` a second panel of error rates (e.g. training and test error) beside it."""
  fig, axes = _figure(1 if error is None else 2, width=4.4, height=3.2)
  ax = axes[0]
  for color, (layer, values) in zip(_colors(len(mean)), mean.items()):
    ax.plot(steps, _floats(values), color=color, label=layer)
    lo, hi = spread[layer]
    ax.fill_between(steps, _floats(lo), _floats(hi), color=color, alpha=0.15, linewidth=0)
  ax.set_xlabel("training step (mini-batches)")
  ax.set_ylabel(ylabel)
  ax.set_title("mean activation per layer (± std)")
  if error is not None:
    ax_e = axes[1]
    error_steps, rates = error
    for k, (label, values) in enumerate(rates.items()):
      ax_e.plot(error_steps, _floats(values), "k" + ("-" if k == 0 else "--"), label=label)
    ax_e.set_yscale("log")
    ax_e.set_xlabel("training step (mini-batches)")
    ax_e.set_ylabel("error rate (log scale)")
    ax_e.set_title("the network learns")
  _legend(fig, axes)
  _title(fig, title)
  return fig


def _group(label: str) -> str:
  """What a line's colour stands for: "A" of a label "A, detail" or "A: detail", else the whole label."""
  return re.split(r", |: ", label, maxsplit=1)[0]


def curves(panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
           xlabel: str, ylabels: Sequence[str], logy: Sequence[bool] = (), title: str = "",
           styles: Mapping[str, str] = {}, sharey: bool = False,
           bands: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]] = {}):
  """Generic side-by-side line panels: ``panels[panel][label] = (x, y)``; ``styles[label]`` a format string;
  ``bands[panel][label] = (low, high)``, if given, shades that line's band (e.g. mean ± std over seeds).

  Colour tells what a line is, the same in every panel: a label "A, detail" or "A: detail" takes the colour of
  "A", so "He (Var 2/n), layer 30" matches "He (Var 2/n)" in another panel and "dropout 0.5: train" matches
  "dropout 0.5: test"; ``styles`` tells the details apart. Colours go to these groups in first-seen order.
  None or NaN in y or in a band leaves a gap."""
  unknown = [f"{panel!r}/{label!r}" for panel, lines in bands.items() for label in lines
             if label not in panels.get(panel, {})]
  if unknown:  # e.g. bands keyed by label alone: a label may be on several panels, with different values
    raise ValueError(f"bands[panel][label] for lines not in panels: {', '.join(unknown)}")
  fig, axes = _figure(len(panels), width=3.8, sharey=sharey)
  color_of = _color_map(_group(label) for lines in panels.values() for label in lines)
  for i, (ax, (panel, lines)) in enumerate(zip(axes, panels.items())):
    for label, (x, y) in lines.items():
      color = color_of[_group(label)]
      ax.plot(_floats(x), _floats(y), styles.get(label, "-"), color=color, label=label)
      if label in bands.get(panel, {}):
        low, high = bands[panel][label]
        ax.fill_between(_floats(x), _floats(low), _floats(high), color=color, alpha=0.2, linewidth=0)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    if i == 0 or not sharey:
      ax.set_ylabel(ylabels[i])
    if i < len(logy) and logy[i]:
      ax.set_yscale("log")
  _legend(fig, axes)
  _title(fig, title)
  return fig


def _lognorm_centred_at_1(m: np.ndarray) -> matplotlib.colors.LogNorm:
  """From 1/M to M, M the largest factor by which a value differs from 1 (at least 10): 1 sits mid-scale."""
  positive = m[np.isfinite(m) & (m > 0)]
  spread = float(np.max(np.maximum(positive, 1 / positive), initial=10.0))
  return matplotlib.colors.LogNorm(vmin=1 / spread, vmax=spread)


def heatmaps(rows: Sequence[str], cols: Sequence[str], matrices: Mapping[str, np.ndarray],
             fmt: Mapping[str, str] = {}, cmaps: Mapping[str, str] = {}, lognorm: Sequence[str] = (),
             title: str = "", annotations: Mapping[str, Sequence[Sequence[str]]] = {}):
  """Annotated heatmaps sharing row (e.g. activation) and column (e.g. initializer) labels.

  A matrix named in ``lognorm`` gets a log colour scale centred at 1 (1/M … M): with a diverging map
  (``cmaps[name] = "coolwarm"``) values below and above 1 take opposite hues. Each cell prints
  ``annotations[name][i][j]`` if given (e.g. "0.97±0.01"), else its value in ``fmt[name]``; a NaN cell (the
  run diverged) is light grey and reads "diverged" unless annotated."""
  fig, axes = _figure(len(matrices), width=0.55 * len(cols) + 2.2, height=0.38 * len(rows) + 1.2)
  for ax, (name, m) in zip(axes, matrices.items()):
    m = _floats(m)
    norm = _lognorm_centred_at_1(m) if name in lognorm else None
    cmap = matplotlib.colormaps.get_cmap(cmaps.get(name, "viridis")).with_extremes(bad="0.85")
    im = ax.imshow(m, cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(m):
      given = annotations[name][i][j] if name in annotations else None
      text = given or ("diverged" if np.isnan(v) else format(v, fmt.get(name, ".3f")))
      ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=_text_color(im, v))
    ax.set_title(name)
    fig.colorbar(im, ax=ax, shrink=0.8)
  _title(fig, title)
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
  ax.plot(critical_w2, sigma_b2, "w--", path_effects=OUTLINED, label=r"$\chi_1 = 1$ (order ↔ chaos)")
  ax.text(0.05, 0.5, "ordered\n(gradients vanish)", transform=ax.transAxes, color="w", fontsize=7, bbox=DARK_BOX)
  ax.text(0.96, 0.12, "chaotic\n(gradients explode)", transform=ax.transAxes, color="w", fontsize=7, ha="right",
          bbox=DARK_BOX)
  ax.set_xlabel(r"$\sigma_w^2$ (weight variance × fan_in)")
  ax.set_ylabel(r"$\sigma_b^2$ (bias variance)")
  ax.set_title(r"depth scale $\xi_c$ (layers), tanh")
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
      ax2.text(j, i, "diverged" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=6.5,
               color=_text_color(im2, v))
    row = depth_scale[np.argmin(np.abs(sigma_b2 - bias_for_grid))]
    inside = (sigma_w2 >= w2[0]) & (sigma_w2 <= w2[-1])
    ax2.plot(np.interp(sigma_w2[inside], w2, columns), _cell_position(np.log(6 * row[inside]), np.log(depths)),
             "w--", linewidth=1.6, path_effects=OUTLINED, label=r"$6\xi_c$ (theory)")
    ax2.set_xlim(-0.5, len(w2) - 0.5)
    ax2.set_ylim(-0.5, len(depths) - 0.5)
    ax2.set_xticks(columns, [f"{v:g}" for v in w2])
    ax2.set_yticks(rows, [f"{v:g}" for v in depths])
    ax2.set_xlabel(r"$\sigma_w^2$")
    ax2.set_ylabel("depth L (hidden layers)")
    ax2.set_title(f"test accuracy after training ($\\sigma_b^2$ = {bias_for_grid})")
    ax2.grid(False)
    fig.colorbar(im2, ax=ax2, label="test accuracy")
  _legend(fig, axes)
  _title(fig, title)
  return fig


def accuracy_bars(names: Sequence[str], ours_mean: Sequence[float], ours_std: Sequence[float],
                  published: Mapping[str, Sequence[float | None]], title: str = "", note: str = ""):
  """Our test accuracy (mean ± std over seeds) beside the published numbers of each lab version.

  The y-axis is zoomed (from a hundredth at least 0.02 below the lowest number) and its label says where it
  starts. ``note``, if given (a caveat about the numbers), is printed small in the legend's box below the bars."""
  fig, (ax,) = _figure(1, width=7.0, height=3.2)
  groups = 1 + len(published)
  width = 0.8 / groups
  x = np.arange(len(names))
  colors = _colors(groups)
  ours_mean, rows = _floats(ours_mean), [_floats(values) for values in published.values()]
  ax.bar(x, ours_mean, width, yerr=_floats(ours_std), color=colors[0], label="lab10 (mean ± std over seeds)",
         capsize=2)
  for k, (version, values) in enumerate(zip(published, rows), start=1):
    ax.bar(x + k * width, values, width, color=colors[k], label=version)
  ax.set_xticks(x + width * (groups - 1) / 2, names, rotation=20, ha="right")
  numbers = np.concatenate([ours_mean, *rows])
  lowest = np.nanmin(numbers) if np.isfinite(numbers).any() else 0.02  # nothing to zoom on: from 0
  lo = max(0.0, np.floor(100 * (lowest - 0.02) + 1e-6) / 100)  # a round origin, so the label states it exactly
  ax.set_ylim(lo, 1.0)
  ax.set_ylabel(f"test accuracy (axis from {lo:.2f})")
  legend = _legend(fig, [ax])
  if note:  # in the legend's box, whose room the layout keeps: off the bars, never over the legend
    legend.set_title(note, prop={"size": "small", "style": "italic"})
  _title(fig, title)
  return fig


def self_normalization(layers: Sequence[int], mean: Mapping[str, Sequence[float]], var: Mapping[str, Sequence[float]],
                       input_mean: float, input_var: float, title: str = ""):
  """Klambauer et al. 2017: per-layer mean and variance of the activations at init, SELU's fixed point
  (0, 1) dashed; the inputs' mean and variance marked at layer 0."""
  fig, (ax_m, ax_v) = _figure(2, width=3.8)
  networks = list(dict.fromkeys([*mean, *var]))
  color_of = _color_map(networks)
  for ax, values, fixed, start, what in ((ax_m, mean, 0.0, input_mean, "mean of activations"),
                                         (ax_v, var, 1.0, input_var, "variance of activations")):
    for label, v in values.items():
      ax.plot([0, *layers], [start, *_floats(v)], MARKERS[networks.index(label) % len(MARKERS)] + "-",
              color=color_of[label], label=label, markersize=3)
    ax.axhline(fixed, color="k", linestyle="--", linewidth=1.0, label="SELU fixed point (mean 0, variance 1)")
    ax.set_xlabel("layer l (0 = input)")
    ax.set_ylabel(what)
  ax_v.set_yscale("log")
  _legend(fig, (ax_m, ax_v))
  _title(fig, title)
  return fig
