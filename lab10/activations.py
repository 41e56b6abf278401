"""Activation functions by name.

Each entry maps a CLI name to a plain ``jnp -> jnp`` callable. The formulas:

========== ==================================================================
sigmoid    σ(x) = 1 / (1 + e^{−x})
tanh       tanh(x)
relu       max(0, x)
leaky_relu max(0, x) + a·min(0, x); slope a = 0.01 by default (PyTorch's and
           JAX's default; He et al. 2015 initialise PReLU at 0.25, TF at 0.2 —
           pass ``negative_slope`` to choose)
elu        x if x > 0 else α(e^x − 1), α = 1
selu       λ·(x if x > 0 else α(e^x − 1)), λ = 1.0507009873554805,
           α = 1.6732632423543772 (Klambauer et al. 2017)
gelu       x·Φ(x), the exact erf form of Hendrycks & Gimpel (not the tanh
           approximation that ``jax.nn.gelu`` uses by default)
silu       x·σ(x) (swish with β = 1)
softsign   x / (1 + |x|)
identity   x
========== ==================================================================
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from lab10 import names

Activation = Callable[[jax.Array], jax.Array]

DEFAULT_LEAKY_SLOPE = names.DEFAULT_LEAKY_SLOPE
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


def leaky_relu(x: jax.Array, negative_slope: float = DEFAULT_LEAKY_SLOPE) -> jax.Array:
  """max(0, x) + a·min(0, x)."""
  return jnp.where(x >= 0, x, negative_slope * x)


def selu(x: jax.Array) -> jax.Array:
  """λ·(x if x > 0 else α(eˣ − 1)) with Klambauer et al.'s λ, α."""
  return SELU_LAMBDA * jnp.where(x > 0, x, SELU_ALPHA * jnp.expm1(jnp.minimum(x, 0.0)))


def gelu(x: jax.Array) -> jax.Array:
  """x·Φ(x), exact erf form."""
  return jax.nn.gelu(x, approximate=False)


def identity(x: jax.Array) -> jax.Array:
  return x


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": leaky_relu,
    "elu": jax.nn.elu,
    "selu": selu,
    "gelu": gelu,
    "silu": jax.nn.silu,
    "softsign": jax.nn.soft_sign,
    "identity": identity,
}
names.check_table("activation", ACTIVATIONS, names.ACTIVATIONS)


RANGES = names.RANGES  # bounded activations' (lo, hi): the probes count units near a bound as saturated


def get(name: str, negative_slope: float = DEFAULT_LEAKY_SLOPE) -> Activation:
  """The activation called ``name``; ``negative_slope`` only affects leaky_relu."""
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
  if name == "leaky_relu":
    return functools.partial(leaky_relu, negative_slope=negative_slope)
  return ACTIVATIONS[name]
