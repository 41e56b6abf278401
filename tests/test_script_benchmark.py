"""scripts/benchmark.py: the table and JSON it writes, its formatting, and the FLOP floor it divides by."""

import importlib.util
import json
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from conftest import ROOT
from lab10 import config as C
from lab10 import step as step_lib
from lab10 import train


def test_benchmark_script_writes_its_table_and_json(tmp_path):
  out = tmp_path / "bench"
  result = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--steps", "4", "--model_steps", "8",
                           "--sweep_sizes", "2", "--repeats", "1", "--width", "16", "--matmul", "64", "--torch_threads", "1",
                           "--starts", "1", "--start_flags", "--dataset synthetic --width 16 --epochs 1",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  report = json.loads(out.with_suffix(".json").read_text())
  # A peer that is not installed is named, with how to install it, never dropped silently.
  import importlib.util

  import cli

  missing = [name for module, name in cli.load("benchmark").PEERS.items() if not importlib.util.find_spec(module)]
  assert report["missing_peers"] == missing
  if missing:
    assert f"not measured: {', '.join(missing)} (not installed; pip install -e \".[bench]\" adds them)" in result.stdout
  rows = {r["name"]: r for r in report["rows"]}
  assert {"lab10 (stats off)", "lab10 sweep M=2"} <= rows.keys()
  m2 = rows["lab10 sweep M=2"]
  assert m2["model_steps_per_s"] == pytest.approx(2 * m2["steps_per_s"]) and m2["steps_per_s"] > 0
  # Forward and weight gradients of every layer; input gradients of all but the first (no gradient for the data).
  assert report["flops_per_step"] == 2 * 100 * (2 * (784 * 16 + 16 * 16 * 3 + 16 * 10) + 16 * 16 * 3 + 16 * 10)
  assert "| lab10 (stats off) |" in out.with_suffix(".md").read_text()
  every_10, off = rows["lab10 (stats every 10 steps)"], rows["lab10 (stats off)"]  # one repeat: paired = minima
  assert every_10["overhead_paired"] == pytest.approx(every_10["repeats_s"][0] / off["repeats_s"][0] - 1)
  assert every_10["overhead_min"] == pytest.approx(every_10["overhead_paired"])
  assert m2["of_single"] == pytest.approx(m2["model_steps_per_s"] / off["model_steps_per_s"])
  # The sweep over the single run repeat by repeat: with one repeat, the one ratio.
  assert m2["of_single_paired"] == pytest.approx({"median": m2["of_single"], "min": m2["of_single"],
                                                  "max": m2["of_single"]})
  assert f"lab10 sweep M=2: {m2['of_single']:.3f}x the model-steps/s of lab10 (stats off) (median of the per-repeat" \
      in out.with_suffix(".md").read_text()
  # One cold and one warm start of train.py (CPU of the child processes), and two fits in this process.
  (pair,) = report["starts"]["pairs"]
  assert 0 < pair["warm"]["cpu_s"] and 0 < pair["cold"]["cpu_s"]
  assert report["starts"]["warm_over_cold_cpu"] == pytest.approx(pair["warm"]["cpu_s"] / pair["cold"]["cpu_s"])
  assert 0 < report["starts"]["help_cpu_s"]
  fits = report["fit_compile"]
  assert fits["compile_s"] == pytest.approx(fits["first_fit_s"] - fits["second_fit_s"]) and fits["second_fit_s"] > 0
  text = out.with_suffix(".md").read_text()
  assert "train.py --dataset synthetic --width 16 --epochs 1: cold start" in text and "train.py --help:" in text


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


def _benchmark():
  spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
  benchmark = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(benchmark)
  return benchmark


def test_format_table_compares_lab10_with_each_single_model_peer():
  row = lambda name, t, m=1: {"name": name, "models": m, "steps_per_s": 10 / t, "model_steps_per_s": 10 * m / t,
                              "ms_per_step": 100 * t, "ms_per_model_step": 100 * t / m, "floor_fraction": 0.5 / t,
                              "repeats_s": [t]}
  rows = [row("lab10 (stats off)", 1.0), row("lab10 (stats every 10 steps)", 1.1), row("lab10 (stats every step)", 1.5),
          row("PyTorch eager (1 thread)", 2.0), row("lab10 sweep M=8", 4.0, 8)]
  for r in rows[1:3]:
    r["overhead_paired"] = r["overhead_min"] = r["repeats_s"][0] - 1
  table = _benchmark().format_table({"rows": rows, "flops_per_step": 6e8, "matmul_flops_per_s": 2e11,
                                     "floor_ms_per_step": 3.0, "matmul": 2048})
  assert "| lab10 (stats off) | 10 | 100.00 | 10 | 0.50 | 2.00x |" in table  # twice PyTorch's steps/s
  assert "| lab10 sweep M=8 | 2 | 400.00 | 20 | 0.12 |  |" in table
  assert "FLOP floor (600 MFLOP/step at 200 GFLOP/s, 2048² matmul) | 333 | 3.00 |" in table
  assert "lab10 (stats every step): +50.0% over stats off" in table


def test_benchmark_floor_counts_the_matmul_flops_xla_compiles():
  benchmark = _benchmark()
  c = C.with_preset("lab10-4-deep", width=(16,))
  s = train.setup(c, (28, 28, 1), 10)
  state = s.state
  batch = {"x": jnp.zeros((100, 28, 28, 1)), "y": jnp.zeros(100, jnp.int32)}
  step = step_lib.make_train_step(s.graphdef, s.tx)
  dots, flops = _dot_flops(jax.make_jaxpr(step)(state, batch).jaxpr)
  assert flops == benchmark.model_flops_per_step(c.hidden_widths) > 0
  assert dots == 14  # 5 forward, 5 weight gradients, 4 input gradients: none for the data
  compiled = jax.jit(step).lower(state, batch).compile().as_text()
  assert compiled.count(" dot(") == dots  # and XLA compiles exactly those
