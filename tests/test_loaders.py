"""lab10.loaders and lab10.overlays: tidy tables of runs and sweeps, and the overlay of one statistic per layer,
checked against the run's own files; scripts/plot_runs.py as a user runs it."""

import dataclasses
import json

import numpy as np
import pytest

import cli
import lab10
from lab10 import config as C
from lab10 import loaders, overlays, sweep, train

TINY = C.Config(dataset="synthetic", depth=2, width=(16,), batch_size=100, epochs=2, log_stats_every=40, seed=0)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
  """Two seeds of one setting and one run of another (tanh), each 2 epochs of 100 steps, statistics every 40 steps."""
  root = tmp_path_factory.mktemp("runs")
  for name, change in [("a", {}), ("b", {"seed": 1}), ("tanh", {"activation": "tanh"})]:
    train.fit(dataclasses.replace(TINY, workdir=str(root / name), **change), verbose=False)
  return root


def _lines(path):
  return [json.loads(line) for line in path.read_text().splitlines()]


def test_load_run_is_one_row_per_logged_step_layer_and_statistic(runs_dir):
  table = lab10.load_run(runs_dir / "a")
  lines = _lines(runs_dir / "a" / "stats.jsonl")
  keys = [k for k in lines[0] if k.count("/") == 2]
  assert len(table) == len(lines) * len(keys)
  assert [line["step"] for line in lines] == [0, 40, 80, 100, 140, 180]
  for line in lines:  # every value, as the file holds it
    rows = table[table["step"] == line["step"]]
    assert dict(zip(rows["key"], rows["value"])) == {k: line[k] for k in keys}
    assert set(rows["loss"]) == {line["loss"]} and set(rows["epoch"]) == {line["epoch"]}
  row = table[table["key"] == "grads/dense_1/norm"].iloc[0]
  assert (row["group"], row["layer"], row["stat"]) == ("grads", "dense_1", "norm")
  # The config fields as columns, widths as the flag writes them.
  assert (row["activation"], row["seed"], row["width"], row["lr"]) == ("relu", 0, "16", TINY.lr)
  assert row["run"] == str(runs_dir / "a")


def test_load_run_metrics_is_one_row_per_epoch_and_metric(runs_dir):
  table = lab10.load_run(runs_dir / "a", table="metrics")
  records = _lines(runs_dir / "a" / "metrics.jsonl")
  for record in records:
    rows = table[table["epoch"] == record["epoch"]]
    assert dict(zip(rows["metric"], rows["value"])) == {k: v for k, v in record.items() if k not in ("epoch", "step")}


