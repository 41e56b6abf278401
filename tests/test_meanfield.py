import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize  # scipy comes with jax

from lab10 import activations, meanfield


def test_tanh_edge_of_chaos():
  # Schoenholz et al. 2017: σ_b² = 0.05 → critical σ_w² ≈ 1.76 (q* ≈ 0.57); σ_b² = 0 → σ_w² = 1.
  assert meanfield.critical_sigma_w2(jnp.tanh, 0.05) == pytest.approx(1.76, abs=0.02)
  assert meanfield.fixed_point(jnp.tanh, 1.76, 0.05) == pytest.approx(0.57, abs=0.01)
  assert meanfield.critical_sigma_w2(jnp.tanh, 0.0) == pytest.approx(1.0, abs=0.02)
  chi = meanfield.chi1(jnp.tanh, 1.0, 0.05)  # ordered phase: gradients shrink ×χ₁ per layer
  assert chi == pytest.approx(0.759, abs=0.002)
  assert meanfield.depth_scale(chi) == pytest.approx(-1 / math.log(chi)) and 3.0 < meanfield.depth_scale(chi) < 4.0


def test_selu_fixed_point_is_unit_variance():
  # With LeCun weights (σ_w² = 1, σ_b² = 0) SELU's length map has q* ≈ 1 (Klambauer et al. 2017), from q = 4.25
  # (inputs of mean 0.5, variance 4) as from below.
  selu = activations.get("selu")
  for q0 in (4.25, 0.1):
    assert meanfield.fixed_point(selu, 1.0, 0.0, q0=q0) == pytest.approx(1.0, abs=1e-3)


# --- vectorised maps and the correlation depth scale ---------------------------------------------


def _reference_depth_scale(sigma_w2: float, sigma_b2: float, points: int = 120) -> float:
  """ξ_c of tanh in plain float64 NumPy, independent of lab10.meanfield: probabilists' Gauss–Hermite nodes, the
  length map iterated to q*, the correlation map iterated to c*, then −1/ln χ_c (Schoenholz et al. 2017)."""
  z, w = np.polynomial.hermite_e.hermegauss(points)
  w = w / math.sqrt(2 * math.pi)
  q = 1.0
  for _ in range(2000):
    q = sigma_w2 * np.sum(w * np.tanh(math.sqrt(q) * z) ** 2) + sigma_b2
  z1, z2, w12 = z[:, None], z[None, :], w[:, None] * w[None, :]
  c = 0.5
  for _ in range(2000):
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    c = min((sigma_w2 * np.sum(np.tanh(math.sqrt(q) * z1) * np.tanh(u2) * w12) + sigma_b2) / q, 1.0)
  u2 = math.sqrt(q) * (c * z1 + math.sqrt(max(1 - c * c, 0.0)) * z2)
  chi_c = sigma_w2 * np.sum(np.cosh(math.sqrt(q) * z1) ** -2 * np.cosh(u2) ** -2 * w12)
  return -1 / math.log(chi_c)


def test_vectorised_maps_equal_the_scalar_ones():
  b2 = np.array([[0.01], [0.05], [0.2]])  # 3 × 3 grids by broadcasting; SELU's q* is finite for σ_w² < 1.8
  for phi, w2 in ((activations.get("selu"), np.array([[0.5, 1.0, 1.5]])), (jnp.tanh, np.array([[0.8, 1.76, 3.0]]))):
    q, chi = meanfield.fixed_point(phi, w2, b2), meanfield.chi1(phi, w2, b2)
    assert q.shape == chi.shape == (3, 3)
    for i, j in np.ndindex(3, 3):
      assert q[i, j] == pytest.approx(meanfield.fixed_point(phi, w2[0, j], b2[i, 0]), rel=1e-7, abs=1e-12)
      assert chi[i, j] == pytest.approx(meanfield.chi1(phi, w2[0, j], b2[i, 0]), rel=1e-9)
  xi = meanfield.correlation_depth_scale(jnp.tanh, w2, b2)
  for i, j in np.ndindex(3, 3):
    assert xi[i, j] == pytest.approx(meanfield.correlation_depth_scale(jnp.tanh, w2[0, j], b2[i, 0]), rel=1e-6)
  critical = meanfield.critical_sigma_w2(jnp.tanh, np.array([0.0, 0.05, 0.2]))
  np.testing.assert_allclose(critical, [meanfield.critical_sigma_w2(jnp.tanh, b) for b in (0.0, 0.05, 0.2)])
  assert critical[1] == pytest.approx(1.76, abs=0.01)


