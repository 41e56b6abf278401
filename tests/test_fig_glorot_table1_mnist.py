"""Glorot & Bengio Table 1: which runs are trained in which order, the rate chosen on seed 0's validation error,
test errors read at the best-validation epoch, paired differences, a table drawn with what is finished."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lab10 import runs
from lab10.experiments import glorot_table1_mnist as table1
from lab10.experiments import resumable

from drawing import draw  # noqa: F401

SETTING_KW = dict(width=8, n_train=300, lrs=(0.1, 0.3), seeds=(0, 1, 2), patience=2, max_epochs=5)


def _record(name: str, setting: dict, val: list[float], test: list[float], stop: str | None = "early stopping"):
  return {"name": name, "setting": setting, "stop": stop, "wall_time_s": 1.0, "machine": runs.machine(),
          "epochs": [{"epoch": e, "val_error": v, "test_error": t, "train_error": t / 10, "train_loss": 0.1}
                     for e, (v, t) in enumerate(zip(val, test), 1)]}


def _fake_runs(monkeypatch, outcome):
  """resumable.train_run replaced: each run's record from ``outcome(key, lr, seed)``; returns the trained order."""
  trained = []

  def train_run(c, ds, name, records, setting, stopping, deadline=math.inf):
    key, lr, seed = name.rsplit("_lr", 1)[0], c.lr, c.seed
    assert len(ds.train_y) == 300 and len(ds.val_y) == table1.VAL_SIZE  # the paper's 50k / 10k split
    assert (c.activation, c.init) == table1.CONFIGURATIONS[key][1:] and c.batch_size == 10 and c.optimizer == "sgd"
    trained.append((key, lr, seed))
    record = _record(name, setting, *outcome(key, lr, seed))
    records.mkdir(parents=True, exist_ok=True)
    runs.write_json(records / f"{name}.json", record)
    return record

  monkeypatch.setattr(resumable, "train_run", train_run)
  return trained


def _outcome(key, lr, seed):
  if key == "sigmoid":  # every rate diverged
    return [90.0], [90.0], "diverged"
  if key == "softsign_n":  # every rate stays at chance: no rate to train the other seeds at
    return [89.0, 88.7 + lr], [88.6, 88.5]
  if lr == 0.1 and seed == 0:  # worse on validation, better on test: the test error must not choose
    return [9.0, 6.0, 7.0], [0.5, 0.4, 0.3]
  return [9.0, 3.0 + seed, 4.0 + seed], [3.0, 2.0 + 0.2 * seed + (key == "tanh_n"), 2.5]


def test_table1_chooses_each_rate_on_seed_0s_validation_then_trains_every_seed_at_it(mnist_dir, monkeypatch, tmp_path):
  trained = _fake_runs(monkeypatch, _outcome)
  r = table1.run(data_dir=mnist_dir, out=str(tmp_path), workroot=str(tmp_path / "work"), **SETTING_KW)
  assert trained[:4] == [("sigmoid", 0.1, 0), ("sigmoid", 0.3, 0), ("tanh", 0.1, 0), ("tanh", 0.3, 0)]
  assert trained[4:6] == [("tanh", 0.3, 1), ("tanh", 0.3, 2)]  # the configuration's seeds before the next one's
  assert len(trained) == 2 + 3 * 4 + 2  # sigmoid (diverged) and softsign N (at chance): no rate for other seeds
  assert math.isnan(r.claims["sigmoid_lr"]) and math.isnan(r.claims["sigmoid_test_error_mean"])
  assert math.isnan(r.claims["sigmoid_left_chance"])
  assert math.isnan(r.claims["softsign_n_lr"]) and r.claims["softsign_n_left_chance"] == 0
  assert r.claims["softsign_n_seeds"] == 1 and r.claims["softsign_n_test_error_mean"] == pytest.approx(88.5)
  assert r.table[4]["chosen lr"] is None and r.table[4]["left chance"] == 0
  assert r.claims["tanh_lr"] == 0.3 and r.claims["tanh_seeds"] == 3
  assert r.claims["tanh_test_error_mean"] == pytest.approx(np.mean([2.0, 2.2, 2.4]))  # at the best-val epoch (2)
  assert r.claims["tanh_test_error_std"] == pytest.approx(np.std([2.0, 2.2, 2.4], ddof=1))
  assert r.claims["tanh_minus_paper"] == pytest.approx(2.2 - 1.76)
  assert r.claims["tanh_train_error_max"] == pytest.approx(0.24)  # seed 2's, at its best-validation epoch
  assert math.isnan(r.claims["sigmoid_minus_paper"]) and math.isnan(r.claims["sigmoid_train_error_max"])
  assert r.claims["tanh_n_minus_tanh_mean"] == pytest.approx(1.0) and r.claims["tanh_n_minus_tanh_resolved"] == 1
  assert r.claims["finished_runs"] == 16 and r.claims["runs_at_epoch_cap"] == 0 and r.claims["tanh_left_chance"] == 1
  row = r.table[1]
  assert row["configuration"] == "Tanh" and row["paper test error (%)"] == 1.76 and row["chosen lr"] == 0.3
  assert row["best val error (%), lr 0.1, seed 0"] == 6.0 and row["best val error (%), lr 0.3, seed 0"] == 3.0
  assert r.data["ours"]["Tanh"] == pytest.approx([2.0, 2.2, 2.4]) and r.data["paper"][0] == 2.21
  # Finished runs are reused: a second run of the figure trains nothing.
  trained.clear()
  again = table1.run(data_dir=mnist_dir, out=str(tmp_path), workroot=str(tmp_path / "work"), **SETTING_KW)
  assert trained == [] and again.claims == r.claims


