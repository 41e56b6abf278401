import math

import jax
import numpy as np
import pytest

from lab10 import initializers as I

DENSE = (500, 300)        # fan_in 500, fan_out 300
CONV = (3, 3, 64, 96)     # fan_in 576, fan_out 864
TRUNC = I.TRUNCATED_NORMAL_STD


def _draw(init, shape, seed=0):
  return np.asarray(init(jax.random.key(seed), shape), dtype=np.float64)


def _assert_moments(w, variance, n_se=5.0):
  """Sample mean and variance within n_se standard errors of (0, variance)."""
  n = w.size
  m = w.mean()
  v = w.var()
  m4 = np.mean((w - m) ** 4)
  se_var = math.sqrt((m4 - v**2) / n)
  assert abs(m) < n_se * math.sqrt(variance / n), f"mean {m} not ≈ 0"
  assert abs(v - variance) < n_se * se_var, f"variance {v} vs formula {variance} (se {se_var})"


def _fan_cases():
  """(name, kwargs, shape, expected variance) for every variance-scaling initializer."""
  cases = []
  for shape in (DENSE, CONV):
    fi, fo = I.fans(shape)
    avg = (fi + fo) / 2
    cases += [
        ("glorot_uniform", {}, shape, 1 / avg),
        ("glorot_normal", {}, shape, 1 / avg),
        ("glorot_truncated_normal", {}, shape, 1 / avg),
        ("glorot_standard", {}, shape, 1 / (3 * fi)),
        ("fan_avg_x2_normal", {}, shape, 2 / avg),
        ("he_normal", {}, shape, 2 / fi),
        ("he_truncated_normal", {}, shape, 2 / fi),
        ("he_uniform", {}, shape, 2 / fi),
        ("he_normal", {"mode": "fan_out"}, shape, 2 / fo),
        ("he_truncated_normal", {"mode": "fan_out"}, shape, 2 / fo),
        ("he_normal", {"negative_slope": 0.2}, shape, 2 / ((1 + 0.04) * fi)),
        ("he_uniform", {"negative_slope": 0.25, "mode": "fan_out"}, shape, 2 / ((1 + 0.0625) * fo)),
        ("lecun_normal", {}, shape, 1 / fi),
        ("lecun_truncated_normal", {}, shape, 1 / fi),
        ("lecun_uniform", {}, shape, 1 / fi),
        ("lecun_normal", {"gain": 1.5}, shape, 2.25 / fi),
        ("normal", {"std": 0.05}, shape, 0.05**2),
        ("normal", {"std": 1.0}, shape, 1.0),
    ]
  return cases


def test_fans_include_receptive_field():
  assert I.fans(DENSE) == (500, 300)
  assert I.fans(CONV) == (3 * 3 * 64, 3 * 3 * 96)
  with pytest.raises(ValueError):
    I.fans((7,))


@pytest.mark.parametrize("name,kwargs,shape,variance", _fan_cases(),
                         ids=lambda v: str(v) if not isinstance(v, float) else "")
def test_realised_variance_matches_formula(name, kwargs, shape, variance):
  _assert_moments(_draw(I.kernel(name, **kwargs), shape), variance)


def test_truncated_normals_are_truncated_and_plain_ones_are_not():
  fi = DENSE[0]
  std = math.sqrt(2 / fi)
  bound = 2 * std / TRUNC
  truncated = _draw(I.kernel("he_truncated_normal"), DENSE)
  plain = _draw(I.kernel("he_normal"), DENSE)
  assert np.abs(truncated).max() <= bound * (1 + 1e-6)
  # A plain Gaussian puts ~0.8% of 150k draws beyond 2/0.88 σ = 2.27σ.
  assert np.mean(np.abs(plain) > bound) > 0.005


def test_uniform_bounds():
  fi, fo = I.fans(DENSE)
  w = _draw(I.kernel("glorot_uniform"), DENSE)
  limit = math.sqrt(6 / (fi + fo))
  assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
  s = _draw(I.kernel("glorot_standard"), DENSE)
  assert np.abs(s).max() <= 1 / math.sqrt(fi) and np.abs(s).max() > 0.99 / math.sqrt(fi)


@pytest.mark.parametrize("shape", [(300, 200), (200, 300)])
def test_orthogonal_has_unit_singular_values_times_gain(shape):
  w = _draw(I.kernel("orthogonal", gain=2.0), shape)
  np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), 2.0, rtol=1e-4)
  assert np.mean(w**2) == pytest.approx(4.0 / max(shape), rel=1e-4)


def test_orthogonal_conv_kernel_is_orthogonal_over_fan_in():
  w = _draw(I.kernel("orthogonal"), (3, 3, 16, 32)).reshape(-1, 32)
  np.testing.assert_allclose(w.T @ w, np.eye(32), atol=1e-5)


def test_bias_initializers():
  assert not _draw(I.bias("zeros"), (1000,)).any()
  _assert_moments(_draw(I.bias("normal", std=1.0), (100_000,)), 1.0)


def test_he_is_not_the_lecture_variant():
  # Unequal fans: He (2/fan_in) and "twice Xavier" (4/(fan_in+fan_out)) differ.
  fi, fo = 784, 256
  he = _draw(I.kernel("he_normal"), (fi, fo)).var()
  lecture = _draw(I.kernel("fan_avg_x2_normal"), (fi, fo)).var()
  assert he == pytest.approx(2 / fi, rel=0.02) and lecture == pytest.approx(4 / (fi + fo), rel=0.02)
  assert lecture / he == pytest.approx(2 * fi / (fi + fo), rel=0.03)


def test_unknown_names_list_valid_names():
  with pytest.raises(ValueError, match=r"unknown initializer 'kaiming'; valid: normal, glorot_uniform"):
    I.kernel("kaiming")
  with pytest.raises(ValueError, match=r"valid: zeros, normal"):
    I.bias("ones")
  with pytest.raises(ValueError, match=r"fan_in, fan_out, fan_avg"):
    I.kernel("he_normal", mode="fan_sideways")