def test_relu_chi1_is_half_sigma_w2_for_any_bias():
  # E[relu'(√q z)²] = P(z > 0) = ½ for every q > 0, so χ₁ = σ_w²/2: critical at σ_w² = 2 (He init).
  w2 = np.array([1.0, 2.0, 2.5])
  np.testing.assert_allclose(meanfield.chi1(jax.nn.relu, w2, 0.1, q=np.array([0.5, 1.0, 3.0])), w2 / 2, rtol=1e-9)


def test_correlation_depth_scale_matches_an_independent_float64_computation():
  # Chaotic phase: c* < 1, χ_c from the two-dimensional integral.
  for w2 in (2.5, 3.5):
    assert meanfield.correlation_fixed_point(jnp.tanh, w2, 0.05) < 0.5
    assert meanfield.correlation_depth_scale(jnp.tanh, w2, 0.05) == pytest.approx(_reference_depth_scale(w2, 0.05),
                                                                                  rel=2e-3)
  # Ordered phase: c* = 1 and ξ_c = −1/ln χ₁; it diverges at the critical line and is short deep in chaos.
  assert meanfield.correlation_fixed_point(jnp.tanh, 1.0, 0.05) == 1.0
  assert meanfield.correlation_depth_scale(jnp.tanh, 1.0, 0.05) == pytest.approx(
      -1 / math.log(meanfield.chi1(jnp.tanh, 1.0, 0.05)), rel=1e-9)
  assert meanfield.correlation_depth_scale(jnp.tanh, meanfield.critical_sigma_w2(jnp.tanh, 0.05, tol=1e-7), 0.05) > 1e3
  xi = meanfield.correlation_depth_scale(jnp.tanh, np.array([1.0, 1.76, 4.0]), 0.05)
  assert xi[0] == pytest.approx(-1 / math.log(0.759), rel=0.02)
  assert xi[1] > 50 > 10 > xi[2]


def test_tanh_maps_behind_the_phase_diagram():
  # The numbers the meanfield_phase_diagram figure quotes (Schoenholz et al. 2017, Fig. 1 / §3).
  assert meanfield.critical_sigma_w2(jnp.tanh, 0.05) == pytest.approx(1.76, abs=0.01)
  assert meanfield.fixed_point(jnp.tanh, 1.76, 0.05) == pytest.approx(0.57, abs=0.01)
  for w2, b2 in ((1.0, 0.05), (2.5, 0.1)):
    assert meanfield.chi1(jnp.tanh, np.array([w2]), b2)[0] == pytest.approx(meanfield.chi1(jnp.tanh, w2, b2), rel=1e-9)


# --- exactness against closed forms (kinked activations, the σ_b² = 0 transition) ----------------


def _normal_cdf(x: float) -> float:
  return 0.5 * math.erfc(-x / math.sqrt(2))


def _exp_below_zero(a: float, q: float) -> float:
  """E[e^{a u}; u < 0] for u ~ N(0, q): e^{a²q/2} Φ(−a√q)."""
  return math.exp(a * a * q / 2) * _normal_cdf(-a * math.sqrt(q))


