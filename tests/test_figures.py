"""Each figure's claim, checked as numbers at reduced scale, and make_figures.py end to end."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from lab10 import experiments, plotting, runs
from lab10.experiments import sweeps

import cli
from conftest import ROOT


def _spread(stds: dict) -> float:
  """Largest relative deviation of a layer's std from the mean over layers."""
  s = np.array(list(stds.values()))
  return float(np.max(np.abs(s / s.mean() - 1)))


def test_variance_vs_depth_follows_he_eq9():
  r = experiments.variance_vs_depth(width=128, depth=16, batch=32, inits=("normal", "lecun", "he_fan_in", "orthogonal"))
  fwd, bwd = r.claims["he_fan_in_forward_ratio"], r.claims["he_fan_in_backward_ratio"]
  assert 1 / 3 < fwd < 3 and 1 / 3 < bwd < 3, (fwd, bwd)
  # Var 1/n halves E[z²] per layer: 2^-15 over 16 layers (within a factor 5 at width 128; 2^-29 at depth 30).
  for init in ("lecun", "orthogonal"):
    for ratio in (f"{init}_forward_ratio", f"{init}_backward_ratio"):
      assert abs(math.log10(r.claims[ratio] / 2.0**-15)) < math.log10(5), (ratio, r.claims[ratio])
  # N(0, 1) grows by ½·128 = 64 per layer.
  assert abs(math.log10(r.claims["normal_forward_ratio"] / 64.0**15)) < 2
  assert r.claims["he_fan_in_theory_factor"] == pytest.approx(1.0, abs=0.05)
  assert r.data["forward"]["He fan_in, Var 2/n_in"][-1] == fwd  # the data keeps the legend labels
  assert r.claim_text["normal_forward_ratio"] == "N(0, 1): forward E[z_16²]/E[z_1²]"


@pytest.fixture(scope="module")
def glorot(mnist_dir):
  kw = dict(data_dir=mnist_dir, width=500, n_examples=200)
  return {"fig6": experiments.glorot_fig6_activations(**kw), "fig7": experiments.glorot_fig7_backprop_gradients(**kw),
          "fig8": experiments.glorot_fig8_weight_gradients(**kw)}


def test_glorot_fig6_activations_narrow_under_standard_init_only(glorot):
  stds = glorot["fig6"].data["stds"]
  standard = list(stds["standard U[±1/√n]"].values())
  assert all(b < 0.75 * a for a, b in zip(standard, standard[1:])), standard
  assert _spread(stds["normalized (Xavier)"]) < 0.25, stds["normalized (Xavier)"]


def test_glorot_fig7_backprop_gradients_shrink_toward_input_under_standard_init_only(glorot):
  stds = glorot["fig7"].data["stds"]
  standard = list(stds["standard U[±1/√n]"].values())
  assert all(a < 0.75 * b for a, b in zip(standard, standard[1:])), standard
  assert standard[0] / standard[-1] < 0.25  # paper (sim): ≈ 0.10 over 5 layers
  assert _spread(stds["normalized (Xavier)"]) < 0.25, stds["normalized (Xavier)"]


def test_glorot_fig8_weight_gradients_similar_across_layers(glorot):
  stds = glorot["fig8"].data["stds"]
  assert _spread(stds["normalized (Xavier)"]) < 0.25, stds["normalized (Xavier)"]
  assert _spread(stds["standard U[±1/√n]"]) < 0.25, stds["standard U[±1/√n]"]
  # histograms are normalised densities over the panel's bins
  edges, counts = glorot["fig8"].data["panels"]["normalized (Xavier)"]["layer 1"]
  assert len(edges) == len(counts) + 1 and sum(counts) > 0.99 * 784 * 500  # all but the 0.1% tails


def test_glorot_fig2_top_sigmoid_layer_saturates_early(mnist_dir):
  r = experiments.glorot_fig2_sigmoid_saturation(data_dir=mnist_dir, steps=400, every=200)
  mean = r.data["mean"]
  top = list(mean.values())[-1]
  assert all(abs(m[0] - 0.5) < 0.1 for m in mean.values())  # at init every sigmoid layer sits near 0.5
  assert top[-1] < 0.05 and r.claims["top_min_mean"] == min(top), top
  steps, errors = r.data["error"]
  assert steps == r.data["steps"] == [0, 200, 400]
  test_error = errors["test error (2000 test images)"]
  assert test_error[0] > 0.8 and r.claims["initial_test_error"] == test_error[0]


