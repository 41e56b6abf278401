"""lab10.plotting: every figure function draws what it is given — panels, lines, labels — from small fake data."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lab10 import plotting  # noqa: E402


@pytest.fixture
def draw():
  """Call a plotting function in the house style; close every figure it made afterwards."""
  figures = []

  def call(function, *args, **kwargs):
    with plotting.style():
      fig = function(*args, **kwargs)
    assert isinstance(fig, Figure)
    figures.append(fig)
    return fig

  yield call
  for fig in figures:
    plotting.close(fig)


def _legend(ax) -> list[str]:
  return [t.get_text() for t in ax.get_legend().get_texts()]


def test_variance_vs_depth_draws_measurements_theory_and_marks_lines_off_scale(draw):
  layers = [1, 2, 3]
  forward = {"He": [1.0, 1.0, 1.0], "Xavier": [1.0, 0.5, 0.25]}
  backward = {"He": [1.0, 1.0, 1.0], "Xavier": [1e-20, 1e-10, 1.0]}
  fig = draw(plotting.variance_vs_depth, layers, forward, backward, theory_forward={"He": [1.0, 1.0, 1.0]},
             title="relu")
  ax_f, ax_b = fig.axes
  assert len(ax_f.lines) == 3  # two measured, one theory (He's)
  assert len(ax_b.lines) == 3  # two measured, the legend's theory sample
  assert ax_f.lines[1].get_linestyle() == "--" and list(ax_f.lines[2].get_ydata()) == [1.0, 0.5, 0.25]
  assert ax_f.get_ylabel() == "forward: E[$z_l^2$] / E[$z_1^2$]" and "delta_{3}" in ax_b.get_ylabel()
  assert ax_f.get_yscale() == ax_b.get_yscale() == "log" and ax_f.get_xlabel() == "layer l"
  assert [t.get_text() for t in ax_b.texts] == ["Xavier: 1.0e-20 at layer 1 (off scale)"] and not ax_f.texts
  assert _legend(ax_b) == ["He", "Xavier", "theory: (½·n·Var[W])$^{\\Delta l}$"]
  assert fig.get_suptitle() == "relu"


def test_layer_histograms_draw_one_normalised_density_per_layer_and_panel(draw):
  edges = np.linspace(-1, 1, 5)
  panels = {"standard": {"layer 1": (edges, [0, 2, 6, 2]), "layer 2": (edges, [1, 1, 1, 1])},
            "normalized": {"layer 1": (edges, [4, 0, 0, 4]), "layer 2": (edges, [0, 5, 5, 0])}}
  fig = draw(plotting.layer_histograms, panels, "activation value", title="tanh", logy=True,
             stds={"standard": {"layer 1": 0.5, "layer 2": 0.25}})
  assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["standard", "normalized"]
  assert _legend(fig.axes[0]) == ["layer 1 (std 0.5)", "layer 2 (std 0.25)"] and _legend(fig.axes[1]) == [
      "layer 1", "layer 2"]
  for ax in fig.axes:
    assert len(ax.lines) == 2 and ax.get_yscale() == "log" and ax.get_xlabel() == "activation value"
    for line in ax.lines:  # a density: it integrates to 1 over the bins (empty bins are gaps)
      assert np.nansum(line.get_ydata()) * 0.5 == pytest.approx(1.0)
  assert list(fig.axes[0].lines[0].get_xdata()) == [-0.75, -0.25, 0.25, 0.75]


def test_activation_trajectories_draw_a_line_and_a_band_per_layer(draw):
  steps = [0, 10, 20]
  mean = {"layer 1": [0.5, 0.6, 0.7], "layer 2": [0.5, 0.9, 1.0]}
  spread = {k: (np.subtract(v, 0.1), np.add(v, 0.1)) for k, v in mean.items()}
  fig = draw(plotting.activation_trajectories, steps, mean, spread, ylabel="sigmoid output", title="fig 2")
  (ax,) = fig.axes
  assert [list(line.get_ydata()) for line in ax.lines] == list(mean.values())
  assert len(ax.collections) == 2 and _legend(ax) == ["layer 1", "layer 2"]
  assert ax.get_ylabel() == "sigmoid output" and ax.get_xlabel().startswith("training step")
  assert ax.get_title() == "fig 2"


def test_curves_colour_each_label_alike_in_every_panel(draw):
  x = [1, 2, 3]
  panels = {"loss": {"He": (x, [3.0, 2.0, 1.0]), "Xavier": (x, [3.0, 3.0, 3.0])},
            "error": {"Xavier": (x, [0.9, 0.9, 0.9]), "He": (x, [0.5, 0.3, 0.1])}}
  fig = draw(plotting.curves, panels, "step", ["training loss", "error"], logy=[True], styles={"Xavier": "--"})
  loss, error = fig.axes
  assert [ax.get_ylabel() for ax in fig.axes] == ["training loss", "error"]
  assert loss.get_yscale() == "log" and error.get_yscale() == "linear"
  colour = lambda ax, label: next(l.get_color() for l in ax.lines if l.get_label() == label)
  assert colour(loss, "He") == colour(error, "He") != colour(loss, "Xavier") == colour(error, "Xavier")
  assert [l.get_linestyle() for l in error.lines] == ["--", "-"] and _legend(error) == ["Xavier", "He"]
  shared = draw(plotting.curves, panels, "step", ["loss", "unused"], sharey=True)
  assert [ax.get_ylabel() for ax in shared.axes] == ["loss", ""]
  assert shared.axes[0].get_legend() is None and _legend(shared.axes[1]) == ["Xavier", "He"]


def test_heatmaps_annotate_every_cell_in_its_format(draw):
  rows, cols = ["relu", "tanh"], ["he", "glorot", "lecun"]
  matrices = {"accuracy": np.array([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]]),
              "ratio": np.array([[1e-3, 1.0, 10.0], [2.0, 3.0, 1e3]])}
  fig = draw(plotting.heatmaps, rows, cols, matrices, fmt={"ratio": ".1e"}, lognorm=["ratio"], title="zoo")
  accuracy, ratio = fig.axes[:2]  # (the colour bars come after)
  assert len(fig.axes) == 4  # two heatmaps, two colour bars
  assert [t.get_text() for t in accuracy.texts] == ["0.900", "0.800", "0.700", "0.600", "0.500", "0.400"]
  assert [t.get_text() for t in ratio.texts][:2] == ["1.0e-03", "1.0e+00"]
  assert [t.get_text() for t in accuracy.get_xticklabels()] == cols
  assert [t.get_text() for t in accuracy.get_yticklabels()] == rows
  assert isinstance(ratio.images[0].norm, matplotlib.colors.LogNorm) and accuracy.get_title() == "accuracy"


def test_phase_diagram_with_and_without_the_trained_grid(draw):
  sigma_w2, sigma_b2 = np.linspace(0.5, 3, 6), np.linspace(0, 0.1, 3)
  depth_scale = np.full((3, 6), 10.0)
  critical = np.array([1.0, 1.2, 1.4])
  fig = draw(plotting.phase_diagram, sigma_w2, sigma_b2, depth_scale, critical, title="tanh")
  assert len(fig.axes) == 2  # the map and its colour bar
  assert list(fig.axes[0].lines[0].get_xdata()) == [1.0, 1.2, 1.4] and "chi_1 = 1" in _legend(fig.axes[0])[0]
  accuracy = np.array([[0.9, 0.95, 0.2], [0.1, 0.8, 0.1]])
  trained = draw(plotting.phase_diagram, sigma_w2, sigma_b2, depth_scale, critical,
                 trained=([1.0, 2.0, 3.0], [10, 50], accuracy), bias_for_grid=0.05)
  grid = trained.axes[1]
  assert len(trained.axes) == 4  # two maps, then two colour bars
  assert [t.get_text() for t in grid.texts] == ["0.90", "0.95", "0.20", "0.10", "0.80", "0.10"]
  assert [t.get_text() for t in grid.get_xticklabels()] == ["1", "2", "3"]
  assert [t.get_text() for t in grid.get_yticklabels()] == ["10", "50"]
  assert _legend(grid) == ["$6\\xi_c$ (theory)"] and grid.get_title().endswith("= 0.05)")


def test_accuracy_bars_draw_ours_beside_each_published_version(draw):
  names = ["softmax", "relu"]
  fig = draw(plotting.accuracy_bars, names, [0.92, 0.95], [0.002, 0.001], {"TF1": [0.9, None], "TF2": [0.93, 0.97]})
  (ax,) = fig.axes
  heights = [p.get_height() for p in ax.patches]
  assert len(heights) == 6 and heights[:2] == [0.92, 0.95] and np.isnan(heights[3])  # TF1 has no relu number
  assert _legend(ax) == ["lab10 (mean ± std over seeds)", "TF1", "TF2"]
  assert ax.get_ylim() == pytest.approx((0.88, 1.0))  # 0.02 below the lowest number
  assert [t.get_text() for t in ax.get_xticklabels()] == names


def test_self_normalization_starts_each_line_at_the_inputs_and_marks_the_fixed_point(draw):
  mean = {"SELU": [0.3, 0.1, 0.0], "tanh": [0.2, 0.1, 0.05]}
  var = {"SELU": [2.0, 1.2, 1.0], "tanh": [0.5, 0.2, 0.1]}
  fig = draw(plotting.self_normalization, [1, 2, 3], mean, var, input_mean=0.5, input_var=4.0, title="SNN")
  ax_m, ax_v = fig.axes
  assert len(ax_m.lines) == len(ax_v.lines) == 3  # two networks and the fixed point
  assert list(ax_m.lines[0].get_ydata()) == [0.5, 0.3, 0.1, 0.0] and list(ax_v.lines[1].get_xdata()) == [0, 1, 2, 3]
  assert list(ax_v.lines[2].get_ydata()) == [1.0, 1.0] and ax_v.get_yscale() == "log"
  assert _legend(ax_m) == ["SELU", "tanh", "SELU fixed point (0)"]