def _elu_moments(q: float, scale: float = 1.0, alpha: float = 1.0) -> tuple[float, float]:
  """E[φ(u)²] and E[φ'(u)²], u ~ N(0, q), for φ = scale·(u if u > 0 else α(eᵘ − 1)): ELU (1, 1) and SELU (λ, α)."""
  negative = _exp_below_zero(2, q) - 2 * _exp_below_zero(1, q) + 0.5  # E[(eᵘ − 1)²; u < 0]
  return scale**2 * (q / 2 + alpha**2 * negative), scale**2 * (0.5 + alpha**2 * _exp_below_zero(2, q))


def test_selu_and_elu_maps_equal_their_closed_forms():
  # The values the 100-node Gauss–Hermite rule missed by up to 1% (SELU's χ₁ 1.0614 for 1.0716).
  lam, alpha = activations.SELU_LAMBDA, activations.SELU_ALPHA
  assert (lam, alpha) == pytest.approx((1.0507009873554805, 1.6732632423543772), rel=1e-15)
  selu, elu = activations.get("selu"), activations.get("elu")
  for q in (0.3, 1.0, 4.0):
    for phi, moments in ((selu, _elu_moments(q, lam, alpha)), (elu, _elu_moments(q))):
      assert meanfield.length_map(phi, q, 1.0, 0.0) == pytest.approx(moments[0], rel=1e-12)
      assert meanfield.chi1(phi, 1.0, 0.0, q=q) == pytest.approx(moments[1], rel=1e-12)
  # Klambauer et al. 2017 chose λ, α so that q = 1 is the fixed point with LeCun weights (σ_w² = 1, σ_b² = 0).
  assert _elu_moments(1.0, lam, alpha)[0] == pytest.approx(1.0, rel=1e-12)
  for q0 in (4.25, 1.0, 0.1):
    assert meanfield.fixed_point(selu, 1.0, 0.0, q0=q0) == pytest.approx(1.0, rel=1e-10)
  assert meanfield.chi1(selu, 1.0, 0.0) == pytest.approx(lam**2 * (0.5 + alpha**2 * math.e**2 * _normal_cdf(-2)),
                                                         rel=1e-10)


def test_relu_and_leaky_relu_maps_equal_their_closed_forms():
  # E[φ(u)²] = q (1 + a²)/2 and E[φ'(u)²] = (1 + a²)/2, so q* = σ_b² / (1 − σ_w² (1 + a²)/2) below the
  # critical σ_w² = 2 / (1 + a²), 0 there without biases, and q_l grows without bound above it.
  w2, b2 = np.array([0.5, 1.0, 1.8]), np.array([[0.0], [0.1], [0.3]])
  for a in (0.0, 0.01, 0.25):
    phi, half = activations.get("leaky_relu", negative_slope=a), (1 + a * a) / 2
    np.testing.assert_allclose(meanfield.length_map(phi, np.array([0.2, 1.0, 7.0]), w2, 0.1),
                               w2 * half * np.array([0.2, 1.0, 7.0]) + 0.1, rtol=1e-13)
    np.testing.assert_allclose(meanfield.fixed_point(phi, w2, b2), b2 / (1 - w2 * half) + 0 * w2, rtol=1e-11, atol=0)
    np.testing.assert_allclose(meanfield.chi1(phi, w2, b2), w2 * half + 0 * b2, rtol=1e-13)
    assert meanfield.fixed_point(phi, 2.5 / half, 0.1) == math.inf
  relu = jax.nn.relu
  assert meanfield.fixed_point(relu, 2.0, 0.0, q0=3.0) == 3.0  # He init: every q is fixed
  assert meanfield.chi1(relu, 1.0, 0.0) == pytest.approx(0.5, rel=1e-13)  # at q* = 0 too: χ₁ is the limit q → 0⁺
  assert meanfield.critical_sigma_w2(relu, 0.1) == pytest.approx(2.0, abs=1e-8)


