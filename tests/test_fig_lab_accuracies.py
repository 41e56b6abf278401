"""The seed labs' accuracies beside the published ones: reading labs.json, and the bars."""

import json

import numpy as np
import pytest

from lab10.experiments import Skipped, lab_accuracies

from drawing import draw, legend_entries, nan  # noqa: F401


def test_lab_accuracies_reads_labs_json(tmp_path):
  with pytest.raises(Skipped, match="not found; run scripts/reproduce_labs.py"):
    lab_accuracies.run(out=str(tmp_path))
  rows = {"lab10-3-xavier": {"seeds": [0, 1], "test_accuracy_mean": 0.978, "test_accuracy_std": 0.001}}
  (tmp_path / "labs.json").write_text(json.dumps({"presets": rows, "quick": False, "command": "x"}))
  r = lab_accuracies.run(out=str(tmp_path))
  assert r.data["ours_mean"] == [0.978] and r.data["published"]["TF1"] == [0.9783]
  assert r.claims == {"lab10-3-xavier_accuracy_mean": 0.978, "lab10-3-xavier_accuracy_std": 0.001}


def test_accuracy_bars_draw_ours_beside_each_published_version(draw):
  names = ["softmax", "relu"]
  fig = draw(lab_accuracies.draw, names, [0.92, 0.95], [0.002, 0.001], {"TF1": [0.9, None], "TF2": [0.93, 0.97]})
  (ax,) = fig.axes
  heights = [p.get_height() for p in ax.patches]
  assert len(heights) == 6 and heights[:2] == [0.92, 0.95] and np.isnan(heights[3])  # TF1 has no relu number
  assert legend_entries(fig) == ["lab10 (mean ± std over seeds)", "TF1", "TF2"]
  assert ax.get_ylim() == pytest.approx((0.88, 1.0))  # 0.02 below the lowest number
  assert ax.get_ylabel() == "test accuracy (axis from 0.88)"  # the zoomed axis says where it starts
  assert [t.get_text() for t in ax.get_xticklabels()] == names
  assert fig.legends[0].get_title().get_text() == ""


def test_accuracy_bars_ignore_missing_numbers_and_print_the_note_off_the_bars(draw):
  note = "PyTorch: scored on unscaled test inputs (a bug in the originals)"
  fig = draw(lab_accuracies.draw, ["a", "b"], [0.9123, None], [0.001, None], {"PyTorch": [nan, 0.97]}, note=note)
  (ax,) = fig.axes
  assert ax.get_ylim() == pytest.approx((0.89, 1.0))  # rounded down to a hundredth, None and NaN ignored
  assert ax.get_ylabel() == "test accuracy (axis from 0.89)"
  assert fig.legends[0].get_title().get_text() == note
  renderer = fig.canvas.get_renderer()
  assert fig.legends[0].get_title().get_window_extent(renderer).y1 <= ax.get_tightbbox(renderer).y0
