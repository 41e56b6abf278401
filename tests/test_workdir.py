"""lab10.workdir: the run directory's rules (new, resume or refuse, the lock), log truncation, config.json's contents."""

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import jax
import pytest

from lab10 import config as C
from lab10 import data, runs, train, workdir


def _config(path, **overrides):
  values = dict(dataset="synthetic", depth=2, width=(32,), epochs=3, batch_size=50, lr=0.01, seed=1,
                workdir=None if path is None else str(path))
  return C.with_preset(None, **{**values, **overrides})


def _fake_run(path: Path, *, checkpoints=(), finished=False, **overrides) -> Path:
  """A run directory as ``fit`` leaves it, without training: config.json, checkpoint folders, summary.json."""
  path.mkdir(parents=True, exist_ok=True)
  c = _config(path, **overrides)
  runs.write_json(path / workdir.CONFIG, {"config": c.to_json(), "config_sha256": C.sha256(c)})
  for epoch in checkpoints:
    (path / workdir.CHECKPOINTS / str(epoch)).mkdir(parents=True)
  if finished:
    runs.write_json(path / workdir.SUMMARY, {"epoch": c.epochs})
    for epoch in range(1, c.epochs + 1):
      runs.append_jsonl(path / workdir.METRICS, {"epoch": epoch, "step": epoch})
  return path


# --- plan: new, resume, done or refuse ----------------------------------------------------------


def test_plan_starts_a_new_run_where_there_is_none_or_on_overwrite(tmp_path):
  assert workdir.plan(_config(tmp_path / "absent"), tmp_path / "absent") == "new"
  assert workdir.plan(_config(tmp_path), tmp_path) == "new"  # an empty folder
  assert workdir.plan(_config(tmp_path, resume=True), tmp_path) == "new"  # nothing to continue
  run = _fake_run(tmp_path / "run", checkpoints=[1], finished=True)
  assert workdir.plan(_config(run, lr=0.5, overwrite=True), run) == "new"


UNFINISHED = dict(checkpoints=[1, 2])
FINISHED = dict(checkpoints=[2, 3], finished=True)


@pytest.mark.parametrize("run,flags,expected", [
    (UNFINISHED, dict(resume=True), "resume"),
    (UNFINISHED, dict(resume=True, epochs=5), "resume"),
    (UNFINISHED, dict(resume=True, keep_checkpoints=1, data_dir="/elsewhere"), "resume"),  # how, not what
    (FINISHED, dict(resume=True), "done"),
    (FINISHED, dict(resume=True, epochs=4), "resume"),
    (UNFINISHED, {}, "holds an unfinished run with this config (checkpoint of epoch 2 of 3); pass --resume to "
                     "continue it, or --overwrite to start it again"),
    (dict(checkpoints=[]), {}, "holds an unfinished run with this config (no checkpoint yet)"),
    (FINISHED, {}, "holds a finished run with this config (3 epochs); pass --overwrite to train it again"),
    (FINISHED, dict(lr=0.1), "holds a run with another config (--lr 0.1 (run: 0.01)); pass --resume to continue "
                             "it with its own config, --overwrite to replace it, or choose another --workdir"),
    (FINISHED, dict(lr=0.1, seed=2, depth=3, epochs=4),
     "holds a run with another config (--depth 3 (run: 2); --lr 0.1 (run: 0.01); --epochs 4 (run: 3); …)"),
    (UNFINISHED, dict(resume=True, lr=0.1), "--resume: the run in {run} has another config: --lr 0.1 (run: 0.01); "
                                            "pass --overwrite to replace it, or choose another --workdir"),
    (UNFINISHED, dict(resume=True, epochs=1),
     "--epochs 1 is fewer than the 2 epochs the run in {run} has already trained; expected 2 or more"),
])
def test_plan_of_a_workdir_that_holds_a_run(run, flags, expected, tmp_path):
  path = _fake_run(tmp_path / "run", **run)
  before = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
  c = _config(path, **flags)
  if expected in ("new", "resume", "done"):
    assert workdir.plan(c, path) == expected
  else:
    with pytest.raises(C.ConfigError) as err:
      workdir.plan(c, path)
    assert expected.format(run=path) in str(err.value) and "\n" not in str(err.value)
  assert before == {p: p.stat().st_mtime_ns for p in path.rglob("*")}, "plan decides; it never writes"


