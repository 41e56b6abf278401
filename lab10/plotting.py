"""The one figure style and the drawing primitives several figures share: the figure grid, its one legend below the
panels, its title, colours, and ``curves`` (side-by-side line panels). Each figure's own drawing lives in its module
of ``lab10/experiments/`` and is built from these.

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


def colors(n: int) -> list[str]:
  if n <= len(OKABE_ITO):
    return OKABE_ITO[:n]
  return [plt.cm.viridis(v) for v in np.linspace(0, 0.92, n)]


def color_map(labels: Iterable[str]) -> dict[str, str]:
  """One colour per distinct label, in first-seen order, for use across all panels of a figure."""
  labels = list(dict.fromkeys(labels))
  return dict(zip(labels, colors(len(labels))))


def floats(values) -> np.ndarray:
  """Plain data (lists from JSON, where null marks a missing value) as floats, None → NaN."""
  return np.asarray(values, dtype=float)


def close(fig) -> None:
  plt.close(fig)


def figure(ncols: int, nrows: int = 1, width: float = 3.4, height: float = 2.8, **kw):
  fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                           constrained_layout=True, **kw)
  return fig, axes.ravel()


def suptitle(fig, title: str) -> None:
  """The figure's title, wrapped onto more lines where it is wider than the figure."""
  fig.suptitle(title, wrap=True)


def legend_below(fig, axes: Iterable, ncol: int | None = None) -> matplotlib.legend.Legend | None:
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
  # An entry takes about 0.5 in of sample and padding plus 0.06 in per character at legend.fontsize 7.5 (measured
  # with matplotlib 3.11's Agg renderer), and the legend's border about 0.3 in.
  for ncol in range(len(labels), 1, -1):
    columns = np.array_split(np.array(labels), ncol)  # as matplotlib's Legend splits them
    if sum(0.5 + 0.06 * max(map(len, column)) for column in columns) <= width - 0.3:
      return ncol
  return 1


def text_color(mappable, value: float) -> str:
  """Black on a light cell, white on a dark one, judged by the colour actually drawn (NaN: the 'bad' colour)."""
  r, g, b, _ = mappable.cmap(mappable.norm(value))
  return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


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
  fig, axes = figure(len(panels), width=3.8, sharey=sharey)
  color_of = color_map(_group(label) for lines in panels.values() for label in lines)
  for i, (ax, (panel, lines)) in enumerate(zip(axes, panels.items())):
    for label, (x, y) in lines.items():
      color = color_of[_group(label)]
      ax.plot(floats(x), floats(y), styles.get(label, "-"), color=color, label=label)
      if label in bands.get(panel, {}):
        low, high = bands[panel][label]
        ax.fill_between(floats(x), floats(low), floats(high), color=color, alpha=0.2, linewidth=0)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    if i == 0 or not sharey:
      ax.set_ylabel(ylabels[i])
    if i < len(logy) and logy[i]:
      ax.set_yscale("log")
  legend_below(fig, axes)
  suptitle(fig, title)
  return fig


