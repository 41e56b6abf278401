"""Weight and bias initializers with exact variances.

Every constructor returns a JAX initializer ``init(key, shape, dtype) -> array``.
Kernels are ``(fan_in, fan_out)`` for dense layers and ``(kh, kw, c_in, c_out)``
for convolutions, so the fans include the receptive field:

    fan_in = kh·kw·c_in,   fan_out = kh·kw·c_out       (dense: kh·kw = 1)

Three distributions realise a target variance v:

* plain Gaussian      N(0, v)                      — what He et al. 2015 used;
* truncated Gaussian  N(0, s²) cut at ±2s with s = √v / 0.87962566 so that the
  variance after truncation is exactly v        — what ``jax.nn.initializers``
  (``he_normal``, ``glorot_normal``, ``lecun_normal``) draw;
* uniform             U[−√(3v), +√(3v)]             — Glorot & Bengio 2010.

The names say which one is drawn: ``*_normal`` is the plain Gaussian of the
papers and ``*_truncated_normal`` the JAX/Keras variant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from lab10 import names

Initializer = Callable[..., jax.Array]

# std of a unit normal truncated to [−2, 2]; dividing by it restores unit variance.
TRUNCATED_NORMAL_STD = 0.87962566103423978


def fans(shape: Sequence[int]) -> tuple[int, int]:
  """(fan_in, fan_out) of a dense ``(in, out)`` or conv ``(*window, in, out)`` kernel."""
  if len(shape) < 2:
    raise ValueError(f"a kernel needs at least 2 dimensions, got shape {tuple(shape)}")
  receptive_field = math.prod(shape[:-2])
  return shape[-2] * receptive_field, shape[-1] * receptive_field


def _draw(distribution: str, variance: float) -> Initializer:
  """An initializer drawing i.i.d. entries of the given distribution and variance."""

  def init(key, shape, dtype=jnp.float32):
    std = math.sqrt(variance)
    if distribution == "normal":
      return std * jax.random.normal(key, shape, dtype)
    if distribution == "truncated_normal":
      unit = jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
      return (std / TRUNCATED_NORMAL_STD) * unit
    limit = math.sqrt(3.0) * std
    return jax.random.uniform(key, shape, dtype, -limit, limit)

  return init


def _fan_scaled(distribution: str, scale: float, mode: str) -> Initializer:
  """Var[W] = scale / n, with n = fan_in, fan_out or their mean (``fan_avg``)."""
  if mode not in ("fan_in", "fan_out", "fan_avg"):
    raise ValueError(f"unknown fan mode {mode!r}; valid: fan_in, fan_out, fan_avg")

  def init(key, shape, dtype=jnp.float32):
    fan_in, fan_out = fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    return _draw(distribution, scale / n)(key, shape, dtype)

  return init


def random_normal(std: float = 1.0) -> Initializer:
  """N(0, σ²): Var[W] = σ². The labs' "random normal": σ = 1 in TF1, 0.05 in TF2's RandomNormal()."""
  return _draw("normal", std**2)


def glorot_uniform(gain: float = 1.0) -> Initializer:
  """Glorot & Bengio 2010, Eq. 16 ("normalized"): U[±√6/√(n_in+n_out)], Var[W] = 2·g²/(n_in+n_out)."""
  return _fan_scaled("uniform", gain**2, "fan_avg")


def glorot_normal(gain: float = 1.0) -> Initializer:
  """Plain Gaussian with the Glorot variance: N(0, 2·g²/(n_in+n_out))."""
  return _fan_scaled("normal", gain**2, "fan_avg")


def glorot_truncated_normal(gain: float = 1.0) -> Initializer:
  """JAX's ``glorot_normal``: truncated Gaussian, Var[W] = 2·g²/(n_in+n_out) after truncation."""
  return _fan_scaled("truncated_normal", gain**2, "fan_avg")


def glorot_standard(gain: float = 1.0) -> Initializer:
  """Glorot & Bengio 2010, Eq. 1 ("standard"): U[±g/√n_in], so Var[W] = g²/(3·n_in) and n·Var[W] = 1/3."""
  return _fan_scaled("uniform", gain**2 / 3.0, "fan_in")


def fan_avg_x2_normal(gain: float = 1.0) -> Initializer:
  """The lab 10-2 lecture's "He = twice Xavier": N(0, 4·g²/(n_in+n_out)).

  Not the He et al. 2015 initializer (Var[W] = 2/fan_in): with equal fans the two agree,
  otherwise they differ by the ratio of fan_in to the mean fan.
  """
  return _fan_scaled("normal", 2.0 * gain**2, "fan_avg")