def test_plan_refuses_run_files_without_config_json_and_a_folder_in_use(tmp_path):
  run = _fake_run(tmp_path / "run", checkpoints=[1])
  (run / workdir.CONFIG).unlink()
  (run / workdir.METRICS).write_text("")
  for flags in ({}, dict(resume=True)):
    with pytest.raises(C.ConfigError, match=r"holds checkpoints/, metrics.jsonl but no config.json: whose run they are "
                                            r"cannot be told; pass --overwrite to replace them"):
      workdir.plan(_config(run, **flags), run)
  assert workdir.plan(_config(run, overwrite=True), run) == "new"
  with workdir.Lock(run):
    assert (run / workdir.LOCK).read_text().startswith(f"pid {os.getpid()} on ")
    with pytest.raises(C.ConfigError, match=rf"--workdir {run} is in use by pid {os.getpid()} on .* since "):
      workdir.plan(_config(run, overwrite=True), run)
    assert workdir.plan(_config(run, overwrite=True), run, locked=True) == "new"
  assert workdir.plan(_config(run, overwrite=True), run) == "new"  # released


def test_plan_names_unreadable_run_files(tmp_path):
  (tmp_path / workdir.CONFIG).write_text("{")
  with pytest.raises(C.ConfigError, match=r"config.json cannot be read as a lab10 run config \(JSONDecodeError"):
    workdir.plan(_config(tmp_path), tmp_path)
  _fake_run(tmp_path)
  (tmp_path / workdir.SUMMARY).write_text("not json")
  with pytest.raises(runs.RunError, match=r"summary.json is not valid JSON \(.*\); pass --overwrite"):
    workdir.plan(_config(tmp_path), tmp_path)


def test_prepare_clears_only_the_files_of_an_earlier_run(tmp_path):
  run = _fake_run(tmp_path / "run", checkpoints=[1, 2], finished=True)
  for name in (workdir.METRICS, workdir.STATS, workdir.HISTOGRAMS, f"{workdir.METRICS}.tmp", "notes.txt"):
    (run / name).write_text("x")
  (run / "mine").mkdir()
  workdir.prepare(run, "resume")
  assert len(list(run.iterdir())) == 9  # resuming deletes nothing
  workdir.prepare(run, "new")
  assert sorted(p.name for p in run.iterdir()) == ["mine", "notes.txt"]
  workdir.prepare(tmp_path / "a" / "b", "new")
  assert (tmp_path / "a" / "b").is_dir()
  (tmp_path / "file").write_text("x")
  with pytest.raises(C.ConfigError, match=r"--workdir .*file/run cannot be created \(Not a directory\)"):
    workdir.prepare(tmp_path / "file" / "run", "new")


def test_workdir_guard_through_fit(tmp_path):
  small = data.synthetic(sizes=(500, 100))
  run = tmp_path / "run"
  run.mkdir()
  (run / "notes.txt").write_text("mine")  # not the run's: never deleted
  c = _config(run, epochs=2, batch_size=100)
  train.fit(c, small, verbose=False)
  before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
  for refused in (c, dataclasses.replace(c, lr=0.1), dataclasses.replace(c, epochs=1, resume=True)):
    with pytest.raises(C.ConfigError):
      train.fit(refused, small, verbose=False)
  assert train.fit(dataclasses.replace(c, resume=True), small, verbose=False).records == runs.read_jsonl(
      run / workdir.METRICS)  # finished: nothing to do
  assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}, "refusals must not write"
  train.fit(dataclasses.replace(c, lr=0.1, overwrite=True), small, verbose=False)
  assert json.loads((run / "config.json").read_text())["config"]["lr"] == 0.1
  assert (run / "metrics.jsonl").read_bytes() != before[run / "metrics.jsonl"]
  assert (run / "notes.txt").read_text() == "mine"
  # --resume where there is nothing to resume starts the run.
  fresh = train.fit(_config(tmp_path / "new", epochs=1, batch_size=100, resume=True), small, verbose=False)
  assert [r["epoch"] for r in runs.read_jsonl(fresh.workdir / workdir.METRICS)] == [1]


def test_default_and_path_for(tmp_path):
  assert re.fullmatch(r"runs/sweep-mlp-\d{8}-\d{6}", str(workdir.default("sweep-mlp")))
  assert workdir.path_for(_config(tmp_path)) == tmp_path
  assert workdir.path_for(C.with_preset("lab10-4-deep")).parent == Path("runs")
  assert workdir.path_for(C.with_preset("lab10-4-deep")).name.startswith("lab10-4-deep-")
  assert workdir.path_for(C.with_preset(None, model="cnn")).name.startswith("cnn-")


# --- logs ---------------------------------------------------------------------------------------


