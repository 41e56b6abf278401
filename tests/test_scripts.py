"""End-to-end: scripts/train.py as a user runs it."""

import json
import subprocess
import sys

import pytest

from lab10 import activations, config, data, initializers

from conftest import ROOT


def _train(*flags, cwd=ROOT):
  return subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *flags], cwd=cwd,
                        capture_output=True, text=True, timeout=300)


def test_help_lists_every_choice():
  out = _train("--help").stdout
  names = [*activations.ACTIVATIONS, *initializers.KERNEL_INITIALIZERS, *data.DATASETS, *config.PRESETS,
           *config.OPTIMIZERS]
  missing = [n for n in names if n not in out]
  assert not missing, f"--help does not mention {missing}"


@pytest.mark.parametrize("flags,message", [
    (["--activation", "swish2"], "--activation 'swish2' is not valid; choose from: sigmoid"),
    (["--preset", "lab10-7"], "--preset 'lab10-7' is not valid; choose from: lab10-1-softmax"),
    (["--dropout", "1.5"], r"--dropout 1.5 is out of range; expected a probability in [0, 1)"),
    (["--epochs", "0"], "--epochs 0 is out of range"),
    (["--width", "abc"], "argument --width: 'abc' is not an integer"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--data_dir", "/nonexistent/mnist"], "--data_dir /nonexistent/mnist does not exist or is not a folder"),
    (["--dataset", "synthetic", "--batch_size", "20000"], "--batch_size 20000 is larger than the 10000"),
    (["--bogus", "1"], "unrecognized arguments: --bogus 1"),
])
def test_bad_flags_exit_2_with_one_line(flags, message, tmp_path):
  result = _train(*flags, "--workdir", str(tmp_path / "run"))
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and message in lines[0], result.stderr


def test_diverging_run_exits_3_and_keeps_its_metrics(tmp_path):
  result = _train("--dataset", "synthetic", "--activation", "sigmoid", "--init", "normal", "--lr", "1e38",
                  "--epochs", "2", "--workdir", str(tmp_path))
  assert result.returncode == 3
  assert "training diverged in epoch 1 at step" in result.stderr.strip().splitlines()[-1]
  assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1


def test_preset_run_end_to_end(mnist_dir, tmp_path):
  result = _train("--preset", "lab10-3-xavier", "--epochs", "1", "--data_dir", str(mnist_dir),
                  "--workdir", str(tmp_path))
  assert result.returncode == 0, result.stderr
  assert "backend cpu" in result.stdout and "epoch 1/1 [####################]" in result.stdout
  assert result.stdout.strip().splitlines()[-1].startswith("done: 1 epochs, test accuracy 0.9")
  cfg = json.loads((tmp_path / "config.json").read_text())
  assert cfg["config"]["preset"] == "lab10-3-xavier" and cfg["config"]["epochs"] == 1
  assert cfg["config"]["bias_init"] == "normal" and cfg["hidden_widths"] == [256, 256]
  assert cfg["dataset"] == {"name": "mnist", "train": 55000, "test": 10000, "val": 5000, "input_shape": [28, 28, 1]}
  record = json.loads((tmp_path / "metrics.jsonl").read_text())
  assert record["test_accuracy"] > 0.95 and record["val_accuracy"] > 0.95