def _he_scale(gain: float, negative_slope: float) -> float:
  return 2.0 * gain**2 / (1.0 + negative_slope**2)


def he_normal(gain: float = 1.0, mode: str = "fan_in", negative_slope: float = 0.0) -> Initializer:
  """He et al. 2015, Eq. 10 (and §2.2 for PReLU): N(0, 2·g²/((1+a²)·n)), n = fan_in (or fan_out, Eq. 14)."""
  return _fan_scaled("normal", _he_scale(gain, negative_slope), mode)


def he_truncated_normal(gain: float = 1.0, mode: str = "fan_in", negative_slope: float = 0.0) -> Initializer:
  """JAX's ``he_normal``: truncated Gaussian, Var[W] = 2·g²/((1+a²)·n) after truncation."""
  return _fan_scaled("truncated_normal", _he_scale(gain, negative_slope), mode)


def he_uniform(gain: float = 1.0, mode: str = "fan_in", negative_slope: float = 0.0) -> Initializer:
  """U[±√(6·g²/((1+a²)·n))]: Var[W] = 2·g²/((1+a²)·n)."""
  return _fan_scaled("uniform", _he_scale(gain, negative_slope), mode)


def lecun_normal(gain: float = 1.0) -> Initializer:
  """LeCun et al. 1998, plain Gaussian: N(0, g²/fan_in). With g² = σ_w² this is the mean-field scaling."""
  return _fan_scaled("normal", gain**2, "fan_in")


def lecun_truncated_normal(gain: float = 1.0) -> Initializer:
  """JAX's ``lecun_normal``: truncated Gaussian, Var[W] = g²/fan_in after truncation (SELU's default)."""
  return _fan_scaled("truncated_normal", gain**2, "fan_in")


def lecun_uniform(gain: float = 1.0) -> Initializer:
  """U[±√(3·g²/fan_in)]: Var[W] = g²/fan_in."""
  return _fan_scaled("uniform", gain**2, "fan_in")


def orthogonal(gain: float = 1.0) -> Initializer:
  """Saxe et al. 2013: a (semi-)orthogonal matrix times g over the last axis.

  The kernel is reshaped to an (m = fan_in, n = c_out) matrix whose singular values all equal g
  (orthonormal columns if m ≥ n, rows otherwise), so the mean square entry is exactly g²/max(m, n).
  """
  return jax.nn.initializers.orthogonal(scale=gain)


def zeros() -> Initializer:
  """Bias 0."""
  return jax.nn.initializers.zeros


# Kernel initializers take (gain, mode, negative_slope); the table says which each accepts.
KERNEL_INITIALIZERS: dict[str, Callable[..., Initializer]] = {
    "normal": random_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "glorot_truncated_normal": glorot_truncated_normal,
    "glorot_standard": glorot_standard,
    "fan_avg_x2_normal": fan_avg_x2_normal,
    "he_normal": he_normal,
    "he_truncated_normal": he_truncated_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_truncated_normal": lecun_truncated_normal,
    "lecun_uniform": lecun_uniform,
    "orthogonal": orthogonal,
}
names.check_table("kernel initializer", KERNEL_INITIALIZERS, names.KERNEL_INITIALIZERS)

BIAS_INITIALIZERS: dict[str, Callable[..., Initializer]] = {
    "zeros": zeros,
    "normal": random_normal,
}
names.check_table("bias initializer", BIAS_INITIALIZERS, names.BIAS_INITIALIZERS)

_HE = (he_normal, he_truncated_normal, he_uniform)


def kernel(name: str, *, std: float = 1.0, gain: float = 1.0, mode: str = "fan_in",
           negative_slope: float = 0.0) -> Initializer:
  """The kernel initializer ``name``.

  ``std`` is σ of ``normal``; ``gain`` multiplies the std of every other one; ``mode`` and
  ``negative_slope`` (He's leaky-ReLU form) apply to the he_* family only.
  """
  if name not in KERNEL_INITIALIZERS:
    raise ValueError(f"unknown initializer {name!r}; valid: {', '.join(KERNEL_INITIALIZERS)}")
  make = KERNEL_INITIALIZERS[name]
  if make is random_normal:
    return random_normal(std)
  if make in _HE:
    return make(gain, mode, negative_slope)
  return make(gain)


def bias(name: str, *, std: float = 1.0) -> Initializer:
  """The bias initializer ``name``; ``std`` is σ of ``normal``."""
  if name not in BIAS_INITIALIZERS:
    raise ValueError(f"unknown bias initializer {name!r}; valid: {', '.join(BIAS_INITIALIZERS)}")
  return random_normal(std) if name == "normal" else zeros()
