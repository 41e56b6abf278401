"""Every script's --help shows its defaults."""

import contextlib
import io
import re

from pathlib import Path

import pytest

import cli

# (script, flag, its default as --help shows it)
DEFAULTS = [
    ("train", "--batch_size", "100"), ("train", "--epochs", "15"), ("train", "--init", "glorot_uniform"),
    ("train", "--width", "256"), ("train", "--preset", "none"),
    ("sweep", "--batch_size", "100"), ("sweep", "--lrs", "--lr"), ("sweep", "--seeds", "--seed"),
    ("probe_init", "--batch", "300"), ("probe_init", "--seeds", "4"), ("probe_init", "--widths", "1000"),
    ("probe_init", "--activations", "tanh,relu"),
    ("make_figures", "--scale", "full"), ("make_figures", "--quick", "False"),
    ("reproduce_labs", "--seeds", "5"), ("reproduce_labs", "--workroot", "None"),
    ("benchmark", "--steps", "550"), ("benchmark", "--repeats", "5"),
]


def _help(name: str) -> str:
  out = io.StringIO()
  with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit:
    cli.load(name).main(["--help"])
  assert exit.value.code == 0
  return " ".join(out.getvalue().split())  # argparse wraps lines anywhere


@pytest.mark.parametrize("name, flag, default", DEFAULTS)
def test_help_shows_the_default(name, flag, default):
  text = _help(name)
  at = text.find(f" {flag} ", text.find(" options: "))  # its entry, past the usage line and description
  assert at >= 0, f"{flag} missing from {name} --help"
  shown = re.search(r"\(default: (.*?)\)", text[at:])  # every entry ends with its default
  assert shown and shown.group(1) == default, text[at:at + 300]


def test_stats_step_is_called_global_in_the_help():
  assert "step is global" in _help("train")


SCRIPTS = sorted(p.stem for p in (Path(__file__).parents[1] / "scripts").glob("*.py"))  # every script


def test_the_list_of_scripts_is_complete():
  assert {"train", "sweep", "make_figures", "reproduce_labs", "probe_init", "to_tensorboard", "benchmark",
          "plot_runs"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_and_malformed_flags_are_answered_without_importing_jax(name):
  import subprocess
  import sys

  from conftest import ROOT

  for args, status in ((["--help"], 0), (["--no_such_flag"], 2)):
    done = subprocess.run([sys.executable, "-X", "importtime", f"scripts/{name}.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == status, done.stderr[-500:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "lab10.flags" in imported and not {"jax", "flax", "optax"} & imported, (name, args)
