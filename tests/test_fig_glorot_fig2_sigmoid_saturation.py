"""Glorot & Bengio Fig. 2 at reduced scale, and its drawing."""

import numpy as np

from lab10.experiments import glorot_fig2_sigmoid_saturation as fig2

from drawing import draw, legend_entries  # noqa: F401


def test_glorot_fig2_top_sigmoid_layer_saturates_early(mnist_dir):
  r = fig2.run(data_dir=mnist_dir, steps=400, every=200)
  mean = r.data["mean"]
  top = list(mean.values())[-1]
  assert all(abs(m[0] - 0.5) < 0.1 for m in mean.values())  # at init every sigmoid layer sits near 0.5
  assert top[-1] < 0.05 and r.claims["top_min_mean"] == min(top), top
  steps, errors = r.data["error"]
  assert steps == r.data["steps"] == [0, 200, 400]
  test_error = errors["test error (2000 test images)"]
  assert test_error[0] > 0.8 and r.claims["initial_test_error"] == test_error[0]


def test_activation_trajectories_draw_a_line_and_a_band_per_layer(draw):
  steps = [0, 10, 20]
  mean = {"layer 1": [0.5, 0.6, 0.7], "layer 2": [0.5, 0.9, 1.0]}
  spread = {k: (np.subtract(v, 0.1), np.add(v, 0.1)) for k, v in mean.items()}
  fig = draw(fig2.draw, steps, mean, spread, ylabel="sigmoid output", title="fig 2")
  (ax,) = fig.axes
  assert [list(line.get_ydata()) for line in ax.lines] == list(mean.values())
  assert len(ax.collections) == 2 and legend_entries(fig) == ["layer 1", "layer 2"]
  assert ax.get_ylabel() == "sigmoid output" and ax.get_xlabel().startswith("training step")
  assert fig._suptitle.get_text() == "fig 2"
  # With error rates, a second panel beside it, in black: training solid, test dashed.
  fig = draw(fig2.draw, steps, mean, spread, title="fig 2",
             error=(steps, {"training error": [None, 0.5, 0.2], "test error": [0.9, 0.6, 0.3]}))
  _, ax_e = fig.axes
  assert ax_e.get_yscale() == "log" and [line.get_linestyle() for line in ax_e.lines] == ["-", "--"]
  assert np.isnan(ax_e.lines[0].get_ydata()[0])  # JSON null: no training error before the first step
  assert legend_entries(fig) == ["layer 1", "layer 2", "training error", "test error"]
