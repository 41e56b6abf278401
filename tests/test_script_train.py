"""scripts/train.py as a user runs it: every bad input exits 2 with one line, divergence exits 3, a run killed at
any moment and resumed equals the uninterrupted run. (Bad data files: tests/test_data_errors.py.)"""

import contextlib
import errno
import io
import json
import os
import random
import shutil
import signal
import time

import jax
import numpy as np
import pytest

import cli
from conftest import fill, made_once
from lab10 import checkpoints as checkpoints_lib
from lab10 import activations, config, data, initializers, runs, workdir

# A tiny run: 10k synthetic examples, 200 steps an epoch, a few tenths of a second per epoch on CPU.
TINY = ["--dataset", "synthetic", "--width", "64", "--batch_size", "50", "--seed", "3"]


def test_help_lists_every_choice():
  out = io.StringIO()
  with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
    cli.load("train").main(["--help"])
  assert exit_.value.code == 0
  names = [*activations.ACTIVATIONS, *initializers.KERNEL_INITIALIZERS, *data.DATASETS, *config.PRESETS,
           *config.OPTIMIZERS, "--distributed"]
  missing = [n for n in names if n not in out.getvalue()]
  assert not missing, f"--help does not mention {missing}"


# Each row: flags (``{tmp}``: the test's folder, where ``file`` is a file), and what the one stderr line says.
# Every row but the --workdir ones runs with --workdir {tmp}/run, which must not be created.
BAD_INPUTS = [
    (["--distributed", "--coordinator", "notaport"], "argument --coordinator: 'notaport' is not HOST:PORT"),
    (["--distributed", "--coordinator", "host:99999"], "argument --coordinator: 'host:99999' is not HOST:PORT"),
    # names
    (["--preset", "lab10-7"], "--preset 'lab10-7' is not valid; choose from: lab10-1-softmax"),
    (["--dataset", "imagenet"], "--dataset 'imagenet' is not valid; choose from: mnist, fashion_mnist"),
    (["--model", "resnet"], "--model 'resnet' is not valid; choose from: mlp, cnn"),
    (["--activation", "swish2"], "--activation 'swish2' is not valid; choose from: sigmoid, tanh, relu"),
    (["--init", "xavier"], "--init 'xavier' is not valid; choose from: normal, glorot_uniform"),
    (["--init_mode", "fan_max"], "--init_mode 'fan_max' is not valid; choose from: fan_in, fan_out, fan_avg"),
    (["--bias_init", "ones"], "--bias_init 'ones' is not valid; choose from: zeros, normal"),
    (["--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not valid; choose from: adam, sgd, momentum"),
    (["--matmul_precision", "tf32"], "--matmul_precision 'tf32' is not valid; choose from: highest, high, default"),
    # numbers out of range
    (["--depth", "-1"], "--depth -1 is out of range; expected >= 0 (mlp) or >= 1 (cnn)"),
    (["--model", "cnn", "--depth", "0"], "--depth 0 is out of range"),
    (["--width", "0"], "--width 0 is out of range; expected positive integers"),
    (["--width", "64,-1", "--depth", "2"], "--width 64,-1 is out of range"),
    (["--width", "16,32,8"], "--width 16,32,8 gives 3 widths but --depth is 2; give one width"),
    (["--model", "cnn", "--width", "16,32", "--depth", "2"], "gives several widths but --model cnn takes one"),
    (["--epochs", "0"], "--epochs 0 is out of range; expected an integer > 0"),
    (["--epochs", "-3"], "--epochs -3 is out of range; expected an integer > 0"),
    (["--batch_size", "0"], "--batch_size 0 is out of range; expected an integer > 0"),
    (["--lr", "0"], "--lr 0.0 is out of range; expected a finite number > 0"),
    (["--lr", "-0.1"], "--lr -0.1 is out of range"),
    (["--lr", "inf"], "--lr inf is out of range"),
    (["--lr", "nan"], "--lr nan is out of range"),
    (["--init_std", "-1"], "--init_std -1.0 is out of range; expected a finite number > 0"),
    (["--bias_std", "0"], "--bias_std 0.0 is out of range; expected a finite number > 0"),
    (["--init_gain", "0"], "--init_gain 0.0 is out of range; expected a finite number > 0"),
    (["--leaky_slope", "1"], "--leaky_slope 1.0 is out of range; expected in [0, 1)"),
    (["--dropout", "-0.1"], "--dropout -0.1 is out of range; expected a probability in [0, 1)"),
    (["--dropout", "1.5"], "--dropout 1.5 is out of range; expected a probability in [0, 1)"),
    (["--dropout", "nan"], "--dropout nan is out of range"),
    (["--momentum", "1"], "--momentum 1.0 is out of range; expected in [0, 1)"),
    (["--weight_decay", "-1e-4"], "--weight_decay -0.0001 is out of range; expected >= 0"),
    (["--seed", "-1"], "--seed -1 is out of range; expected an integer in [0, 2^32)"),
    (["--val_size", "-1"], "--val_size -1 is out of range; expected an integer >= 0"),
    (["--keep_checkpoints", "0"], "--keep_checkpoints 0 is out of range; expected an integer >= 1"),
    (["--checkpoint_every", "0"], "--checkpoint_every 0 is out of range; expected an integer >= 1"),
    (["--log_stats_every", "-1"], "--log_stats_every -1 is out of range; expected an integer >= 0 (0: off)"),
    # flags that do not parse
    (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--width", "abc"], "argument --width: 'abc' is not an integer or a comma-separated list of integers"),
    (["--batchnorm", "maybe"], "argument --batchnorm: 'maybe' is not a boolean; choose from: true, false"),
    (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
    # flags that exclude or need each other
    (["--log_histograms", "true"], "--log_histograms needs --log_stats_every N > 0"),
    (["--resume", "--overwrite"], "--resume and --overwrite exclude each other; choose one"),
    (["--resume", "--workdir", ""], "error: --resume needs --workdir, the run directory to continue"),
    # the data and the run directory
    (["--dataset", "synthetic", "--batch_size", "10001"],
     "--batch_size 10001 is larger than the 10000 training examples of synthetic; expected 1..10000"),
    (["--dataset", "synthetic", "--val_size", "10000"],
     "--val_size 10000 is out of range; expected 0..9999 for the 10000 training examples of synthetic"),
    (["--data_dir", "/nonexistent/lab10"], "--data_dir /nonexistent/lab10 does not exist or is not a folder"),
    (["--workdir", "{tmp}/file"], "error: --workdir {tmp}/file exists and is not a folder"),
    (["--workdir", "{tmp}/file/run"], "error: --workdir {tmp}/file/run cannot be created or written"),
    (["--workdir", ""], "error: --workdir '' is empty; give a folder or leave the flag out"),
    (["--workdir", "{tmp}/" + "a" * 300 + "/run"], "is not a usable path (File name too long)"),
    # counted from shapes before anything is allocated
    (["--dataset", "synthetic", "--width", "100000000"],
     "--width 100000000 --depth 2 gives a model of 10,000,079,600,000,010 parameters"),
    # --config files: one line naming the file and the field
    (["--config", "{tmp}/file"], "--config {tmp}/file: not valid JSON"),
    (["--config", "{tmp}/nothing.yaml"], "--config {tmp}/nothing.yaml: cannot be read (No such file or directory)"),
    (["--config", "{tmp}/fields.json"], "{tmp}/fields.json: unknown field 'learning_rate'; valid fields: dataset,"),
    (["--config", "{tmp}/value.yaml"], "{tmp}/value.yaml: field activation 'relu6' is not valid; choose from: sigmoid"),
]


@pytest.mark.parametrize("flags,message", BAD_INPUTS, ids=[" ".join(flags) for flags, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_it(flags, message, tmp_path):
  (tmp_path / "file").write_text("x")
  (tmp_path / "fields.json").write_text('{"learning_rate": 0.1}')
  (tmp_path / "value.yaml").write_text("activation: relu6\n")
  flags = [f.format(tmp=tmp_path) for f in flags]
  status, lines = cli.main("train", *flags, *([] if "--workdir" in flags else ["--workdir", str(tmp_path / "run")]))
  assert status == 2 and len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], lines
  assert not (tmp_path / "run").exists(), "a rejected run must not create its workdir"


def test_a_runs_own_config_json_repeats_it_with_another_seed(tmp_path):
  first = ["--dataset", "synthetic", "--width", "16", "--activation", "tanh", "--lr", "0.003", "--epochs", "1"]
  assert cli.main("train", *first, "--workdir", str(tmp_path / "a"))[0] == 0
  again = ["--config", str(tmp_path / "a" / "config.json"), "--seed", "5", "--workdir", str(tmp_path / "b")]
  assert cli.main("train", *again)[0] == 0
  a, b = (json.loads((tmp_path / run / "config.json").read_text())["config"] for run in "ab")
  assert {k: v for k, v in b.items() if a[k] != v} == {"seed": 5, "workdir": str(tmp_path / "b")}
  assert (a["activation"], a["lr"], a["width"]) == ("tanh", 0.003, [16])


def test_bad_flag_in_a_real_process_is_one_line_without_traceback(tmp_path):
  status, out, err = cli.run("train", "--lr", "fast", "--workdir", str(tmp_path / "run"))
  assert status == 2 and err.count("\n") == 1 and "argument --lr: invalid float value: 'fast'" in err


def test_diverging_process_exits_3_and_leaves_readable_files(tmp_path):
  # The lab's sigmoid / N(0, 1) network with an absurd learning rate: Adam's first step is ±lr.
  status, out, err = cli.run("train", "--dataset", "synthetic", "--activation", "sigmoid", "--init", "normal",
                             "--bias_init", "normal", "--lr", "1e38", "--epochs", "3", "--workdir", str(tmp_path))
  assert status == 3 and err.count("\n") == 1, err
  assert "error: training diverged in epoch 1 at step 2: dense_0 went non-finite first (activations" in err
  assert json.loads((tmp_path / "config.json").read_text())["config"]["lr"] == 1e38
  assert [r["epoch"] for r in runs.read_jsonl(tmp_path / "metrics.jsonl")] == [1]
  assert workdir.checkpoint_epochs(tmp_path) == []  # no non-finite state is checkpointed


def test_preset_run_end_to_end(mnist_dir, tmp_path):
  status, out, err = cli.run("train", "--preset", "lab10-3-xavier", "--epochs", "1", "--data_dir", str(mnist_dir),
                             "--workdir", str(tmp_path))
  assert status == 0, err
  assert "backend cpu" in out and "epoch 1/1 | loss " in out
  assert out.strip().splitlines()[-1].startswith("done: 1 epochs, test accuracy 0.9")
  cfg = json.loads((tmp_path / "config.json").read_text())
  assert cfg["config"]["preset"] == "lab10-3-xavier" and cfg["config"]["epochs"] == 1
  assert cfg["config"]["bias_init"] == "normal" and cfg["hidden_widths"] == [256, 256]
  assert cfg["dataset"] == {"name": "mnist", "train": 55000, "test": 10000, "val": 5000, "input_shape": [28, 28, 1]}
  record = json.loads((tmp_path / "metrics.jsonl").read_text())
  assert record["test_accuracy"] > 0.95 and record["val_accuracy"] > 0.95 and record["step"] == 550


# --- killed processes ---------------------------------------------------------------------------

KILL_RUN = [*TINY, "--width", "128", "--epochs", "6", "--dropout", "0.1"]


def _lines(path):
  return len(path.read_bytes().splitlines()) if path.exists() else 0


def _kill_when(process, metrics, lines, delay=0.0, timeout=120):
  """SIGKILL ``process`` ``delay`` seconds after metrics.jsonl reaches ``lines`` lines."""
  deadline = time.monotonic() + timeout
  while _lines(metrics) < lines and process.poll() is None and time.monotonic() < deadline:
    time.sleep(0.01)
  time.sleep(delay)
  assert process.poll() is None, f"the run ended before it could be killed: {process.communicate()}"
  process.send_signal(signal.SIGKILL)
  process.wait()


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory, worker_id):
  """The run that the killed and interrupted ones must equal (not to be changed: copy it)."""
  def train(path):
    status, _, err = cli.run("train", *KILL_RUN, "--workdir", str(path))
    assert status == 0, err

  return made_once(tmp_path_factory, worker_id, "uninterrupted", train)


def _assert_identical(run, reference):
  assert (run / "metrics.jsonl").read_bytes() == (reference / "metrics.jsonl").read_bytes()
  summary = lambda path: json.loads((path / "summary.json").read_text())
  assert summary(run)["params_sha256"] == summary(reference)["params_sha256"]
  with checkpoints_lib.Checkpoints(run / workdir.CHECKPOINTS, 3) as a, checkpoints_lib.Checkpoints(reference / workdir.CHECKPOINTS, 3) as b:
    final_a, final_b = a.restore(6), b.restore(6)
  for x, y in zip(jax.tree.leaves(final_a), jax.tree.leaves(final_b), strict=True):
    np.testing.assert_array_equal(x, y)


def test_two_identical_processes_write_byte_identical_metrics(uninterrupted, tmp_path):
  status, _, err = cli.run("train", *KILL_RUN, "--workdir", str(tmp_path))
  assert status == 0, err
  _assert_identical(tmp_path, uninterrupted)


def test_killed_after_epoch_1_and_resumed_equals_uninterrupted(uninterrupted, tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  _kill_when(cli.popen("train", *KILL_RUN, "--workdir", str(tmp_path)), metrics, 1)
  status, out, err = cli.run("train", *KILL_RUN, "--workdir", str(tmp_path))
  assert status == 2 and "holds an unfinished run with this config" in err and "pass --resume" in err
  status, out, err = cli.run("train", "--workdir", str(tmp_path), "--resume")  # the run's own config
  assert status == 0, err
  assert "resuming after epoch" in out
  _assert_identical(tmp_path, uninterrupted)


def test_killed_at_random_moments_and_resumed_equals_uninterrupted(uninterrupted, tmp_path):
  seed = random.randrange(2**32)
  rng = random.Random(seed)
  metrics = tmp_path / "metrics.jsonl"
  for attempt in range(2):
    process = cli.popen("train", *KILL_RUN, "--workdir", str(tmp_path), *(["--resume"] if attempt else []))
    # Somewhere from start-up to mid-way through the run: compiling, training, writing, checkpointing.
    _kill_when(process, metrics, min(_lines(metrics) + rng.randint(0, 2), 5), delay=rng.uniform(0, 0.3))
  status, _, err = cli.run("train", *KILL_RUN, "--workdir", str(tmp_path), "--resume")
  assert status == 0, f"seed {seed}: {err}"
  _assert_identical(tmp_path, uninterrupted)


# --- signals and write failures -----------------------------------------------------------------


def _signal_in_first_epoch(process, sig, delay):
  """Send ``sig`` ``delay`` seconds after the process says it starts training (its first epoch is compiling
  or running then), or at once if it ended; return (status, stderr)."""
  for line in process.stdout:
    if line.startswith("run directory"):
      break
  time.sleep(delay)
  process.send_signal(sig)
  _, err = process.communicate(timeout=120)
  return process.returncode, err


def test_sigint_and_sigterm_stop_in_one_line_and_resume_identically(uninterrupted, tmp_path):
  seed = random.randrange(2**32)
  rng = random.Random(seed)
  # Three Ctrl-Cs at random moments of a first epoch (compile, training, the epoch's writes and checkpoint),
  # then a SIGTERM: each process stops at once, in one line, and the run goes on from where it was.
  for attempt, sig in enumerate([signal.SIGINT] * 3 + [signal.SIGTERM]):
    process = cli.popen("train", *KILL_RUN, "--workdir", str(tmp_path), *(["--resume"] if attempt else []))
    status, err = _signal_in_first_epoch(process, sig, rng.uniform(0, 1.5))
    what = "interrupted (SIGINT)" if sig == signal.SIGINT else "terminated (SIGTERM)"
    assert status == (130 if sig == signal.SIGINT else 143), f"seed {seed}: {status} {err}"
    assert err == f"{what}; continue with the same --workdir and --resume\n", f"seed {seed}: {err}"
    assert not list(tmp_path.rglob("*.tmp")), f"seed {seed}: temporary files left"
  status, _, err = cli.run("train", *KILL_RUN, "--workdir", str(tmp_path), "--resume")
  assert status == 0, f"seed {seed}: {err}"
  _assert_identical(tmp_path, uninterrupted)


def test_sigint_while_jax_loads_is_one_line(tmp_path):
  process = cli.popen("train", "--workdir", str(tmp_path / "run"))
  time.sleep(0.2)  # importing JAX takes seconds
  process.send_signal(signal.SIGINT)
  _, err = process.communicate(timeout=60)
  assert process.returncode == 130 and err == "interrupted (SIGINT); continue with the same --workdir and --resume\n"


def test_failed_log_write_stops_at_that_epoch_exit_4_and_resumes_identically(uninterrupted, tmp_path, monkeypatch):
  write, calls = os.write, []

  def full_disk(fd, data):  # the disk fills up as epoch 3's metrics line is appended
    if os.readlink(f"/proc/self/fd/{fd}").endswith("metrics.jsonl"):
      calls.append(fd)
      if len(calls) == 3:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return write(fd, data)

  monkeypatch.setattr(os, "write", full_disk)
  status, lines = cli.main("train", *KILL_RUN, "--workdir", str(tmp_path))
  monkeypatch.undo()
  assert status == 4 and len(lines) == 1, lines
  assert lines[0] == (f"error: cannot write {tmp_path / 'metrics.jsonl'}: No space left on device (ENOSPC); the run "
                      "stopped; once fixed, continue with the same --workdir and --resume")
  assert [r["epoch"] for r in runs.read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2]
  assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*orbax-checkpoint-tmp*"))
  status, _, err = cli.run("train", "--workdir", str(tmp_path), "--resume")
  assert status == 0, err
  _assert_identical(tmp_path, uninterrupted)


def _closed_loop_traceback_line(line: str) -> bool:
  return (line == "Traceback (most recent call last):" or line == "RuntimeError: Event loop is closed"
          or "asyncio/base_events.py" in line or line.strip() in ("self._check_closed()", "raise RuntimeError('Event loop is closed')"))


def test_full_disk_stops_the_run_exit_4_without_temporaries_and_it_resumes(uninterrupted, small_disk, tmp_path):
  status, _, err = cli.run("train", *KILL_RUN, "--workdir", str(small_disk / "run"))
  lines = err.splitlines()
  # Known gap (issue 15): a failed asynchronous save's tensorstore callbacks into orbax's closed event loop can print
  # "Event loop is closed" tracebacks while the next epoch trains, before the failure is read; nothing else may.
  stray = [line for line in lines[:-1] if not _closed_loop_traceback_line(line)]
  assert status == 4 and lines and not stray, err
  assert lines[-1].startswith(f"error: cannot write {small_disk / 'run' / 'checkpoints'}/")
  assert "No space left on device (ENOSPC)" in lines[-1]
  assert not list(small_disk.rglob("*.tmp")) and not list(small_disk.rglob("*orbax-checkpoint-tmp*"))
  shutil.copytree(small_disk / "run", tmp_path / "run")  # moved to a disk with room, it continues
  status, _, err = cli.run("train", "--workdir", str(tmp_path / "run"), "--resume")
  assert status == 0, err
  _assert_identical(tmp_path / "run", uninterrupted)


def test_full_disk_at_start_is_one_line_and_leaves_no_temporary(small_disk):
  fill(small_disk)
  status, _, err = cli.run("train", *TINY, "--workdir", str(small_disk / "run"))
  assert status == 4 and err.count("\n") == 1, err
  assert f"error: cannot write {small_disk / 'run' / 'config.json'}: No space left on device (ENOSPC)" in err
  assert not list(small_disk.rglob("*.tmp"))


def test_a_second_process_on_a_training_run_exits_2_naming_the_holder(tmp_path):
  first = cli.popen("train", *KILL_RUN, "--epochs", "50", "--workdir", str(tmp_path))
  try:
    deadline = time.monotonic() + 120
    while f"pid {first.pid} " not in ((tmp_path / "lock").read_text() if (tmp_path / "lock").exists() else ""):
      assert first.poll() is None and time.monotonic() < deadline, first.communicate()
      time.sleep(0.05)
    for flags in ([], ["--resume"], ["--overwrite"]):  # the same command, --resume, --overwrite: all refused
      status, lines = cli.main("train", *KILL_RUN, "--epochs", "50", "--workdir", str(tmp_path), *flags)
      assert status == 2 and len(lines) == 1, lines
      assert lines[0].startswith(f"error: --workdir {tmp_path} is in use by pid {first.pid} on "), lines
    assert first.poll() is None, "the first run trains on"
  finally:
    first.kill()
    first.wait()


@pytest.fixture
def killed_run(uninterrupted, tmp_path):
  """The uninterrupted run as a kill after its last checkpoint leaves it: no summary.json."""
  run = tmp_path / "run"
  shutil.copytree(uninterrupted, run)
  (run / "summary.json").unlink()
  return run


def _files(run):
  return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "lock"}


@pytest.mark.parametrize("change,message", [
    ("edit lr", "config.json was edited after the run wrote it (its config no longer matches its config_sha256); "
                "undo the edit to --resume, or pass --overwrite to start a new run with flags"),
    ("delete config.json", "holds checkpoints/, metrics.jsonl but no config.json: whose run they are "
                           "cannot be told; pass --overwrite to replace them, or choose another --workdir"),
    ("delete metrics.jsonl", "metrics.jsonl is missing, but the run has a checkpoint of epoch 6; restore the file to "
                             "--resume, or pass --overwrite to start the run again"),
])
def test_a_run_changed_by_hand_is_refused_in_one_line_and_kept(change, message, killed_run):
  if change == "edit lr":
    text = (killed_run / "config.json").read_text()
    assert '"lr": 0.001' in text
    (killed_run / "config.json").write_text(text.replace('"lr": 0.001', '"lr": 0.002'))
  else:
    (killed_run / change.split()[1]).unlink()
  before = _files(killed_run)
  for flags in (["--resume"], *([KILL_RUN] if "config" in change else [])):
    status, lines = cli.main("train", "--workdir", str(killed_run), *flags)
    assert status == 2 and len(lines) == 1 and message in lines[0], lines
  assert before == _files(killed_run), "a refused run deletes and changes nothing"
