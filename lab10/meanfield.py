"""Mean-field theory of deep random networks (Poole et al. 2016; Schoenholz et al. 2017): Gaussian expectations,
the length map and its fixed point q*, χ₁, the correlation map and its fixed point c*, the depth scale ξ_c and
the critical σ_w².

Every map takes σ_w², σ_b² (and q, c) as floats or as NumPy arrays that broadcast together; arrays give
arrays of the broadcast shape (one quadrature for the whole grid), floats give floats.
The Gaussian expectations are ``lab10.quadrature``'s, exact across the activations' kink at 0.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lab10 import compat, quadrature

Activation = Callable[[jax.Array], jax.Array]
@functools.lru_cache(maxsize=64)
def _compiled(phi: Activation):
  return jax.jit(jax.vmap(jax.value_and_grad(lambda v: phi(v))))


def _value_and_slope(phi: Activation) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
  """(φ, φ') elementwise in float64, φ' by automatic differentiation."""
  both = _compiled(phi)

  def f(x):
    x = np.asarray(x, np.float64)
    flat = x.reshape(-1)
    # Padded to a power of two: the grids and shrinking Newton sets reuse a few compilations, where every new
    # shape would compile anew (eagerly too, primitive by primitive).
    padded = np.zeros(max(4096, 1 << max(flat.size - 1, 0).bit_length()))
    padded[:flat.size] = flat
    with compat.enable_x64(True):
      value, slope = both(jnp.asarray(padded))
    return (np.asarray(value, np.float64)[:flat.size].reshape(x.shape),
            np.asarray(slope, np.float64)[:flat.size].reshape(x.shape))

  return f


def _numpy(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
  """φ on NumPy arrays, evaluated in float64."""
  both = _value_and_slope(phi)
  return lambda x: both(x)[0]


def derivative(phi: Activation) -> Callable[[np.ndarray], np.ndarray]:
  """φ' elementwise, by automatic differentiation in float64."""
  both = _value_and_slope(phi)
  return lambda x: both(x)[1]


def length_map(phi: Activation, q, sigma_w2, sigma_b2):
  """Poole et al. 2016, Eq. 3: q_l = σ_w² ∫ Dz φ(√q_{l−1} z)² + σ_b²."""
  return quadrature.out(np.asarray(sigma_w2) * quadrature.gaussian_mean(lambda x: _numpy(phi)(x) ** 2, q) + np.asarray(sigma_b2))


def fixed_point(phi: Activation, sigma_w2, sigma_b2, q0: float = 1.0, tol: float = 1e-12, max_iter: int = 100):
  """q* = length_map(q*), the length that q_l = length_map(q_{l−1}) settles at from q_0 = ``q0``: the root
  of F(q) = length_map(q) − q on q0's side, by Newton's method with
  F'(q) = σ_w² ∫ Dz φ(u) φ'(u) u / q − 1, u = √q z (Eq. 3 differentiated in q),
  falling back to bisection where a step would leave the bracket [lo, hi], F(lo) > 0 > F(hi). (Iterating the
  map itself converges only algebraically next to criticality, where F'(q*) → 0.)
  q0 itself where |F(q0)| ≤ tol·q0 (ReLU at σ_w² = 2, σ_b² = 0 fixes every q); 0 where the map fixes 0 and F < 0
  just above it (σ_b² = 0, φ(0) = 0 and σ_w² φ'(0)² < 1 for smooth φ); inf where q_l grows without bound
  (ReLU with σ_w² ≥ 2 and σ_b² > 0), that is, where F stays above −1e-13·q (rounding) up to q = 10¹⁰⁰·q0.
  Converged where the last step moved q less than tol·q; raises RuntimeError naming the elements that did not
  converge within ``max_iter`` steps."""
  sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
  shape, w2, b2 = sigma_w2.shape, sigma_w2.reshape(-1), sigma_b2.reshape(-1)
  residual = _length_residual(phi, w2, b2)
  if not q0 > 0:
    raise ValueError(f"fixed_point: q0 = {q0} must be positive")
  q0 = np.full(w2.size, float(q0))
  q, lo, hi = _bracket(phi, residual, w2, b2, q0, tol)
  active = _newton(residual, q, lo, hi, tol, max_iter)
  if active.size:
    worst = np.abs(hi[active] - lo[active]) / hi[active]
    raise RuntimeError(f"fixed_point: {active.size} of {w2.size} elements did not converge in {max_iter} steps "
                       f"(σ_w² = {w2[active][:3]}, σ_b² = {b2[active][:3]}, ...; bracket width up to "
                       f"{np.max(worst):.1e} of q); raise max_iter or tol")
  return quadrature.out(q.reshape(shape))


def _length_residual(phi: Activation, w2: np.ndarray, b2: np.ndarray) -> Callable:
  """``residual(q, i)``: F(q) = length_map(q) − q for the elements i of the flat σ_w², σ_b²; with slope=True
  also F'(q) (see ``fixed_point``)."""
  z, w = quadrature.normal(quadrature.QUADRATURE_POINTS)
  value_and_slope = _value_and_slope(phi)

  def residual(q, i, slope=False):
    x = quadrature.root(q)[:, None] * z
    v, d = value_and_slope(x)
    f = w2[i] * ((v * v) @ w) + b2[i] - q
    return (f, w2[i] * ((v * d * x) @ w) / q - 1.0) if slope else f

  return residual


def _bracket(phi: Activation, residual: Callable, w2: np.ndarray, b2: np.ndarray, q0: np.ndarray,
             tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(q, lo, hi): q holds the elements that F settles without a search (q0, 0 or inf; see ``fixed_point``)
  and NaN elsewhere; there [lo, hi] brackets the root on q0's side, F(lo) > 0 > F(hi)."""
  f0 = residual(q0, np.arange(w2.size))
  q = np.full(w2.size, np.nan)  # filled in as elements settle
  q[np.abs(f0) <= tol * q0] = q0[0]
  lo, hi = np.zeros(w2.size), q0.copy()
  # Descending from q0: the bracket is [0, q0] unless the map fixes 0 (F(0) = σ_w² φ(0)² + σ_b² = 0); then
  # F just above 0 says whether q_l dies out (q* = 0) or a positive q* repels it.
  f_zero = w2 * _numpy(phi)(np.zeros(1))[0] ** 2 + b2
  fixes_zero = np.isnan(q) & (f0 < 0) & (f_zero == 0)
  if fixes_zero.any():
    eps = 1e-30 * q0[fixes_zero]
    rises = residual(eps, np.flatnonzero(fixes_zero)) > 0
    q[np.flatnonzero(fixes_zero)[~rises]] = 0.0
    lo[np.flatnonzero(fixes_zero)[rises]] = eps[rises]
  # Ascending: q0 is below q*; step up by decades until F < 0.
  rising = np.isnan(q) & (f0 > 0)
  lo[rising] = q0[rising]
  while rising.any():
    i = np.flatnonzero(rising)
    hi[i] *= 10.0
    f = residual(hi[i], i)
    # F < 0 beyond the rounding of L(q) ≈ q, or q* is none that float64 can tell from inf (ReLU, σ_w² = 2).
    up = (f >= -1e-13 * hi[i]) & ~np.isnan(f)  # NaN stops here; Newton's loop below reports it
    lo[i[up]] = hi[i[up]]
    rising[i[~up]] = False
    unbounded = i[up & (hi[i] > 1e100 * q0[i])]
    q[unbounded], rising[unbounded] = np.inf, False
  return q, lo, hi


def _newton(residual: Callable, q: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float,
            max_iter: int) -> np.ndarray:
  """Newton's method on F within [lo, hi] for the elements where q is NaN, bisecting where a step would leave
  the bracket; fills in q and narrows lo, hi in place. Returns the elements still unconverged after
  ``max_iter`` steps."""
  active = np.flatnonzero(np.isnan(q))
  x = hi[active]  # on concave maps Newton from F < 0 descends onto q* without overshooting
  for _ in range(max_iter):
    if not active.size:
      break
    f, slope = residual(x, active, slope=True)
    lo[active] = np.where(f > 0, x, lo[active])
    hi[active] = np.where(f < 0, x, hi[active])
    l, h = lo[active], hi[active]
    with np.errstate(divide="ignore", invalid="ignore"):
      newton = x - f / slope
    middle = np.where((l > 0) & (h > 4 * l), np.sqrt(l * h), 0.5 * (l + h))  # geometric across decades
    step = np.where((newton > l) & (newton < h), newton, middle)
    settled = (f == 0) | (np.abs(step - x) <= tol * step)
    q[active[settled]] = np.where(f == 0, x, step)[settled]
    active, x = active[~settled], step[~settled]
  return active


def chi1(phi: Activation, sigma_w2, sigma_b2, q=None):
  """Schoenholz et al. 2017, Eq. 5: χ₁ = σ_w² ∫ Dz φ'(√q* z)², the per-layer factor of gradient
  variance (and of small perturbations). χ₁ < 1 ordered (vanishing), > 1 chaotic (exploding)."""
  q = fixed_point(phi, sigma_w2, sigma_b2) if q is None else q
  return quadrature.out(np.asarray(sigma_w2) * quadrature.gaussian_mean(lambda x: derivative(phi)(x) ** 2, q))


def depth_scale(chi):
  """Schoenholz et al. 2017, Eq. 9: ξ = −1 / ln χ₁ (infinite at criticality χ₁ = 1)."""
  chi = np.asarray(chi, np.float64)
  with np.errstate(divide="ignore"):
    return quadrature.out(np.where(chi == 1.0, np.inf, -1.0 / np.log(chi)))


def correlation_map(phi: Activation, c, sigma_w2, sigma_b2, q=None):
  """The correlation of two inputs' pre-activations one layer up (Poole et al. 2016; Schoenholz et al. 2017,
  §2), both inputs at the length fixed point q*:
  c_l = (σ_w² ∫ Dz₁ Dz₂ φ(u₁) φ(u₂) + σ_b²) / q*, u₁ = √q* z₁, u₂ = √q* (c_{l−1} z₁ + √(1 − c_{l−1}²) z₂).
  c = 1 is always a fixed point; it is the stable one exactly when χ₁ ≤ 1 (ordered phase)."""
  q = fixed_point(phi, sigma_w2, sigma_b2) if q is None else q
  f = _numpy(phi)
  joint = quadrature.bivariate_mean(lambda u1, u2: f(u1) * f(u2), q, c)
  return quadrature.out((np.asarray(sigma_w2) * joint + np.asarray(sigma_b2)) / np.asarray(q))


def correlation_fixed_point(phi: Activation, sigma_w2, sigma_b2, q=None, tol: float = 1e-12, max_iter: int = 100):
  """The stable fixed point c* of ``correlation_map``: 1 in the ordered phase (χ₁ ≤ 1); in the chaotic phase
  the root below 1 of G(c) = c_map(c) − c, by Newton's method from c = 0 with
  G'(c) = σ_w² ∫ Dz₁ Dz₂ φ'(u₁) φ'(u₂) − 1 (Price's theorem: ∂_c E[φ(u₁)φ(u₂)] = q E[φ'(u₁)φ'(u₂)]).
  By Mehler's expansion E[φ(u₁)φ(u₂)] = Σ_k c^k E[φ(√q z) He_k(z)]² / k!, G is convex on [0, 1], with
  G(0) ≥ 0 and G(1) = 0, so the iterates rise monotonically onto c*. Converged where a step moved c less than
  tol; 1 where G' ≥ 0 or a step reaches 1, which the exact G allows only at c* = 1 but the 2-d rule's error
  (≈ 1e-9) allows within about that of the critical line χ₁ = 1, where 1 − c* is as small. Raises RuntimeError
  where it did not converge within ``max_iter`` steps."""
  sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
  q = np.broadcast_to(np.asarray(fixed_point(phi, sigma_w2, sigma_b2) if q is None else q, np.float64),
                      sigma_w2.shape)
  c = np.ones(sigma_w2.shape)
  active = np.flatnonzero(np.asarray(chi1(phi, sigma_w2, sigma_b2, q)) > 1.0)
  w2, b2, q1 = sigma_w2.reshape(-1), sigma_b2.reshape(-1), q.reshape(-1)
  if not np.all(np.isfinite(q1[active])):
    raise ValueError("correlation_fixed_point: q* = inf (the length map diverges) at σ_w² = "
                     f"{w2[active][~np.isfinite(q1[active])][:3]}, ...; the correlation map needs a finite q*")
  value_and_slope = _value_and_slope(phi)

  def joint(u1, u2):
    (v1, d1), (v2, d2) = value_and_slope(u1), value_and_slope(u2)
    return np.stack([v1 * v2, d1 * d2])

  x = np.zeros(active.size)
  for _ in range(max_iter):
    if not active.size:
      break
    e_values, e_slopes = quadrature.bivariate_mean(joint, q1[active], x)
    g = (w2[active] * e_values + b2[active]) / q1[active] - x
    slope = w2[active] * e_slopes - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
      step = np.minimum(np.where(slope < 0, x - g / slope, 1.0), 1.0)
    settled = (np.abs(step - x) <= tol) | (step == 1.0)
    c.reshape(-1)[active[settled]] = step[settled]
    active, x = active[~settled], step[~settled]
  if active.size:
    raise RuntimeError(f"correlation_fixed_point: {active.size} elements did not converge in {max_iter} steps "
                       f"(σ_w² = {w2[active][:3]}, σ_b² = {b2[active][:3]}, ...)")
  return quadrature.out(c)


def correlation_depth_scale(phi: Activation, sigma_w2, sigma_b2):
  """Schoenholz et al. 2017, Eq. 9: the depth over which two inputs' correlation approaches c*,
  ξ_c = −1 / ln χ_c, χ_c = σ_w² ∫ Dz₁ Dz₂ φ'(u₁) φ'(u₂) with u₁, u₂ as in ``correlation_map`` at c = c*.
  In the ordered phase c* = 1 and χ_c = χ₁; ξ_c diverges on the critical line χ₁ = 1 (returned as inf),
  and random networks train up to depth ≈ 6ξ_c (Schoenholz et al. 2017)."""
  sigma_w2, sigma_b2 = np.broadcast_arrays(np.asarray(sigma_w2, np.float64), np.asarray(sigma_b2, np.float64))
  q = np.asarray(fixed_point(phi, sigma_w2, sigma_b2), np.float64)
  c = correlation_fixed_point(phi, sigma_w2, sigma_b2, q)
  slope = derivative(phi)
  chi_c = np.where(np.asarray(c) == 1.0, chi1(phi, sigma_w2, sigma_b2, q),  # the 1-d rule where c* = 1
                   sigma_w2 * quadrature.bivariate_mean(lambda u1, u2: slope(u1) * slope(u2), q, c))
  return depth_scale(np.minimum(chi_c, 1.0))  # χ_c < 1 in the chaotic phase; rounding can put it just above


CHI1_AT_DIVERGENCE_TOL = 1e-6  # χ₁ this close to 1 where q* starts to diverge counts as reaching it (ReLU)


def critical_sigma_w2(phi: Activation, sigma_b2, low: float = 0.5, high: float = 4.0, tol: float = 1e-9):
  """The σ_w² with χ₁ = 1 (edge of chaos) at bias variance σ_b², by bisection on χ₁(σ_w²) − 1 within
  [low, high] to ``tol`` (elementwise over an array ``sigma_b2``). Raises ValueError where χ₁ − 1 does not
  change sign across [low, high], and where the bisection ends at the σ_w² beyond which q* diverges (χ₁
  undefined) with χ₁ still short of 1 below it: no χ₁ = 1 point with a finite q* (GELU, SiLU at small σ_b²).
  For ReLU with σ_b² > 0, χ₁ = σ_w²/2 → 1 as q* → ∞ at σ_w² → 2, and 2 is returned."""
  sigma_b2 = np.asarray(sigma_b2, np.float64)
  low, high = np.full(sigma_b2.shape, low), np.full(sigma_b2.shape, high)
  outside = (np.asarray(chi1(phi, low, sigma_b2)) >= 1.0) | (np.asarray(chi1(phi, high, sigma_b2)) < 1.0)
  if np.any(outside):
    raise ValueError(f"critical_sigma_w2: χ₁ = 1 is not crossed within σ_w² ∈ [{low.flat[0]}, {high.flat[0]}] "
                     f"at σ_b² = {sigma_b2[outside] if sigma_b2.ndim else sigma_b2}; widen low/high")
  while np.max(high - low) > tol:
    mid = 0.5 * (low + high)
    below = np.asarray(chi1(phi, mid, sigma_b2)) < 1.0  # (NaN where q* = inf: not below)
    low, high = np.where(below, mid, low), np.where(below, high, mid)
  diverges = np.isinf(np.asarray(fixed_point(phi, high, sigma_b2)))
  short = diverges & (np.abs(np.asarray(chi1(phi, low, sigma_b2)) - 1.0) > CHI1_AT_DIVERGENCE_TOL)
  if np.any(short):
    raise ValueError(f"critical_sigma_w2: at σ_b² = {sigma_b2[short] if sigma_b2.ndim else sigma_b2}, q* diverges "
                     f"for σ_w² above {low[short].flat[0]:.6g} while χ₁ is still "
                     f"{np.asarray(chi1(phi, low, sigma_b2))[short].flat[0]:.6g} below it: χ₁ = 1 is not reached "
                     "with a finite q*")
  return quadrature.out(0.5 * (low + high))
