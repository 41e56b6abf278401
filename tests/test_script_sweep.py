"""scripts/sweep.py as a user runs it: every bad input exits 2 with one line; a small sweep writes every model's run."""

import csv
import json
import os
import shutil

import pytest

import cli
from lab10 import runs

# A tiny model, so that a row whose input is wrongly accepted ends in seconds rather than hangs.
BASE = ["--dataset", "synthetic", "--depth", "1", "--width", "8", "--epochs", "1"]

# Each row: flags after BASE (``{tmp}``: the test's folder, where ``file`` is a file), and what the one stderr
# line says. Every row but the --workdir one runs with --workdir {tmp}/run, which must not be created.
BAD_INPUTS = [
    (["--seeds", "a:b"], "argument --seeds: 'a:b' is not a range like 0:8 or a list like 0,3,5"),
    (["--seeds", "0,-1"], "--seed -1 is out of range; expected an integer in [0, 2^32)"),
    (["--init_gains", "x"], "argument --init_gains: 'x' is not a comma-separated list of numbers"),
    (["--init_gains", "1,-1"], "--init_gain -1.0 is out of range; expected a finite number > 0"),
    (["--lrs", "0"], "--lr 0.0 is out of range; expected a finite number > 0"),
    (["--lrs", "1e-3,nan"], "--lr nan is out of range; expected a finite number > 0"),
    (["--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not valid; choose from: adam, sgd, momentum"),
    (["--width", "8,8"], "--width 8,8 gives 2 widths but --depth is 1"),
    (["--resume", "--overwrite"], "--resume and --overwrite exclude each other; choose one"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--batch_size", "20000"], "--batch_size 20000 is larger than the 10000 training examples of synthetic"),
    (["--val_size", "10000"],
     "--val_size 10000 is out of range; expected 0..9999 for the 10000 training examples of synthetic"),
    (["--dataset", "mnist", "--data_dir", "/nonexistent/lab10"],
     "data directory /nonexistent/lab10 does not exist (from --data_dir or $LAB10_DATA_DIR)"),
    (["--seeds", "5:2"], "argument --seeds: '5:2' is empty"),
    (["--log_histograms"], "--log_histograms needs --log_stats_every N > 0"),
    (["--log_stats_every", "-1"], "--log_stats_every -1 is out of range"),
    (["--keep_checkpoints", "0"], "--keep_checkpoints 0 is out of range"),
    (["--config", "{tmp}/file"], "--config {tmp}/file: not valid JSON"),
    (["--seeds", "0,0"], "the sweep names model seed0_gain1_lr0.001 twice (repeated --seeds, --init_gains or --lrs)"),
    (["--lrs", "0.1,0.1"], "the sweep names model seed0_gain1_lr0.1 twice"),
    (["--workdir", "{tmp}/file"], "--workdir {tmp}/file exists and is not a folder"),
    (["--width", "100000000", "--seeds", "0,1"], "--width 100000000 --depth 1 gives a model of 79,500,000,010 "
                                                 "parameters (2369.3 GiB with gradients and optimizer state for 2 models)"),
    (["--distributed"], "--distributed: "),
    (["--distributed", "--coordinator", "notaport"], "argument --coordinator: 'notaport' is not HOST:PORT"),
]


@pytest.mark.parametrize("flags,message", BAD_INPUTS, ids=[" ".join(flags) for flags, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_it(flags, message, tmp_path):
  (tmp_path / "file").write_text("x")
  flags = [f.format(tmp=tmp_path) for f in flags]
  status, lines = cli.main("sweep", *BASE, *([] if "--workdir" in flags else ["--workdir", str(tmp_path / "run")]),
                           *flags)
  assert status == 2 and len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], lines
  assert not (tmp_path / "run").exists(), "a rejected sweep must not create its workdir"


def test_small_sweep_writes_a_run_per_model_and_the_table(tmp_path):
  status, lines = cli.main("sweep", *BASE, "--seeds", "0:2", "--init_gains", "0.5,2", "--workdir", str(tmp_path))
  assert (status, lines) == (0, [])
  models = [(seed, gain) for seed in (0, 1) for gain in (0.5, 2.0)]
  names = [f"seed{seed}_gain{gain:g}_lr0.001" for seed, gain in models]
  rows = list(csv.DictReader(open(tmp_path / "summary.csv")))
  assert [r["model"] for r in rows] == names and {r["diverged_epoch"] for r in rows} == {""}
  assert len({r["train_loss"] for r in rows}) == 4  # four different models
  for name, row, (seed, gain) in zip(names, rows, models):
    records = runs.read_jsonl(tmp_path / name / "metrics.jsonl")
    assert [(r["epoch"], r["step"]) for r in records] == [(1, 100)]  # 10000 examples, batch 100
    assert float(row["train_loss"]) == pytest.approx(records[0]["train_loss"], rel=1e-6)
    config = json.loads((tmp_path / name / "config.json").read_text())["config"]
    assert (config["seed"], config["init_gain"], config["depth"]) == (seed, gain, 1)
    assert json.loads((tmp_path / name / "summary.json").read_text())["sweep_models"] == 4
  assert (tmp_path / "summary.md").read_text().startswith("| model | seed | init_gain | lr |")


def test_a_sweep_folder_is_refused_resumed_when_finished_or_overwritten(tmp_path):
  flags = [*BASE, "--seeds", "0:2", "--workdir", str(tmp_path)]
  assert cli.main("sweep", *flags) == (0, [])
  (tmp_path / "notes.txt").write_text("mine")
  before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "lock"}
  status, lines = cli.main("sweep", *flags)
  assert status == 2 and lines == [f"error: --workdir {tmp_path} holds a finished sweep (2 models); pass --overwrite "
                                   "to train it again, or choose another --workdir"]
  assert cli.main("sweep", *flags, "--resume") == (0, [])  # finished: nothing to do
  status, lines = cli.main("sweep", *flags, "--lrs", "0.1", "--resume")
  assert status == 2 and "has other models or settings" in lines[0] and len(lines) == 1
  (tmp_path / "summary.csv").unlink()  # as a sweep killed before its end leaves it
  del before[tmp_path / "summary.csv"]
  status, lines = cli.main("sweep", *flags, "--resume")
  assert status == 2 and lines == [f"error: --resume: the sweep in {tmp_path} did not finish, and a sweep cannot be "
                                   "resumed (its models train together from one start); pass --overwrite to train it "
                                   "again"]
  assert before == {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "lock"}
  assert cli.main("sweep", *BASE, "--seeds", "3", "--workdir", str(tmp_path), "--overwrite") == (0, [])
  assert sorted(p.name for p in tmp_path.iterdir()) == ["lock", "notes.txt", "seed3_gain1_lr0.001", "summary.csv",
                                                        "summary.md", "sweep.json"]


def test_overwrite_never_deletes_runs_that_no_sweep_wrote(tmp_path):
  # Two train.py runs in runs/: a sweep with --overwrite there must not take them for its models.
  for name in ("a", "b"):
    assert cli.main("train", *BASE, "--workdir", str(tmp_path / name)) == (0, [])
  before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "lock"}
  for flags in ([], ["--overwrite"]):
    status, lines = cli.main("sweep", *BASE, "--seeds", "0,1", "--workdir", str(tmp_path), *flags)
    assert status == 2 and lines == [f"error: --workdir {tmp_path} holds runs no sweep there wrote (a, b); a sweep "
                                     "replaces only its own models: choose another --workdir"], lines
  status, lines = cli.main("sweep", *BASE, "--seeds", "0,1", "--workdir", str(tmp_path / "a"), "--overwrite")
  assert status == 2 and lines == [f"error: --workdir {tmp_path / 'a'} is the run directory of one model (train.py); "
                                   "a sweep needs a folder of its own: choose another --workdir"]
  assert before == {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "lock"}
  # A sweep's own folder: --overwrite replaces its models, and a train.py run added there is refused as foreign.
  assert cli.main("sweep", *BASE, "--seeds", "0,1", "--workdir", str(tmp_path / "s")) == (0, [])
  assert cli.main("train", *BASE, "--workdir", str(tmp_path / "s" / "mine")) == (0, [])
  status, lines = cli.main("sweep", *BASE, "--seeds", "0,1", "--workdir", str(tmp_path / "s"), "--overwrite")
  assert status == 2 and "holds runs no sweep there wrote (mine)" in lines[0]
  assert (tmp_path / "s" / "mine" / "config.json").exists()


def test_a_sweep_folder_in_use_is_refused_naming_the_holder(tmp_path):
  from lab10 import workdir
  with workdir.Lock(tmp_path):
    status, lines = cli.main("sweep", *BASE, "--workdir", str(tmp_path))
  assert status == 2 and len(lines) == 1
  assert lines[0].startswith(f"error: --workdir {tmp_path} is in use by pid {os.getpid()} on ")


def test_a_model_of_an_unfinished_sweep_continues_alone_with_train_resume(tmp_path):
  # The sweep stopped after epoch 2 of 3, as a kill leaves it: model seed1's directory loses epoch 3's checkpoint,
  # record and summary; train.py --resume there ends as the uninterrupted sweep's model did: the same
  # records and the same state, array for array.
  flags = ["--dataset", "synthetic", "--depth", "1", "--width", "8", "--epochs", "3", "--keep_checkpoints", "3"]
  assert cli.main("sweep", *flags, "--seeds", "0:2", "--workdir", str(tmp_path)) == (0, [])
  model = tmp_path / "seed1_gain1_lr0.001"
  metrics, digest = (model / "metrics.jsonl").read_bytes(), (model / "checkpoints" / "3.sha256.json").read_bytes()
  lines = metrics.splitlines(keepends=True)
  assert len(lines) == 3
  (model / "metrics.jsonl").write_bytes(b"".join(lines[:2]))
  (model / "summary.json").unlink()
  (model / "checkpoints" / "3.sha256.json").unlink()
  shutil.rmtree(model / "checkpoints" / "3")
  assert cli.main("train", "--workdir", str(model), "--resume") == (0, [])
  assert (model / "metrics.jsonl").read_bytes() == metrics
  assert json.loads((model / "summary.json").read_text())["resumed_from_epoch"] == 2
  assert (model / "checkpoints" / "3.sha256.json").read_bytes() == digest  # every array of epoch 3's state
