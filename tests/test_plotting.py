"""lab10.plotting: every figure function draws what it is given — panels, lines, labels — from small fake data,
in one style: one legend per figure below the panels, one colour per thing across panels, readable cell text."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import LogNorm, to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lab10 import plotting  # noqa: E402

nan = float("nan")


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


def _legend(fig) -> list[str]:
  """The entries of the figure's one legend; no panel has a legend of its own."""
  assert [ax for ax in fig.axes if ax.get_legend() is not None] == [] and len(fig.legends) == 1
  return [t.get_text() for t in fig.legends[0].get_texts()]


def _colour(ax, label: str):
  return next(line.get_color() for line in ax.lines if line.get_label() == label)


def _texts(ax) -> dict[str, str]:
  """Each cell's text → its colour."""
  return {t.get_text(): t.get_color() for t in ax.texts}


# Small, representative arguments for every figure function.
EDGES = np.linspace(-1, 1, 5)
X = [1, 2, 3]
FIGURES = {
    "variance_vs_depth": (plotting.variance_vs_depth, dict(
        layers=X, forward={"He": [1.0, 1.0, 1.0], "Xavier": [1.0, 0.5, 0.25]},
        backward={"He": [1.0, 1.0, 1.0], "Xavier": [1e-20, 1e-10, 1.0]}, theory_forward={"He": [1.0, 1.0, 1.0]})),
    "layer_histograms": (plotting.layer_histograms, dict(
        panels={"standard": {"layer 1": (EDGES, [0, 2, 6, 2]), "layer 2": (EDGES, [1, 1, 1, 1])},
                "normalized": {"layer 1": (EDGES, [4, 0, 0, 4]), "layer 2": (EDGES, [0, 5, 5, 0])}},
        xlabel="activation value", stds={"standard": {"layer 1": 0.5, "layer 2": 0.25}})),
    "activation_trajectories": (plotting.activation_trajectories, dict(
        steps=[0, 10, 20], mean={"layer 1": [0.5, 0.6, 0.7], "layer 2": [0.5, 0.9, 1.0]},
        spread={"layer 1": ([0.4, 0.5, 0.6], [0.6, 0.7, 0.8]), "layer 2": ([0.4, 0.8, 0.9], [0.6, 1.0, 1.1])})),
    "curves": (plotting.curves, dict(
        panels={"loss": {"He": (X, [3.0, 2.0, 1.0])}, "gradient": {"He, layer 1": (X, [1.0, None, 1.0])}},
        xlabel="step", ylabels=["loss", "gradient norm"], bands={"loss": {"He": ([2.5, 1.5, nan], [3.5, 2.5, 1.5])}})),
    "curves_sharey": (plotting.curves, dict(
        panels={"relu": {"layer 1": (X, [1.0, 2.0, 3.0])}, "sigmoid": {"layer 1": (X, [0.1, 0.2, 0.3])}},
        xlabel="step", ylabels=["gradient norm", "unused"], sharey=True)),
    "phase_diagram": (plotting.phase_diagram, dict(
        sigma_w2=np.linspace(0.5, 3, 6), sigma_b2=np.linspace(0, 0.1, 3), depth_scale=np.full((3, 6), 10.0),
        critical_w2=[1.0, 1.2, 1.4], trained=([1.0, 2.0, 3.0], [10, 50], [[0.9, None, 0.2], [0.1, 0.8, 0.1]]),
        bias_for_grid=0.05)),
    "accuracy_bars": (plotting.accuracy_bars, dict(
        names=["softmax", "relu"], ours_mean=[0.92, 0.95], ours_std=[0.002, 0.001],
        published={"TF1": [0.9, None], "TF2": [0.93, 0.97]}, note="PyTorch: scored on unscaled test inputs")),
    "self_normalization": (plotting.self_normalization, dict(
        layers=X, mean={"SELU": [0.3, 0.1, 0.0]}, var={"SELU": [2.0, 1.2, 1.0]}, input_mean=0.5, input_var=4.0)),
}


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_has_one_legend_below_its_panels_and_saves(draw, tmp_path, name):
  function, kwargs = FIGURES[name]
  fig = draw(function, title=name, **kwargs)
  _legend(fig)
  fig.savefig(tmp_path / f"{name}.png")  # the layout engine places the legend outside the panels
  assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
  renderer = fig.canvas.get_renderer()
  legend = fig.legends[0].get_window_extent(renderer)
  panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
  assert legend.y1 <= min(ax.get_tightbbox(renderer).y0 for ax in panels), "the legend overlaps a panel"