def test_training_saturation_reads_the_logged_statistics_of_each_layer(mnist_dir):
  r = experiments.glorot_training_saturation(data_dir=mnist_dir, width=64, depth=3, n_train=500, log_every=10)
  assert list(r.data["panels"]) == ["tanh, standard init", "tanh, normalized init", "softsign, standard init",
                                    "softsign, normalized init"]
  lines = r.data["panels"]["tanh, standard init"]
  steps, p98 = lines["layer 1: 98th percentile of |h|"]
  assert steps == [0, 10, 20, 30, 40] and len(lines) == 6  # stats.jsonl: steps 0, 10, ... of the 50-step epoch
  assert r.claims["tanh_standard_layer1_p98_init"] == p98[0] and r.claims["tanh_standard_layer1_p98_final"] == p98[-1]
  assert all(0 < v < 1 for v in p98)  # |tanh| < 1
  # At init standard init narrows the activations with depth (Glorot Fig. 6); normalized init much less.
  assert r.claims["tanh_standard_layer3_p98_init"] < 0.5 * r.claims["tanh_standard_layer1_p98_init"]
  assert r.claims["tanh_normalized_layer3_p98_init"] > 0.6 * r.claims["tanh_normalized_layer1_p98_init"]


def test_he_fig3_he_converges_where_xavier_stalls(mnist_dir):
  r = experiments.he_fig3_deep_relu(data_dir=mnist_dir, steps=400, every=100, n_train=6400)  # 50 steps an epoch
  error = r.data["panels"]["training error"]
  he, xavier = error["He (Var 2/n)"][1], error["Xavier (Var 1/n)"][1]
  assert he[-1] < 0.3 and min(xavier) > 0.85, (he, xavier)
  assert r.claims["he_final_error"] == he[-1] and r.claims["xavier_min_error"] == min(xavier)
  assert math.isnan(r.claims["xavier_first_step_error_below_0.1"])
  # Xavier's first-layer gradient is far smaller than He's at init (He et al.: "diminishing").
  assert r.claims["xavier_first_grad_at_init"] < 1e-3 * r.claims["he_first_grad_at_init"]


def test_he_depth_pair_keys_each_depths_curves_and_claims(mnist_dir):
  # The 30-layer behaviour is he_fig3_deep_relu's (the same _he_pair, tested above); here the bookkeeping.
  r = experiments.he_fig2_fig3_depth(data_dir=mnist_dir, depths=(2, 3), width=32, steps=100, every=50, n_train=1600)
  assert list(r.data["panels"]) == ["2 layers", "3 layers"] and len(r.data["ylabels"]) == 2
  for depth in (2, 3):
    for key, label in (("xavier", "Xavier (Var 1/n)"), ("he", "He (Var 2/n)")):
      steps, error = r.data["panels"][f"{depth} layers"][label]
      assert steps == [50, 100] and r.claims[f"d{depth}_{key}_min_error"] == min(error)
      assert r.claims[f"d{depth}_{key}_final_error"] == error[-1] < 0.6  # shallow nets learn at once


def test_sigmoid_gradient_vanishes_toward_input_relu_does_not(mnist_dir):
  r = experiments.lab10_sigmoid_vs_relu(data_dir=mnist_dir, width=128, steps=100, every=50, n_train=2000)
  sigmoid, relu = r.claims["sigmoid_grad_ratio_at_init"], r.claims["relu_grad_ratio_at_init"]
  assert sigmoid < 1e-2 and relu > 0.1, (sigmoid, relu)
  assert r.claims["sigmoid_grad_ratio_median"] < 0.1 * r.claims["relu_grad_ratio_median"]
  assert r.claim_text["sigmoid_grad_ratio_at_init"] == "sigmoid: ‖∂L/∂W_1‖ / ‖∂L/∂W_8‖ at init"