def test_table1_draws_what_is_finished_and_trains_nothing_at_time_limit_0(mnist_dir, monkeypatch, tmp_path, draw):
  trained = _fake_runs(monkeypatch, _outcome)
  r = table1.run(data_dir=mnist_dir, out=str(tmp_path), time_limit_s=0, **SETTING_KW)
  assert trained == [] and r.claims["finished_runs"] == 0 and math.isnan(r.claims["tanh_test_error_mean"])
  fig = draw(table1.draw, **r.data)
  ax, ax_lr = fig.axes
  assert ax.get_yscale() == "log" and [t.get_text() for t in ax.texts] == ["0/3\nseeds"] * 5
  fig = draw(table1.draw, **{**r.data, "left_chance": {**r.data["left_chance"], "Sigmoid": False}})
  assert [t.get_text() for t in fig.axes[0].texts][:2] == ["no rate\nleft chance", "0/3\nseeds"]
  # A net at chance is marked at the top with its value; the axis spans the paper and the nets that learned.
  ours = {**r.data["ours"], "Sigmoid": [88.04, math.nan, math.nan], "Tanh": [2.0, 2.2, 2.4]}
  fig = draw(table1.draw, **{**r.data, "ours": ours, "left_chance": {**r.data["left_chance"], "Sigmoid": False}})
  bottom, top = fig.axes[0].get_ylim()
  assert [t.get_text() for t in fig.axes[0].texts][:2] == ["no rate\nleft chance\n88.0 % ↑", "0/3\nseeds"]
  assert bottom < 1.64 and 2.4 < top < 10


def test_paired_difference_is_resolved_only_beyond_its_spread():
  resolved = table1._paired("tanh_n", "tanh", [1.5, 1.6, 1.4], [1.8, 1.9, 1.8])
  assert resolved["tanh_n_minus_tanh_resolved"][0] == 1 and resolved["tanh_n_minus_tanh_pairs"][0] == 3
  mixed = table1._paired("tanh_n", "tanh", [1.5, 2.0, math.nan], [1.8, 1.9, 1.7])
  assert mixed["tanh_n_minus_tanh_resolved"][0] == 0 and mixed["tanh_n_minus_tanh_pairs"][0] == 2
  assert mixed["tanh_n_minus_tanh_mean"][0] == pytest.approx(-0.1)


def test_the_committed_tables_caveats_state_its_records():
  # The numbers figures/README.md's caveats give for the full-scale table, read again from its committed records.
  records = table1._read(Path(__file__).parents[1] / "figures" / table1.RECORDS, table1._setting())
  best = lambda name, field: round(table1._best(records[name], field), 2)
  assert [best(f"softsign_lr0.01_seed{s}", "test_error") for s in (0, 1, 2)] == [1.95, 2.33, 2.18]
  assert best("softsign_lr0.1_seed0", "val_error") == best("softsign_lr0.01_seed0", "val_error") == 2.02
  assert best("softsign_lr0.1_seed0", "test_error") == 2.24
  assert sorted(best(f"softsign_lr0.01_seed{s}", "train_error") for s in (0, 1, 2)) == [0.09, 0.12, 0.63]
  claims = json.loads((Path(__file__).parents[1] / "figures" / "glorot_table1_mnist.json").read_text())["claims"]
  assert round(claims["softsign_minus_paper"], 2) == 0.51
  assert [round(claims[f"{k}_std"], 2) for k in ("tanh_n_minus_tanh", "softsign_n_minus_softsign")] == [0.15, 0.21]
  assert claims["sigmoid_seeds"] == 1 and round(claims["sigmoid_minus_tanh_mean"]) == round(
      claims["sigmoid_minus_softsign_mean"]) == 87
  caveats = " ".join(table1.FIGURES[0].caveats)
  for stated in ("+0.51 points", "(1.95, 2.33, 2.18 %)", "ends at 2.24 %", "(0.09–0.63 %", "(std 0.15 and 0.21 points)",
                 "about +87 points"):
    assert stated in caveats, stated
