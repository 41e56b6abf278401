import dataclasses
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from lab10 import config as C
from lab10 import data, flags, runs, sweep, train

from conftest import ROOT


@pytest.fixture(scope="module")
def small_synthetic():
  return data.synthetic(sizes=(1000, 300))


def _base(**overrides):
  settings = dict(dataset="synthetic", depth=2, width=(24,), activation="tanh", init="he_normal", dropout=0.1,
                  epochs=2, batch_size=50)
  return C.with_preset(None, **{**settings, **overrides})


def _assert_same_records(got: list[dict], want: list[dict], what: str) -> None:
  assert len(got) == len(want) and all(g.keys() == w.keys() for g, w in zip(got, want)), what
  for g, w in zip(got, want):
    assert g == pytest.approx(w, rel=1e-5, abs=1e-6), f"{what}: {g} != {w}"


def test_sweep_equals_models_trained_one_by_one(small_synthetic, tmp_path):
  # Two models that differ in every swept field (seed, gain, rate): fit runs only twice.
  configs = [_base(seed=0, init_gain=2.0, lr=1e-2), _base(seed=1, init_gain=0.5, lr=1e-3)]
  out = sweep.run(configs, small_synthetic, workdir=tmp_path / "sweep", verbose=False)
  for c in configs:
    name = sweep.model_name(c)
    want = train.fit(dataclasses.replace(c, workdir=str(tmp_path / name)), small_synthetic, verbose=False).records
    got = runs.read_jsonl(out / name / "metrics.jsonl")
    assert [r["step"] for r in got] == [r["step"] for r in want] == [20, 40]
    # On a CPU the sweep trains its models one after the other (sweep.OverModels): fit's arithmetic, bit for bit.
    assert got == want if jax.default_backend() == "cpu" else _assert_same_records(got, want, name) is None, name
    cfg = json.loads((out / name / "config.json").read_text())
    assert cfg["config"]["seed"] == c.seed and cfg["config"]["lr"] == c.lr and cfg["config"]["init_gain"] == c.init_gain
  # The swept values really differ: final losses are not alike.
  rows = (out / "summary.csv").read_text().splitlines()
  assert len(rows) == 3 and len({r.split(",")[4] for r in rows[1:]}) == 2
  assert "| seed0_gain2_lr0.01 | 0 | 2.0000 | 0.0100 |" in (out / "summary.md").read_text()


def test_vmapped_and_sequential_sweeps_agree(small_synthetic):
  # The accelerators' path (one vmap) against the CPU's (in turn): the same models to float tolerance.
  configs = sweep.grid(_base(), seeds=[0, 1, 2], lrs=[1e-2, 1e-3])
  graphdef, tx, states, keys = sweep.init_models(configs, small_synthetic.input_shape, small_synthetic.num_classes)
  x, y = small_synthetic.train_x, small_synthetic.train_y
  ends = []
  for sequential in (True, False):
    epoch = sweep.make_sweep_epoch(graphdef, tx, 50, sequential)
    end, metrics = epoch(jax.tree.map(jax.numpy.copy, states), x, y, keys, 1)
    assert metrics["loss"].shape == (6, 20)
    ends.append((end.params, metrics["loss"]))
  for a, b in zip(*(jax.tree.leaves(e) for e in ends)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # The six models really differ (seeds and rates): the check above is not between copies of one model.
  assert len({round(float(v), 6) for v in ends[0][1][:, -1]}) == 6
  # With statistics measured inside the step (every 5 steps), both paths give each model's statistics.
  stats = []
  for sequential in (True, False):
    epoch = sweep.make_sweep_epoch(graphdef, tx, 50, sequential, log_every=5, bounds=(-1.0, 1.0), histograms=True)
    _, metrics = epoch(jax.tree.map(jax.numpy.copy, states), x, y, keys, 1)
    assert metrics["logged_index"].tolist() == [[0, 5, 10, 15]] * 6
    assert metrics["histograms"]["weights/head"]["counts"].shape == (6, 4, 50)
    stats.append(metrics["stats"])
  assert stats[0].keys() == stats[1].keys() and "backward/dense_1/grad_var" in stats[0]
  for k in stats[0]:
    assert stats[0][k].shape == (6, 4)
    np.testing.assert_allclose(stats[0][k], stats[1][k], rtol=1e-4, atol=1e-7, err_msg=k)


def test_sweep_refuses_models_that_differ_in_architecture():
  with pytest.raises(C.ConfigError, match="may differ only in seed, init_gain, lr; these differ too: depth"):
    sweep.init_models([_base(), _base(seed=1, depth=3)], (28, 28, 1), 10)


def test_seed_ranges_parse():
  args = flags.sweep_parser("").parse_args(["--seeds", "0:3", "--init_gains", "0.5,1", "--depth", "1"])
  configs = sweep.from_args(args)
  assert [(c.seed, c.init_gain) for c in configs] == [(s, g) for s in range(3) for g in (0.5, 1.0)]
  assert all(c.depth == 1 for c in configs)


def _trajectories(workdir: str) -> dict:
  """Metrics of one data-parallel fit and of a 3-model sweep, on however many devices JAX has."""
  ds = data.synthetic(sizes=(1000, 300))
  base = _base(batch_size=100, seed=3)
  fit_records = train.fit(dataclasses.replace(base, workdir=f"{workdir}/fit"), ds, verbose=False).records
  sweep_dir = sweep.run(sweep.grid(base, seeds=[0, 1, 2]), ds, workdir=f"{workdir}/sweep", verbose=False)
  return {"fit": fit_records,
          "sweep": [runs.read_jsonl(p / "metrics.jsonl") for p in sorted(sweep_dir.glob("seed*"))]}


def test_four_simulated_devices_give_the_one_device_trajectory(tmp_path):
  # A fresh interpreter: the device count must be set before JAX initialises its backend.
  code = ("import json, sys, jax; sys.path.insert(0, sys.argv[2]); import test_sweep; "
          "assert jax.device_count() == 4, jax.devices(); print(json.dumps(test_sweep._trajectories(sys.argv[1])))")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "four"), str(ROOT / "tests")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  four = json.loads(result.stdout.strip().splitlines()[-1])
  one = _trajectories(str(tmp_path / "one"))
  # fit: each batch split along "data" over 4 devices; sweep: 3 models padded to 4 along "models".
  for key in ("fit", "sweep"):
    flat = lambda records: records if key == "fit" else sum(records, [])
    _assert_same_records(flat(four[key]), flat(one[key]), f"{key}: 4 devices vs 1")
  assert len(four["sweep"]) == 3 and four["fit"][-1]["step"] == 20


