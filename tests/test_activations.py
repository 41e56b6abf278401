import math

import numpy as np
import pytest

from lab10 import activations

X = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0], dtype=np.float32)
LAMBDA, ALPHA = 1.0507009873554805, 1.6732632423543772


def _gelu(x):
  return np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


REFERENCE = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "selu": lambda x: LAMBDA * np.where(x > 0, x, ALPHA * np.expm1(x)),
    "gelu": _gelu,
    "silu": lambda x: x * _sigmoid(x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "identity": lambda x: x,
}


def test_table_is_complete():
  assert set(activations.ACTIVATIONS) == set(REFERENCE)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_matches_formula(name):
  got = np.asarray(activations.get(name)(X))
  np.testing.assert_allclose(got, REFERENCE[name](X.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_leaky_slope_is_configurable():
  got = np.asarray(activations.get("leaky_relu", negative_slope=0.2)(X))
  np.testing.assert_allclose(got, np.where(X >= 0, X, 0.2 * X), rtol=1e-7)


def test_selu_constants():
  assert activations.SELU_LAMBDA == LAMBDA and activations.SELU_ALPHA == ALPHA
  # SELU's limit for x → −∞ is −λα.
  assert float(activations.get("selu")(np.float32(-30.0))) == pytest.approx(-LAMBDA * ALPHA, rel=1e-6)


def test_gelu_is_exact_not_tanh_approximation():
  # At x = 1 the erf form gives 0.841345, the tanh approximation 0.841192.
  assert float(activations.get("gelu")(np.float32(1.0))) == pytest.approx(0.8413447, abs=2e-6)


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match=r"unknown activation 'swish2'; valid: sigmoid, tanh, relu"):
    activations.get("swish2")


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_finite_inputs_give_finite_outputs(name):
  # divergence.forward_finiteness checks only z: it relies on this (SELU's λ·z overflows only above 3.2e38).
  z = np.array([-3e38, -1e30, -88.8, -1e-38, 0.0, 1e-38, 88.8, 1e30, 3e38], dtype=np.float32)
  assert np.isfinite(np.asarray(activations.get(name)(z))).all()
