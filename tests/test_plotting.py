"""lab10.plotting: the shared primitives draw what they are given — panels, lines, labels — from small fake data,
and every figure's drawing (each module's ``draw``) keeps the one style: one legend per figure below the panels,
one colour per thing across panels."""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba

from lab10 import plotting
from lab10.experiments import (glorot_fig2_sigmoid_saturation, glorot_init_histograms, lab_accuracies,
                               meanfield_phase_diagram, selu_self_normalization, variance_vs_depth)

from drawing import colour, draw, legend_entries, nan  # noqa: F401


# Small, representative arguments for every figure function.
EDGES = np.linspace(-1, 1, 5)
X = [1, 2, 3]
FIGURES = {
    "variance_vs_depth": (variance_vs_depth.draw, dict(
        layers=X, forward={"He": [1.0, 1.0, 1.0], "Xavier": [1.0, 0.5, 0.25]},
        backward={"He": [1.0, 1.0, 1.0], "Xavier": [1e-20, 1e-10, 1.0]}, theory_forward={"He": [1.0, 1.0, 1.0]})),
    "layer_histograms": (glorot_init_histograms.draw, dict(
        panels={"standard": {"layer 1": (EDGES, [0, 2, 6, 2]), "layer 2": (EDGES, [1, 1, 1, 1])},
                "normalized": {"layer 1": (EDGES, [4, 0, 0, 4]), "layer 2": (EDGES, [0, 5, 5, 0])}},
        xlabel="activation value", stds={"standard": {"layer 1": 0.5, "layer 2": 0.25}})),
    "activation_trajectories": (glorot_fig2_sigmoid_saturation.draw, dict(
        steps=[0, 10, 20], mean={"layer 1": [0.5, 0.6, 0.7], "layer 2": [0.5, 0.9, 1.0]},
        spread={"layer 1": ([0.4, 0.5, 0.6], [0.6, 0.7, 0.8]), "layer 2": ([0.4, 0.8, 0.9], [0.6, 1.0, 1.1])})),
    "curves": (plotting.curves, dict(
        panels={"loss": {"He": (X, [3.0, 2.0, 1.0])}, "gradient": {"He, layer 1": (X, [1.0, None, 1.0])}},
        xlabel="step", ylabels=["loss", "gradient norm"], bands={"loss": {"He": ([2.5, 1.5, nan], [3.5, 2.5, 1.5])}})),
    "curves_sharey": (plotting.curves, dict(
        panels={"relu": {"layer 1": (X, [1.0, 2.0, 3.0])}, "sigmoid": {"layer 1": (X, [0.1, 0.2, 0.3])}},
        xlabel="step", ylabels=["gradient norm", "unused"], sharey=True)),
    "phase_diagram": (meanfield_phase_diagram.draw, dict(
        sigma_w2=np.linspace(0.5, 3, 6), sigma_b2=np.linspace(0, 0.1, 3), depth_scale=np.full((3, 6), 10.0),
        critical_w2=[1.0, 1.2, 1.4], trained=([1.0, 2.0, 3.0], [10, 50], [[0.9, None, 0.2], [0.1, 0.8, 0.1]]),
        bias_for_grid=0.05)),
    "accuracy_bars": (lab_accuracies.draw, dict(
        names=["softmax", "relu"], ours_mean=[0.92, 0.95], ours_std=[0.002, 0.001],
        published={"TF1": [0.9, None], "TF2": [0.93, 0.97]}, note="PyTorch: scored on unscaled test inputs")),
    "self_normalization": (selu_self_normalization.draw, dict(
        layers=X, mean={"SELU": [0.3, 0.1, 0.0]}, var={"SELU": [2.0, 1.2, 1.0]}, input_mean=0.5, input_var=4.0)),
}


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_has_one_legend_below_its_panels_and_saves(draw, tmp_path, name):
  function, kwargs = FIGURES[name]
  fig = draw(function, title=name, **kwargs)
  legend_entries(fig)
  fig.savefig(tmp_path / f"{name}.png")  # the layout engine places the legend outside the panels
  assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
  renderer = fig.canvas.get_renderer()
  legend = fig.legends[0].get_window_extent(renderer)
  panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
  assert legend.y1 <= min(ax.get_tightbbox(renderer).y0 for ax in panels), "the legend overlaps a panel"


def test_curves_colour_each_label_alike_in_every_panel(draw):
  x = [1, 2, 3]
  panels = {"loss": {"He": (x, [3.0, 2.0, 1.0]), "Xavier": (x, [3.0, 3.0, 3.0])},
            "error": {"Xavier": (x, [0.9, 0.9, 0.9]), "He": (x, [0.5, 0.3, 0.1])}}
  fig = draw(plotting.curves, panels, "step", ["training loss", "error"], logy=[True], styles={"Xavier": "--"})
  loss, error = fig.axes
  assert [ax.get_ylabel() for ax in fig.axes] == ["training loss", "error"]
  assert loss.get_yscale() == "log" and error.get_yscale() == "linear"
  assert colour(loss, "He") == colour(error, "He") != colour(loss, "Xavier") == colour(error, "Xavier")
  assert [l.get_linestyle() for l in error.lines] == ["--", "-"] and legend_entries(fig) == ["He", "Xavier"]
  shared = draw(plotting.curves, panels, "step", ["loss", "unused"], sharey=True)
  assert [ax.get_ylabel() for ax in shared.axes] == ["loss", ""]
  assert legend_entries(shared) == ["He", "Xavier"]


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
  assert colour(loss, he) == colour(gradient, f"{he}, layer 1") == colour(gradient, f"{he}, layer 30")
  assert colour(loss, xavier) == colour(gradient, f"{xavier}, layer 30") != colour(loss, he)
  assert colour(dropout, "dropout 0.5: train") == colour(dropout, "dropout 0.5: test")
  assert colour(dropout, "no dropout: train") not in {colour(dropout, "dropout 0.5: train"), colour(loss, he)}
  # Colours go to the groups in first-seen order; line styles tell the details apart.
  assert [colour(loss, xavier), colour(loss, he)] == plotting.OKABE_ITO[:2]
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
  assert tuple(band.get_facecolor()[0]) == pytest.approx(to_rgba(colour(accuracy, "He"), 0.2))
  assert len(band.get_paths()) == 2  # split at the missing point
  assert np.isnan(accuracy.lines[0].get_ydata()[2])  # and the line has a gap there
  with pytest.raises(ValueError, match="'loss'/'Xavier'"):  # a band for a line the panel does not draw
    draw(plotting.curves, panels, "epoch", ["accuracy", "loss"], bands={"loss": {"Xavier": ([0], [1])}})