def test_activation_zoo_heatmaps(mnist_dir):
  r = experiments.activation_zoo(data_dir=mnist_dir, width=64, epochs=1, n_train=3000, seeds=(0, 1),
                                 activations=("sigmoid", "relu"), inits=("normal", "he"))
  (accuracy_name, acc), (ratio_name, ratio) = ((k, np.array(v)) for k, v in r.data["matrices"].items())
  assert accuracy_name == "test accuracy (mean ± std, 2 seeds)" and ratio_name in r.data["lognorm"]
  assert acc.shape == ratio.shape == (2, 2) and r.data["cols"] == ["normal N(0,1)", "He"]
  assert r.claims["relu_he_accuracy_mean"] == acc[1, 1] and r.claims["sigmoid_he_grad_ratio"] == ratio[0, 1]
  assert 0 < r.claims["relu_he_accuracy_std"] < 0.05  # two different networks
  assert r.data["annotations"][accuracy_name][1][1] == f"{acc[1, 1]:.3f}\n±{r.claims['relu_he_accuracy_std']:.3f}"
  assert acc[1, 1] > 0.6 and acc[1, 1] > acc[0, 0] + 0.2, acc  # relu + He beats sigmoid + N(0, 1) by far
  assert ratio[0, 1] < 0.1 * ratio[1, 1], ratio  # sigmoid's first layer gets far less gradient than relu's


def test_dropout_narrows_the_generalisation_gap(mnist_dir):
  r = experiments.dropout_overfitting(data_dir=mnist_dir, n_train=1000, epochs=10, width=256, seeds=(0, 1))
  without, with_dropout = r.claims["no_dropout_accuracy_gap"], r.claims["dropout_accuracy_gap"]
  assert without > with_dropout > 0, (without, with_dropout)
  assert r.claims["no_dropout_final_train_accuracy_mean"] > 0.97
  x, mean = r.data["panels"]["accuracy"]["no dropout: test"]
  low, high = r.data["bands"]["accuracy"]["no dropout: test"]
  assert x == list(range(1, 11)) and all(lo <= m <= hi for lo, m, hi in zip(low, mean, high))
  assert mean[-1] == pytest.approx(r.claims["no_dropout_final_test_accuracy_mean"])


