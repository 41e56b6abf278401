"""The activation × initializer zoo at reduced scale, and its heatmaps."""

import dataclasses
import math

import numpy as np
import pytest
from matplotlib.colors import LogNorm, to_rgba

from lab10 import data
from lab10.experiments import activation_zoo

from drawing import draw, nan, texts  # noqa: F401


def test_activation_zoo_heatmaps(mnist_dir):
  r = activation_zoo.run(data_dir=mnist_dir, width=64, epochs=1, n_train=3000, seeds=(0, 1),
                                 activations=("sigmoid", "relu"), inits=("normal", "he"))
  (accuracy_name, acc), (ratio_name, ratio) = ((k, np.array(v)) for k, v in r.data["matrices"].items())
  assert accuracy_name == "test accuracy (mean ± std, 2 seeds)" and ratio_name in r.data["lognorm"]
  assert acc.shape == ratio.shape == (2, 2) and r.data["cols"] == ["normal N(0,1)", "He"]
  assert r.claims["relu_he_accuracy_mean"] == acc[1, 1] and r.claims["sigmoid_he_grad_ratio"] == ratio[0, 1]
  assert 0 < r.claims["relu_he_accuracy_std"] < 0.05  # two different networks
  assert r.data["annotations"][accuracy_name][1][1] == f"{acc[1, 1]:.3f}\n±{r.claims['relu_he_accuracy_std']:.3f}"
  assert acc[1, 1] > 0.6 and acc[1, 1] > acc[0, 0] + 0.2, acc  # relu + He beats sigmoid + N(0, 1) by far
  assert ratio[0, 1] < 0.1 * ratio[1, 1], ratio  # sigmoid's first layer gets far less gradient than relu's


def test_heatmaps_have_colour_bars_and_no_legend(draw, tmp_path):
  fig = draw(activation_zoo.draw, ["relu"], ["he", "glorot"], {"accuracy": [[0.9, nan]]})
  assert fig.legends == [] and all(ax.get_legend() is None for ax in fig.axes) and len(fig.axes) == 2
  fig.savefig(tmp_path / "heatmaps.png")


def test_heatmaps_annotate_every_cell_in_its_format(draw):
  rows, cols = ["relu", "tanh"], ["he", "glorot", "lecun"]
  matrices = {"accuracy": np.array([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]]),
              "ratio": np.array([[1e-3, 1.0, 10.0], [2.0, 3.0, 1e3]])}
  fig = draw(activation_zoo.draw, rows, cols, matrices, fmt={"ratio": ".1e"}, lognorm=["ratio"], title="zoo")
  accuracy, ratio = fig.axes[:2]  # (the colour bars come after)
  assert len(fig.axes) == 4  # two heatmaps, two colour bars
  assert [t.get_text() for t in accuracy.texts] == ["0.900", "0.800", "0.700", "0.600", "0.500", "0.400"]
  assert [t.get_text() for t in ratio.texts][:2] == ["1.0e-03", "1.0e+00"]
  assert [t.get_text() for t in accuracy.get_xticklabels()] == cols
  assert [t.get_text() for t in accuracy.get_yticklabels()] == rows
  assert isinstance(ratio.images[0].norm, LogNorm) and accuracy.get_title() == "accuracy"


def test_heatmaps_pick_text_colour_from_the_cell_and_centre_log_scales_at_1(draw):
  matrices = {"accuracy": [[0.1, 0.9, nan]], "ratio": [[1e-3, 1.0, 50.0]], "near 1": [[0.5, 1.0, 2.0]]}
  fig = draw(activation_zoo.draw, ["relu"], ["a", "b", "c"], matrices, cmaps={"ratio": "coolwarm"},
             lognorm=["ratio", "near 1"], annotations={"ratio": [["1e-3±1e-4", "1.0±0.1", None]]})
  accuracy, ratio, near_1 = fig.axes[:3]
  # viridis: 0.1 (the minimum) is dark purple → white text; 0.9 is yellow → black; NaN is light grey.
  assert texts(accuracy) == {"0.100": "white", "0.900": "black", "diverged": "black"}
  assert accuracy.images[0].cmap(np.nan) == to_rgba("0.85")
  # coolwarm centred at 1: the far end is saturated blue → white text; 1 is the pale middle → black.
  assert texts(ratio) == {"1e-3±1e-4": "white", "1.0±0.1": "black", "50.000": "black"}
  norm = ratio.images[0].norm
  assert norm.vmin * norm.vmax == pytest.approx(1.0) and norm.vmax == pytest.approx(1e3)
  assert (near_1.images[0].norm.vmin, near_1.images[0].norm.vmax) == pytest.approx((0.1, 10.0))  # at least 10
  assert accuracy.images[0].norm.vmin == pytest.approx(0.1)  # not log: linear, as before
  annotated = draw(activation_zoo.draw, ["relu"], ["a"], {"accuracy": [[nan]]},
                   annotations={"accuracy": [["3/5 diverged"]]})
  assert [t.get_text() for t in annotated.axes[0].texts] == ["3/5 diverged"]


def test_a_cell_s_diverged_model_scores_nan_not_chance(mnist_dir):
  ds = data.load("mnist", mnist_dir, val_size=200)
  ds = dataclasses.replace(ds, train_x=ds.train_x[:200], train_y=ds.train_y[:200])
  base = activation_zoo.mlp_config(depth=2, width=(16,), optimizer="sgd", batch_size=10, epochs=1, val_size=200)
  fine, diverged = activation_zoo.sweep_records(activation_zoo.sweep.grid(base, [0], lrs=(0.1, 1e30)), ds)
  assert 0.1 < fine[-1]["val_accuracy"] <= 1 and math.isnan(diverged[-1]["val_accuracy"])
  assert math.isnan(diverged[-1]["test_accuracy"])
