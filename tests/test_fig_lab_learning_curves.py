"""The seed labs' learning curves: averaging the labs' runs per epoch."""

import numpy as np
import pytest

from lab10 import config as config_lib
from lab10.experiments import lab_learning_curves


def test_lab_learning_curves_average_the_labs_runs_per_epoch(monkeypatch, mnist_dir, tmp_path):
  asked = {}

  def run_seeds(configs, seeds, ds, workroot):
    asked.update(names=list(configs), seeds=seeds, workroot=workroot, epochs={c.epochs for c in configs.values()})
    acc = {"lab10-2-relu": [[0.80, 0.90], [0.84, 0.92]], "lab10-3-xavier": [[0.95, 0.97], [0.95, 0.98]]}
    return {name: [{"seed": s, "wall_time_s": 30.0,
                    "records": [{"epoch": e + 1, "test_accuracy": a} for e, a in
                                enumerate(acc.get(name, [[0.5, 0.6], [0.5, 0.6]])[s])]} for s in range(seeds)]
            for name in configs}

  monkeypatch.setattr(lab_learning_curves.labs, "run_seeds", run_seeds)
  r = lab_learning_curves.run(data_dir=mnist_dir, seeds=2, workroot=str(tmp_path), epochs=2)
  assert asked == dict(names=list(config_lib.PRESETS), seeds=2, workroot=tmp_path, epochs={2})
  x, mean = r.data["panels"]["test accuracy"]["lab10-2-relu"]
  low, high = r.data["bands"]["test accuracy"]["lab10-2-relu"]
  assert x == [1, 2] and mean == pytest.approx([0.82, 0.91])
  sd = np.std([[0.80, 0.90], [0.84, 0.92]], axis=0, ddof=1)
  assert low == pytest.approx(np.array(mean) - sd) and high == pytest.approx(np.array(mean) + sd)  # ± the sample std
  assert r.data["panels"]["test error (log scale)"]["lab10-2-relu"] == (x, pytest.approx([0.18, 0.09]))
  assert r.data["logy"] == [False, True] and list(r.data["panels"]["test accuracy"]) == list(config_lib.PRESETS)
  assert r.claims["lab10-2-relu_epoch1_mean"] == pytest.approx(0.82)
  assert r.claims["lab10-3-xavier_final_std"] == pytest.approx(np.std([0.97, 0.98], ddof=1))
  assert r.claims["xavier_minus_normal_min"] == pytest.approx(0.065)
  assert "sum to 7 min" in r.setting  # 7 presets × 2 seeds × 30 s of fit time
  # Compared over the last epochs (here both), paired by seed: Xavier − N(0, 1) is 0.11 and 0.085 point.
  assert r.claims["xavier_vs_normal_mean"] == pytest.approx(np.mean([0.11, 0.085]))
  assert r.claims["xavier_vs_normal_std"] == pytest.approx(np.std([0.11, 0.085], ddof=1))
  assert r.claims["xavier_vs_normal_resolved"] == 1 and r.claims["lab10-3-xavier_last_mean"] == pytest.approx(0.9625)
  assert r.claims["dropout_vs_deep_mean"] == 0 and r.claims["dropout_vs_deep_resolved"] == 0  # identical fakes
  markers = [style[0] for style in r.data["styles"].values()]
  assert list(r.data["styles"]) == list(config_lib.PRESETS) and len(set(markers)) == len(markers)
