"""Per-layer statistics of signals, back-propagated gradients, weights and updates; the at-init probe.

One small function per kind of tensor is mapped over the layers, and the results are
flattened into keys ``<group>/<layer>/<stat>`` (layers ``dense_i`` / ``conv_i``, plus
``head`` for weights). Moments pool every element of a layer's tensor — examples,
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

Everything is computed on device; only these scalars (and, when asked, fixed-bin histograms)
reach the host.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lab10 import config as config_lib

Bounds = tuple[float, float] | None
SATURATION_MARGIN = 0.01  # saturated: within 1% of the activation's range from a bound
P98 = 98.0
SAMPLE_STRIDE = 17  # search_percentile_rows: the first passes count every 17th element
_ALL = np.iinfo(np.int32).max  # a bit pattern above every |x|, NaN included: #{bits ≤ _ALL} = N


# --- one tensor → a few scalars -----------------------------------------------------------------


def moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and (population) variance of all elements: μ = Σx/N, σ² = Σ(x − μ)²/N."""
  mean = jnp.mean(x)
  return mean, jnp.mean(jnp.square(x - mean))


def abs_percentile(x: jax.Array, q: float = P98) -> jax.Array:
  """The q-th percentile of |x| over all N elements, interpolated linearly like ``np.percentile``:
  with s the ascending sort and p = q/100·(N − 1), s[⌊p⌋] + (p − ⌊p⌋)(s[⌊p⌋+1] − s[⌊p⌋]).
  ``abs_percentiles`` explains how."""
  return abs_percentiles([x], q)[0]


def abs_percentiles(xs: Sequence[jax.Array], q: float = P98) -> list[jax.Array]:
  """``abs_percentile`` of each array in ``xs``; arrays of equal size are computed together.

  On GPUs a sort (``sort_percentile_rows``). On CPUs and TPUs a search without a sort
  (``search_percentile_rows``): XLA on CPU sorts 20–30× slower than it counts, and a GPU would pay a
  host round trip for each iteration of the search's loop. Both are exact and give the same numbers.
  """
  out: list[jax.Array | None] = [None] * len(xs)
  by_size: dict[int, list[int]] = {}
  for i, x in enumerate(xs):
    by_size.setdefault(x.size, []).append(i)
  for indices in by_size.values():
    a = jnp.stack([jnp.abs(xs[i]).reshape(-1).astype(jnp.float32) for i in indices])
    search, sort = functools.partial(search_percentile_rows, q=q), functools.partial(sort_percentile_rows, q=q)
    rows = jax.lax.platform_dependent(a, cpu=search, tpu=search, default=sort)
    for row, i in enumerate(indices):
      out[i] = rows[row]
  return out


def sort_percentile_rows(a: jax.Array, q: float) -> jax.Array:
  """The q-th percentile of each row of ``a`` (shape (L, N)), interpolated like ``np.percentile``, by a sort."""
  n = a.shape[1]
  pos = q / 100.0 * (n - 1)
  lo = int(np.floor(pos))
  s = jnp.sort(a, axis=1)
  return s[:, lo] + (pos - lo) * (s[:, min(lo + 1, n - 1)] - s[:, lo])


