"""Per-layer statistics of signals, back-propagated gradients, weights and updates; the at-init probe.

One small function per kind of tensor is mapped over the layers, and the results are
flattened into keys ``<group>/<layer>/<stat>`` (layers ``dense_i`` / ``conv_i``, plus
``head`` for weights). Per-layer tensors come as lists in layer order beside the layer names. Moments pool every element of a layer's tensor — examples,
positions (conv) and units alike:

=========================================  ==========================================================
``forward/L/pre_mean``, ``pre_var``        mean, variance of the pre-activation z
``forward/L/act_mean``, ``act_var``        mean, variance of h = φ(z) (before dropout)
``forward/L/act_abs_p98``                  98th percentile of |h| (Glorot & Bengio 2010, Fig. 3),
                                           linear interpolation as ``np.percentile``
``forward/L/saturated``                    fraction of h within ``SATURATION_MARGIN`` (1%) of the
                                           activation's range from either bound: sigmoid h < 0.01 or
                                           > 0.99, tanh/softsign |h| > 0.98. Only for bounded activations.
``forward/L/dead``                         fraction of units (channels) whose z ≤ 0 for every example
                                           (and position) of the batch: dead ReLUs; for other
                                           activations, units that are never in their positive regime
``backward/L/grad_mean``, ``grad_var``     mean, variance of δ = ∂L/∂z, the quantity of Glorot's Eq. 6
                                           and He's Eq. 13 (taken through ``taps``)
``grads/L/norm``, ``grads/L/var``          ‖∂L/∂W‖₂ and the variance of its entries (kernels only)
``params/L/norm``                          ‖W‖₂
``updates/L/norm``, ``updates/L/ratio``    ‖ΔW‖₂ and ‖ΔW‖₂ / ‖W‖₂ (W before the update); in
                                           training ΔW = W_{t+1} − W_t, the change the step made
=========================================  ==========================================================

Everything is computed on device; only these scalars (and, when asked, histograms: ``fitted_histogram``)
reach the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lab10 import models, percentile

Bounds = tuple[float, float] | None
SATURATION_MARGIN = 0.01  # saturated: within 1% of the activation's range from a bound
P98 = 98.0


# --- one tensor → a few scalars -----------------------------------------------------------------


def moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and (population) variance of all elements: μ = Σx/N, σ² = Σ(x − μ)²/N."""
  mean = jnp.mean(x)
  return mean, jnp.mean(jnp.square(x - mean))


def forward_stats(pre: jax.Array, post: jax.Array, bounds: Bounds = None,
                  abs_p98: jax.Array | None = None) -> dict[str, jax.Array]:
  """Statistics of one layer's z (``pre``) and h = φ(z) (``post``); the module docstring defines them.
  ``abs_p98``: the layer's ``act_abs_p98`` if already found (``abs_percentiles`` of all layers at once)."""
  pre_mean, pre_var = moments(pre)
  act_mean, act_var = moments(post)
  stats = {"pre_mean": pre_mean, "pre_var": pre_var, "act_mean": act_mean, "act_var": act_var,
           "act_abs_p98": percentile.abs_percentile(post, P98) if abs_p98 is None else abs_p98,
           "dead": dead_fraction(pre)}
  if bounds is not None:
    lo, hi = bounds
    margin = SATURATION_MARGIN * (hi - lo)
    stats["saturated"] = jnp.mean((post < lo + margin) | (post > hi - margin))
  return stats


def dead_fraction(x: jax.Array) -> jax.Array:
  """Fraction of the units (last axis) whose x ≤ 0 for every example and position of the batch."""
  return jnp.mean(jnp.all(x.reshape(-1, x.shape[-1]) <= 0, axis=0))


def backward_stats(delta: jax.Array) -> dict[str, jax.Array]:
  """Mean and variance of the back-propagated gradient δ = ∂L/∂z of one layer."""
  grad_mean, grad_var = moments(delta)
  return {"grad_mean": grad_mean, "grad_var": grad_var}


