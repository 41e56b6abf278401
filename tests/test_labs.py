import dataclasses
import json
import subprocess
import sys

import pytest

from lab10 import config, data, labs, train, workdir

from conftest import ROOT


def _records(test, val):
  return [{"epoch": i + 1, "test_accuracy": t, "val_accuracy": v} for i, (t, v) in enumerate(zip(test, val))]


def test_best_validation_epoch_selects_test_accuracy():
  assert labs.best_val_test_accuracy(_records([0.90, 0.95, 0.93], [0.91, 0.96, 0.96])) == 0.95


def test_summary_and_table_say_how_far_we_fall_short():
  runs = {"lab10-2-relu": [
      {"seed": 0, "records": _records([0.93, 0.94], [0.93, 0.95]), "wall_time_s": 10.0},
      {"seed": 1, "records": _records([0.94, 0.95], [0.94, 0.94]), "wall_time_s": 12.0},
  ]}
  rows = labs.summarize(runs)
  r = rows["lab10-2-relu"]
  assert r["test_accuracy_mean"] == pytest.approx(0.945)
  assert r["test_accuracy_std"] == pytest.approx(0.00707107, rel=1e-5)
  assert r["val_selected_test_accuracy_mean"] == pytest.approx((0.94 + 0.94) / 2)
  table = labs.markdown_table(rows)
  assert "| `lab10-2-relu` | 0.9450 ± 0.0071 (n=2) |" in table
  # 0.9450 is below TF1's 0.9455 and TF2's 0.9558 but above PyTorch's 0.9423.
  assert "-0.05 pts (TF1), -1.08 pts (TF2) |" in table and "PyTorch)" not in table


def test_quick_run_writes_both_files(mnist_dir, tmp_path):
  result = subprocess.run(
      [sys.executable, str(ROOT / "scripts" / "reproduce_labs.py"), "--quick", "--seeds", "2", "--only",
       "lab10-1-softmax", "--no_swap", "--data_dir", str(mnist_dir), "--out", str(tmp_path),
       "--workroot", str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  data = json.loads((tmp_path / "labs.json").read_text())
  row = data["presets"]["lab10-1-softmax"]
  assert data["quick"] and row["seeds"] == [0, 1] and len(row["test_accuracy"]) == 2
  assert row["test_accuracy"][0] != row["test_accuracy"][1]  # seeds differ
  assert "QUICK" in (tmp_path / "labs.md").read_text()


def test_readme_presets_table_is_generated_from_labs_json():
  result = json.loads((ROOT / "figures" / "labs.json").read_text())
  assert not result["quick"], "figures/labs.json must be a full-scale run"
  assert labs.readme_table(result) in (ROOT / "README.md").read_text(), \
      "README's presets table is stale: rerun scripts/reproduce_labs.py --update_readme"


def test_run_seeds_reuses_a_finished_run_of_the_same_config_only(mnist_dir, tmp_path, monkeypatch):
  ds = data.load("mnist", mnist_dir, val_size=100)
  ds = dataclasses.replace(ds, train_x=ds.train_x[:200], train_y=ds.train_y[:200])
  c = config.with_preset("lab10-1-softmax", epochs=1)
  first = labs.run_seeds({"softmax": c}, 2, ds, tmp_path)["softmax"]
  assert [s["seed"] for s in first] == [0, 1] and (tmp_path / "softmax" / "seed1" / "summary.json").exists()
  assert first[0]["records"][0]["test_accuracy"] != first[1]["records"][0]["test_accuracy"]  # seeds differ
  fits = []
  real_fit = train.fit
  monkeypatch.setattr(train, "fit", lambda c, ds, **kw: fits.append(c.epochs) or real_fit(c, ds, **kw))
  assert labs.run_seeds({"softmax": c}, 2, ds, tmp_path)["softmax"] == first and fits == []  # read back, not trained
  longer = labs.run_seeds({"softmax": dataclasses.replace(c, epochs=2)}, 1, ds, tmp_path)["softmax"]
  assert fits == [2] and len(longer[0]["records"]) == 2  # another config: trained again, in the same folder
  assert workdir.checkpoint_epochs(tmp_path / "softmax" / "seed0") == [2]  # its last epoch only