def test_meanfield_trainability_near_criticality(mnist_dir):
  r = experiments.meanfield_phase_diagram(data_dir=mnist_dir, depths=(30,), sigma_w2s=(0.7, 1.76), width=64,
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

  monkeypatch.setattr(sweeps, "_train_probed", train_probed)
  r = experiments.meanfield_phase_diagram(data_dir=mnist_dir, depths=(5,), sigma_w2s=(1.0, 9.0), steps=1,
                                          n_train=100, resolution=4)
  trained, diverged = r.data["trained"][2][0]
  assert trained == 0.9 and math.isnan(diverged)
  assert math.isnan(r.claims["accuracy_depth5_w2_9"]) and r.claims["diverged_runs"] == 1
  # In the JSON a diverged run is null; the phase diagram draws from that data.
  runs.write_json(tmp_path / "data.json", r.data)
  saved = json.loads((tmp_path / "data.json").read_text())
  assert saved["trained"][2] == [[0.9, None]]
  plotting.close(plotting.phase_diagram(**saved))


def test_selu_self_normalizes_from_off_fixed_point_inputs():
  r = experiments.selu_self_normalization(width=500, depth=32, batch=100)
  assert abs(r.claims["selu_mean_top"]) < 0.05
  assert abs(r.claims["selu_var_top"] - 1) < 0.05
  assert r.claims["relu_mean_top"] > 0.5  # no such fixed point without SELU
  assert r.claims["tanh_var_top"] < 0.1
  assert 1 < r.claims["selu_first_normalized_layer"] <= 32
  assert r.data["mean"]["SELU + LeCun"][0] > 0.1  # it starts off the fixed point


def test_lab_accuracies_reads_labs_json(tmp_path):
  with pytest.raises(experiments.Skipped, match="not found; run scripts/reproduce_labs.py"):
    experiments.lab_accuracies(str(tmp_path / "labs.json"))
  rows = {"lab10-3-xavier": {"seeds": [0, 1], "test_accuracy_mean": 0.978, "test_accuracy_std": 0.001}}
  (tmp_path / "labs.json").write_text(json.dumps({"presets": rows, "quick": False, "command": "x"}))
  r = experiments.lab_accuracies(str(tmp_path / "labs.json"))
  assert r.data["ours_mean"] == [0.978] and r.data["published"]["TF1"] == [0.9783]
  assert r.claims == {"lab10-3-xavier_accuracy_mean": 0.978, "lab10-3-xavier_accuracy_std": 0.001}


def test_make_figures_quick_writes_png_pdf_data_and_readme(tmp_path):
  # --quick without --out writes to runs/figures-quick, never over the committed figures/.
  result = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--quick", "--only",
                           "selu_self_normalization,lab_accuracies"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  assert not (tmp_path / "figures").exists()
  tmp_path = tmp_path / "runs" / "figures-quick"
  assert "lab_accuracies: skipped:" in result.stdout
  for ext in ("png", "pdf", "json"):
    assert (tmp_path / f"selu_self_normalization.{ext}").stat().st_size > 1000
  assert (tmp_path / "selu_self_normalization.png").read_bytes()[:4] == b"\x89PNG"
  record = json.loads((tmp_path / "selu_self_normalization.json").read_text())
  assert record["quick"] is True and abs(record["claims"]["selu_mean_top"]) < 0.05
  assert record["claim_text"]["selu_mean_top"] == "SELU + LeCun: mean at layer 32"
  readme = (tmp_path / "README.md").read_text()
  assert "## selu_self_normalization" in readme and "--quick" in readme and "## lab_accuracies" not in readme
  assert "| `selu_mean_top` | SELU + LeCun: mean at layer 32 |" in readme
  # --redraw: the PNG again from the saved data, the experiment's JSON (command, time, claims) untouched.
  # A committed record from before claims had identifiers (long keys, no claim_text) redraws from its data too.
  saved = (tmp_path / "selu_self_normalization.json").read_text()
  (tmp_path / "selu_self_normalization.png").unlink()
  old = (ROOT / "figures" / "dropout_overfitting.json").read_text()
  (tmp_path / "dropout_overfitting.json").write_text(old)
  redraw = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--redraw", "--only",
                           "selu_self_normalization,variance_vs_depth,dropout_overfitting", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert redraw.returncode == 0, redraw.stderr
  assert "variance_vs_depth: skipped: no" in redraw.stdout
  for name in ("selu_self_normalization", "dropout_overfitting"):
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
  assert (tmp_path / "selu_self_normalization.json").read_text() == saved
  assert (tmp_path / "dropout_overfitting.json").read_text() == old
  assert "## dropout_overfitting" in (tmp_path / "README.md").read_text()
  long = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--scale", "long", "--only",
                         "lab_accuracies"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert long.returncode == 0 and (tmp_path / "runs" / "figures-long" / "README.md").exists(), long.stderr
  bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--only", "nope"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert bad.returncode == 2 and "unknown figure(s) nope" in bad.stderr


def test_phase_diagram_cells_map_the_theory_curve_onto_uneven_grids():
  grid = np.log([10.0, 20.0, 40.0, 80.0])  # depths, one cell each
  got = plotting._cell_position(np.log([10.0, 30.0, 80.0, 160.0, 5.0]), grid)
  np.testing.assert_allclose(got, [0.0, 1 + np.log(1.5) / np.log(2), 3.0, 4.0, -1.0])
  fig = plotting.phase_diagram(sigma_w2=[0.5, 1.0, 2.0], sigma_b2=[0.0, 0.05], depth_scale=[[2, 5, 9], [2, 6, 8]],
                               critical_w2=[1.0, 1.7], trained=([0.7, 1.76], [30], [[0.1, 0.9]]), bias_for_grid=0.05)
  ax = fig.axes[1]  # the trainability grid: one equal cell per network, labelled with its value
  assert [t.get_text() for t in ax.get_xticklabels()] == ["0.7", "1.76"] and ax.get_xlim() == (-0.5, 1.5)
  plotting.close(fig)


# --- the committed figures: their data back what figures/README.md says they show --------------------

def test_every_figure_states_its_claims_as_checks():
  assert set(experiments.CHECKS) == set(cli.load("make_figures").FIGURES)
  assert all(experiments.CHECKS.values())


@pytest.mark.parametrize("name", sorted(experiments.CHECKS))
def test_committed_figure_data_show_what_the_readme_says(name):
  record = json.loads((ROOT / "figures" / f"{name}.json").read_text())
  assert record["quick"] is False, f"figures/{name}.json is not the full-scale figure"
  assert experiments.failed_checks(name, record["claims"]) == []
  entry = (ROOT / "figures" / "README.md").read_text().split(f"## {name}\n")[1].split("\n## ")[0]
  for check in experiments.CHECKS[name]:
    assert f"- {check.text}\n" in entry, f"figures/README.md does not state: {check.text}"


def test_committed_figure_tables_are_their_csv_and_in_the_readme():
  readme = (ROOT / "figures" / "README.md").read_text()
  tables = {name: json.loads((ROOT / "figures" / f"{name}.json").read_text()).get("table") for name in experiments.CHECKS}
  assert tables["glorot_table1_mnist"], "Table 1's figure has a table"
  for name, rows in tables.items():
    if not rows:
      assert not (ROOT / "figures" / f"{name}.csv").exists()
      continue
    with open(ROOT / "figures" / f"{name}.csv", newline="") as f:
      assert [{k: float(v) if k != "configuration" else v for k, v in row.items()} for row in csv.DictReader(f)] \
          == [{k: v for k, v in row.items()} for row in rows]
    entry = readme.split(f"## {name}\n")[1].split("\n## ")[0]
    assert f"Table ({name}.csv):" in entry and "| " + " | ".join(rows[0]) + " |" in entry


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


def test_failed_checks_name_what_the_claims_contradict_or_lack():
  name = "he_fig3_deep_relu"
  claims = {"he_first_step_error_below_0.1": None,  # null: NaN (never below), which no comparison passes
            "xavier_min_error": 0.89, "xavier_first_grad_at_init": 1e-5, "he_first_grad_at_init": 1.0}
  assert experiments.failed_checks(name, claims) == [experiments.CHECKS[name][0].text]
  del claims["xavier_min_error"]
  assert experiments.failed_checks(name, claims)[1].endswith("(no claim 'xavier_min_error')")


def _epochs(val: list[float], test: list[float], train: list[float]) -> list[dict]:
  """metrics.jsonl records with these errors (%) after each epoch."""
  return [{"epoch": i + 1, "val_accuracy": 1 - v / 100, "test_accuracy": 1 - t / 100, "train_eval_accuracy": 1 - r / 100}
          for i, (v, t, r) in enumerate(zip(val, test, train))]


def test_table1_chooses_each_rate_on_seed_0s_validation_error_then_trains_every_seed_at_it(mnist_dir, monkeypatch):
  calls = []

  def sweep_records(configs, ds):
    calls.append([(c.activation, c.init, c.seed, c.lr) for c in configs])
    assert len(ds.train_y) == 300 and len(ds.val_y) == sweeps.TABLE1_VAL_SIZE  # the paper's 50k / 10k split
    out = []
    for c in configs:
      if c.activation == "sigmoid":  # every rate diverged: NaN accuracies
        out.append(_epochs([math.nan], [math.nan], [math.nan]))
      elif c.seed == 0 and c.lr != 0.3:  # 0.1: worse on validation (and better on test, which must not matter)
        out.append(_epochs([9.0, 6.0], [1.0, 0.5], [5.0, 4.0]))
      else:
        out.append(_epochs([5.0, 3.0 + c.seed], [3.0, 2.0 + 0.2 * c.seed], [2.0, 1.0]))
    return out

  monkeypatch.setattr(sweeps, "_sweep_records", sweep_records)
  r = experiments.glorot_table1_mnist(data_dir=mnist_dir, width=8, n_train=300, lrs=(0.1, 0.3), seeds=(0, 1))
  assert calls[0] == [("sigmoid", "glorot_standard", 0, 0.1), ("sigmoid", "glorot_standard", 0, 0.3)]
  assert calls[1:3] == [[("tanh", "glorot_standard", 0, 0.1), ("tanh", "glorot_standard", 0, 0.3)],
                        [("tanh", "glorot_standard", 1, 0.3)]]
  assert len(calls) == 1 + 2 * 4  # sigmoid: no rate to train the other seed at
  assert math.isnan(r.claims["sigmoid_lr"]) and math.isnan(r.claims["sigmoid_test_error_mean"])
  assert r.claims["tanh_lr"] == 0.3
  assert r.claims["tanh_test_error_mean"] == pytest.approx(2.1)
  assert r.claims["tanh_test_error_std"] == pytest.approx(np.std([2.0, 2.2], ddof=1))
  assert r.claims["tanh_val_error_last_epoch_change"] == pytest.approx(np.mean([3 - 5, 4 - 5]))
  assert r.claims["tanh_train_error"] == pytest.approx(1.0)
  row = r.table[1]
  assert row["configuration"] == "Tanh" and row["paper test error (%)"] == 1.76 and row["chosen lr"] == 0.3
  assert row["val error (%) at lr 0.1, seed 0"] == 6.0 and row["val error (%) at lr 0.3, seed 0"] == 3.0
  assert r.data["names"] == ["Sigmoid", "Tanh", "Tanh N", "Softsign", "Softsign N"]
  assert r.data["ours_mean"][1] == pytest.approx(0.979) and r.data["published"]["Glorot & Bengio 2010"][0] == 0.9779


def test_table1_sweep_marks_a_diverged_model_nan(mnist_dir):
  ds = sweeps.data.load("mnist", mnist_dir, val_size=200)
  ds = sweeps.dataclasses.replace(ds, train_x=ds.train_x[:200], train_y=ds.train_y[:200])
  base = sweeps._mlp_config(depth=2, width=(16,), optimizer="sgd", batch_size=10, epochs=1, val_size=200)
  fine, diverged = sweeps._sweep_records(sweeps.sweep.grid(base, [0], lrs=(0.1, 1e30)), ds)
  assert 0.1 < fine[-1]["val_accuracy"] <= 1 and math.isnan(diverged[-1]["val_accuracy"])
  assert math.isnan(diverged[-1]["test_accuracy"])


def test_lab_learning_curves_average_the_labs_runs_per_epoch(monkeypatch, mnist_dir, tmp_path):
  asked = {}

  def run_seeds(configs, seeds, ds, workroot):
    asked.update(names=list(configs), seeds=seeds, workroot=workroot, epochs={c.epochs for c in configs.values()})
    acc = {"lab10-2-relu": [[0.80, 0.90], [0.84, 0.92]], "lab10-3-xavier": [[0.95, 0.97], [0.95, 0.98]]}
    return {name: [{"seed": s, "wall_time_s": 30.0,
                    "records": [{"epoch": e + 1, "test_accuracy": a} for e, a in
                                enumerate(acc.get(name, [[0.5, 0.6], [0.5, 0.6]])[s])]} for s in range(seeds)]
            for name in configs}

  monkeypatch.setattr(sweeps.labs, "run_seeds", run_seeds)
  r = experiments.lab_learning_curves(data_dir=mnist_dir, seeds=2, workroot=str(tmp_path), epochs=2)
  assert asked == dict(names=list(sweeps.config_lib.PRESETS), seeds=2, workroot=tmp_path, epochs={2})
  x, mean = r.data["panels"]["test accuracy"]["lab10-2-relu"]
  low, high = r.data["bands"]["test accuracy"]["lab10-2-relu"]
  assert x == [1, 2] and mean == pytest.approx([0.82, 0.91])
  sd = np.std([[0.80, 0.90], [0.84, 0.92]], axis=0, ddof=1)
  assert low == pytest.approx(np.array(mean) - sd) and high == pytest.approx(np.array(mean) + sd)  # ± the sample std
  assert r.data["panels"]["test error (log scale)"]["lab10-2-relu"] == (x, pytest.approx([0.18, 0.09]))
  assert r.data["logy"] == [False, True] and list(r.data["panels"]["test accuracy"]) == list(sweeps.config_lib.PRESETS)
  assert r.claims["lab10-2-relu_epoch1_mean"] == pytest.approx(0.82)
  assert r.claims["lab10-3-xavier_final_std"] == pytest.approx(np.std([0.97, 0.98], ddof=1))
  assert r.claims["xavier_minus_normal_min"] == pytest.approx(0.065)
  assert "sum to 7 min" in r.setting  # 7 presets × 2 seeds × 30 s of fit time