def weight_stats(kernel: jax.Array, grad: jax.Array | None = None,
                 update: jax.Array | None = None) -> dict[str, dict[str, jax.Array]]:
  """``{"params": {norm}, "grads": {norm, var}, "updates": {norm, ratio}}`` of one kernel."""
  norm = jnp.linalg.norm(kernel.reshape(-1))
  out = {"params": {"norm": norm}}
  if grad is not None:
    # ‖g‖² = N(σ² + μ²): a sum of non-negative terms, so no cancellation, and one pass over g fewer.
    mean, var = moments(grad)
    out["grads"] = {"norm": jnp.sqrt(grad.size * (var + jnp.square(mean))), "var": var}
  if update is not None:
    update_norm = jnp.linalg.norm(update.reshape(-1))
    out["updates"] = {"norm": update_norm, "ratio": update_norm / norm}
  return out


HISTOGRAM_BINS = 50


def fitted_histogram(x: jax.Array, bins: int = HISTOGRAM_BINS) -> dict[str, jax.Array]:
  """``{"edges", "counts"}``: the finite values of ``x`` in ``bins`` equal bins from their smallest to their
  largest (no bin empty for want of range, no outlier piled into an end bin). A constant tensor gets the bins
  [v − ½, v + ½]; non-finite values are not counted, so the counts sum to the finite values' number."""
  v = x.reshape(-1).astype(jnp.float32)
  finite = jnp.isfinite(v)
  lo = jnp.min(jnp.where(finite, v, jnp.inf))
  hi = jnp.max(jnp.where(finite, v, -jnp.inf))
  lo, hi = jnp.where(jnp.isfinite(lo), lo, 0.0), jnp.where(jnp.isfinite(hi), hi, 0.0)
  flat = hi <= lo
  lo, hi = jnp.where(flat, lo - 0.5, lo), jnp.where(flat, hi + 0.5, hi)
  edges = lo + (hi - lo) * (jnp.arange(bins + 1, dtype=jnp.float32) / bins)
  index = jnp.floor((jnp.where(finite, v, lo) - lo) / (hi - lo) * bins).astype(jnp.int32)
  counts = jnp.zeros(bins, jnp.int32).at[jnp.clip(index, 0, bins - 1)].add(finite.astype(jnp.int32))
  return {"edges": edges.at[-1].set(hi), "counts": counts}


# --- layers → flat keys -------------------------------------------------------------------------


def layer_kernels(tree) -> list[jax.Array]:
  """The kernel of each hidden layer, in order, then of the head, from a params-shaped ``nnx.State``
  (parameters, gradients or updates); named ``model.layer_names + ["head"]``."""
  return [block["layer"]["kernel"][...] for block in models.hidden_blocks(tree)] + [tree["head"]["kernel"][...]]


def flatten(nested: dict[str, dict[str, dict[str, jax.Array]]]) -> dict[str, jax.Array]:
  """``{group: {layer: {stat: v}}}`` → ``{"group/layer/stat": v}``."""
  return {f"{group}/{layer}/{stat}": value for group, layers in nested.items()
          for layer, stats in layers.items() for stat, value in stats.items()}


def layer_stats(names: Sequence[str], acts: Sequence[dict], deltas: Sequence[jax.Array] | None = None, *,
                bounds: Bounds = None, kernels: Sequence[jax.Array] | None = None,
                grads: Sequence[jax.Array] | None = None,
                updates: Sequence[jax.Array] | None = None) -> dict[str, jax.Array]:
  """Flat per-layer statistics from per-layer tensors in layer order: ``acts[i] = {"pre", "post"}`` and
  ``deltas[i]`` = ∂L/∂z of hidden layer ``names[i]``; ``kernels`` / ``grads`` / ``updates`` of the hidden
  layers and then the head, as ``layer_kernels`` returns them."""
  p98 = percentile.abs_percentiles([a["post"] for a in acts], P98)  # one search for all layers
  nested = {"forward": {name: forward_stats(a["pre"], a["post"], bounds, p)
                        for name, a, p in zip(names, acts, p98)}}
  if deltas is not None:
    nested["backward"] = {name: backward_stats(d) for name, d in zip(names, deltas)}
  for i, (name, kernel) in enumerate(zip([*names, "head"], kernels or [])):
    per_kernel = weight_stats(kernel, None if grads is None else grads[i], None if updates is None else updates[i])
    for group, stats in per_kernel.items():
      nested.setdefault(group, {})[name] = stats
  return flatten(nested)


