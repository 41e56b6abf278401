"""He et al. Figs. 2–3 on MLPs at reduced scale, and the committed figure redrawn panel by panel."""

import dataclasses
import json
import math

import numpy as np
import pytest

from lab10 import plotting
from lab10.experiments import he_depth
from lab10.experiments.common import mlp_config, mnist, train_probed, train_seeds

from conftest import ROOT
from drawing import draw  # noqa: F401


def test_he_fig3_he_converges_where_xavier_stalls(mnist_dir):
  r = he_depth.run_fig3(data_dir=mnist_dir, steps=400, every=100, n_train=6400)  # 50 steps an epoch
  error = r.data["panels"]["training error"]
  he, xavier = error["He (Var 2/n)"][1], error["Xavier (Var 1/n)"][1]
  assert he[-1] < 0.3 and min(xavier) > 0.85, (he, xavier)
  assert r.claims["he_final_error"] == he[-1] and r.claims["xavier_min_error"] == min(xavier)
  assert math.isnan(r.claims["xavier_first_step_error_below_0.1"])
  # Xavier's first-layer gradient is far smaller than He's at init (He et al.: "diminishing").
  assert r.claims["xavier_first_grad_at_init"] < 1e-3 * r.claims["he_first_grad_at_init"]


def test_seeds_train_at_once_exactly_as_one_at_a_time(mnist_dir):
  ds = mnist(mnist_dir, 1280)
  c = mlp_config(depth=3, width=(32,), activation="relu", init="he_normal", optimizer="momentum", lr=0.01,
                 batch_size=128)
  together = train_seeds(c, (0, 1, 2), ds, steps=30, every=10)
  assert together["steps"] == [10, 20, 30] and together["accuracy"].shape == (3, 3)
  for i, seed in enumerate((0, 1, 2)):
    alone = train_probed(dataclasses.replace(c, seed=seed), ds, steps=30, every=10)
    np.testing.assert_allclose(together["loss"][:, i], alone["loss"], rtol=1e-6)
    np.testing.assert_allclose(together["accuracy"][:, i], alone["accuracy"], rtol=1e-6)
    assert together["test_accuracy"][i] == pytest.approx(alone["test_accuracy"], abs=1e-4)
  assert len({float(a) for a in together["test_accuracy"]}) == 3  # three different networks


def test_depths_over_seeds_count_stalled_and_converged_runs(mnist_dir, monkeypatch, draw):
  def train_seeds(c, seeds, ds, *, steps, every):  # He: seed 0 converges at step 100; Xavier: seed 1 stalls
    he = c.init == "he_normal"
    error = [[0.5, 0.3], [0.05, 0.2]] if he else [[0.8, 0.88], [0.5, 0.9]]  # (points, seeds)
    return {"steps": [50, 100], "accuracy": 1 - np.array(error), "loss": np.zeros((2, 2)),
            "test_accuracy": np.zeros(2)}

  monkeypatch.setattr(he_depth, "train_seeds", train_seeds)
  r = he_depth.run_depths(data_dir=mnist_dir, depths=(2, 3), width=8, steps=100, every=50, n_train=1600,
                          seeds=(0, 1))
  assert list(r.data["panels"]) == ["2 layers", "3 layers"]
  steps, per_seed = r.data["panels"]["2 layers"]["He (Var 2/n)"]
  assert steps == [50, 100] and per_seed == [pytest.approx([0.5, 0.05]), pytest.approx([0.3, 0.2])]
  first = r.data["first_below"]["2 layers, He (Var 2/n)"]
  assert first[0] == 100 and math.isnan(first[1])  # seed 1 never below 0.1
  assert r.claims["d2_he_converged_fraction"] == 0.5 and r.claims["d2_he_stalled_fraction"] == 0
  assert r.claims["d2_he_first_step_median"] == 100
  assert r.claims["d2_xavier_stalled_fraction"] == 0.5 and r.claims["d2_xavier_converged_fraction"] == 0
  assert math.isnan(r.claims["d2_xavier_first_step_median"])
  assert r.claims["d2_he_first_in_pairs"] == 1  # seed 0: He at 100, Xavier never
  fig = draw(he_depth.draw_depths, **r.data)
  assert [ax.get_title() for ax in fig.axes] == ["2 layers", "3 layers", "runs below 0.1 training error by step s"]
  ecdf = [line for line in fig.axes[2].lines if line.get_label() == "2 layers, He (Var 2/n)"][0]
  assert list(ecdf.get_xdata()) == [0, 100, 100, 100] and list(ecdf.get_ydata()) == [0, 0, 0.5, 0.5]


def test_redrawn_committed_figure_keeps_each_panel_with_its_axis_label():
  """--redraw draws from the JSON as saved: panels in the experiment's order, each with its own y label."""
  data = json.loads((ROOT / "figures" / "he_fig3_deep_relu.json").read_text())["data"]
  assert list(data["panels"])[:2] == ["training error", "training loss"]
  with plotting.style():
    fig = plotting.curves(**data)
  labels = {ax.get_title(): ax.get_ylabel() for ax in fig.axes if ax.get_title()}
  plotting.close(fig)
  assert labels["training error"] == "training error (chance: 0.9)"
  assert labels["training loss"] == "cross-entropy (nats)"
