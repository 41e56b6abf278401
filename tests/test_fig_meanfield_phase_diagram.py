"""The mean-field phase diagram at reduced scale, its diverged runs, and its drawing."""

import json
import math

import numpy as np
import pytest

from lab10 import plotting, runs
from lab10.experiments import meanfield_phase_diagram as phase

from drawing import draw, legend_entries, nan, texts  # noqa: F401


def test_meanfield_trainability_near_criticality(mnist_dir):
  r = phase.run(data_dir=mnist_dir, depths=(30,), sigma_w2s=(0.7, 1.76), width=64,
                                          steps=200, n_train=3000, resolution=8)
  ordered, critical = r.data["trained"][2][0]
  assert critical > 0.5 and ordered < 0.3, (ordered, critical)  # 30 layers ≫ 6ξ_c ≈ 11 at σ_w² = 0.7
  # The theory panel is lab10.meanfield's (checked against references in tests/test_meanfield.py).
  assert r.claims["tanh_critical_w2_b0.05"] == pytest.approx(1.76, abs=0.01)
  assert r.claims["xi_w2_1.76"] > 50 > 10 > r.claims["xi_w2_0.7"]
  assert r.claims["accuracy_depth30_w2_1.76"] == critical and r.claims["diverged_runs"] == 0


def test_meanfield_marks_diverged_runs_nan_not_chance(mnist_dir, monkeypatch, tmp_path):
  def train_probed(c, ds, *, steps, every):  # σ_w² = 9 diverges, the other trains
    return {"loss": [float("nan") if c.init_gain > 2 else 0.5], "test_accuracy": 0.9}

  monkeypatch.setattr(phase, "train_probed", train_probed)
  r = phase.run(data_dir=mnist_dir, depths=(5,), sigma_w2s=(1.0, 9.0), steps=1,
                                          n_train=100, resolution=4)
  trained, diverged = r.data["trained"][2][0]
  assert trained == 0.9 and math.isnan(diverged)
  assert math.isnan(r.claims["accuracy_depth5_w2_9"]) and r.claims["diverged_runs"] == 1
  # In the JSON a diverged run is null; the phase diagram draws from that data.
  runs.write_json(tmp_path / "data.json", r.data)
  saved = json.loads((tmp_path / "data.json").read_text())
  assert saved["trained"][2] == [[0.9, None]]
  plotting.close(phase.draw(**saved))


def test_phase_diagram_cells_map_the_theory_curve_onto_uneven_grids():
  grid = np.log([10.0, 20.0, 40.0, 80.0])  # depths, one cell each
  got = phase._cell_position(np.log([10.0, 30.0, 80.0, 160.0, 5.0]), grid)
  np.testing.assert_allclose(got, [0.0, 1 + np.log(1.5) / np.log(2), 3.0, 4.0, -1.0])
  fig = phase.draw(sigma_w2=[0.5, 1.0, 2.0], sigma_b2=[0.0, 0.05], depth_scale=[[2, 5, 9], [2, 6, 8]],
                               critical_w2=[1.0, 1.7], trained=([0.7, 1.76], [30], [[0.1, 0.9]]), bias_for_grid=0.05)
  ax = fig.axes[1]  # the trainability grid: one equal cell per network, labelled with its value
  assert [t.get_text() for t in ax.get_xticklabels()] == ["0.7", "1.76"] and ax.get_xlim() == (-0.5, 1.5)
  plotting.close(fig)


def test_phase_diagram_with_and_without_the_trained_grid(draw):
  sigma_w2, sigma_b2 = np.linspace(0.5, 3, 6), np.linspace(0, 0.1, 3)
  depth_scale = np.full((3, 6), 10.0)
  critical = np.array([1.0, 1.2, 1.4])
  fig = draw(phase.draw, sigma_w2, sigma_b2, depth_scale, critical, title="tanh")
  assert len(fig.axes) == 2  # the map and its colour bar
  assert list(fig.axes[0].lines[0].get_xdata()) == [1.0, 1.2, 1.4] and "chi_1 = 1" in legend_entries(fig)[0]
  # The region labels sit on a dark box: white text reads on every colour of the map.
  assert all(t.get_color() == "w" and t.get_bbox_patch().get_facecolor()[:3] == (0, 0, 0) for t in fig.axes[0].texts)
  accuracy = np.array([[0.9, 0.95, 0.2], [0.1, 0.8, nan]])
  trained = draw(phase.draw, sigma_w2, sigma_b2, depth_scale, critical,
                 trained=([1.0, 2.0, 3.0], [10, 50], accuracy), bias_for_grid=0.05)
  grid = trained.axes[1]
  assert len(trained.axes) == 4  # two maps, then two colour bars
  assert [t.get_text() for t in grid.get_xticklabels()] == ["1", "2", "3"]
  assert [t.get_text() for t in grid.get_yticklabels()] == ["10", "50"]
  assert [t.get_text() for t in grid.texts] == ["0.90", "0.95", "0.20", "0.10", "0.80", "diverged"]
  # viridis from 0.1 to 1: low accuracy is dark (white text), high is yellow-green (black), a diverged run grey.
  assert [t.get_color() for t in grid.texts] == ["black", "black", "white", "white", "black", "black"]
  assert legend_entries(trained)[1] == "$6\\xi_c$ (theory)" and grid.get_title().endswith("= 0.05)")
  # The white dashed lines are outlined, so their legend samples read on the white page too.
  assert all(line.get_path_effects() for line in [*trained.axes[0].lines, *grid.lines])


def test_the_depth_scale_splits_the_trained_nets():
  claims = {"xi_w2_1": 2.0, "xi_w2_1.76": 500.0, "accuracy_depth14_w2_1": 0.3, "accuracy_depth20_w2_1": 0.1,
            "accuracy_depth10_w2_1.76": 0.95, "accuracy_depth12_w2_1": 0.9}  # 6ξ = 12 at σ_w² = 1
  assert sorted(phase._accuracies(claims, deeper=True)) == [0.1, 0.3]
  assert sorted(phase._accuracies(claims, deeper=False)) == [0.9, 0.95]
  assert phase.CHECKS[-1].holds(claims)
  assert not phase.CHECKS[-1].holds({**claims, "accuracy_depth12_w2_1": 0.5})  # a net within 6ξ_c that fails
  assert phase.CHECKS[-1].holds({**claims, "accuracy_depth14_w2_1": 0.7})  # part-trained beyond 6ξ_c: below every net within
  assert not phase.CHECKS[-1].holds({**claims, "accuracy_depth14_w2_1": 0.92})  # a net beyond 6ξ_c that trains as well
