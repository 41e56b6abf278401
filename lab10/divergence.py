"""Stopping on NaN/Inf: which step and which layer went non-finite first, found from cheap per-step flags.

Every training step records whether each layer's pre-activations z (and the logits) were all finite
(``forward_finiteness``); each epoch's end records whether each layer's parameters are (``params_finiteness``).
Parameters made non-finite by update k show up in step k + 1's forward pass at their own layer, so only the
epoch's last update needs the parameter check, and no step pays for checking every parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lab10 import models


class Diverged(RuntimeError):
  """Loss or parameters became non-finite: ``step`` is the first step where anything did, ``layer`` the
  first layer that did (``dense_3`` / ``conv_1`` / ``head``, or ``loss``), ``part`` what went non-finite
  (see ``locate``)."""

  def __init__(self, epoch: int, step: int, layer: str, part: str):
    where, what = f"at step {step}", f"{layer} went non-finite first ({part})"
    kept = f"the newest checkpoint is epoch {epoch - 1}" if epoch > 1 else "no checkpoint was saved"
    super().__init__(f"training diverged in epoch {epoch} {where}: {what}; "
                     f"metrics.jsonl keeps epoch{f's 1-{epoch}' if epoch > 1 else ' 1'}, {kept}")
    self.epoch, self.step, self.layer, self.part = epoch, step, layer, part


def _all_finite(tree) -> jax.Array:
  # Σ x·0 is 0 when every x is finite and NaN otherwise (no overflow, unlike Σ x): one vectorised float
  # reduction per array, which XLA on CPU runs several times faster than all(isfinite(x)).
  return jnp.isfinite(sum(jnp.sum(x * 0) for x in jax.tree.leaves(tree)))


def forward_finiteness(acts: Sequence[dict], logits: jax.Array) -> jax.Array:
  """Per layer, in forward order (hidden layers, then the logits): are this step's pre-activations z all finite?

  Only z: every activation in lab10 maps finite z to finite h = φ(z) (tests/test_activations.py; SELU
  overflows above |z| = 3.2e38, which the next layer's z then shows), so checking h would add cost and
  nothing else."""
  return jnp.stack([_all_finite(a["pre"]) for a in acts] + [_all_finite(logits)])


def params_finiteness(params) -> jax.Array:
  """Per layer (hidden blocks in order, then ``head``): are its parameters all finite?"""
  return jnp.stack([_all_finite(block) for block in models.hidden_blocks(params)] + [_all_finite(params["head"])])


def locate(steps: dict, names: Sequence[str]) -> tuple[int, str, str] | None:
  """``(index of the step, layer, part)`` where an epoch's per-step metrics first went non-finite, or None.

  Within a step things happen in this order: forward pass layer by layer, loss, update; ``names`` are the
  hidden layers' and then ``head``."""
  for i, loss in enumerate(steps["loss"]):
    bad = np.flatnonzero(~steps["forward_finite"][i])
    if bad.size:
      return i, names[bad[0]], "activations in the forward pass"
    if not np.isfinite(loss):
      return i, "loss", "every layer's activations finite"
  bad = np.flatnonzero(~steps["final_params_finite"])
  if bad.size:
    return len(steps["loss"]) - 1, names[bad[0]], "parameters after the update"
  return None


def check(epoch: int, last_step: int, steps: dict, names: Sequence[str]) -> None:
  """Raise ``Diverged`` if the epoch that ended at global step ``last_step`` went non-finite anywhere."""
  bad = locate(steps, names)
  if bad is not None:
    index, layer, part = bad
    raise Diverged(epoch, last_step - len(steps["loss"]) + index + 1, layer, part)
