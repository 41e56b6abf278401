"""lab10.devices: the identity on one device; on two (simulated) devices, a data-parallel step equals the
one-device step."""

import json
import os
import subprocess
import sys

import jax
import numpy as np

from lab10 import devices, flags

from conftest import ROOT


def test_one_device_has_no_mesh_and_every_helper_is_the_identity():
  assert jax.device_count() == 1, "this test runs in the one-device test process"
  assert devices.mesh(devices.DATA) is None and devices.mesh(devices.MODELS) is None
  tree = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "key": jax.random.key(3), "n": [np.int32(4)]}
  placed = devices.place(tree, None)
  assert isinstance(placed["x"], jax.Array) and placed["x"].dtype == np.float32
  np.testing.assert_array_equal(placed["x"], tree["x"])
  np.testing.assert_array_equal(jax.random.key_data(placed["key"]), jax.random.key_data(tree["key"]))
  assert int(placed["n"][0]) == 4
  step = lambda state, batch: (state, batch)
  assert devices.split_batches(step, None) is step


def test_distributed_flag_parses():
  import argparse

  parser = flags.add_distributed(argparse.ArgumentParser())
  assert parser.parse_args([]).distributed is False and parser.parse_args(["--distributed"]).distributed is True


# Runs in a fresh interpreter: the device count must be set before JAX initialises its backend.
TWO_DEVICES = """
import json, jax, numpy as np
from jax.sharding import PartitionSpec as P
from lab10 import config as C, devices, step, train

c = C.with_preset(None, depth=2, width=(16,), activation="tanh", batchnorm=True, dropout=0.2, seed=4)
s = train.setup(c, (4, 4, 1), 3)
rng = np.random.default_rng(0)
batch = {"x": rng.standard_normal((8, 4, 4, 1)).astype(np.float32), "y": rng.integers(0, 3, 8).astype(np.int32)}
train_step = step.make_train_step(s.graphdef, s.tx)
one_state, one = jax.jit(train_step)(s.state, batch)

mesh = devices.mesh(devices.DATA)
split = jax.jit(devices.split_batches(train_step, mesh))
state, placed = devices.place((s.state, batch), mesh)
two_state, two = split(state, placed)
sharded = devices.place(np.arange(8.0).reshape(4, 2), mesh, P(devices.DATA))
print(json.dumps({
    "devices": jax.device_count(), "mesh": [mesh.axis_names, mesh.devices.size],
    "loss": [float(one["loss"]), float(two["loss"])], "accuracy": [float(one["accuracy"]), float(two["accuracy"])],
    "max_param_diff": max(float(np.max(np.abs(a - b))) for a, b in
                          zip(jax.tree.leaves(one_state.params), jax.tree.leaves(two_state.params))),
    "replicated": state.params["head"]["kernel"][...].sharding.is_fully_replicated,
    "key_devices": len(state.dropout_key.sharding.device_set),
    "all_reduce": " all-reduce(" in split.lower(state, placed).compile().as_text(),
    "shards": [list(x.data.shape) for x in sharded.addressable_shards],
}))
"""


def test_two_devices_split_the_batch_and_give_the_one_device_step():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
  result = subprocess.run([sys.executable, "-c", TWO_DEVICES], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  got = json.loads(result.stdout.strip().splitlines()[-1])
  assert got["devices"] == 2 and got["mesh"] == [["data"], 2]
  assert abs(got["loss"][1] - got["loss"][0]) <= 1e-6 * got["loss"][0]  # batch statistics over all 8 examples
  assert got["accuracy"][0] == got["accuracy"][1] and got["max_param_diff"] < 1e-6
  assert got["replicated"] and got["key_devices"] == 2  # the state on both devices
  assert got["all_reduce"], "the batch was not split: no gradient all-reduce in the compiled step"
  assert got["shards"] == [[2, 2], [2, 2]]  # P("data") splits the leading axis
