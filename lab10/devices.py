"""Where arrays live: one ``jax.sharding`` mesh over all devices, decided here from ``jax.devices()`` at run time.

* One model (``fit``): a 1-D mesh ``("data",)``. Parameters, optimizer state and the (small) dataset are
  replicated; each batch is split along ``data`` by a sharding constraint, and XLA's partitioner inserts the
  gradient all-reduce. No ``pmap``, no hand-written collectives.
* A sweep (``lab10.sweep``): a 1-D mesh ``("models",)``; the stacked models are split along ``models``.

With one device every helper is the identity (plain ``device_put``), so the single-device path is the
code path that existed before meshes. Multi-host: call ``initialize_distributed()`` first (``--distributed``);
``jax.devices()`` then spans every host, and every process must hold the same host values.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA, MODELS = "data", "models"


def add_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
  parser.add_argument("--distributed", action="store_true",
                      help="call jax.distributed.initialize() first (multi-host TPU pods, GPU clusters under "
                           "SLURM/Open MPI, or with JAX_COORDINATOR_ADDRESS etc. set)")
  return parser


def initialize_distributed(enabled: bool) -> None:
  """Join the other processes of a multi-host job; must run before any JAX computation."""
  if enabled:
    jax.distributed.initialize()


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