def test_heatmaps_have_colour_bars_and_no_legend(draw, tmp_path):
  fig = draw(plotting.heatmaps, ["relu"], ["he", "glorot"], {"accuracy": [[0.9, nan]]})
  assert fig.legends == [] and all(ax.get_legend() is None for ax in fig.axes) and len(fig.axes) == 2
  fig.savefig(tmp_path / "heatmaps.png")


def test_variance_vs_depth_draws_measurements_theory_and_marks_lines_off_scale(draw):
  layers = [1, 2, 3]
  forward = {"He": [1.0, 1.0, 1.0], "Xavier": [1.0, 0.5, 0.25]}
  backward = {"Xavier": [1e-20, 1e-10, 1.0], "He": [1.0, 1.0, 1.0]}  # the other order: colours follow the label
  fig = draw(plotting.variance_vs_depth, layers, forward, backward, theory_forward={"He": [1.0, 1.0, 1.0]},
             title="relu")
  ax_f, ax_b = fig.axes
  assert len(ax_f.lines) == 3  # two measured, one theory (He's)
  assert len(ax_b.lines) == 3  # two measured, the legend's theory sample
  assert ax_f.lines[1].get_linestyle() == "--" and list(ax_f.lines[2].get_ydata()) == [1.0, 0.5, 0.25]
  assert ax_f.get_ylabel() == "forward: E[$z_l^2$] / E[$z_1^2$]" and "delta_{3}" in ax_b.get_ylabel()
  assert ax_f.get_yscale() == ax_b.get_yscale() == "log" and ax_f.get_xlabel() == "layer l"
  assert [t.get_text() for t in ax_b.texts] == ["Xavier: 1.0e-20 at layer 1 (off scale)"] and not ax_f.texts
  assert _colour(ax_f, "He") == _colour(ax_b, "He") != _colour(ax_f, "Xavier") == _colour(ax_b, "Xavier")
  assert _legend(fig) == ["He", "Xavier", "theory: (½·n·Var[W])$^{\\Delta l}$"]
  assert fig.get_suptitle() == "relu"
  no_theory = draw(plotting.variance_vs_depth, layers, forward, backward)
  assert _legend(no_theory) == ["He", "Xavier"]  # no dashed lines, no theory entry
  gappy = draw(plotting.variance_vs_depth, layers, {"He": [1.0, None, 1e-20]}, {"He": [None, None, None]})
  assert [t.get_text() for t in gappy.axes[0].texts] == ["He: 1.0e-20 at layer 3 (off scale)"]
  assert np.isnan(gappy.axes[0].lines[0].get_ydata()[1]) and not gappy.axes[1].texts  # missing: gaps


def test_layer_histograms_draw_one_normalised_density_per_layer_and_panel(draw):
  edges = np.linspace(-1, 1, 5)
  panels = {"standard": {"layer 1": (edges, [0, 2, 6, 2]), "layer 2": (edges, [1, 1, 1, 1])},
            "normalized": {"layer 1": (edges, [4, 0, 0, 4]), "layer 2": (edges, [0, 5, 5, 0])}}
  fig = draw(plotting.layer_histograms, panels, "activation value", title="tanh", logy=True,
             stds={"standard": {"layer 1": 0.5, "layer 2": 0.0123}})
  assert len(fig.axes) == 2
  # The stds differ per panel: they go to the panel's title (.2g), the shared layer names to the one legend.
  assert [ax.get_title() for ax in fig.axes] == ["standard\nstd by layer: 0.5, 0.012", "normalized"]
  assert _legend(fig) == ["layer 1", "layer 2"]
  standard, normalized = fig.axes
  assert _colour(standard, "layer 1") == _colour(normalized, "layer 1") != _colour(normalized, "layer 2")
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
  assert len(ax.collections) == 2 and _legend(fig) == ["layer 1", "layer 2"]
  assert ax.get_ylabel() == "sigmoid output" and ax.get_xlabel().startswith("training step")
  assert fig._suptitle.get_text() == "fig 2"
  # With error rates, a second panel beside it, in black: training solid, test dashed.
  fig = draw(plotting.activation_trajectories, steps, mean, spread, title="fig 2",
             error=(steps, {"training error": [None, 0.5, 0.2], "test error": [0.9, 0.6, 0.3]}))
  _, ax_e = fig.axes
  assert ax_e.get_yscale() == "log" and [line.get_linestyle() for line in ax_e.lines] == ["-", "--"]
  assert np.isnan(ax_e.lines[0].get_ydata()[0])  # JSON null: no training error before the first step
  assert _legend(fig) == ["layer 1", "layer 2", "training error", "test error"]


