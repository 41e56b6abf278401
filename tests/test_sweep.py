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
    # On a CPU the sweep trains its models one after the other (sweep.over_models): fit's arithmetic, bit for bit.
    assert got == want if jax.default_backend() == "cpu" else _assert_same_records(got, want, name) is None, name
    cfg = json.loads((out / name / "config.json").read_text())
    assert cfg["config"]["seed"] == c.seed and cfg["config"]["lr"] == c.lr and cfg["config"]["init_gain"] == c.init_gain
  # The swept values really differ: final losses are not alike.
  rows = (out / "summary.csv").read_text().splitlines()
  assert len(rows) == 3 and len({r.split(",")[4] for r in rows[1:]}) == 2
  assert "| seed0_gain2_lr0.01 | 0 | 2.0000 | 0.0100 |" in (out / "summary.md").read_text()


def test_vmapped_and_sequential_sweeps_agree(small_synthetic):
  # The accelerators' path (one vmap) against the CPU's (lax.map): the same models to float tolerance.
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
