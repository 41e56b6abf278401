"""SELU's self-normalisation at reduced scale, and its drawing."""

from lab10.experiments import selu_self_normalization as selu

from drawing import colour, draw, legend_entries  # noqa: F401


def test_selu_self_normalizes_from_off_fixed_point_inputs():
  r = selu.run(width=500, depth=32, batch=100)
  assert abs(r.claims["selu_mean_top"]) < 0.05
  assert abs(r.claims["selu_var_top"] - 1) < 0.05
  assert r.claims["relu_mean_top"] > 0.5  # no such fixed point without SELU
  assert r.claims["tanh_var_top"] < 0.1
  # ReLU + He keeps the inputs' scale (variance about 3 here) instead of pulling it to 1.
  assert 1 / 1.5 < r.claims["relu_var_top"] / r.claims["relu_var_first"] < 1.5 and r.claims["relu_var_top"] > 2
  assert 1 < r.claims["selu_first_normalized_layer"] <= 32
  assert r.data["mean"]["SELU + LeCun"][0] > 0.1  # it starts off the fixed point


def test_self_normalization_starts_each_line_at_the_inputs_and_marks_the_fixed_point(draw):
  mean = {"SELU": [0.3, 0.1, 0.0], "tanh": [0.2, 0.1, 0.05]}
  var = {"tanh": [0.5, 0.2, 0.1], "SELU": [2.0, 1.2, 1.0]}
  fig = draw(selu.draw, [1, 2, 3], mean, var, input_mean=0.5, input_var=4.0, title="SNN")
  ax_m, ax_v = fig.axes
  assert len(ax_m.lines) == len(ax_v.lines) == 3  # two networks and the fixed point
  assert list(ax_m.lines[0].get_ydata()) == [0.5, 0.3, 0.1, 0.0] and list(ax_v.lines[1].get_xdata()) == [0, 1, 2, 3]
  assert list(ax_v.lines[2].get_ydata()) == [1.0, 1.0] and ax_v.get_yscale() == "log"
  assert colour(ax_m, "SELU") == colour(ax_v, "SELU") != colour(ax_v, "tanh")
  assert legend_entries(fig) == ["SELU", "tanh", "SELU fixed point (mean 0, variance 1)"]
