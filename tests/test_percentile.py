"""lab10.percentile: the exact percentile of |x|, by a search on CPUs and TPUs and a sort elsewhere, equals NumPy's."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lab10 import percentile


@pytest.mark.parametrize("shape,q", [((100, 64), 98.0), ((7,), 98.0), ((1,), 50.0), ((3, 5, 5, 2), 0.0),
                                     ((40,), 100.0), ((64, 32), 98.0)])
def test_abs_percentile_equals_numpy(shape, q):
  x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
  x.reshape(-1)[: x.size // 3] = 1.5  # ties
  assert float(percentile.abs_percentile(jnp.asarray(x), q)) == pytest.approx(
      np.percentile(np.abs(x.astype(np.float64)), q), rel=1e-6)


def test_abs_percentiles_equal_numpy_on_hard_cases_searched_together():
  rng = np.random.default_rng(1)
  cases = [np.maximum(rng.standard_normal((50, 64)), 0),                  # relu: half exact zeros
           np.tanh(3 * rng.standard_normal((50, 64))),                    # saturated near ±1
           np.zeros((50, 64)),                                            # a dead layer
           np.where(rng.random((50, 64)) < 0.99, 0.0, rng.random((50, 64))),  # 99% zeros
           rng.standard_cauchy((50, 64)),                                 # heavy tails
           np.exp(5 * rng.standard_normal((50, 64))),                     # values over 10 decades
           rng.integers(0, 3, (50, 64)).astype(float),                    # three values only
           rng.standard_normal(7), np.array([2.5])]                       # other sizes: their own searches
  xs = [jnp.asarray(c, jnp.float32) for c in cases]
  for q in (98.0, 50.0, 0.0, 100.0, 99.9):
    got = jax.jit(lambda xs: percentile.abs_percentiles(xs, q))(xs)
    for c, g in zip(cases, got):
      want = np.percentile(np.abs(c.astype(np.float32).astype(np.float64)), q)
      assert float(g) == pytest.approx(want, rel=1e-6, abs=0), (q, c.shape)


@pytest.mark.parametrize("rows_fn", [percentile.search_percentile_rows, percentile.sort_percentile_rows])
def test_percentile_rows_equal_numpy_at_layer_size(rows_fn):
  # 100 × 512, where the search's first passes count a sample (every 17th element) before the full data.
  assert percentile.SAMPLE_STRIDE == 17
  rng = np.random.default_rng(2)
  unit = np.arange(51200) % 512
  cases = [np.maximum(rng.standard_normal(51200) * np.exp(rng.standard_normal(512))[unit], 0),  # unit scales
           np.tanh(3 * rng.standard_normal(51200)),
           np.exp(5 * rng.standard_normal(51200)),
           np.zeros(51200),
           np.where(np.arange(51200) % 17 == 0, 100.0, rng.random(51200)),  # the sample sees only the 100s
           np.where(np.arange(51200) % 17 == 0, 0.0, 1 + rng.random(51200)),  # … only zeros
           rng.integers(0, 3, 51200).astype(float)]
  a = np.abs(np.stack(cases)).astype(np.float32)
  for q in (98.0, 50.0, 99.9, 5.0):
    got = np.asarray(jax.jit(lambda a: rows_fn(a, q))(jnp.asarray(a)))
    want = np.percentile(a.astype(np.float64), q, axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=f"q={q}")


def test_count_and_search_bracket_the_rank():
  bits = jax.lax.bitcast_convert_type(jnp.asarray([[0.5, 1.0, 2.0, 2.0, 4.0]], jnp.float32), jnp.int32)
  two = int(jax.lax.bitcast_convert_type(jnp.float32(2.0), jnp.int32))
  assert percentile._count(bits, jnp.array([two])).tolist() == [4]
  assert percentile._count(bits, jnp.array([[0, two]])).tolist() == [[0, 4]]
  # Rank 2 (the third smallest, 2.0): the search ends with #{bits ≤ low} = 2 or #{bits ≤ high} = 3.
  top = int(jnp.max(bits))  # the bracket (−1, max] holds every value
  low, high, c_low, c_high = (int(v[0]) for v in percentile._search(
      bits, jnp.array([2]), jnp.array([-1]), jnp.array([top]), jnp.array([0]), jnp.array([5])))
  assert c_low <= 2 < c_high and (c_low == 2 or c_high == 3 or high - low <= 1)
  assert percentile._count(bits, jnp.array([low, high])[:, None].T).tolist() == [[c_low, c_high]]


def test_cpu_percentile_is_the_search_not_a_sort():
  hlo = jax.jit(lambda x: percentile.abs_percentile(x, 98.0)).lower(jnp.ones((100, 512))).compile().as_text()
  assert re.search(r" while\(", hlo) and not re.search(r" sort\(", hlo)
