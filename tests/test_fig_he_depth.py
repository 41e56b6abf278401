"""He et al. Figs. 2–3 on MLPs at reduced scale, and the committed figure redrawn panel by panel."""

import json
import math

from lab10 import plotting
from lab10.experiments import he_depth

from conftest import ROOT


def test_he_fig3_he_converges_where_xavier_stalls(mnist_dir):
  r = he_depth.run_fig3(data_dir=mnist_dir, steps=400, every=100, n_train=6400)  # 50 steps an epoch
  error = r.data["panels"]["training error"]
  he, xavier = error["He (Var 2/n)"][1], error["Xavier (Var 1/n)"][1]
  assert he[-1] < 0.3 and min(xavier) > 0.85, (he, xavier)
  assert r.claims["he_final_error"] == he[-1] and r.claims["xavier_min_error"] == min(xavier)
  assert math.isnan(r.claims["xavier_first_step_error_below_0.1"])
  # Xavier's first-layer gradient is far smaller than He's at init (He et al.: "diminishing").
  assert r.claims["xavier_first_grad_at_init"] < 1e-3 * r.claims["he_first_grad_at_init"]


def test_he_depth_pair_keys_each_depths_curves_and_claims(mnist_dir):
  # The 30-layer behaviour is he_fig3_deep_relu's (the same _he_pair, tested above); here the bookkeeping.
  r = he_depth.run_depths(data_dir=mnist_dir, depths=(2, 3), width=32, steps=100, every=50, n_train=1600)
  assert list(r.data["panels"]) == ["2 layers", "3 layers"] and len(r.data["ylabels"]) == 2
  for depth in (2, 3):
    for key, label in (("xavier", "Xavier (Var 1/n)"), ("he", "He (Var 2/n)")):
      steps, error = r.data["panels"][f"{depth} layers"][label]
      assert steps == [50, 100] and r.claims[f"d{depth}_{key}_min_error"] == min(error)
      assert r.claims[f"d{depth}_{key}_final_error"] == error[-1] < 0.6  # shallow nets learn at once


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