def search_percentile_rows(a: jax.Array, q: float) -> jax.Array:
  """The q-th percentile of each row of ``a`` (rows ≥ 0, shape (L, N)), interpolated like ``np.percentile``.

  Exact, without a sort: s[⌊p⌋] is found by searching the float32 bit patterns, which are ordered like
  the values for x ≥ 0, with counting passes #{bits ≤ t}. A search keeps a bracket (low, high] with
  #{bits ≤ low} ≤ rank < #{bits ≤ high} and moves one end per pass to a trial pattern interpolated from
  the two counts (regula falsi on the empirical CDF), or to the midpoint after an interpolation that did
  not cut the count gap to a quarter (regula falsi stalls).

  A counting pass runs at ~3·10⁹ elements/s on a CPU core, so most passes are made cheap by a sample
  (every ``SAMPLE_STRIDE``-th element, a stride coprime with power-of-two widths so every unit is seen):
  1. on the sample, bracket the sample ranks 4 standard deviations (+2) either side of the target;
  2. one pass counts the full data at those two patterns. They bracket ⌊p⌋ unless the sample was far
     off, and then the whole range stands in on that side: the result is exact either way;
  3. the search goes on over the full data from that bracket (about a thousand elements wide on 51,200)
     and stops as soon as #{bits ≤ low} = ⌊p⌋ (s[⌊p⌋] is then the smallest value above low),
     #{bits ≤ high} = ⌊p⌋ + 1 (the largest value up to high), or high = low + 1; three more passes find
     s[⌊p⌋] and s[⌊p⌋+1] (a minimum over the values above low, or the negated values up to high, row by row;
     a count; a minimum).
  On the activations of a 100 × 512 layer: 9–15 passes over the sample and 6–10 over the full data,
  against 14–22 full passes without the sample (1.36 against 1.67 ms for four such layers on 2 CPU
  cores). Rows (an MLP's equal-size hidden layers) share each pass, one stacked reduction per pass.
  """
  rows, n = a.shape
  pos = q / 100.0 * (n - 1)
  lo = int(np.floor(pos))
  bits = jax.lax.bitcast_convert_type(a, jnp.int32)

  # 1. Sample ranks either side of the target, 4 standard deviations of a sample quantile plus 2 apart.
  sample = bits[:, ::SAMPLE_STRIDE]
  size = sample.shape[1]
  frac = (lo + 0.5) / n
  centre = frac * size - 0.5
  margin = 4.0 * np.sqrt(size * frac * (1 - frac)) + 2
  ranks = np.clip([int(np.floor(centre - margin)), int(np.ceil(centre + margin))], 0, size - 1)
  sample = jnp.concatenate([sample, sample])
  rank = jnp.repeat(jnp.asarray(ranks, jnp.int32), rows)
  zeros = _count(sample, jnp.zeros(2 * rows, jnp.int32))
  at_zero = zeros > rank  # the target is an exact zero: (−1, 0] brackets it
  low, high, _, _ = _search(sample, rank, jnp.where(at_zero, -1, 0), jnp.where(at_zero, 0, jnp.max(sample, axis=1)),
                            jnp.where(at_zero, 0, zeros), jnp.where(at_zero, zeros, size), gap=8)
  # 2. Count the full data at the two sample patterns; keep the tightest bracket of ⌊p⌋ among them and the ends.
  trials = jnp.stack([low[:rows], high[rows:]], axis=1)  # #{sample ≤ ·} ≤ the lower rank; > the upper rank
  counts = _count(bits, trials)
  candidates = jnp.concatenate([jnp.full((rows, 1), -1), trials, jnp.full((rows, 1), _ALL)], axis=1)
  candidate_counts = jnp.concatenate([jnp.zeros((rows, 1), jnp.int32), counts, jnp.full((rows, 1), n)], axis=1)
  below_rank = candidate_counts <= lo
  low = jnp.max(jnp.where(below_rank, candidates, -1), axis=1)
  high = jnp.min(jnp.where(below_rank, _ALL, candidates), axis=1)
  c_low = jnp.max(jnp.where(below_rank, candidate_counts, 0), axis=1)
  c_high = jnp.min(jnp.where(below_rank, n, candidate_counts), axis=1)
  # 3. The exact search over the full data.
  low, high, c_low, c_high = _search(bits, jnp.full(rows, lo, jnp.int32), low, high, c_low, c_high)
  inf = jnp.float32(jnp.inf)
  # s[lo] is the smallest value above low where #{bits ≤ low} = lo, else the largest up to high where
  # #{bits ≤ high} = lo + 1 (else high = low + 1 is s[lo]'s pattern): one pass, a minimum of a or of −a per row.
  up = c_low == lo
  m = jnp.min(jnp.where(up[:, None], jnp.where(bits > low[:, None], a, inf), jnp.where(bits <= high[:, None], -a, inf)),
              axis=1)
  below = jnp.where(up, m, jnp.where(c_high == lo + 1, -m, jax.lax.bitcast_convert_type(high, jnp.float32)))
  # s[lo + 1] is s[lo] again if it is repeated, else the smallest value above it.
  repeated = jnp.sum(a <= below[:, None], axis=1, dtype=jnp.int32) > lo + 1
  above = jnp.where(repeated | (lo + 1 >= n), below, jnp.min(jnp.where(a > below[:, None], a, inf), axis=1))
  return below + (pos - lo) * (above - below)


