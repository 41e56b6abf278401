"""lab10.divergence: per-layer finiteness flags, which step and layer went non-finite first, Diverged."""

import jax.numpy as jnp
import numpy as np
import pytest

from lab10 import divergence

NAMES = ["dense_0", "dense_1", "head"]


def _steps(n=3):
  """An epoch of ``n`` healthy steps' metrics, as ``train.make_epoch`` returns them (host values)."""
  return {"loss": np.arange(1.0, n + 1), "forward_finite": np.ones((n, 3), bool),
          "final_params_finite": np.ones(3, bool), "params_finite": np.bool_(True)}


def test_locate_follows_the_order_within_a_step():
  steps = _steps()
  assert divergence.locate(steps, NAMES) is None
  steps["loss"][2] = np.nan
  assert divergence.locate(steps, NAMES) == (2, "loss", "every layer's activations finite")
  steps["forward_finite"][1, 1:] = False  # step 1: dense_1's z first, the logits after it
  assert divergence.locate(steps, NAMES) == (1, "dense_1", "activations in the forward pass")
  steps["loss"][2] = 1.0
  steps["forward_finite"][1, 1:] = True
  steps["final_params_finite"][2] = False  # only the last update broke the head
  assert divergence.locate(steps, NAMES) == (2, "head", "parameters after the update")


def test_check_raises_with_the_global_step_and_what_went_first():
  divergence.check(1, 3, _steps(), NAMES)  # healthy: nothing
  steps = _steps(4)
  steps["forward_finite"][2, 0] = False
  with pytest.raises(divergence.Diverged) as err:
    divergence.check(3, 40, steps, NAMES)  # the epoch's 4 steps were global steps 37 … 40
  assert (err.value.epoch, err.value.step, err.value.layer, err.value.part) == (
      3, 39, "dense_0", "activations in the forward pass")
  assert str(err.value) == ("training diverged in epoch 3 at step 39: dense_0 went non-finite first (activations "
                            "in the forward pass); metrics.jsonl keeps epochs 1-3, the newest checkpoint is epoch 2")
  steps = _steps()
  steps["final_params_finite"][2] = False  # the first epoch's last update broke the head
  with pytest.raises(divergence.Diverged, match="^training diverged in epoch 1 at step 3: head went non-finite") as err:
    divergence.check(1, 3, steps, NAMES)
  assert str(err.value).endswith("metrics.jsonl keeps epoch 1, no checkpoint was saved")


def test_forward_finiteness_flags_each_layers_z_then_the_logits_in_order():
  acts = [{"pre": jnp.ones(2), "post": jnp.ones(2)} for _ in range(12)]
  acts[2] = {"pre": jnp.array([1.0, jnp.nan]), "post": jnp.ones(2)}
  acts[10] = {"pre": jnp.array([-jnp.inf, 1.0]), "post": jnp.ones(2)}
  acts[5] = {"pre": jnp.ones(2), "post": jnp.array([jnp.nan, 1.0])}  # h is not checked: φ keeps finite z finite
  flags = np.asarray(divergence.forward_finiteness(acts, jnp.array([0.0, jnp.inf])))
  assert flags.shape == (13,) and np.flatnonzero(~flags).tolist() == [2, 10, 12]
  huge = [{"pre": jnp.array([3e38, -3e38], jnp.float32), "post": jnp.ones(2)}]  # Σ x·0, not Σ x: no overflow
  assert np.asarray(divergence.forward_finiteness(huge, jnp.array([3e38], jnp.float32))).tolist() == [True, True]


def test_params_finiteness_follows_the_layer_order_past_ten_layers():
  # Sorted string keys would put block 10 before block 2; the flags must follow the layers' own order.
  params = {"blocks": {i: {"layer": {"kernel": jnp.ones(2), "bias": jnp.zeros(1)}} for i in range(12)},
            "head": {"kernel": jnp.ones(2), "bias": jnp.zeros(1)}}
  params["blocks"][10]["layer"]["bias"] = jnp.array([jnp.inf])
  params["head"]["kernel"] = jnp.array([jnp.nan, 1.0])
  flags = np.asarray(divergence.params_finiteness(params))
  assert flags.shape == (13,) and np.flatnonzero(~flags).tolist() == [10, 12]
  softmax_regression = {"head": {"kernel": jnp.ones(2), "bias": jnp.zeros(1)}}
  assert np.asarray(divergence.params_finiteness(softmax_regression)).tolist() == [True]
