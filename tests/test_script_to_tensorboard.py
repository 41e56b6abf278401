"""scripts/to_tensorboard.py as a user runs it: every bad input exits 2 with one line; a run directory's logs
become events holding every number of metrics.jsonl and stats.jsonl at its step."""

import contextlib
import io

import pytest

import cli
import tb_events
from lab10 import config, data, runs, train, workdir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("to_tensorboard") / "run"
  c = config.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=2, log_stats_every=2,
                         workdir=str(path))
  train.fit(c, data.synthetic(sizes=(500, 100)), verbose=False)
  return path


def test_help_shows_the_default_output_folder():
  out = io.StringIO()
  with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
    cli.load("to_tensorboard").main(["--help"])
  text = " ".join(out.getvalue().split())
  assert exit_.value.code == 0 and "RUN_DIR" in text and "(default: RUN_DIR/tensorboard; a sweep:" in text


def test_converts_a_run_directory(run_dir):
  status, lines = cli.main("to_tensorboard", str(run_dir))
  assert status == 0 and lines == []
  scalars, histograms = tb_events.read(run_dir / workdir.TENSORBOARD)
  expected = tb_events.expected_scalars(runs.read_jsonl(run_dir / workdir.METRICS),
                                        runs.read_jsonl(run_dir / workdir.STATS))
  assert {tag: sorted(v) for tag, v in scalars.items()} == expected and histograms == {}
  assert expected["metrics/epoch"] == [(5, 1.0), (10, 2.0)] and len(expected["forward/dense_0/act_var"]) == 6


def test_converts_every_model_of_a_sweep(tmp_path):
  from lab10 import sweep

  c = config.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=1, log_stats_every=2)
  folder = sweep.run(sweep.grid(c, seeds=[0, 1]), data.synthetic(sizes=(500, 100)), workdir=tmp_path / "sw",
                     verbose=False)
  status, lines = cli.main("to_tensorboard", str(folder), "--out", str(tmp_path / "tb"))
  assert status == 0 and lines == []
  for model in ("seed0_gain1_lr0.001", "seed1_gain1_lr0.001"):
    scalars, _ = tb_events.read(tmp_path / "tb" / model)
    expected = tb_events.expected_scalars(runs.read_jsonl(folder / model / workdir.METRICS),
                                          runs.read_jsonl(folder / model / workdir.STATS))
    assert {tag: sorted(v) for tag, v in scalars.items()} == expected and len(expected["forward/dense_0/act_var"]) == 3
  status, lines = cli.main("to_tensorboard", str(folder), "--out", str(tmp_path / "tb"))  # both hold events: none written
  assert status == 2 and "seed0_gain1_lr0.001 already holds TensorBoard event files" in lines[0]


# Each row: arguments (``{tmp}``: the test's folder, ``{run}``: a run directory that holds event files), and
# what the one stderr line says.
BAD_INPUTS = [
    ([], "the following arguments are required: RUN_DIR"),
    (["{tmp}/missing"], "error: {tmp}/missing does not exist or is not a folder; expected a lab10 run directory"),
    (["{tmp}"], "error: {tmp} holds no metrics.jsonl: not a lab10 run directory"),
    (["{run}"], "error: {run}/tensorboard already holds TensorBoard event files"),
    (["{run}", "--out", "{run}/tensorboard"], "already holds TensorBoard event files"),
    (["{run}", "--bogus"], "unrecognized arguments: --bogus"),
    ([""], "RUN_DIR is empty; expected a lab10 run directory"),
    (["{tmp}/file"], "error: {tmp}/file does not exist or is not a folder; expected a lab10 run directory"),
    (["{run}", "{run}"], "unrecognized arguments: {run}"),
    (["{run}", "--out"], "argument --out: expected one argument"),
    (["{run}", "--out", ""], "--out is empty; expected a folder"),
    (["{run}", "--out", "{tmp}/file"], "--out {tmp}/file exists and is not a folder"),
    (["{run}", "--out", "{tmp}/file/tb"], "--out {tmp}/file/tb cannot be a folder: {tmp}/file is a file"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(args) for args, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_it(args, message, run_dir, tmp_path):
  run = tmp_path / "run"
  (run / workdir.TENSORBOARD).mkdir(parents=True)
  (run / workdir.METRICS).write_text(run_dir.joinpath(workdir.METRICS).read_text())
  (run / workdir.TENSORBOARD / "events.out.tfevents.1.host").write_bytes(b"")
  (tmp_path / "file").write_text("")
  args = [a.format(tmp=tmp_path, run=run) for a in args]
  status, lines = cli.main("to_tensorboard", *args)
  assert status == 2 and len(lines) == 1 and message.format(tmp=tmp_path, run=run) in lines[0], lines


# A copy of a finished run with one log damaged: (file, what is written into it, what the one line says).
DAMAGED = [
    ("metrics.jsonl", "{not json\n", "metrics.jsonl cannot be read (JSONDecodeError"),
    ("metrics.jsonl", "[1, 2]\n", "metrics.jsonl cannot be read (ValueError: a line without an integer epoch and step"),
    ("stats.jsonl", '{"step": 3}\n', "stats.jsonl cannot be read (ValueError: a line without an integer epoch and step"),
    ("stats_histograms.npz", "not a zip", "stats_histograms.npz cannot be read ("),
    ("stats_histograms.npz", "", "stats_histograms.npz cannot be read ("),
    ("metrics.jsonl", "", "metrics.jsonl cannot be read (ValueError: no line: no epoch has ended"),
    ("metrics.jsonl", '{"epoch": 1}\n', "metrics.jsonl cannot be read (ValueError: a line without an integer epoch"),
    ("metrics.jsonl", '{"epoch": "x", "step": 1}\n', "a line without an integer epoch and step"),
    ("metrics.jsonl", '{"epoch": 1, "step": 5, "train_loss": "abc"}\n',
     "metrics.jsonl cannot be read (ValueError: 'train_loss' is not a number in the line of step 5)"),
    ("stats.jsonl", "{bad\n", "stats.jsonl cannot be read (JSONDecodeError"),
]


@pytest.mark.parametrize("name,content,message", DAMAGED, ids=[f"{n}: {c!r}" for n, c, _ in DAMAGED])
def test_damaged_logs_are_refused_in_one_line_and_nothing_is_written(name, content, message, run_dir, tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  for log in (workdir.METRICS, workdir.STATS):
    (run / log).write_text(run_dir.joinpath(log).read_text())
  (run / name).write_text(content)
  status, lines = cli.main("to_tensorboard", str(run))
  assert status == 2 and len(lines) == 1 and message in lines[0] and "damaged: nothing converted" in lines[0], lines
  assert not (run / workdir.TENSORBOARD).exists()