def test_curves_colour_each_label_alike_in_every_panel(draw):
  x = [1, 2, 3]
  panels = {"loss": {"He": (x, [3.0, 2.0, 1.0]), "Xavier": (x, [3.0, 3.0, 3.0])},
            "error": {"Xavier": (x, [0.9, 0.9, 0.9]), "He": (x, [0.5, 0.3, 0.1])}}
  fig = draw(plotting.curves, panels, "step", ["training loss", "error"], logy=[True], styles={"Xavier": "--"})
  loss, error = fig.axes
  assert [ax.get_ylabel() for ax in fig.axes] == ["training loss", "error"]
  assert loss.get_yscale() == "log" and error.get_yscale() == "linear"
  assert _colour(loss, "He") == _colour(error, "He") != _colour(loss, "Xavier") == _colour(error, "Xavier")
  assert [l.get_linestyle() for l in error.lines] == ["--", "-"] and _legend(fig) == ["He", "Xavier"]
  shared = draw(plotting.curves, panels, "step", ["loss", "unused"], sharey=True)
  assert [ax.get_ylabel() for ax in shared.axes] == ["loss", ""]
  assert _legend(shared) == ["He", "Xavier"]


def test_curves_colour_a_detailed_label_like_its_group(draw):
  x = [1, 2, 3]
  he, xavier = "He (Var 2/n)", "Xavier (Var 1/n)"
  panels = {"training loss": {xavier: (x, [2.3, 2.3, 2.2]), he: (x, [2.0, 1.0, 0.5])},
            "gradient norm": {f"{he}, layer 1": (x, [1, 1, 1]), f"{he}, layer 30": (x, [2, 2, 2]),
                              f"{xavier}, layer 1": (x, [1e-3, 1e-3, 1e-2]), f"{xavier}, layer 30": (x, [1, 1, 1])},
            "dropout": {"dropout 0.5: train": (x, [0.9, 0.95, 0.97]), "dropout 0.5: test": (x, [0.9, 0.93, 0.94]),
                        "no dropout: train": (x, [0.95, 0.99, 1.0])}}
  styles = {f"{he}, layer 30": "--", f"{xavier}, layer 30": "--", "dropout 0.5: test": "o-"}
  fig = draw(plotting.curves, panels, "step", ["nats", "norm", "accuracy"], styles=styles)
  loss, gradient, dropout = fig.axes
  assert _colour(loss, he) == _colour(gradient, f"{he}, layer 1") == _colour(gradient, f"{he}, layer 30")
  assert _colour(loss, xavier) == _colour(gradient, f"{xavier}, layer 30") != _colour(loss, he)
  assert _colour(dropout, "dropout 0.5: train") == _colour(dropout, "dropout 0.5: test")
  assert _colour(dropout, "no dropout: train") not in {_colour(dropout, "dropout 0.5: train"), _colour(loss, he)}
  # Colours go to the groups in first-seen order; line styles tell the details apart.
  assert [_colour(loss, xavier), _colour(loss, he)] == plotting.OKABE_ITO[:2]
  assert [l.get_linestyle() for l in gradient.lines] == ["-", "--", "-", "--"]
  assert plotting._group("A (x, y), layer 3: z") == "A (x" and plotting._group("layer 3") == "layer 3"


