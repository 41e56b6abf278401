"""Every script stops on SIGINT or SIGTERM as train.py does (tests/test_script_train.py): at once, exit 130 / 143,
one line on stderr and no traceback, no temporary file left — while JAX loads and in the middle of its work."""

import signal
import threading
import time

import pytest

import cli

SIGNALS = {signal.SIGINT: (130, "interrupted (SIGINT)"), signal.SIGTERM: (143, "terminated (SIGTERM)")}

# Each script with flags that keep it busy for minutes, its outputs under {tmp}.
WORK = {
    "make_figures": ["--only", "residual_vs_plain_depth", "--out", "{tmp}/figures"],
    "sweep": ["--dataset", "synthetic", "--width", "16", "--epochs", "100000", "--seeds", "0,1", "--workdir",
              "{tmp}/sweep"],
    "reproduce_labs": ["--seeds", "1", "--no_swap", "--out", "{tmp}/labs", "--workroot", "{tmp}/labs-runs"],
    "probe_init": ["--activations", "tanh,relu,sigmoid,elu", "--depths", "5,10,20", "--widths", "1000",
                   "--seeds", "8", "--mnist", "--out", "{tmp}/probe.csv"],
    "benchmark": ["--steps", "550", "--repeats", "100", "--out", "{tmp}/benchmark"],
    "benchmark_anymodel": ["--steps", "100000", "--repeats", "3", "--out", "{tmp}/anymodel"],
    "probe_your_model": ["--steps", "1000000", "--workdir", "{tmp}/mine"],
    "to_tensorboard": ["{tmp}/absent-run"],
    "plot_runs": ["{tmp}/absent-run", "--stat", "grads/norm"],
}
LONG = ("make_figures", "sweep", "reproduce_labs", "benchmark", "benchmark_anymodel", "probe_your_model")


def _catches_sigterm(pid: int) -> bool:
  """Whether the process has a handler of SIGTERM (Linux's /proc/PID/status SigCgt mask): lab10.cli's, installed
  with its SIGINT handler before the heavy imports (Python itself catches SIGINT only)."""
  with open(f"/proc/{pid}/status") as status:
    caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
  return bool(caught & (1 << (signal.SIGTERM - 1)))


def _stop(name: str, sig: signal.Signals, tmp_path, working: bool) -> None:
  process = cli.popen(name, *[f.format(tmp=tmp_path) for f in WORK[name]])
  try:
    _signal(name, process, sig, tmp_path, working)
  finally:
    if process.poll() is None:  # a failed test leaves no process at work behind it
      process.kill()
      process.wait()


def _signal(name: str, process, sig: signal.Signals, tmp_path, working: bool) -> None:
  threading.Thread(target=process.stdout.read, daemon=True).start()  # drained: it never blocks on a full pipe
  deadline = time.monotonic() + 60
  while not _catches_sigterm(process.pid):  # Python starting up: before any handler, a signal kills it as it would any program
    assert process.poll() is None and time.monotonic() < deadline, f"{name} installed no signal handler"
    time.sleep(0.01)
  time.sleep(10 if working else 0.05)  # in its work; or still importing JAX (seconds)
  assert process.poll() is None, f"{name} ended before the signal: {process.stderr.read()}"
  process.send_signal(sig)
  err = process.stderr.read()
  process.wait(timeout=120)
  status, what = SIGNALS[sig]
  assert process.returncode == status, f"{name}: exit {process.returncode}: {err}"
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(what), f"{name}: {err}"
  assert not list(tmp_path.rglob("*.tmp")), f"{name}: temporary files left"


@pytest.mark.parametrize("name", sorted(WORK))
def test_a_signal_while_jax_loads_is_one_line(name, tmp_path):
  _stop(name, signal.SIGINT if len(name) % 2 else signal.SIGTERM, tmp_path, working=False)


@pytest.mark.parametrize("name", LONG)
def test_a_signal_in_the_middle_of_the_work_is_one_line(name, tmp_path):
  _stop(name, signal.SIGTERM if len(name) % 2 else signal.SIGINT, tmp_path, working=True)