def test_each_model_of_a_sweep_writes_what_fit_writes_for_it(small_synthetic, tmp_path):
  """Statistics, histograms, TensorBoard events and checkpoints: per model, fit's files (on a CPU, byte for byte)."""
  import tb_events

  base = _base(log_stats_every=7, log_histograms=True, tensorboard=True, keep_checkpoints=2)
  configs = sweep.grid(base, seeds=[0, 1], init_gains=[1.0, 2.0])
  out = sweep.run(configs, small_synthetic, workdir=tmp_path / "sweep", verbose=False)
  cpu = jax.default_backend() == "cpu"
  for c in configs[::3]:  # two of the four models, differing in seed and gain
    name = sweep.model_name(c)
    fitted = train.fit(dataclasses.replace(c, workdir=str(tmp_path / name)), small_synthetic, verbose=False).workdir
    swept = out / name
    for log in ("metrics.jsonl", "stats.jsonl"):
      got, want = runs.read_jsonl(swept / log), runs.read_jsonl(fitted / log)
      assert got == want if cpu else _assert_same_records(got, want, f"{name}/{log}") is None, (name, log)
    assert [r["step"] for r in runs.read_jsonl(swept / "stats.jsonl")] == [0, 7, 14, 20, 27, 34]
    with np.load(swept / "stats_histograms.npz") as a, np.load(fitted / "stats_histograms.npz") as b:
      assert sorted(a.files) == sorted(b.files) and "grads/head/counts" in a.files
      for k in a.files:
        (np.testing.assert_array_equal if cpu else np.testing.assert_allclose)(a[k], b[k], err_msg=k)
    digests = lambda run: sorted((p.name, json.loads(p.read_text())) for p in (run / "checkpoints").glob("*.json"))
    assert [n for n, _ in digests(swept)] == ["1.sha256.json", "2.sha256.json"]
    if cpu:
      assert digests(swept) == digests(fitted)  # the same config hash and the same arrays, bit for bit
    got_scalars, got_hists = tb_events.read(swept / "tensorboard")
    want_scalars, want_hists = tb_events.read(fitted / "tensorboard")
    assert got_scalars.keys() == want_scalars.keys() and got_hists.keys() == want_hists.keys()
    assert {tag: [s for s, _ in v] for tag, v in got_hists.items()} == {tag: [s for s, _ in v]
                                                                        for tag, v in want_hists.items()}
