"""Variance-propagation predictions: Glorot & Bengio 2010, He et al. 2015, and mean-field theory.

Layers are numbered from 1 (the first hidden layer); ``fan_in[l]``, ``fan_out[l]`` and ``weight_var[l]``
describe the weights W_l that produce layer l's pre-activation z_l. Products run over NumPy float64.
Gaussian expectations E_z[f(z)], z ~ N(0, 1), use Gauss–Hermite quadrature:
E[f(z)] = Σ_i w_i f(√2 x_i) / √π.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Activation = Callable[[jax.Array], jax.Array]
QUADRATURE_POINTS = 100  # even: no node at 0, where ReLU-like derivatives jump


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


@functools.lru_cache(maxsize=None)
def _hermite(points: int) -> tuple[np.ndarray, np.ndarray]:
  x, w = np.polynomial.hermite.hermgauss(points)
  return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


def gaussian_mean(f: Callable[[np.ndarray], np.ndarray], q: float, points: int = QUADRATURE_POINTS) -> float:
  """E[f(√q z)], z ~ N(0, 1), by Gauss–Hermite quadrature: Σ_i w_i f(√(2q) x_i) / √π."""
  z, w = _hermite(points)
  return float(np.dot(w, np.asarray(f(math.sqrt(max(q, 0.0)) * z), np.float64)))


def _numpy(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
  return lambda x: np.asarray(phi(jnp.asarray(x)), np.float64)


def derivative(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
  """φ' elementwise, by automatic differentiation."""
  slope = jax.vmap(jax.grad(lambda v: phi(v)))
  return lambda x: np.asarray(slope(jnp.asarray(x, jnp.float32).reshape(-1)), np.float64).reshape(np.shape(x))


def length_map(phi: Activation, q: float, sigma_w2: float, sigma_b2: float) -> float:
  """Poole et al. 2016, Eq. 3: q_l = σ_w² ∫ Dz φ(√q_{l−1} z)² + σ_b²."""
  return sigma_w2 * gaussian_mean(lambda x: _numpy(phi)(x) ** 2, q) + sigma_b2


def fixed_point(phi: Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0,
                tol: float = 1e-10, max_iter: int = 5000) -> float:
  """q* = length_map(q*), by iterating the length map from ``q0`` until it moves less than tol·q."""
  q = q0
  for _ in range(max_iter):
    q_next = length_map(phi, q, sigma_w2, sigma_b2)
    if abs(q_next - q) <= tol * max(q, 1e-12):
      return q_next
    q = q_next
  return q


def chi1(phi: Activation, sigma_w2: float, sigma_b2: float, q: float | None = None) -> float:
  """Schoenholz et al. 2017, Eq. 5: χ₁ = σ_w² ∫ Dz φ'(√q* z)², the per-layer factor of gradient
  variance (and of small perturbations). χ₁ < 1 ordered (vanishing), > 1 chaotic (exploding)."""
  q = fixed_point(phi, sigma_w2, sigma_b2) if q is None else q
  return sigma_w2 * gaussian_mean(lambda x: derivative(phi)(x) ** 2, q)


def depth_scale(chi: float) -> float:
  """Schoenholz et al. 2017, Eq. 9: ξ = −1 / ln χ₁ (infinite at criticality χ₁ = 1)."""
  return math.inf if chi == 1.0 else -1.0 / math.log(chi)


def critical_sigma_w2(phi: Activation, sigma_b2: float, low: float = 0.5, high: float = 4.0,
                      tol: float = 1e-4) -> float:
  """The σ_w² with χ₁ = 1 (edge of chaos) at bias variance σ_b², by bisection on χ₁(σ_w²) − 1."""
  while high - low > tol:
    mid = 0.5 * (low + high)
    low, high = (mid, high) if chi1(phi, mid, sigma_b2) < 1.0 else (low, mid)
  return 0.5 * (low + high)


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
