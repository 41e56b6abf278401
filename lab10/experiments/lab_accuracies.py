"""The seed labs (Deep Learning Zero To All, Lab 10): our test accuracy per preset (mean ± std over seeds, from
scripts/reproduce_labs.py's figures/labs.json) beside the published numbers of the TF1, TF2 and PyTorch versions.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lab10 import labs, plotting
from lab10.experiments.figure import Check, Figure, Result, Skipped


def run(out: str = "figures") -> Result:
  """Our test accuracy per preset (mean ± std over seeds, from scripts/reproduce_labs.py's ``<out>/labs.json``)
  beside the published numbers of the three lab versions."""
  labs_json = Path(out) / "labs.json"
  try:
    with open(labs_json) as f:
      result = json.load(f)
  except FileNotFoundError:
    raise Skipped(f"{labs_json} not found; run scripts/reproduce_labs.py first") from None
  rows = result["presets"]
  order = list(labs.PUBLISHED)
  names = sorted(rows, key=lambda n: order.index(n) if n in labs.PUBLISHED else len(order))
  published = {v: [labs.PUBLISHED.get(n, {}).get(v) for n in names] for v in ("TF1", "TF2", "PyTorch")}
  claims = {f"{n}_accuracy_mean": (rows[n]["test_accuracy_mean"],
                                   f"{n}: test accuracy mean (n={len(rows[n]['seeds'])})") for n in names}
  claims |= {f"{n}_accuracy_std": (rows[n]["test_accuracy_std"], f"{n}: test accuracy std") for n in names}
  scale = "--quick (1 epoch, 5000 images)" if result.get("quick") else "the TF1 budget (15 epochs)"
  return Result.of(
      data=dict(names=names, ours_mean=[rows[n]["test_accuracy_mean"] for n in names],
                ours_std=[rows[n]["test_accuracy_std"] for n in names], published=published,
                note="; ".join(f"{name}: {text}" for name, text in labs.NOTES.items() if name in names),
                title="The seed labs: our test accuracy beside the published numbers"),
      claims=claims,
      setting=f"read from {labs_json}, written by `{result.get('command', 'scripts/reproduce_labs.py')}` at {scale}.")


NOTE_CHARACTERS = 120  # the caveat note's line length, within the figure's 7 inches at its font size
OTHER_NET_THAN_TF1 = ("lab10-6-batchnorm",)  # TF1's batch-norm lab is 784-32-32-10, ours TF2's 4×512 net


CHECKS = (
    Check("every preset whose network is TF1's comes within 0.01 of TF1's number (TF1's budget: 15 epochs, batch "
          "100); the batch-norm preset, TF2's network, is not compared with TF1's",
          lambda c: all(abs(c[f"{n}_accuracy_mean"] - tf1) < 0.01 for n, v in labs.PUBLISHED.items()
                        if (tf1 := v.get("TF1")) is not None and n not in OTHER_NET_THAN_TF1)),
    Check("the lab's story in our numbers: softmax < ReLU with N(0, 1) init < ReLU with Xavier init",
          lambda c: c["lab10-1-softmax_accuracy_mean"] < c["lab10-2-relu_accuracy_mean"]
          < c["lab10-3-xavier_accuracy_mean"]),
)


def draw(names: Sequence[str], ours_mean: Sequence[float], ours_std: Sequence[float],
         published: Mapping[str, Sequence[float | None]], title: str = "", note: str = ""):
  """Our test accuracy (mean ± std over seeds) beside the published numbers of each lab version.

  The y-axis is zoomed (from a hundredth at least 0.02 below the lowest number) and its label says where it
  starts. ``note``, if given (a caveat about the numbers), is printed small in the legend's box below the bars."""
  fig, (ax,) = plotting.figure(1, width=7.0, height=3.2)
  groups = 1 + len(published)
  width = 0.8 / groups
  x = np.arange(len(names))
  colors = plotting.colors(groups)
  ours_mean, rows = plotting.floats(ours_mean), [plotting.floats(values) for values in published.values()]
  ax.bar(x, ours_mean, width, yerr=plotting.floats(ours_std), color=colors[0], label="lab10 (mean ± std over seeds)",
         capsize=2)
  for k, (version, values) in enumerate(zip(published, rows), start=1):
    ax.bar(x + k * width, values, width, color=colors[k], label=version)
  ax.set_xticks(x + width * (groups - 1) / 2, names, rotation=20, ha="right")
  numbers = np.concatenate([ours_mean, *rows])
  lowest = np.nanmin(numbers) if np.isfinite(numbers).any() else 0.02  # nothing to zoom on: from 0
  lo = max(0.0, np.floor(100 * (lowest - 0.02) + 1e-6) / 100)  # a round origin, so the label states it exactly
  ax.set_ylim(lo, 1.0)
  ax.set_ylabel(f"test accuracy (axis from {lo:.2f})")
  legend = plotting.legend_below(fig, [ax])
  if note:  # in the legend's box, whose room the layout keeps: off the bars, never over the legend
    legend.set_title(textwrap.fill(note, NOTE_CHARACTERS), prop={"size": "small", "style": "italic"})
  plotting.suptitle(fig, title)
  return fig


FIGURES = (Figure(
    name="lab_accuracies",
    mirrors="The seed labs (Deep Learning Zero To All, Lab 10): published test accuracies of TF1, TF2 and PyTorch "
            "versions beside ours.",
    differences=("Every preset at the TF1 budget (15 epochs, batch 100, Adam 1e-3), also the sigmoid lab that exists "
                 "only in TF2 (1 epoch); our batch-norm preset is TF2's 4×512 net, TF1's was 784-32-32-10.",),
    rejected=(),
    caveats=("Published numbers are single unseeded runs; PyTorch's 10-1 and 10-2 figures were computed on unscaled "
             "test inputs (a bug in the original notebooks).",
             "Needs figures/labs.json from scripts/reproduce_labs.py; skipped without it."),
    run=run, draw=draw, checks=CHECKS),)