def test_relu_correlation_map_is_the_arc_cosine_kernel():
  # Cho & Saul 2009: E[relu(u₁) relu(u₂)] = q (sin θ + (π − θ) c) / 2π, c = cos θ; the 2-d rule's angular
  # panels end on the kink lines, so the kinked kernel comes out exact.
  c = np.array([-0.9, -0.3, 0.0, 0.4, 0.8, 0.99, 0.99999])
  theta = np.arccos(c)
  for q, w2, b2 in ((0.4, 1.0, 0.2), (1.0, 1.9, 0.1), (5.0, 1.5, 0.0)):
    relu_kernel = q * (np.sin(theta) + (np.pi - theta) * c) / (2 * np.pi)
    np.testing.assert_allclose(meanfield.correlation_map(jax.nn.relu, c, w2, b2, q=q), (w2 * relu_kernel + b2) / q,
                               rtol=1e-12)
    a = 0.25  # leaky: relu(u) − a·relu(−u), and relu(−u₁) relu(−u₂) has the same kernel
    leaky_kernel = (1 + a * a) * relu_kernel - a * q * (np.sin(theta) - theta * c) / np.pi
    leaky = activations.get("leaky_relu", negative_slope=a)
    np.testing.assert_allclose(meanfield.correlation_map(leaky, c, w2, b2, q=q), (w2 * leaky_kernel + b2) / q,
                               rtol=1e-12)


def test_erf_correlation_depth_scale_equals_its_closed_form():
  # φ = erf has closed-form kernels (Williams 1997): E[φ(u₁)φ(u₂)] = (2/π) arcsin(2qc / (1 + 2q)) and
  # E[φ'(u₁)φ'(u₂)] = (4/π) / √((1 + 2q)² − 4q²c²); q*, c* by root finding on those, then ξ_c = −1/ln χ_c.
  erf = jax.scipy.special.erf
  for w2, b2 in ((4.0, 0.05), (2.5, 0.2), (1.0, 0.05)):
    q = optimize.brentq(lambda q: w2 * 2 / math.pi * math.asin(2 * q / (1 + 2 * q)) + b2 - q, 1e-3, 10, xtol=1e-15)
    chi_c = lambda c: w2 * 4 / math.pi / math.sqrt((1 + 2 * q) ** 2 - 4 * q * q * c * c)
    c_map = lambda c: (w2 * 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q)) + b2) / q
    c = 1.0 if chi_c(1.0) <= 1 else optimize.brentq(lambda c: c_map(c) - c, 0.0, 1 - 1e-9, xtol=1e-15)
    assert meanfield.fixed_point(erf, w2, b2) == pytest.approx(q, rel=1e-12)
    assert meanfield.correlation_map(erf, 0.3, w2, b2) == pytest.approx(c_map(0.3), rel=1e-9)
    assert meanfield.correlation_fixed_point(erf, w2, b2) == pytest.approx(c, abs=1e-9)
    assert meanfield.correlation_depth_scale(erf, w2, b2) == pytest.approx(-1 / math.log(chi_c(c)), rel=1e-8)