def test_curves_shade_bands_in_the_line_colour_with_gaps_for_missing_values(draw):
  x = [1, 2, 3, 4, 5]
  panels = {"accuracy": {"He": (x, [0.5, 0.6, None, 0.8, 0.9]), "Xavier": (x, [0.4] * 5)},
            "loss": {"He": (x, [2.0, 1.5, 1.0, 0.8, 0.7])}}
  bands = {"accuracy": {"He": ([0.4, 0.5, None, 0.7, 0.8], [0.6, 0.7, nan, 0.9, 1.0])}}
  fig = draw(plotting.curves, panels, "epoch", ["accuracy", "loss"], bands=bands)
  accuracy, loss = fig.axes
  (band,) = accuracy.collections  # Xavier has no band, nor has He's loss line: a band belongs to a panel's line
  assert isinstance(band, PolyCollection) and len(loss.collections) == 0
  assert tuple(band.get_facecolor()[0]) == pytest.approx(to_rgba(_colour(accuracy, "He"), 0.2))
  assert len(band.get_paths()) == 2  # split at the missing point
  assert np.isnan(accuracy.lines[0].get_ydata()[2])  # and the line has a gap there
  with pytest.raises(ValueError, match="'loss'/'Xavier'"):  # a band for a line the panel does not draw
    draw(plotting.curves, panels, "epoch", ["accuracy", "loss"], bands={"loss": {"Xavier": ([0], [1])}})


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
  assert isinstance(ratio.images[0].norm, LogNorm) and accuracy.get_title() == "accuracy"


def test_heatmaps_pick_text_colour_from_the_cell_and_centre_log_scales_at_1(draw):
  matrices = {"accuracy": [[0.1, 0.9, nan]], "ratio": [[1e-3, 1.0, 50.0]], "near 1": [[0.5, 1.0, 2.0]]}
  fig = draw(plotting.heatmaps, ["relu"], ["a", "b", "c"], matrices, cmaps={"ratio": "coolwarm"},
             lognorm=["ratio", "near 1"], annotations={"ratio": [["1e-3±1e-4", "1.0±0.1", None]]})
  accuracy, ratio, near_1 = fig.axes[:3]
  # viridis: 0.1 (the minimum) is dark purple → white text; 0.9 is yellow → black; NaN is light grey.
  assert _texts(accuracy) == {"0.100": "white", "0.900": "black", "diverged": "black"}
  assert accuracy.images[0].cmap(np.nan) == to_rgba("0.85")
  # coolwarm centred at 1: the far end is saturated blue → white text; 1 is the pale middle → black.
  assert _texts(ratio) == {"1e-3±1e-4": "white", "1.0±0.1": "black", "50.000": "black"}
  norm = ratio.images[0].norm
  assert norm.vmin * norm.vmax == pytest.approx(1.0) and norm.vmax == pytest.approx(1e3)
  assert (near_1.images[0].norm.vmin, near_1.images[0].norm.vmax) == pytest.approx((0.1, 10.0))  # at least 10
  assert accuracy.images[0].norm.vmin == pytest.approx(0.1)  # not log: linear, as before
  annotated = draw(plotting.heatmaps, ["relu"], ["a"], {"accuracy": [[nan]]},
                   annotations={"accuracy": [["3/5 diverged"]]})
  assert [t.get_text() for t in annotated.axes[0].texts] == ["3/5 diverged"]


