import dataclasses
import importlib.util
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from lab10 import config as C
from lab10 import data, runs, sweep, train

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
  # Seed 0 at two gains and two rates, and seed 1: every swept field varies, and fit runs only 4 times.
  configs = sweep.grid(_base(), seeds=[0], init_gains=[0.5, 2.0], lrs=[1e-3, 1e-2])[1:] + sweep.grid(_base(), [1])
  assert len(configs) == 4
  out = sweep.run(configs, small_synthetic, workdir=tmp_path / "sweep", verbose=False)
  for c in configs:
    name = sweep.model_name(c)
    alone = train.fit(dataclasses.replace(c, workdir=str(tmp_path / name)), small_synthetic, verbose=False)
    want, got = runs.read_jsonl(alone / "metrics.jsonl"), runs.read_jsonl(out / name / "metrics.jsonl")
    assert [r["step"] for r in got] == [r["step"] for r in want] == [20, 40]
    _assert_same_records(got, want, name)
    cfg = json.loads((out / name / "config.json").read_text())
    assert cfg["config"]["seed"] == c.seed and cfg["config"]["lr"] == c.lr and cfg["config"]["init_gain"] == c.init_gain
  # The swept values really differ: final losses are not all alike.
  rows = (out / "summary.csv").read_text().splitlines()
  assert len(rows) == 5 and len({r.split(",")[4] for r in rows[1:]}) == 4
  assert "| seed0_gain2_lr0.01 | 0 | 2.0000 | 0.0100 |" in (out / "summary.md").read_text()


def test_sweep_refuses_models_that_differ_in_architecture():
  with pytest.raises(C.ConfigError, match="may differ only in seed, init_gain, lr; these differ too: depth"):
    sweep.init_models([_base(), _base(depth=3)], data.synthetic(sizes=(100, 10)))


def test_seed_ranges_parse():
  args = sweep.parser("").parse_args(["--seeds", "0:3", "--init_gains", "0.5,1", "--depth", "1"])
  configs = sweep.from_args(args)
  assert [(c.seed, c.init_gain) for c in configs] == [(s, g) for s in range(3) for g in (0.5, 1.0)]
  assert all(c.depth == 1 for c in configs)


def _trajectories(workdir: str) -> dict:
  """Metrics of one data-parallel fit and of a 3-model sweep, on however many devices JAX has."""
  ds = data.synthetic(sizes=(1000, 300))
  base = _base(batch_size=100, seed=3)
  fit_dir = train.fit(dataclasses.replace(base, workdir=f"{workdir}/fit"), ds, verbose=False)
  sweep_dir = sweep.run(sweep.grid(base, seeds=[0, 1, 2]), ds, workdir=f"{workdir}/sweep", verbose=False)
  return {"fit": runs.read_jsonl(fit_dir / "metrics.jsonl"),
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


def test_benchmark_script_writes_its_table_and_json(tmp_path):
  out = tmp_path / "bench"
  result = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--steps", "4", "--model_steps", "8",
                           "--sweep_sizes", "1,2", "--repeats", "1", "--width", "16", "--matmul", "64", "--torch_threads", "1",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  report = json.loads(out.with_suffix(".json").read_text())
  rows = {r["name"]: r for r in report["rows"]}
  assert {"lab10 (stats off)", "lab10 sweep M=1", "lab10 sweep M=2"} <= rows.keys()
  m2 = rows["lab10 sweep M=2"]
  assert m2["model_steps_per_s"] == pytest.approx(2 * m2["steps_per_s"]) and m2["steps_per_s"] > 0
  # Forward and weight gradients of every layer; input gradients of all but the first (no gradient for the data).
  assert report["flops_per_step"] == 2 * 100 * (2 * (784 * 16 + 16 * 16 * 3 + 16 * 10) + 16 * 16 * 3 + 16 * 10)
  assert "| lab10 (stats off) |" in out.with_suffix(".md").read_text()
  every_10, off = rows["lab10 (stats every 10 steps)"], rows["lab10 (stats off)"]  # one repeat: paired = minima
  assert every_10["overhead_paired"] == pytest.approx(every_10["repeats_s"][0] / off["repeats_s"][0] - 1)
  assert every_10["overhead_min"] == pytest.approx(every_10["overhead_paired"])


def _dot_flops(jaxpr) -> tuple[int, int]:
  """(number of dot_generals, 2 × output elements × contracted size summed over them) in a jaxpr and its
  sub-jaxprs."""
  count, flops = 0, 0
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      (lhs_contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      count += 1
      flops += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)
    subs = [v for p in eqn.params.values() for v in (p if isinstance(p, (tuple, list)) else (p,))]
    for sub in (getattr(v, "jaxpr", v) for v in subs):
      if not hasattr(sub, "eqns"):
        continue
      c, f = _dot_flops(sub)
      count, flops = count + c, flops + f
  return count, flops


def test_benchmark_floor_counts_the_matmul_flops_xla_compiles():
  spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
  benchmark = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(benchmark)
  c = C.with_preset("lab10-4-deep", width=(16,))
  model = C.make_model(c, (28, 28, 1), 10, nnx.Rngs(params=jax.random.key(0)))
  tx = C.make_optimizer(c)
  graphdef, state = train.init_state(model, tx, jax.random.key(1))
  batch = {"x": jnp.zeros((100, 28, 28, 1)), "y": jnp.zeros(100, jnp.int32)}
  step = train.make_train_step(graphdef, tx)
  dots, flops = _dot_flops(jax.make_jaxpr(step)(state, batch).jaxpr)
  assert flops == benchmark.model_flops_per_step(c.hidden_widths) > 0
  assert dots == 14  # 5 forward, 5 weight gradients, 4 input gradients: none for the data
  compiled = jax.jit(step).lower(state, batch).compile().as_text()
  assert compiled.count(" dot(") == dots  # and XLA compiles exactly those
