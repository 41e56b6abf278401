"""One figure style and one function per paper figure. Each takes plain data and returns a Figure.

Nothing here trains or probes; nothing here writes files (``scripts/make_figures.py`` saves).
Conventions: Okabe–Ito colour-blind-safe palette; measurements solid with markers, theory dashed;
log axes wherever a quantity spans decades; every axis labelled with its quantity and unit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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


def _figure(ncols: int, nrows: int = 1, width: float = 3.4, height: float = 2.8, **kw):
  fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                           constrained_layout=True, **kw)
  return fig, axes.ravel()


def variance_vs_depth(layers: Sequence[int], forward: Mapping[str, Sequence[float]],
                      backward: Mapping[str, Sequence[float]], theory_forward: Mapping[str, Sequence[float]] = {},
                      theory_backward: Mapping[str, Sequence[float]] = {}, title: str = ""):
  """He et al. 2015 Eq. 9/13: E[y²] forward and Var[∂L/∂z] backward per layer, one line per initializer."""
  fig, (ax_f, ax_b) = _figure(2, width=3.8)
  for ax, measured, theory, what in ((ax_f, forward, theory_forward, "forward: E[$y_l^2$]"),
                                     (ax_b, backward, theory_backward, r"backward: Var[$\partial L/\partial z_l$]")):
    for color, (label, values) in zip(_colors(len(measured)), measured.items()):
      ax.plot(layers, values, "o-", color=color, label=label)
      if label in theory:
        ax.plot(layers, theory[label], "--", color=color, linewidth=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("layer l")
    ax.set_ylabel(what + " (relative to layer 1)")
  ax_f.plot([], [], "k--", linewidth=1.0, label="theory")
  ax_f.legend(loc="best")
  fig.suptitle(title)
  return fig


def layer_histograms(panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], xlabel: str,
                     title: str = "", logy: bool = False):
  """Glorot & Bengio 2010 Figs. 6–8: one normalised histogram per layer, one panel per initialisation.

  ``panels[panel][layer] = (bin_edges, counts)``."""
  fig, axes = _figure(len(panels), width=3.6)
  for ax, (panel, hists) in zip(axes, panels.items()):
    for color, (layer, (edges, counts)) in zip(_colors(len(hists)), hists.items()):
      centres = (edges[:-1] + edges[1:]) / 2
      density = counts / max(counts.sum(), 1) / np.diff(edges)
      ax.plot(centres, density, color=color, label=layer)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if logy:
      ax.set_yscale("log")
  axes[0].legend(loc="best")
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
           styles: Mapping[str, str] = {}):
  """Generic side-by-side line panels: ``panels[title][label] = (x, y)``; ``styles[label]`` a format string."""
  fig, axes = _figure(len(panels), width=3.8)
  labels = list(dict.fromkeys(label for lines in panels.values() for label in lines))
  color_of = dict(zip(labels, _colors(len(labels))))
  for i, (ax, (panel, lines)) in enumerate(zip(axes, panels.items())):
    for label, (x, y) in lines.items():
      ax.plot(x, y, styles.get(label, "-"), color=color_of[label], label=label)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabels[i])
    if i < len(logy) and logy[i]:
      ax.set_yscale("log")
    ax.legend(loc="best")
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
    for (i, j), v in np.ndenumerate(m):
      ax.text(j, i, format(v, fmt.get(name, ".3f")), ha="center", va="center", fontsize=6.5,
              color="white" if im.norm(v) < 0.5 else "black")
    ax.set_title(name)
    fig.colorbar(im, ax=ax, shrink=0.8)
  fig.suptitle(title)
  return fig


def phase_diagram(sigma_w2: np.ndarray, sigma_b2: np.ndarray, depth_scale: np.ndarray,
                  critical_w2: np.ndarray, trained: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  bias_for_grid: float | None = None, title: str = ""):
  """Poole et al. 2016 / Schoenholz et al. 2017: ξ over (σ_w², σ_b²) with the χ₁ = 1 line; optionally a
  measured trainability grid (``trained = (sigma_w2_values, depths, accuracy[depth, sigma_w2])``) with the 6ξ curve."""
  ncols = 2 if trained is not None else 1
  fig, axes = _figure(ncols, width=4.0, height=3.2)
  ax = axes[0]
  im = ax.pcolormesh(sigma_w2, sigma_b2, depth_scale, cmap="magma", norm=matplotlib.colors.LogNorm(),
                     shading="auto")
  ax.plot(critical_w2, sigma_b2, "w--", label=r"$\chi_1 = 1$ (order ↔ chaos)")
  ax.set_xlabel(r"$\sigma_w^2$")
  ax.set_ylabel(r"$\sigma_b^2$")
  ax.set_title(r"depth scale $\xi = -1/\ln\chi_1$ (layers)")
  ax.legend(loc="upper left")
  ax.grid(False)
  fig.colorbar(im, ax=ax)
  if trained is not None:
    w2, depths, accuracy = trained
    ax2 = axes[1]
    im2 = ax2.pcolormesh(w2, depths, accuracy, cmap="viridis", vmin=0.1, vmax=1.0, shading="auto")
    xi_line = np.interp(w2, sigma_w2, depth_scale[np.argmin(np.abs(sigma_b2 - bias_for_grid))])
    ax2.plot(w2, np.minimum(6 * xi_line, depths.max()), "w--", label=r"$6\xi$")
    ax2.set_xlabel(r"$\sigma_w^2$")
    ax2.set_ylabel("depth L")
    ax2.set_title(f"test accuracy after training ($\\sigma_b^2$ = {bias_for_grid})")
    ax2.legend(loc="upper right")
    ax2.grid(False)
    fig.colorbar(im2, ax=ax2)
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
  ax.legend(loc="lower right", ncol=2)
  ax.set_title(title)
  return fig
