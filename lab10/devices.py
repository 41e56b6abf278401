"""Where arrays live: one ``jax.sharding`` mesh over all devices, decided here from ``jax.devices()`` at run time.

* One model (``fit``): a 1-D mesh ``("data",)``. Parameters, optimizer state and the (small) dataset are
  replicated; each batch is split along ``data`` by a sharding constraint, and XLA's partitioner inserts the
  gradient all-reduce. No ``pmap``, no hand-written collectives.
* A sweep (``lab10.sweep``): a 1-D mesh ``("models",)``; the stacked models are split along ``models``.

With one device every helper is the identity (plain ``device_put``), so the single-device path is the
code path that existed before meshes. Several processes (hosts): call ``initialize_distributed`` first
(``--distributed``); ``jax.devices()`` then spans every process, every process must hold the same host values,
and only process 0 writes files (``primary()``). Every process runs the same program: collectives (the
gradient all-reduce, ``barrier``) are where they meet. On CPU the processes talk through gloo over TCP.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jax
from jax.experimental import multihost_utils
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from lab10 import cli

DATA, MODELS = "data", "models"
# A process that stops answering is declared dead after this long, and the others stop with an error.
HEARTBEAT_TIMEOUT_S = 10


def initialize_distributed(enabled: bool, coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Join the other processes of the job; must run before any JAX computation. Unset values are detected
  from the cluster's environment (TPU pods, SLURM, Open MPI; ``JAX_COORDINATOR_ADDRESS``)."""
  if enabled:
    jax.distributed.initialize(coordinator, num_processes, process_id, heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
    _native_log_to_file()


def leave_job() -> None:
  """Leave the job together with the others (JAX's shutdown barrier) after a run that finished: a process that
  simply exits is, to the ones still finishing, a process that died."""
  if jax.process_count() > 1:
    jax.distributed.shutdown()


native_log: Path | None = None  # where XLA's and gRPC's own log lines go in a --distributed job


def peer_failed(error: Exception) -> bool:
  """Whether ``error`` is a collective that failed because another process died or left: gloo, on CPU, fails
  at once ("Connection reset by peer"), and so does a call to the coordination service once process 0 (which
  runs it) is gone; raised by the step or by orbax's save (wrapped in ``runs.WriteError``)."""
  return jax.process_count() > 1 and any(s in str(error) for s in ("Gloo ", "coordination service"))


def _native_log_to_file() -> None:
  """Send what is written straight to file descriptor 2 (XLA's, gRPC's and the coordination service's C++ log
  lines: a dozen when a peer dies) to ``native_log``; ``sys.stderr`` stays the terminal, so a job whose peer
  fails still ends in the script's one line, which names the file."""
  global native_log
  native_log = Path(tempfile.gettempdir()) / f"lab10-native-{os.getpid()}.log"
  log = os.open(native_log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
  cli.native_stderr_to(log)
  os.close(log)


def primary() -> bool:
  """Whether this process writes the files (process 0; the only one without --distributed)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Wait here until every process has reached ``barrier(name)``; nothing with one process."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def mesh(axis: str) -> Mesh | None:
  """A 1-D mesh named ``axis`` over all devices (all hosts), or None when there is only one device."""
  devices = jax.devices()
  # Auto axis types (the ``Mesh`` default in every JAX version): shardings propagate through jit (GSPMD).
  return Mesh(np.asarray(devices), (axis,)) if len(devices) > 1 else None


def place(tree, mesh: Mesh | None, spec: P = P()):
  """Put host values (NumPy or JAX arrays, typed PRNG keys too) on ``mesh`` as ``spec`` says; replicated
  by default. Multi-host safe: each process supplies the same global values and keeps its own shards."""
  if mesh is None:
    return jax.device_put(tree)
  sharding = NamedSharding(mesh, spec)

  def put(leaf):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
    value = np.asarray(leaf)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

  return jax.tree.map(put, tree)


def split_batches(train_step, mesh: Mesh | None):
  """``train_step`` whose batch is split along ``mesh``'s ``data`` axis; the identity without a mesh."""
  if mesh is None:
    return train_step
  batch_sharding = NamedSharding(mesh, P(DATA))

  def step(state, batch):
    return train_step(state, jax.lax.with_sharding_constraint(batch, batch_sharding))

  return step
