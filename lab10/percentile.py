"""The exact percentile of |x| that the probes report (``forward/L/act_abs_p98``), without a sort where sorting is slow.

Linear interpolation as ``np.percentile``: with s the ascending sort of N values and p = q/100·(N − 1), the
q-th percentile is s[⌊p⌋] + (p − ⌊p⌋)(s[⌊p⌋+1] − s[⌊p⌋]). GPUs sort; CPUs and TPUs search the float32 bit
patterns with counting passes (``search_percentile_rows``). Both are exact.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

SAMPLE_STRIDE = 17  # search_percentile_rows: the first passes count every 17th element
_ALL = np.iinfo(np.int32).max  # a bit pattern above every |x|, NaN included: #{bits ≤ _ALL} = N


def abs_percentile(x: jax.Array, q: float) -> jax.Array:
  """The q-th percentile of |x| over all N elements, interpolated linearly like ``np.percentile``:
  with s the ascending sort and p = q/100·(N − 1), s[⌊p⌋] + (p − ⌊p⌋)(s[⌊p⌋+1] − s[⌊p⌋]).
  ``abs_percentiles`` explains how."""
  return abs_percentiles([x], q)[0]


def abs_percentiles(xs: Sequence[jax.Array], q: float) -> list[jax.Array]:
  """``abs_percentile`` of each array in ``xs``; arrays of equal size are computed together.

  On GPUs a sort (``sort_percentile_rows``). On CPUs and TPUs a search without a sort
  (``search_percentile_rows``): XLA on CPU sorts much more slowly than it counts, and a GPU would pay a
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

  A counting pass is memory-bound, so most passes are made cheap by a sample (every ``SAMPLE_STRIDE``-th
  element, a stride coprime with power-of-two widths so every unit is seen):
  1. on the sample, bracket the sample ranks 4 standard deviations (+2) either side of the target;
  2. one pass counts the full data at those two patterns. They bracket ⌊p⌋ unless the sample was far
     off, and then the whole range stands in on that side: the result is exact either way;
  3. the search goes on over the full data from that bracket (about a thousand elements wide on 51,200)
     and stops as soon as #{bits ≤ low} = ⌊p⌋ (s[⌊p⌋] is then the smallest value above low),
     #{bits ≤ high} = ⌊p⌋ + 1 (the largest value up to high), or high = low + 1; three more passes find
     s[⌊p⌋] and s[⌊p⌋+1] (a minimum over the values above low, or the negated values up to high, row by row;
     a count; a minimum).
  On the activations of a 100 × 512 layer this takes 9–15 passes over the sample and 6–10 over the full
  data, against 14–22 full passes without the sample. Rows (an MLP's equal-size hidden layers) share each
  pass, one stacked reduction per pass.
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
