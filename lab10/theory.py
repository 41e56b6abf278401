"""Variance-propagation predictions: Glorot & Bengio 2010, He et al. 2015, and mean-field theory.

Layers are numbered from 1 (the first hidden layer); ``fan_in[l]``, ``fan_out[l]`` and ``weight_var[l]``
describe the weights W_l that produce layer l's pre-activation z_l. Products run over NumPy float64.
Gaussian expectations E_z[f(z)], z ~ N(0, 1), use Gauss–Hermite quadrature:
E[f(z)] = Σ_i w_i f(√2 x_i) / √π.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Activation = Callable[[jax.Array], jax.Array]
QUADRATURE_POINTS = 100  # even: no node at 0, where ReLU-like derivatives jump
CORRELATION_POINTS = 48  # per axis of the correlation map's 2-d rule; ξ_c within 0.3% of 150² nodes for tanh


def _cumprod(factors: Sequence[float]) -> np.ndarray:
  return np.cumprod(np.asarray(factors, np.float64))


def glorot_forward(input_var: float, fan_in: Sequence[int], weight_var: Sequence[float]) -> np.ndarray:
  """Glorot & Bengio 2010, Eq. 5 (linear regime, φ'(0) = 1, zero biases):
  Var[z_l] = Var[x] · Π_{k=1..l} n_k Var[W_k], n_k = fan_in of layer k. Returns Var[z_l] for l = 1..L."""
  return input_var * _cumprod(np.multiply(fan_in, weight_var))


def glorot_backward(top_var: float, fan_out: Sequence[int], weight_var: Sequence[float]) -> np.ndarray:
  """Glorot & Bengio 2010, Eq. 6, the backward twin: Var[∂C/∂z_l] = Var[∂C/∂z_L] · Π_{k=l+1..L} n_{k+1}
  Var[W_{k+1}] with n_{k+1} the fan-out of layer k. ``fan_out[l]`` and ``weight_var[l]`` describe the
  weights *above* layer l (l = 1..L−1); returns Var[∂C/∂z_l] for l = 1..L (the last is ``top_var``)."""
  factors = np.multiply(fan_out, weight_var)[::-1]
  return top_var * np.concatenate([_cumprod(factors)[::-1], [1.0]])


def he_forward(first_var: float, fan_in: Sequence[int], weight_var: Sequence[float],
               negative_slope: float = 0.0) -> np.ndarray:
  """He et al. 2015, Eq. 9 (and §2.2 for PReLU/leaky slope a):
  Var[y_L] = Var[y_1] · Π_{l=2..L} ½(1 + a²) n_l Var[w_l], n_l = fan_in. ``fan_in`` / ``weight_var``
  are of layers 2..L; returns Var[y_l] for l = 1..L."""
  factors = 0.5 * (1 + negative_slope**2) * np.multiply(fan_in, weight_var)
  return first_var * np.concatenate([[1.0], _cumprod(factors)])


def he_backward(top_var: float, fan_out: Sequence[int], weight_var: Sequence[float],
                negative_slope: float = 0.0) -> np.ndarray:
  """He et al. 2015, Eq. 13: Var[Δx_l] = Var[Δx_{L}] · Π ½(1 + a²) n̂ Var[w] over the layers above l,
  n̂ = fan-out. ``fan_out[l]`` / ``weight_var[l]`` are of the weights above layer l (l = 1..L−1)."""
  scaled = 0.5 * (1 + negative_slope**2) * np.asarray(weight_var, np.float64)
  return glorot_backward(top_var, fan_out, scaled)


# --- mean field (Poole et al. 2016; Schoenholz et al. 2017) ------------------------------------
#
# Every map takes σ_w², σ_b² (and q, c) as floats or as NumPy arrays that broadcast together; arrays give
# arrays of the broadcast shape (one quadrature for the whole grid), floats give floats.


def _out(x):
  """A float for a 0-d result, else the array."""
  x = np.asarray(x, np.float64)
  return float(x) if x.ndim == 0 else x


@functools.lru_cache(maxsize=None)
def _hermite(points: int) -> tuple[np.ndarray, np.ndarray]:
  x, w = np.polynomial.hermite.hermgauss(points)
  return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


def gaussian_mean(f: Callable[[np.ndarray], np.ndarray], q, points: int = QUADRATURE_POINTS):
  """E[f(√q z)], z ~ N(0, 1), by Gauss–Hermite quadrature: Σ_i w_i f(√(2q) x_i) / √π. Elementwise over an
  array ``q`` (f is applied to an array with one extra, last axis of nodes)."""
  z, w = _hermite(points)
  x = np.sqrt(np.maximum(np.asarray(q, np.float64), 0.0))[..., None] * z
  return _out(np.asarray(f(x), np.float64) @ w)


def _bivariate_mean(f: Callable[[np.ndarray, np.ndarray], np.ndarray], q, c,
                    points: int = CORRELATION_POINTS) -> np.ndarray:
  """E[f(u₁, u₂)] with u₁ = √q z₁, u₂ = √q (c z₁ + √(1 − c²) z₂), z₁, z₂ ~ N(0, 1) independent (so that
  Var u₁ = Var u₂ = q and corr(u₁, u₂) = c), by a product Gauss–Hermite rule; elementwise over q and c."""
  z, w = _hermite(points)
  root_q = np.sqrt(np.maximum(np.asarray(q, np.float64), 0.0))[..., None, None]
  c = np.asarray(c, np.float64)[..., None, None]
  z1, z2 = z[:, None], z[None, :]
  u1 = root_q * z1
  u2 = root_q * (c * z1 + np.sqrt(np.maximum(1.0 - c**2, 0.0)) * z2)
  return np.sum(np.asarray(f(u1, u2), np.float64) * (w[:, None] * w[None, :]), axis=(-2, -1))


def _numpy(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
  """φ on NumPy arrays, evaluated in float64."""

  def f(x):
    with jax.enable_x64(True):
      return np.asarray(phi(jnp.asarray(x, jnp.float64)), np.float64)

  return f


def derivative(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
  """φ' elementwise, by automatic differentiation in float64."""
  slope = jax.vmap(jax.grad(lambda v: phi(v)))

  def f(x):
    with jax.enable_x64(True):
      return np.asarray(slope(jnp.asarray(x, jnp.float64).reshape(-1)), np.float64).reshape(np.shape(x))

  return f


def length_map(phi: Activation, q, sigma_w2, sigma_b2):
  """Poole et al. 2016, Eq. 3: q_l = σ_w² ∫ Dz φ(√q_{l−1} z)² + σ_b²."""
  return _out(np.asarray(sigma_w2) * gaussian_mean(lambda x: _numpy(phi)(x) ** 2, q) + np.asarray(sigma_b2))


def fixed_point(phi: Activation, sigma_w2, sigma_b2, q0: float = 1.0, tol: float = 1e-10, max_iter: int = 5000):
  """q* = length_map(q*), by iterating the length map from ``q0`` until it moves less than tol·q (on an
  array, until every element does)."""
  sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
  q = np.full(sigma_w2.shape, float(q0))
  for _ in range(max_iter):
    q_next = np.asarray(length_map(phi, q, sigma_w2, sigma_b2))
    if np.all(np.abs(q_next - q) <= tol * np.maximum(q, 1e-12)):
      return _out(q_next)
    q = q_next
  return _out(q)


def chi1(phi: Activation, sigma_w2, sigma_b2, q=None):
  """Schoenholz et al. 2017, Eq. 5: χ₁ = σ_w² ∫ Dz φ'(√q* z)², the per-layer factor of gradient
  variance (and of small perturbations). χ₁ < 1 ordered (vanishing), > 1 chaotic (exploding)."""
  q = fixed_point(phi, sigma_w2, sigma_b2) if q is None else q
  return _out(np.asarray(sigma_w2) * gaussian_mean(lambda x: derivative(phi)(x) ** 2, q))


def depth_scale(chi):
  """Schoenholz et al. 2017, Eq. 9: ξ = −1 / ln χ₁ (infinite at criticality χ₁ = 1)."""
  chi = np.asarray(chi, np.float64)
  with np.errstate(divide="ignore"):
    return _out(np.where(chi == 1.0, np.inf, -1.0 / np.log(chi)))


def correlation_map(phi: Activation, c, sigma_w2, sigma_b2, q=None):
  """The correlation of two inputs' pre-activations one layer up (Poole et al. 2016; Schoenholz et al. 2017,
  §2), both inputs at the length fixed point q*:
  c_l = (σ_w² ∫ Dz₁ Dz₂ φ(u₁) φ(u₂) + σ_b²) / q*, u₁ = √q* z₁, u₂ = √q* (c_{l−1} z₁ + √(1 − c_{l−1}²) z₂).
  c = 1 is always a fixed point; it is the stable one exactly when χ₁ ≤ 1 (ordered phase)."""
  q = fixed_point(phi, sigma_w2, sigma_b2) if q is None else q
  f = _numpy(phi)
  joint = _bivariate_mean(lambda u1, u2: f(u1) * f(u2), q, c)
  return _out((np.asarray(sigma_w2) * joint + np.asarray(sigma_b2)) / np.asarray(q))


def correlation_fixed_point(phi: Activation, sigma_w2, sigma_b2, q=None, tol: float = 1e-10):
  """The stable fixed point c* of ``correlation_map``: 1 in the ordered phase (χ₁ ≤ 1); in the chaotic
  phase c = 1 repels and c* is where the map crosses the diagonal from above within [0, 1), found by
  bisection to ``tol`` (iterating the map converges only algebraically next to χ₁ = 1)."""
  sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
  q = np.broadcast_to(np.asarray(fixed_point(phi, sigma_w2, sigma_b2) if q is None else q, np.float64),
                      sigma_w2.shape)
  chaotic = np.asarray(chi1(phi, sigma_w2, sigma_b2, q)) > 1.0
  w2, b2, q1 = sigma_w2[chaotic], sigma_b2[chaotic], q[chaotic]
  low, high = np.zeros(w2.shape), np.ones(w2.shape)
  while low.size and np.max(high - low) > tol:
    mid = 0.5 * (low + high)
    above = np.asarray(correlation_map(phi, mid, w2, b2, q1)) > mid
    low, high = np.where(above, mid, low), np.where(above, high, mid)
  c = np.ones(sigma_w2.shape)
  c[chaotic] = 0.5 * (low + high)
  return _out(c)


def correlation_depth_scale(phi: Activation, sigma_w2, sigma_b2):
  """Schoenholz et al. 2017, Eq. 9: the depth over which two inputs' correlation approaches c*,
  ξ_c = −1 / ln χ_c, χ_c = σ_w² ∫ Dz₁ Dz₂ φ'(u₁) φ'(u₂) with u₁, u₂ as in ``correlation_map`` at c = c*.
  In the ordered phase c* = 1 and χ_c = χ₁; ξ_c diverges on the critical line χ₁ = 1 (returned as inf),
  and random networks train up to depth ≈ 6ξ_c (Schoenholz et al. 2017)."""
  sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
  q = np.asarray(fixed_point(phi, sigma_w2, sigma_b2), np.float64)
  c = correlation_fixed_point(phi, sigma_w2, sigma_b2, q)
  slope = derivative(phi)
  chi_c = np.where(np.asarray(c) == 1.0, chi1(phi, sigma_w2, sigma_b2, q),  # the finer 1-d rule where c* = 1
                   sigma_w2 * _bivariate_mean(lambda u1, u2: slope(u1) * slope(u2), q, c))
  return depth_scale(np.minimum(chi_c, 1.0))  # χ_c ≤ 1 in theory; quadrature can round it just above


def critical_sigma_w2(phi: Activation, sigma_b2, low: float = 0.5, high: float = 4.0, tol: float = 1e-4):
  """The σ_w² with χ₁ = 1 (edge of chaos) at bias variance σ_b², by bisection on χ₁(σ_w²) − 1 within
  [low, high] (elementwise over an array ``sigma_b2``)."""
  sigma_b2 = np.asarray(sigma_b2, np.float64)
  low, high = np.full(sigma_b2.shape, low), np.full(sigma_b2.shape, high)
  while np.max(high - low) > tol:
    mid = 0.5 * (low + high)
    below = np.asarray(chi1(phi, mid, sigma_b2)) < 1.0
    low, high = np.where(below, mid, low), np.where(below, high, mid)
  return _out(0.5 * (low + high))


# --- a concrete network -------------------------------------------------------------------------


def predicted_forward(phi: Activation, input_second_moment: float, fan_in: Sequence[int],
                      weight_var: Sequence[float], bias_var: float = 0.0) -> np.ndarray:
  """Var[z_l] for l = 1..L of a finite-width MLP with zero-mean i.i.d. weights, the mean-field map
  with the network's own scales: Var[z_1] = n_1 Var[W_1] E[x²] + Var[b],
  Var[z_l] = n_l Var[W_l] E_{z~N(0, Var[z_{l−1}])}[φ(z)²] + Var[b]. For ReLU this is He's Eq. 7–9, in
  the linear regime Glorot's Eq. 5; E[φ(z)²] (not Var[φ(z)]) enters because W has zero mean."""
  q = [fan_in[0] * weight_var[0] * input_second_moment + bias_var]
  for n, v in zip(fan_in[1:], weight_var[1:]):
    q.append(n * v * gaussian_mean(lambda x: _numpy(phi)(x) ** 2, q[-1]) + bias_var)
  return np.asarray(q)


def predicted_backward(phi: Activation, top_var: float, forward_var: Sequence[float], fan_out: Sequence[int],
                       weight_var: Sequence[float]) -> np.ndarray:
  """Var[∂L/∂z_l] for l = 1..L from the top layer's ``top_var``: Var[δ_l] = n̂_{l+1} Var[W_{l+1}]
  E_{z~N(0, Var[z_l])}[φ'(z)²] Var[δ_{l+1}] (Schoenholz et al. 2017, Eq. 12, with finite widths;
  He's Eq. 13 for ReLU). ``fan_out[l]`` / ``weight_var[l]`` are of the weights above layer l."""
  out = [top_var]
  for q, n, v in zip(forward_var[-2::-1], fan_out[::-1], weight_var[::-1]):
    out.append(n * v * gaussian_mean(lambda x: derivative(phi)(x) ** 2, q) * out[-1])
  return np.asarray(out[::-1])