def test_truncate_logs_drops_later_epochs_and_a_partial_line(tmp_path):
  log, stats = tmp_path / workdir.METRICS, tmp_path / workdir.STATS
  for record in ({"init": 1}, {"epoch": 1}, {"epoch": 2}, {"epoch": 2, "layer": "head"}, {"epoch": 3}):
    runs.append_jsonl(log, record)
  runs.extend_jsonl(stats, [{"epoch": 1, "step": 0}, {"epoch": 3, "step": 20}])
  with open(log, "a") as f:
    f.write('{"epoch": 4, "lo')
  workdir.truncate_logs(tmp_path, 2)
  assert runs.read_jsonl(log) == [{"init": 1}, {"epoch": 1}, {"epoch": 2}, {"epoch": 2, "layer": "head"}]
  assert log.read_bytes().endswith(b"}\n") and runs.read_jsonl(stats) == [{"epoch": 1, "step": 0}]
  workdir.truncate_logs(tmp_path, 0)
  assert not log.exists() and not stats.exists()
  log.write_text('{"epoch": 1}\nnot json\n')
  with pytest.raises(runs.RunError, match=r"metrics.jsonl: line 2 is not JSON; cannot resume from it"):
    workdir.truncate_logs(tmp_path, 1)


def test_checkpoint_epochs_are_the_complete_ones(tmp_path):
  assert workdir.checkpoint_epochs(tmp_path) == []
  for name in ("10", "2", "3.orbax-checkpoint-tmp-1", "notes"):
    (tmp_path / workdir.CHECKPOINTS / name).mkdir(parents=True)
  assert workdir.checkpoint_epochs(tmp_path) == [2, 10]


def test_info_counts_parameters_and_names_the_data():
  ds = data.synthetic(sizes=(30, 20))
  c = _config(None, depth=1, width=(8,))
  s = train.setup(c, ds.input_shape, ds.num_classes)
  info = workdir.info(c, ds, s.state.params)
  assert info["num_params"] == 784 * 8 + 8 + 8 * 10 + 10 and info["hidden_widths"] == [8]
  assert info["dataset"] == {"name": "synthetic", "train": 30, "test": 20, "val": 0, "input_shape": [28, 28, 1]}
  assert info["config"] == c.to_json() and "resume" not in info["config"]
  assert info["environment"]["backend"] == jax.default_backend()


def test_deleting_the_lock_file_does_not_let_a_second_process_in(tmp_path):
  run = tmp_path / "run"
  with workdir.Lock(run):
    (run / workdir.LOCK).unlink()  # by hand, while the first holds the run
    with pytest.raises(C.ConfigError, match=rf"--workdir {run} is in use by another process"):
      with workdir.Lock(run):
        pass
    with pytest.raises(C.ConfigError, match=rf"--workdir {run} is in use by"):
      workdir.plan(_config(run, overwrite=True), run)
  with workdir.Lock(run):  # released with the first
    assert (run / workdir.LOCK).exists()


def test_links_in_a_run_directory_are_removed_never_followed(tmp_path):
  outside = tmp_path / "outside"
  (outside / "events").mkdir(parents=True)
  (outside / "events" / "events.out.tfevents.1.other").write_text("another experiment's")
  (outside / "precious.json").write_text("keep")
  run = tmp_path / "run"
  c = C.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=1, batch_size=50, workdir=str(run),
                    tensorboard=True)
  ds = data.synthetic(sizes=(200, 50))
  train.fit(c, ds, verbose=False)
  # Links planted where lab10 writes: its TensorBoard folder, config.json's temporary file, the checkpoints.
  shutil.rmtree(run / workdir.TENSORBOARD)
  (run / workdir.TENSORBOARD).symlink_to(outside / "events")
  (run / f"{workdir.CONFIG}.tmp").symlink_to(outside / "precious.json")
  train.fit(dataclasses.replace(c, epochs=2, resume=True), ds, verbose=False)
  assert (outside / "events" / "events.out.tfevents.1.other").read_text() == "another experiment's"
  assert (outside / "precious.json").read_text() == "keep"
  assert not (run / workdir.TENSORBOARD).is_symlink() and any((run / workdir.TENSORBOARD).glob("events.out*"))
  shutil.move(run / workdir.CHECKPOINTS, outside / "checkpoints")
  (run / workdir.CHECKPOINTS).symlink_to(outside / "checkpoints")
  train.fit(dataclasses.replace(c, overwrite=True), ds, verbose=False)
  assert sorted(p.name for p in (outside / "checkpoints").iterdir() if not p.name.endswith(".json")) == ["1", "2"]
  assert not (run / workdir.CHECKPOINTS).is_symlink()
