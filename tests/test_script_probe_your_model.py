"""scripts/probe_your_model.py and scripts/benchmark_anymodel.py: a model and loop lab10 did not write, probed
through lab10.anymodel, written as a run lab10's loaders read; the benchmark's table and JSON."""

import json
import subprocess
import sys

from conftest import ROOT
from lab10 import loaders


def _script(name, *args):
  return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *map(str, args)], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_the_example_writes_a_run_of_its_own_model_and_prints_each_layer(tmp_path):
  run = tmp_path / "mine"
  done = _script("probe_your_model", "--workdir", run, "--steps", 25, "--every", 10)
  assert done.returncode == 0, done.stderr[-2000:]
  rows = [line.split() for line in done.stdout.splitlines()[2:]]
  assert [r[0] for r in rows] == ["hidden1", "hidden2", "out"]  # the forward order of the user's layers
  lines = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [0, 10, 20]
  last = lines[-1]
  assert float(rows[1][4]) == float(f"{last['backward/hidden2/grad_var']:.3g}")  # what it prints is what it wrote
  frame = loaders.load_run(run)  # lab10's own loader reads the user's run
  assert set(frame["layer"]) == {"hidden1", "hidden2", "out"} and sorted(set(frame["step"])) == [0, 10, 20]
  assert (run / "tensorboard").is_dir() and (run / "metrics.jsonl").exists()


def test_the_example_keeps_a_run_it_finds_and_refuses_bad_values_in_one_line(tmp_path):
  run = tmp_path / "mine"
  assert _script("probe_your_model", "--workdir", run, "--steps", 2).returncode == 0
  before = (run / "stats.jsonl").read_bytes()
  again = _script("probe_your_model", "--workdir", run, "--steps", 2)
  assert again.returncode == 2 and "already holds a run; pass --overwrite" in again.stderr
  assert len(again.stderr.strip().splitlines()) == 1 and (run / "stats.jsonl").read_bytes() == before
  for args, says in ((["--steps", "0"], "--steps 0 is out of range"), (["--lr", "nan"], "--lr nan is out of range"),
                     (["--every", "-3"], "--every -3 is out of range")):
    bad = _script("probe_your_model", "--workdir", tmp_path / "other", *args)
    assert bad.returncode == 2 and says in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "other").exists()
  (tmp_path / "file").write_text("x")
  bad = _script("probe_your_model", "--workdir", tmp_path / "file")
  assert bad.returncode == 2 and "is a file" in bad.stderr


def test_the_anymodel_benchmark_writes_its_table_and_json(tmp_path):
  out = tmp_path / "bench"
  done = _script("benchmark_anymodel", "--d", 16, "--depth", 2, "--batch", 2, "--length", 8, "--steps", 20,
                 "--every", 10, "--repeats", 2, "--out", out)
  assert done.returncode == 0, done.stderr[-2000:]
  report = json.loads(out.with_suffix(".json").read_text())
  assert len(report["times_s"]["plain"]) == len(report["times_s"]["logged"]) == 2
  assert report["overhead"] == report["ms_per_step"]["logged"] / report["ms_per_step"]["plain"] - 1
  paired = sorted(logged / plain - 1 for logged, plain in zip(report["times_s"]["logged"], report["times_s"]["plain"]))
  assert report["overhead_paired_range"] == paired and report["overhead_paired"] == sum(paired) / 2
  # 2 blocks × (4 attention kernels + 2 feed-forward) + the head, each with its forward, backward, weight and
  # update statistics (13 each)
  assert report["statistics_per_logged_step"] == 13 * 13
  table = out.with_suffix(".md").read_text()
  assert "| plain (nnx.value_and_grad every step) |" in table and "statistics every 10 steps" in table
  bad = _script("benchmark_anymodel", "--d", 10)
  assert bad.returncode == 2 and "--d 10 is not a multiple" in bad.stderr