def _count(bits: jax.Array, threshold: jax.Array) -> jax.Array:
  """Per row of ``bits`` (L, N): #{bits ≤ threshold}, for thresholds of shape (L,) or (L, K)."""
  if threshold.ndim == 1:
    return jnp.sum(bits <= threshold[:, None], axis=1, dtype=jnp.int32)
  return jnp.sum(bits[:, None, :] <= threshold[:, :, None], axis=2, dtype=jnp.int32)


def _search(bits: jax.Array, rank: jax.Array, low, high, c_low, c_high, gap: int = 0):
  """Narrow each row's bracket (low, high] around ``rank`` (``search_percentile_rows`` explains how) until
  #{bits ≤ low} = rank, #{bits ≤ high} = rank + 1, high = low + 1, or the count gap is at most ``gap``."""

  def found(b):  # b: int32 (5, L) — low, high, c_low, c_high, bisect next (one array: one write per pass)
    return (b[2] == rank) | (b[3] == rank + 1) | (b[1] - b[0] <= 1) | (b[3] - b[2] <= gap)

  def narrow(b):  # a finished row stays finished: its end conditions survive any further move
    low, high, c_low, c_high, bisect = b
    width = (high - low).astype(jnp.float32)
    frac = jnp.clip((rank + 0.5 - c_low) / (c_high - c_low), 0.0, 0.999)  # < 1: no int32 overflow below
    trial = jnp.where(bisect > 0, low + (high - low) // 2, low + (frac * width).astype(jnp.int32))
    trial = jnp.clip(trial, low + 1, jnp.maximum(high - 1, low + 1))
    c = _count(bits, trial)
    above = c > rank
    new_c_low, new_c_high = jnp.where(above, c_low, c), jnp.where(above, c, c_high)
    stalled = (bisect == 0) & (4 * (new_c_high - new_c_low) > c_high - c_low)  # bisect next
    return jnp.stack([jnp.where(above, low, trial), jnp.where(above, trial, high), new_c_low, new_c_high,
                      stalled.astype(jnp.int32)])

  start = jnp.stack([low, high, c_low, c_high, jnp.zeros(bits.shape[0], jnp.int32)])
  return tuple(jax.lax.while_loop(lambda b: ~jnp.all(found(b)), narrow, start)[:4])


def forward_stats(pre: jax.Array, post: jax.Array, bounds: Bounds = None,
                  abs_p98: jax.Array | None = None) -> dict[str, jax.Array]:
  """Statistics of one layer's z (``pre``) and h = φ(z) (``post``); the module docstring defines them.
  ``abs_p98``: the layer's ``act_abs_p98`` if already found (``abs_percentiles`` of all layers at once)."""
  pre_mean, pre_var = moments(pre)
  act_mean, act_var = moments(post)
  never_positive = jnp.all(pre.reshape(-1, pre.shape[-1]) <= 0, axis=0)
  stats = {"pre_mean": pre_mean, "pre_var": pre_var, "act_mean": act_mean, "act_var": act_var,
           "act_abs_p98": abs_percentile(post) if abs_p98 is None else abs_p98, "dead": jnp.mean(never_positive)}
  if bounds is not None:
    lo, hi = bounds
    margin = SATURATION_MARGIN * (hi - lo)
    stats["saturated"] = jnp.mean((post < lo + margin) | (post > hi - margin))
  return stats


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


def histogram(x: jax.Array, edges: jax.Array) -> jax.Array:
  """Counts of x in the fixed bins ``edges`` (len B + 1, ascending, equal widths); values outside
  the edges are counted in the first or last bin, so the counts sum to ``x.size``."""
  bins = edges.shape[0] - 1
  index = jnp.floor((x.reshape(-1) - edges[0]) / (edges[-1] - edges[0]) * bins).astype(jnp.int32)
  return jnp.zeros(bins, jnp.int32).at[jnp.clip(index, 0, bins - 1)].add(1)


def histogram_edges(bounds: Bounds, bins: int = 50) -> np.ndarray:
  """Fixed edges for activation histograms: the activation's range if bounded, else [−5, 5]."""
  lo, hi = bounds if bounds is not None else (-5.0, 5.0)
  return np.linspace(lo, hi, bins + 1, dtype=np.float32)


# --- layers → flat keys -------------------------------------------------------------------------


def layer_kernels(tree, layer_names: Sequence[str]) -> dict[str, jax.Array]:
  """The kernel of each hidden layer (by name) and of ``head`` from a params-shaped ``nnx.State``
  (parameters, gradients or updates). ``layer_names`` in the model's order (``model.layer_names``)."""
  kernels = {name: tree["blocks"][i]["layer"]["kernel"][...] for i, name in enumerate(layer_names)}
  kernels["head"] = tree["head"]["kernel"][...]
  return kernels


def flatten(nested: dict[str, dict[str, dict[str, jax.Array]]]) -> dict[str, jax.Array]:
  """``{group: {layer: {stat: v}}}`` → ``{"group/layer/stat": v}``."""
  return {f"{group}/{layer}/{stat}": value for group, layers in nested.items()
          for layer, stats in layers.items() for stat, value in stats.items()}


def layer_stats(acts: dict, deltas: dict | None = None, *, bounds: Bounds = None, kernels: dict | None = None,
                grads: dict | None = None, updates: dict | None = None) -> dict[str, jax.Array]:
  """Flat per-layer statistics from per-layer tensors: ``acts[L] = {"pre", "post"}``, ``deltas[L]`` =
  ∂L/∂z, and ``kernels`` / ``grads`` / ``updates`` as returned by ``layer_kernels``."""
  p98 = dict(zip(acts, abs_percentiles([a["post"] for a in acts.values()])))  # one search for all layers
  nested = {"forward": {name: forward_stats(a["pre"], a["post"], bounds, p98[name]) for name, a in acts.items()}}
  if deltas is not None:
    nested["backward"] = {name: backward_stats(d) for name, d in deltas.items()}
  for name, kernel in (kernels or {}).items():
    per_kernel = weight_stats(kernel, None if grads is None else grads[name],
                              None if updates is None else updates[name])
    for group, stats in per_kernel.items():
      nested.setdefault(group, {})[name] = stats
  return flatten(nested)


def activation_histograms(acts: dict, edges: jax.Array) -> dict[str, jax.Array]:
  """``{layer: counts}`` of each layer's h = φ(z) in the bins ``edges``."""
  return {name: histogram(a["post"], edges) for name, a in acts.items()}


def zero_taps(model, x: jax.Array) -> dict[str, jax.Array]:
  """Zeros shaped like every hidden layer's z, to pass as ``taps`` (their gradient is ∂L/∂z)."""
  shapes = jax.eval_shape(lambda x: model.forward(x)[1], x)
  return {name: jnp.zeros(s["pre"].shape, s["pre"].dtype) for name, s in shapes.items()}


# --- at initialisation --------------------------------------------------------------------------


def layer_gradients(model, x: jax.Array, loss: Callable[[jax.Array], jax.Array]) -> tuple[dict, dict, nnx.State]:
  """One forward/backward pass of ``loss(logits) -> scalar`` on ``x`` in eval mode (no dropout, batch
  norm with its running statistics): ``(acts, deltas, grads)`` with ``acts[L] = {"pre", "post"}``,
  ``deltas[L]`` = ∂L/∂z (the gradient with respect to zero ``taps``) and ``grads`` = ∂L/∂params, an
  ``nnx.State`` shaped like the parameters (``layer_kernels`` picks the kernels)."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  def objective(params, taps):
    logits, acts = nnx.merge(graphdef, params, rest).forward(x, taps=taps)
    return loss(logits), acts

  (grads, deltas), acts = jax.grad(objective, argnums=(0, 1), has_aux=True)(params, zero_taps(model, x))
  return acts, deltas, grads


def init_stats(model, batch: dict, *, bounds: Bounds = None) -> dict[str, jax.Array]:
  """Forward, backward, weight-gradient and parameter statistics of ``model`` on ``batch`` in eval
  mode (``layer_gradients`` of the softmax cross-entropy of ``batch["y"]``)."""
  acts, deltas, grads = layer_gradients(
      model, batch["x"], lambda logits: optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean())
  params = nnx.state(model, nnx.Param)
  names = model.layer_names  # not list(acts): JAX returns dicts sorted, dense_10 before dense_2
  return layer_stats(acts, deltas, bounds=bounds, kernels=layer_kernels(params, names),
                     grads=layer_kernels(grads, names))


def probe_init(build: Callable[[jax.Array], nnx.Module], batch: dict, keys: jax.Array, *,
               bounds: Bounds = None) -> dict[str, np.ndarray]:
  """``init_stats`` of the networks ``build(key)`` for every key in ``keys``, drawn and measured
  in one compiled ``vmap``; returns each statistic's mean over the keys (the one host read)."""
  per_seed = jax.jit(jax.vmap(lambda key: init_stats(build(key), batch, bounds=bounds)))(keys)
  return {k: float(v) for k, v in jax.device_get(jax.tree.map(lambda v: jnp.mean(v, 0), per_seed)).items()}


def jacobian_singular_values(model, x: jax.Array) -> dict[str, jax.Array]:
  """Mean singular value of each layer Jacobian J_l = ∂z_{l+1}/∂z_l = W_{l+1}ᵀ diag(φ'(z_l)) of an
  MLP, averaged over the examples of ``x`` (Glorot & Bengio 2010, §4.2.2: ≈ 0.5 with the standard
  init vs ≈ 0.8 normalized, tanh). Keys ``jacobian/dense_l/mean_sv`` for l = 0 … depth − 2."""
  _, acts = model.forward(x)
  names = model.layer_names
  out = {}
  for i, (name, block) in enumerate(zip(names[:-1], model.blocks)):
    slope = jax.vmap(jax.grad(block.activation))(acts[name]["pre"].reshape(-1)).reshape(acts[name]["pre"].shape)
    kernel_next = model.blocks[i + 1].layer.kernel[...]
    jacobians = slope[:, :, None] * kernel_next[None]  # (B, n_l, n_{l+1}); J_l is its transpose
    out[f"jacobian/{name}/mean_sv"] = jnp.mean(jnp.linalg.svd(jacobians, compute_uv=False))
  return out


def probe_grid(activations: Sequence[str], inits: Sequence[str], depths: Sequence[int], widths: Sequence[int],
               batch: dict, *, seeds: int = 4, num_classes: int = 10,
               base: config_lib.Config = config_lib.Config()) -> list[dict]:
  """``probe_init`` over activations × initializers × depths × widths (MLPs; other settings from
  ``base``), averaged over ``seeds`` parameter draws. One row per network and hidden layer with that
  layer's forward and backward statistics."""
  rows = []
  keys = jax.random.split(jax.random.key(base.seed), seeds)
  for activation, init, depth, width in itertools.product(activations, inits, depths, widths):
    c = config_lib.validate(config_lib.Config(**{**base.to_json(), "model": "mlp", "activation": activation,
                                                  "init": init, "depth": depth, "width": (width,)}))
    build = lambda key: config_lib.make_model(c, batch["x"].shape[1:], num_classes, nnx.Rngs(params=key))
    stats = probe_init(build, batch, keys, bounds=config_lib.activation_bounds(c))
    for layer in range(depth):
      prefix = f"dense_{layer}"
      row = {"activation": activation, "init": init, "depth": depth, "width": width, "layer": layer, "seeds": seeds}
      row.update({k.split("/", 1)[0] + "/" + k.rsplit("/", 1)[1]: v for k, v in stats.items()
                  if k.split("/")[1] == prefix})
      rows.append(row)
  return rows