def test_a_line_being_written_is_left_out_and_a_bad_one_is_named(runs_dir, tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  whole = (runs_dir / "a" / "stats.jsonl").read_text()
  (run / "stats.jsonl").write_text(whole + '{"epoch": 2, "st')
  assert len(loaders.load_run(run)) == len(loaders.load_run(runs_dir / "a"))
  (run / "stats.jsonl").write_text('{"epoch": 1, "step": 0, "loss": 1.0, "a/b/c": 2.0}\nnot json\n')
  with pytest.raises(loaders.LoadError, match=r"stats.jsonl: line 2 is not JSON"):
    loaders.load_run(run)


@pytest.mark.parametrize("make, call, message", [
    (lambda p: None, "run", "is not a run directory (no config.json, metrics.jsonl or stats.jsonl)"),
    (lambda p: (p / "metrics.jsonl").write_text(""), "run", "has no stats.jsonl: train with --log_stats_every N"),
    (lambda p: (p / "sweep.json").write_text('{"models": []}'), "run", "it is a sweep folder: use load_sweep"),
    (lambda p: (p / "metrics.jsonl").write_text(""), "sweep", "is not a sweep folder (no sweep.json); it is a run"),
    (lambda p: (p / "sweep.json").write_text('{"models": []}'), "sweep", "lists no model that has written a run"),
    (lambda p: (p / "sweep.json").write_text("[1]"), "sweep", "cannot be read as a sweep's list of models"),
])
def test_what_is_not_a_run_or_a_sweep_is_one_line(tmp_path, make, call, message):
  make(tmp_path)
  with pytest.raises(loaders.LoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
    (loaders.load_run if call == "run" else loaders.load_sweep)(tmp_path)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
  """A sweep of 3 seeds (3, 4, 5: none of runs_dir's), 1 epoch, statistics every 10 steps."""
  folder = tmp_path_factory.mktemp("sweep") / "sw"
  configs = sweep.grid(dataclasses.replace(TINY, epochs=1, log_stats_every=10), seeds=[3, 4, 5])
  return sweep.run(configs, workdir=folder, verbose=False)


def test_load_sweep_stacks_its_models_with_their_names(sweep_dir):
  names = [f"seed{s}_gain1_lr0.001" for s in (3, 4, 5)]
  for table in ("stats", "metrics"):
    stacked = lab10.load_sweep(sweep_dir, table=table)
    assert list(dict.fromkeys(stacked["model_name"])) == names
    for name in names:
      rows = stacked[stacked["model_name"] == name].drop(columns="model_name").reset_index(drop=True)
      assert rows.equals(loaders.load_run(sweep_dir / name, table)), (table, name)
      assert set(rows["seed"]) == {int(name[4])}
  stats = lab10.load_sweep(sweep_dir)
  assert sorted(set(stats["step"])) == list(range(0, 100, 10)) and "backward/dense_0/grad_var" in set(stats["key"])


def test_overlay_panels_pool_seeds_and_split_settings(runs_dir):
  frames = [loaders.load_run(runs_dir / name) for name in ("a", "b", "tanh")]
  lines, bands, seeds = overlays.panels(frames, "grads/norm")
  assert list(lines) == ["activation=relu", "activation=tanh"] and list(seeds.values()) == [2, 1]
  assert list(lines["activation=relu"]) == ["dense_0", "dense_1", "head"]
  a, b = ([json.loads(line)["grads/dense_0/norm"] for line in (runs_dir / n / "stats.jsonl").read_text().splitlines()]
          for n in ("a", "b"))
  x, mean = lines["activation=relu"]["dense_0"]
  np.testing.assert_array_equal(x, [0, 40, 80, 100, 140, 180])
  np.testing.assert_allclose(mean, (np.array(a) + np.array(b)) / 2, rtol=1e-12)
  low, high = bands["activation=relu"]["dense_0"]
  np.testing.assert_array_equal(low, np.minimum(a, b))
  np.testing.assert_array_equal(high, np.maximum(a, b))
  assert "activation=tanh" not in bands or not bands["activation=tanh"]  # one seed: no band
  only, _, _ = overlays.panels(frames[2:], "backward/grad_var", layers=["dense_1"], x="epoch")
  panel = next(iter(only.values()))
  assert list(panel) == ["dense_1"] and list(panel["dense_1"][0]) == [1, 2]


def test_plot_runs_draws_runs_and_a_sweep_and_refuses_bad_input_in_one_line(runs_dir, sweep_dir, tmp_path):
  out = tmp_path / "plots" / "g"
  status, err = cli.main("plot_runs", str(runs_dir / "a"), str(runs_dir / "tanh"), str(sweep_dir),
                         "--stat", "updates/ratio", "--out", str(out))
  assert (status, err) == (0, [])
  assert out.with_suffix(".png").stat().st_size > 10_000 and out.with_suffix(".pdf").stat().st_size > 5_000
  for flags, message in [
      ([str(tmp_path / "nothing")], "is neither a run directory"),
      ([str(runs_dir / "a"), "--stat", "grads/nrm"], "has no statistic 'grads/nrm'; choose from: backward/grad_mean"),
      ([str(runs_dir / "a"), "--layers", "dense_9"], "has no layer 'dense_9' with grads/norm; choose from: dense_0"),
      ([str(runs_dir / "a"), "--x", "time"], "argument --x: invalid choice: 'time'"),
  ]:
    status, err = cli.main("plot_runs", *flags, "--out", str(tmp_path / "bad"))
    assert status == 2 and len(err) == 1 and message in err[0], err
  assert not (tmp_path / "bad.png").exists()
  # The sweep's three seeds are one panel beside the two runs' settings (epochs and logging do not split panels).
  frames = [loaders.load_run(p) for p in loaders.run_dirs([runs_dir / "a", runs_dir / "tanh", sweep_dir])]
  _, _, seeds = overlays.panels(frames, "updates/ratio")
  assert list(seeds.values()) == [4, 1]
