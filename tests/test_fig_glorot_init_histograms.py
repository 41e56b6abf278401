"""Glorot & Bengio Figs. 6–8 at reduced scale, and their histogram drawing."""

import numpy as np
import pytest

from lab10.experiments import glorot_init_histograms as figs

from drawing import colour, draw, legend_entries  # noqa: F401


def _spread(stds: dict) -> float:
  """Largest relative deviation of a layer's std from the mean over layers."""
  s = np.array(list(stds.values()))
  return float(np.max(np.abs(s / s.mean() - 1)))


@pytest.fixture(scope="module")
def glorot(mnist_dir):
  kw = dict(data_dir=mnist_dir, width=500, n_examples=200)
  return {"fig6": figs.run_fig6(**kw), "fig7": figs.run_fig7(**kw),
          "fig8": figs.run_fig8(**kw)}


def test_glorot_fig6_activations_narrow_under_standard_init_only(glorot):
  stds = glorot["fig6"].data["stds"]
  standard = list(stds["standard U[±1/√n]"].values())
  assert all(b < 0.75 * a for a, b in zip(standard, standard[1:])), standard
  assert _spread(stds["normalized (Xavier)"]) < 0.25, stds["normalized (Xavier)"]


def test_glorot_fig7_backprop_gradients_shrink_toward_input_under_standard_init_only(glorot):
  stds = glorot["fig7"].data["stds"]
  standard = list(stds["standard U[±1/√n]"].values())
  assert all(a < 0.75 * b for a, b in zip(standard, standard[1:])), standard
  assert standard[0] / standard[-1] < 0.25  # paper (sim): ≈ 0.10 over 5 layers
  assert _spread(stds["normalized (Xavier)"]) < 0.25, stds["normalized (Xavier)"]


def test_glorot_fig8_weight_gradients_similar_across_layers(glorot):
  stds = glorot["fig8"].data["stds"]
  assert _spread(stds["normalized (Xavier)"]) < 0.25, stds["normalized (Xavier)"]
  assert _spread(stds["standard U[±1/√n]"]) < 0.25, stds["standard U[±1/√n]"]
  # histograms are normalised densities over the panel's bins
  edges, counts = glorot["fig8"].data["panels"]["normalized (Xavier)"]["layer 1"]
  assert len(edges) == len(counts) + 1 and sum(counts) > 0.99 * 784 * 500  # all but the 0.1% tails


def test_layer_histograms_draw_one_normalised_density_per_layer_and_panel(draw):
  edges = np.linspace(-1, 1, 5)
  panels = {"standard": {"layer 1": (edges, [0, 2, 6, 2]), "layer 2": (edges, [1, 1, 1, 1])},
            "normalized": {"layer 1": (edges, [4, 0, 0, 4]), "layer 2": (edges, [0, 5, 5, 0])}}
  fig = draw(figs.draw, panels, "activation value", title="tanh", logy=True,
             stds={"standard": {"layer 1": 0.5, "layer 2": 0.0123}})
  assert len(fig.axes) == 2
  # The stds differ per panel: they go to the panel's title (.2g), the shared layer names to the one legend.
  assert [ax.get_title() for ax in fig.axes] == ["standard\nstd, layers 1–2:\n0.5, 0.012", "normalized"]
  assert legend_entries(fig) == ["layer 1", "layer 2"]
  standard, normalized = fig.axes
  assert colour(standard, "layer 1") == colour(normalized, "layer 1") != colour(normalized, "layer 2")
  for ax in fig.axes:
    assert len(ax.lines) == 2 and ax.get_yscale() == "log" and ax.get_xlabel() == "activation value"
    for line in ax.lines:  # a density: it integrates to 1 over the bins (empty bins are gaps)
      assert np.nansum(line.get_ydata()) * 0.5 == pytest.approx(1.0)
  assert list(fig.axes[0].lines[0].get_xdata()) == [-0.75, -0.25, 0.25, 0.75]