def _tanh_mean(g, q: float) -> float:
  """E[g(√q z)] by adaptive quadrature, independent of lab10.meanfield's rules."""
  density = lambda z: g(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
  return integrate.quad(density, -12, 0, epsabs=0, epsrel=1e-13)[0] + integrate.quad(density, 0, 12, epsabs=0,
                                                                                      epsrel=1e-13)[0]


def _tanh_fixed_point(w2: float, b2: float) -> float:
  return optimize.brentq(lambda q: w2 * _tanh_mean(lambda u: math.tanh(u) ** 2, q) + b2 - q, 1e-9, w2 + b2,
                         xtol=1e-16, rtol=1e-14)


def _tanh_chi1(w2: float, b2: float) -> float:
  return w2 * _tanh_mean(lambda u: 1 / math.cosh(min(abs(u), 300)) ** 4, _tanh_fixed_point(w2, b2))


def test_tanh_transition_without_biases_is_at_one():
  # tanh'(0) = 1: with σ_b² = 0, q* = 0 and χ₁ = σ_w² up to σ_w² = 1, then q* > 0 grows from 0 (≈ (σ_w² − 1)/2)
  # and χ₁ − 1 is of second order. Iterating the length map crawls there (5000 steps left q* 9% high).
  for w2 in (1.001, 1.01, 1.3):
    assert meanfield.fixed_point(jnp.tanh, w2, 0.0) == pytest.approx(_tanh_fixed_point(w2, 0.0), rel=1e-10)
  assert meanfield.fixed_point(jnp.tanh, 0.999, 0.0) == 0.0
  assert meanfield.chi1(jnp.tanh, 0.999, 0.0) == pytest.approx(0.999)
  assert meanfield.chi1(jnp.tanh, 1.01, 0.0) == pytest.approx(_tanh_chi1(1.01, 0.0), rel=1e-12)
  assert meanfield.chi1(jnp.tanh, 1.01, 0.0) > 1.0
  assert meanfield.critical_sigma_w2(jnp.tanh, 0.0) == pytest.approx(1.0, abs=1e-6)


def test_tanh_critical_line_matches_adaptive_quadrature():
  # Schoenholz et al. 2017's σ_b² = 0.05 point, σ_w² ≈ 1.76, to 1e-8 of brentq on scipy's adaptive quadrature.
  reference = optimize.brentq(lambda w2: _tanh_chi1(w2, 0.05) - 1, 1.7, 1.8, xtol=1e-12)
  assert reference == pytest.approx(1.7609546, abs=1e-7)
  assert meanfield.critical_sigma_w2(jnp.tanh, 0.05) == pytest.approx(reference, abs=1e-8)
  assert meanfield.fixed_point(jnp.tanh, 1.76, 0.05) == pytest.approx(_tanh_fixed_point(1.76, 0.05), rel=1e-12)


def test_fixed_point_refuses_to_return_an_unconverged_value():
  with pytest.raises(RuntimeError, match="did not converge"):
    meanfield.fixed_point(jnp.tanh, 1.001, 0.0, max_iter=2)
  with pytest.raises(RuntimeError, match="did not converge"):
    meanfield.correlation_fixed_point(jnp.tanh, 2.5, 0.05, max_iter=1)
  with pytest.raises(ValueError, match="not crossed"):
    meanfield.critical_sigma_w2(jnp.tanh, 0.05, low=2.0)


def test_critical_sigma_w2_is_the_true_edge_or_a_clear_error_where_q_star_diverges_first():
  # ReLU-like: χ₁ = σ_w²(1 + a²)/2 → 1 exactly where q* starts to diverge (σ_b² > 0).
  assert meanfield.critical_sigma_w2(activations.get("relu"), 0.05) == pytest.approx(2.0, abs=1e-8)
  slope = activations.DEFAULT_LEAKY_SLOPE
  assert meanfield.critical_sigma_w2(activations.get("leaky_relu"), 0.05) == pytest.approx(2 / (1 + slope**2), abs=1e-8)
  # GELU and SiLU: q* diverges while χ₁ is still below 1 (it was returned as if critical: 2.2341, 2.6702).
  for name, where in (("gelu", "2.23413"), ("silu", "2.67022")):
    with pytest.raises(ValueError, match=f"q\\* diverges for σ_w² above {where} while χ₁ is still 0.7"):
      meanfield.critical_sigma_w2(activations.get(name), 0.05)
  # Where χ₁ = 1 has a finite q*, the answer is a genuine crossing.
  for name in ("tanh", "elu", "selu", "softsign"):
    phi = activations.get(name)
    w2 = meanfield.critical_sigma_w2(phi, 0.05)
    assert np.isfinite(meanfield.fixed_point(phi, w2, 0.05)) and meanfield.chi1(phi, w2, 0.05) == pytest.approx(1, abs=1e-6)