def test_phase_diagram_with_and_without_the_trained_grid(draw):
  sigma_w2, sigma_b2 = np.linspace(0.5, 3, 6), np.linspace(0, 0.1, 3)
  depth_scale = np.full((3, 6), 10.0)
  critical = np.array([1.0, 1.2, 1.4])
  fig = draw(plotting.phase_diagram, sigma_w2, sigma_b2, depth_scale, critical, title="tanh")
  assert len(fig.axes) == 2  # the map and its colour bar
  assert list(fig.axes[0].lines[0].get_xdata()) == [1.0, 1.2, 1.4] and "chi_1 = 1" in _legend(fig)[0]
  # The region labels sit on a dark box: white text reads on every colour of the map.
  assert all(t.get_color() == "w" and t.get_bbox_patch().get_facecolor()[:3] == (0, 0, 0) for t in fig.axes[0].texts)
  accuracy = np.array([[0.9, 0.95, 0.2], [0.1, 0.8, nan]])
  trained = draw(plotting.phase_diagram, sigma_w2, sigma_b2, depth_scale, critical,
                 trained=([1.0, 2.0, 3.0], [10, 50], accuracy), bias_for_grid=0.05)
  grid = trained.axes[1]
  assert len(trained.axes) == 4  # two maps, then two colour bars
  assert [t.get_text() for t in grid.get_xticklabels()] == ["1", "2", "3"]
  assert [t.get_text() for t in grid.get_yticklabels()] == ["10", "50"]
  assert [t.get_text() for t in grid.texts] == ["0.90", "0.95", "0.20", "0.10", "0.80", "diverged"]
  # viridis from 0.1 to 1: low accuracy is dark (white text), high is yellow-green (black), a diverged run grey.
  assert [t.get_color() for t in grid.texts] == ["black", "black", "white", "white", "black", "black"]
  assert _legend(trained)[1] == "$6\\xi_c$ (theory)" and grid.get_title().endswith("= 0.05)")
  # The white dashed lines are outlined, so their legend samples read on the white page too.
  assert all(line.get_path_effects() for line in [*trained.axes[0].lines, *grid.lines])


def test_accuracy_bars_draw_ours_beside_each_published_version(draw):
  names = ["softmax", "relu"]
  fig = draw(plotting.accuracy_bars, names, [0.92, 0.95], [0.002, 0.001], {"TF1": [0.9, None], "TF2": [0.93, 0.97]})
  (ax,) = fig.axes
  heights = [p.get_height() for p in ax.patches]
  assert len(heights) == 6 and heights[:2] == [0.92, 0.95] and np.isnan(heights[3])  # TF1 has no relu number
  assert _legend(fig) == ["lab10 (mean ± std over seeds)", "TF1", "TF2"]
  assert ax.get_ylim() == pytest.approx((0.88, 1.0))  # 0.02 below the lowest number
  assert ax.get_ylabel() == "test accuracy (axis from 0.88)"  # the zoomed axis says where it starts
  assert [t.get_text() for t in ax.get_xticklabels()] == names
  assert fig.legends[0].get_title().get_text() == ""


def test_accuracy_bars_ignore_missing_numbers_and_print_the_note_off_the_bars(draw):
  note = "PyTorch: scored on unscaled test inputs (a bug in the originals)"
  fig = draw(plotting.accuracy_bars, ["a", "b"], [0.9123, None], [0.001, None], {"PyTorch": [nan, 0.97]}, note=note)
  (ax,) = fig.axes
  assert ax.get_ylim() == pytest.approx((0.89, 1.0))  # rounded down to a hundredth, None and NaN ignored
  assert ax.get_ylabel() == "test accuracy (axis from 0.89)"
  assert fig.legends[0].get_title().get_text() == note
  renderer = fig.canvas.get_renderer()
  assert fig.legends[0].get_title().get_window_extent(renderer).y1 <= ax.get_tightbbox(renderer).y0


def test_self_normalization_starts_each_line_at_the_inputs_and_marks_the_fixed_point(draw):
  mean = {"SELU": [0.3, 0.1, 0.0], "tanh": [0.2, 0.1, 0.05]}
  var = {"tanh": [0.5, 0.2, 0.1], "SELU": [2.0, 1.2, 1.0]}
  fig = draw(plotting.self_normalization, [1, 2, 3], mean, var, input_mean=0.5, input_var=4.0, title="SNN")
  ax_m, ax_v = fig.axes
  assert len(ax_m.lines) == len(ax_v.lines) == 3  # two networks and the fixed point
  assert list(ax_m.lines[0].get_ydata()) == [0.5, 0.3, 0.1, 0.0] and list(ax_v.lines[1].get_xdata()) == [0, 1, 2, 3]
  assert list(ax_v.lines[2].get_ydata()) == [1.0, 1.0] and ax_v.get_yscale() == "log"
  assert _colour(ax_m, "SELU") == _colour(ax_v, "SELU") != _colour(ax_v, "tanh")
  assert _legend(fig) == ["SELU", "tanh", "SELU fixed point (mean 0, variance 1)"]
