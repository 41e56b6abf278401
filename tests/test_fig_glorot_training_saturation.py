"""Glorot & Bengio Figs. 3–4: per-layer statistics on fixed probe images during training, the onset of saturation,
end-of-training histograms, each net at Glorot Table 1's chosen rate, and what is pending."""

import json
import math

import jax
import numpy as np
import pytest
from flax import nnx

from lab10 import data, runs, train
from lab10.experiments import glorot_table1_mnist as table1
from lab10.experiments import glorot_training_saturation as sat
from lab10.experiments.common import GLOROT_PROBE_EXAMPLES, mlp_config

from drawing import draw  # noqa: F401

RATES = {"tanh": 0.3, "tanh_n": 0.1, "softsign": None, "softsign_tanh_rate": None}
SMALL = dict(width=16, depth=3, n_train=200, epochs=2, every=5, seeds=(0, 1), rates=RATES)


@pytest.fixture(scope="module")
def small(mnist_dir, tmp_path_factory):
  out = tmp_path_factory.mktemp("out")
  return out, sat.run(data_dir=mnist_dir, out=str(out), workroot=str(out / "work"), **SMALL)


def test_onsets_are_the_first_probe_point_above_the_threshold():
  p98 = np.array([[0.1, 0.2], [0.95, 0.5], [0.5, 0.91]])  # (points, layers)
  assert sat.onsets(p98, [0, 10, 20]) == [10.0, 20.0]
  assert math.isnan(sat.onsets(p98[:2], [0, 10])[1])  # never above: NaN
  assert sat._ordered([10.0, 20.0, 20.0]) and not sat._ordered([20.0, 10.0]) and not sat._ordered([10.0, math.nan])


def test_the_probe_is_each_layers_p98_and_std_on_the_fixed_test_images(small, mnist_dir):
  out, r = small
  record = json.loads((out / sat.RECORDS / "tanh_seed0.json").read_text())
  assert record["stop"] == "finished" and record["steps"] == list(range(0, 41, 5))  # 20 steps per epoch
  assert record["setting"]["lr"] == 0.3
  # Step 0 against a float64 NumPy computation on the initial net.
  c = mlp_config(depth=3, width=(16,), activation="tanh", init="glorot_standard", optimizer="sgd", lr=0.3,
                 batch_size=10, seed=0)
  ds = data.load("mnist", mnist_dir)
  s = train.setup(c, ds.input_shape, ds.num_classes)
  model = nnx.merge(s.graphdef, s.state.params, s.state.rest)
  kernels = [np.asarray(jax.device_get(block.layer.kernel[...]), np.float64) for block in model.blocks]
  h = np.asarray(ds.test_x[:GLOROT_PROBE_EXAMPLES], np.float64).reshape(GLOROT_PROBE_EXAMPLES, -1)
  for i, w in enumerate(kernels):
    h = np.tanh(h @ w)  # zero biases
    assert record["probes"][0]["p98"][i] == pytest.approx(np.percentile(np.abs(h), 98), rel=1e-4)
    assert record["probes"][0]["std"][i] == pytest.approx(h.std(), rel=1e-4)
  density = np.array(record["final"]["density"])
  assert density.shape == (3, sat.HISTOGRAM_BINS) and np.allclose(density.sum(axis=1) * 2 / sat.HISTOGRAM_BINS, 1)
  assert record["probes"][-1] != record["probes"][0] and 0 <= record["test_error"] <= 100


def test_the_claims_are_read_from_the_records(small):
  out, r = small
  c = r.claims
  seeds_ordered = {"bottom_up": 0, "top_down": 0}
  for s in (0, 1):
    record = json.loads((out / sat.RECORDS / f"tanh_seed{s}.json").read_text())
    p98 = np.array([p["p98"] for p in record["probes"]])
    for i in range(3):
      above = [step for step, v in zip(record["steps"], p98[:, i]) if v > sat.SATURATED_P98]
      claim = c[f"tanh_seed{s}_layer{i + 1}_onset"]
      assert (claim == above[0]) if above else math.isnan(claim)
    onset = [c[f"tanh_seed{s}_layer{i}_onset"] for i in (1, 2, 3)]
    seeds_ordered["bottom_up"] += all(map(math.isfinite, onset)) and onset == sorted(onset)
    seeds_ordered["top_down"] += all(map(math.isfinite, onset)) and onset == sorted(onset, reverse=True)
  assert c["tanh_bottom_up_seeds"] == seeds_ordered["bottom_up"]
  assert c["tanh_top_down_seeds"] == seeds_ordered["top_down"]
  assert c["tanh_seeds"] == c["tanh_n_seeds"] == 2 and c["finished_runs"] == 4 and c["tanh_lr"] == 0.3
  finals = [json.loads((out / sat.RECORDS / f"tanh_n_seed{s}.json").read_text()) for s in (0, 1)]
  assert c["tanh_n_layer2_p98_final"] == pytest.approx(np.mean([f["probes"][-1]["p98"][1] for f in finals]))
  density = np.mean([f["final"]["density"][2] for f in finals], axis=0)
  assert c["tanh_n_layer3_saturated_fraction_final"] == pytest.approx(0.05 * (density[:2].sum() + density[-2:].sum()))
  # Fig. 4's knees: |h| in (0.6, 0.9], bins 3-8 from either end of the 40 over [-1, 1]
  assert c["tanh_n_layer3_knee_fraction_final"] == pytest.approx(0.05 * (density[2:8].sum() + density[-8:-2].sum()))
  folded = density[20:] + density[:20][::-1]  # |h| from 0 to 1
  assert c["tanh_n_layer3_peak_abs_final"] == pytest.approx(0.025 + 0.05 * np.argmax(folded))
  assert c["tanh_n_test_error_mean"] == pytest.approx(np.mean([f["test_error"] for f in finals]))


