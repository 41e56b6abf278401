"""The pure train step ``(state, batch) -> (state, metrics)``, the loss, and the logged step that also measures.

The model lives as ``nnx.split`` state (``graphdef`` + parameter and non-parameter ``nnx.State``) so every
step is a pure function; ``nnx.merge`` inside the traced function costs nothing at run time. Each step's
dropout masks come from ``fold_in(dropout_key, step)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from lab10 import divergence, probes


class TrainState(NamedTuple):
  params: nnx.State        # nnx.Param variables
  rest: nnx.State          # everything else: batch-norm statistics
  opt_state: optax.OptState
  step: jax.Array          # int32, steps taken so far
  dropout_key: jax.Array   # folded with ``step`` for each step's dropout masks


def loss_fn(model, batch: dict, *, train: bool, dropout_key: jax.Array | None = None, taps: list | None = None):
  """Mean softmax cross-entropy on logits; aux = (logits, per-layer activations). ``taps`` are added
  to the pre-activations (zeros: differentiate w.r.t. them for ∂L/∂z)."""
  logits, acts = model.forward(batch["x"], train=train, dropout_key=dropout_key, taps=taps)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
  return loss, (logits, acts)


def init_state(model: nnx.Module, tx: optax.GradientTransformation, dropout_key: jax.Array):
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  state = TrainState(params, rest, tx.init(params), jnp.zeros((), jnp.int32), dropout_key)
  return graphdef, state


def _step(graphdef, tx: optax.GradientTransformation, state: TrainState, batch: dict, taps: list | None):
  """One update; returns (state, metrics, trace) with trace = (acts, ∂L/∂taps, grads): the gradients as the
  backward pass wrote them, the values the optimizer applied (``after_backward`` adds an exact zero)."""

  def objective(params, taps):
    # Fresh Variables for this trace: batch norm mutates its statistics during the forward pass.
    model = nnx.merge(graphdef, params, jax.tree.map(lambda v: v, state.rest))
    key = jax.random.fold_in(state.dropout_key, state.step)
    loss, (logits, acts) = loss_fn(model, batch, train=True, dropout_key=key, taps=taps)
    _, _, rest = nnx.split(model, nnx.Param, ...)  # batch-norm statistics after this step
    return loss, (logits, acts, rest)

  (loss, (logits, acts, rest)), (grads, deltas) = jax.value_and_grad(
      objective, argnums=(0, 1), has_aux=True)(state.params, taps)
  # The trace keeps the gradients as the backward pass wrote them: statistics that read ``after_backward``'s
  # copy would make XLA write that copy out in full (it is otherwise fused into the optimizer's update).
  updates, opt_state = tx.update(after_backward(grads), state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
  new_state = TrainState(params, rest, opt_state, state.step + 1, state.dropout_key)
  metrics = {"loss": loss, "accuracy": accuracy, "forward_finite": divergence.forward_finiteness(acts, logits)}
  return new_state, metrics, (acts, deltas, grads)


def exact_zero(tree) -> jax.Array:
  """0.0 computed from one element of every array in ``tree`` (exactly 0 whatever they hold, NaN included).

  Adding it makes a value data-dependent on ``tree``: XLA's copy insertion orders buffer reuse by data
  dependence only, so where an array is overwritten in place while another computation still reads its
  old contents, XLA copies the array unless the overwrite depends on that reader's result.
  """
  firsts = [v.reshape(-1)[0] for v in jax.tree.leaves(tree) if v.size]
  return sum((v != v).astype(jnp.float32) for v in firsts) * 0.0


def after_backward(grads):
  """``grads`` + ``exact_zero(grads)``: each weight's update then depends on the whole backward pass, and
  so on the backward matmul that last reads the old weight, and is written in place after it. Without
  this XLA copies every weight the backward pass reads, once per step."""
  zero = exact_zero(grads)
  return jax.tree.map(lambda g: g + zero.astype(g.dtype), grads)


def make_train_step(graphdef, tx: optax.GradientTransformation) -> Callable:
  """``train_step(state, batch) -> (state, metrics)``, pure; jit it or scan it."""

  def train_step(state: TrainState, batch: dict):
    return _step(graphdef, tx, state, batch, None)[:2]

  return train_step


def step_tensors(graphdef, tx: optax.GradientTransformation, state: TrainState, batch: dict):
  """One training step, as ``train_step`` takes it, and its per-layer tensors: ``(state, metrics, tensors)``.

  ``tensors["acts"][i] = {"pre": z, "post": h}`` and ``tensors["dz"][i]`` = ∂L/∂z of hidden layer i
  (named ``model.layer_names[i]``), then for every kernel (hidden layers, then ``head``) ``kernel`` W_t, ``dw`` = ∂L/∂W as the
  optimizer received it and ``update`` = W_{t+1} − W_t, the change the step made (exact in float32
  wherever the two are within a factor 2). The values are those of the training step itself — train mode:
  the dropout masks and batch-norm batch statistics the update used (``post`` is taken before dropout).
  Arrays only, so ``jax.jit(step_tensors, static_argnums=(0, 1))`` compiles it.
  """
  model = nnx.merge(graphdef, state.params, jax.tree.map(lambda v: v, state.rest))
  new_state, metrics, (acts, deltas, grads) = _step(graphdef, tx, state, batch, probes.zero_taps(model, batch["x"]))
  # The update from the new and old parameters: XLA then fuses the optimizer's update into the parameter write
  # as in a plain step, where reading the optimizer's ``updates`` would make it write them out in full.
  kernels, new_kernels = probes.layer_kernels(state.params), probes.layer_kernels(new_state.params)
  tensors = {"acts": acts, "dz": deltas, "kernel": kernels,
             "dw": probes.layer_kernels(grads), "update": [new - old for new, old in zip(new_kernels, kernels)]}
  return new_state, metrics, tensors


def make_logged_train_step(graphdef, tx: optax.GradientTransformation, *, bounds: tuple[float, float] | None = None,
                           histograms: bool = False) -> Callable:
  """``make_train_step`` that also returns the step's per-layer statistics (``probes.layer_stats`` of
  ``step_tensors``) in ``metrics["stats"]``, and with ``histograms`` those of activations, weights and weight
  gradients (``probes.layer_histograms``) in ``metrics["histograms"]``. Measuring the training step itself, rather than a separate dropout-free pass, halves
  a logged step's cost, and the gradients measured are exactly those the optimizer applied."""

  def train_step(state: TrainState, batch: dict):
    new_state, metrics, t = step_tensors(graphdef, tx, state, batch)
    names = nnx.merge(graphdef, state.params, state.rest).layer_names
    metrics["stats"] = probes.layer_stats(names, t["acts"], t["dz"], bounds=bounds, kernels=t["kernel"],
                                          grads=t["dw"], updates=t["update"])
    if histograms:
      metrics["histograms"] = probes.layer_histograms(names, t["acts"], t["kernel"], t["dw"])
    return new_state, metrics

  return train_step
