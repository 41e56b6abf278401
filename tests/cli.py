"""Running ``scripts/*.py`` as a user does: in this process through ``main(argv)`` (fast: tables of bad inputs),
or as a real process where one matters (exit codes, kills, no traceback)."""

import contextlib
import functools
import importlib.util
import io
import os
import subprocess
import sys

from conftest import ROOT, killable_env


@functools.cache
def load(name: str):
  """``scripts/<name>.py`` as a module (its ``main`` not run)."""
  spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / "scripts" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main(name: str, *flags: str) -> tuple[int, list[str]]:
  """``scripts/<name>.py``'s ``main`` in this process: (exit status, stderr lines)."""
  err = io.StringIO()
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      status = load(name).main(list(flags))
    except SystemExit as e:  # argparse
      status = e.code
  return status, err.getvalue().strip().splitlines()


def popen(name: str, *flags: str, **kwargs) -> subprocess.Popen:
  """``python scripts/<name>.py flags`` started in the repository root, with a snapshot of the tests'
  compilation cache (the caller may kill it); ``kwargs`` go to ``subprocess.Popen``."""
  kwargs.setdefault("env", killable_env())
  return subprocess.Popen([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *flags], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def run(name: str, *flags: str, timeout: float = 300) -> tuple[int, str, str]:
  """``python scripts/<name>.py flags`` to its end, with the tests' shared compilation cache: (exit status,
  stdout, stderr)."""
  process = popen(name, *flags, env=dict(os.environ))
  out, err = process.communicate(timeout=timeout)
  return process.returncode, out, err
