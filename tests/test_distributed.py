"""scripts/train.py --distributed: two processes on this machine (one CPU device each, gloo collectives, the
coordinator on 127.0.0.1) train one run together, exactly as one process on two devices does; a process that
dies stops the other with one line, and the job resumes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, killable_env

FLAGS = ("--dataset", "synthetic", "--width", "32", "--batch_size", "500")


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start(*flags: str, devices: int = 1, killable: bool = False) -> subprocess.Popen:
  env = {k: v for k, v in (killable_env() if killable else os.environ).items() if k != "XLA_FLAGS"}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  if devices > 1:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *FLAGS, *flags], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_job(workdir, epochs: int, *flags: str, killable: bool = False) -> list[subprocess.Popen]:
  job = ("--workdir", str(workdir), "--epochs", str(epochs), "--distributed",
         "--coordinator", f"127.0.0.1:{free_port()}", "--num_processes", "2", *flags)
  return [start(*job, "--process_id", str(i), killable=killable) for i in range(2)]


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
  try:
    out, err = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    pytest.fail(f"process did not end within {timeout} s:\n{process.communicate()[1]}")
  return process.returncode, out, err


def run_files(workdir) -> tuple[list[str], dict]:
  return (workdir / "metrics.jsonl").read_text().splitlines(), json.loads((workdir / "summary.json").read_text())


def test_two_processes_train_the_run_of_one_process_on_two_devices(tmp_path):
  job = start_job(tmp_path / "two_processes", epochs=2)
  results = [finish(p) for p in job]
  for i, (status, out, err) in enumerate(results):
    assert status == 0, f"process {i}: {err}"
    assert "2 device(s)" in out, out
  status, _, err = finish(start("--workdir", str(tmp_path / "two_devices"), "--epochs", "2", devices=2))
  assert status == 0, err

  metrics, summary = run_files(tmp_path / "two_processes")
  one_metrics, one_summary = run_files(tmp_path / "two_devices")
  assert len(metrics) == 2, "process 0 alone writes the logs: one line per epoch"
  # The same global batches and the same all-reduce over two devices: every number is equal, bit for bit.
  assert metrics == one_metrics
  assert summary["params_sha256"] == one_summary["params_sha256"]
  assert sorted(p.name for p in (tmp_path / "two_processes" / "checkpoints").iterdir()) == [
      "1", "1.sha256.json", "2", "2.sha256.json"]


@pytest.mark.parametrize("dies", [1, 0], ids=["worker dies", "coordinator dies"])
def test_a_process_that_dies_stops_the_other_with_one_line_and_the_job_resumes(dies, tmp_path):
  job = start_job(tmp_path / "run", 1000, killable=True)
  survivor = job[1 - dies]
  out = []
  for line in survivor.stdout:  # training has started: both processes are in the epoch's collectives
    out.append(line)
    if line.startswith("epoch"):
      break
  metrics, deadline = tmp_path / "run" / "metrics.jsonl", time.monotonic() + 60
  while not (metrics.exists() and metrics.read_text().endswith("\n")) and time.monotonic() < deadline:
    time.sleep(0.05)  # process 0 writes the logs: epoch 1's record is on disk before the kill
  job[dies].send_signal(signal.SIGKILL)
  status, _, err = finish(survivor, timeout=60)
  job[dies].wait()
  # XLA's and the coordination service's own lines (a dozen when the coordinator dies) go to the file named at start.
  log = next(line.split(": ", 1)[1].strip() for line in out if line.startswith("XLA's own log lines: "))
  lines = err.strip().splitlines()
  if dies == 0 and status == -signal.SIGABRT:
    # The coordinator runs the coordination service; XLA's client, losing it, aborts the process, before or right
    # after the script's line. Its reason is in the log.
    assert "Terminating process because the JAX distributed service" in Path(log).read_text()
    assert len(lines) <= 1, err
  else:
    assert status == 5 and len(lines) == 1, err
  if lines:
    assert err.startswith("error: another process of the job failed"), err
    assert "--resume" in err and f"XLA's log: {log}" in err
  # What it wrote stays: the first epoch's record; both processes restarted with --resume finish the run (once:
  # the files left are the same whichever process died).
  assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1
  if dies == 1:
    return
  results = [finish(p) for p in start_job(tmp_path / "run", 3, "--resume")]
  assert [status for status, _, _ in results] == [0, 0], results
  assert [json.loads(line)["epoch"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] == [
      1, 2, 3]


@pytest.mark.parametrize("flags,message", [
    (("--coordinator", "127.0.0.1:1"), "Number of processes must be defined"),
    (("--coordinator", "127.0.0.1:1", "--num_processes", "2", "--process_id", "2"), "process_id < num_processes"),
])
def test_incomplete_distributed_flags_exit_2_with_one_line(flags, message):
  # A process of its own: jax.distributed must start before any JAX computation, which this one has made.
  status, _, err = finish(start("--distributed", *flags), timeout=120)
  err = err.splitlines()
  assert status == 2 and len(err) == 1 and message in err[0] and "--num_processes" in err[0], err