def layer_histograms(names: Sequence[str], acts: Sequence[dict], kernels: Sequence[jax.Array],
                     grads: Sequence[jax.Array]) -> dict[str, dict[str, jax.Array]]:
  """``fitted_histogram`` of each hidden layer's h = φ(z) (``activations/<layer>``) and of each kernel and its
  weight gradient (``weights/<layer>``, ``grads/<layer>``; hidden layers, then ``head``)."""
  out = {f"activations/{name}": fitted_histogram(a["post"]) for name, a in zip(names, acts)}
  for name, kernel, grad in zip([*names, "head"], kernels, grads):
    out[f"weights/{name}"], out[f"grads/{name}"] = fitted_histogram(kernel), fitted_histogram(grad)
  return out


def zero_taps(model, x: jax.Array) -> list[jax.Array]:
  """Zeros shaped like every hidden layer's z, in order, to pass as ``taps`` (their gradient is ∂L/∂z)."""
  shapes = jax.eval_shape(lambda x: model.forward(x)[1], x)
  return [jnp.zeros(s["pre"].shape, s["pre"].dtype) for s in shapes]


# --- at initialisation --------------------------------------------------------------------------


def layer_gradients(model, x: jax.Array, loss: Callable[[jax.Array], jax.Array]) -> tuple[list, list, nnx.State]:
  """One forward/backward pass of ``loss(logits) -> scalar`` on ``x`` in eval mode (no dropout, batch
  norm with its running statistics): ``(acts, deltas, grads)`` with ``acts[i] = {"pre", "post"}``,
  ``deltas[i]`` = ∂L/∂z of hidden layer i (the gradient with respect to zero ``taps``) and ``grads`` =
  ∂L/∂params, an ``nnx.State`` shaped like the parameters (``layer_kernels`` picks the kernels)."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def objective(params, taps):
    logits, acts = nnx.merge(graphdef, params, rest).forward(x, taps=taps)
    return loss(logits), acts

  (grads, deltas), acts = jax.grad(objective, argnums=(0, 1), has_aux=True)(params, zero_taps(model, x))
  return acts, deltas, grads


def xent(y: jax.Array) -> Callable[[jax.Array], jax.Array]:
  """The mean softmax cross-entropy of labels ``y`` as a function of the logits."""
  return lambda logits: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def init_stats(model, batch: dict, *, bounds: Bounds = None) -> dict[str, jax.Array]:
  """Forward, backward, weight-gradient and parameter statistics of ``model`` on ``batch`` in eval
  mode (``layer_gradients`` of the softmax cross-entropy of ``batch["y"]``)."""
  acts, deltas, grads = layer_gradients(model, batch["x"], xent(batch["y"]))
  return layer_stats(model.layer_names, acts, deltas, bounds=bounds,
                     kernels=layer_kernels(nnx.state(model, nnx.Param)), grads=layer_kernels(grads))


def probe_init(build: Callable[[jax.Array], nnx.Module], batch: dict, keys: jax.Array, *,
               bounds: Bounds = None) -> dict[str, np.ndarray]:
  """``init_stats`` of the networks ``build(key)`` for every key in ``keys``, drawn and measured in one
  compiled ``vmap``: each statistic's values, one per key (the one host read)."""
  per_seed = jax.jit(jax.vmap(lambda key: init_stats(build(key), batch, bounds=bounds)))(keys)
  return {k: np.asarray(v) for k, v in jax.device_get(per_seed).items()}


def jacobian_singular_values(model, x: jax.Array) -> dict[str, jax.Array]:
  """Mean singular value of each layer Jacobian J_l = ∂z_{l+1}/∂z_l = W_{l+1}ᵀ diag(φ'(z_l)) of an
  MLP, averaged over the examples of ``x`` (Glorot & Bengio 2010, §4.2.2: ≈ 0.5 with the standard
  init vs ≈ 0.8 normalized, tanh). Keys ``jacobian/dense_l/mean_sv`` for l = 0 … depth − 2."""
  _, acts = model.forward(x)
  out = {}
  for i, (name, block) in enumerate(zip(model.layer_names[:-1], model.blocks)):
    pre = acts[i]["pre"]
    slope = jax.vmap(jax.grad(block.activation))(pre.reshape(-1)).reshape(pre.shape)
    kernel_next = model.blocks[i + 1].layer.kernel[...]
    jacobians = slope[:, :, None] * kernel_next[None]  # (B, n_l, n_{l+1}); J_l is its transpose
    out[f"jacobian/{name}/mean_sv"] = jnp.mean(jnp.linalg.svd(jacobians, compute_uv=False))
  return out