def test_a_net_without_a_chosen_rate_is_pending_and_not_trained(small):
  out, r = small
  assert math.isnan(r.claims["softsign_lr"]) and r.claims["softsign_seeds"] == 0
  assert r.data["pending"] == ["softsign, standard init", "softsign, standard init, at tanh's rate"]
  assert "softsign, standard init" not in r.data["histograms"]
  assert not list((out / sat.RECORDS).glob("softsign*"))


def test_without_rates_each_net_trains_at_table_1s_choice(mnist_dir, tmp_path, monkeypatch):
  setting = table1._setting()
  (tmp_path / table1.RECORDS).mkdir()
  for lr in table1.LRS:  # Tanh's seed 0 finished every rate of the grid, best at 0.3; Tanh N's did not
    for key in ("tanh", "tanh_n"):
      if key == "tanh_n" and lr == 1.0:
        continue
      name = table1._name(key, lr, 0)
      runs.write_json(tmp_path / table1.RECORDS / f"{name}.json",
                      {"name": name, "setting": setting, "stop": "early stopping", "wall_time_s": 1.0,
                       "machine": runs.machine(), "epochs": [{"epoch": 1, "val_error": 2.0 if lr == 0.3 else 3.0,
                                                              "test_error": 2.0, "train_error": 0.0, "train_loss": 0.1}]})
  assert table1.chosen_rate("tanh", str(tmp_path)) == 0.3 and table1.chosen_rate("tanh_n", str(tmp_path)) is None
  trained = []
  monkeypatch.setattr(sat.resumable, "train_probed_run",
                      lambda c, ds, name, *a, **k: trained.append((name, c.lr, c.activation, c.init)))
  r = sat.run(data_dir=mnist_dir, out=str(tmp_path), workroot=str(tmp_path / "work"), width=16, depth=3,
              n_train=200, epochs=1, every=5, seeds=(0,), time_limit_s=30)
  # Fig. 4's softsign net beside tanh at tanh's rate; the others pending (the fake trains nothing)
  assert trained == [("tanh_seed0", 0.3, "tanh", "glorot_standard"),
                     ("softsign_tanh_rate_seed0", 0.3, "softsign", "glorot_standard")]
  assert r.claims["tanh_lr"] == r.claims["softsign_tanh_rate_lr"] == 0.3 and math.isnan(r.claims["tanh_n_lr"])
  assert r.claims["finished_runs"] == 0
  assert r.data["pending"] == ["tanh, normalized init", "softsign, standard init"]


def test_time_limit_0_draws_without_training(small, mnist_dir, monkeypatch):
  out, r = small
  monkeypatch.setattr(sat.resumable, "train_probed_run", lambda *a, **k: pytest.fail("trained"))
  again = sat.run(data_dir=mnist_dir, out=str(out), workroot=str(out / "work"), time_limit_s=0, **SMALL)
  assert again.claims.keys() == r.claims.keys()
  for key, value in r.claims.items():
    assert again.claims[key] == value or (math.isnan(value) and math.isnan(again.claims[key])), key


def test_the_figure_draws_finished_and_pending_panels(small, draw):
  draw(sat.draw, **small[1].data)


def _record_with_onsets(onset: list[float], steps=range(0, 80, 10)) -> dict:
  """A finished record whose layers' 98th percentiles cross the threshold at ``onset`` (NaN: never)."""
  probes = [{"p98": [0.95 if t >= o else 0.5 for o in onset], "std": [0.5] * len(onset)} for t in steps]
  return {"stop": "finished", "steps": list(steps), "probes": probes, "test_error": 1.0, "machine": {"cpu": "x"},
          "final": {"density": [[0.5] * sat.HISTOGRAM_BINS] * len(onset)}, "wall_time_s": 1.0}


def test_first_and_last_layers_to_saturate_count_seeds_with_ties():
  nan = math.nan
  found = {("tanh", 0): _record_with_onsets([70, 20, 20, 30, 40]), ("tanh", 1): _record_with_onsets([10, 20, 30, 40, 50]),
           ("tanh", 2): _record_with_onsets([60, 20, 30, 40, nan])}
  setting = dict(depth=5, width=8, batch_size=10, train_images=100, epochs=1, every=10)
  c = sat._tabulate(found, {"tanh": 0.1}, (0, 1, 2), setting).claims
  assert [c[f"tanh_layer{i}_first_seeds"] for i in range(1, 6)] == [1, 2, 1, 0, 0]
  assert [c[f"tanh_layer{i}_last_seeds"] for i in range(1, 6)] == [1, 0, 0, 0, 1]  # seed 2: layer 5 never saturates
  assert c["tanh_bottom_up_seeds"] == 1 and c["tanh_top_down_seeds"] == 0 and c["tanh_all_layers_saturate_seeds"] == 2
  assert [c[f"tanh_layer{i}_never_seeds"] for i in range(1, 6)] == [0, 0, 0, 0, 1]
  assert c["tanh_layer1_onset_mean"] == pytest.approx(140 / 3) and math.isnan(c["tanh_layer5_onset_mean"])
  assert c["tanh_seed2_layer1_onset"] == 60 and math.isnan(c["tanh_seed2_layer5_onset"])
