import jax
import numpy as np

from lab10 import theory


def test_glorot_products():
  n = [784, 1000, 1000]
  # Standard init U[±1/√n]: n·Var[W] = 1/3 per layer (Glorot & Bengio 2010, Eq. 5).
  np.testing.assert_allclose(theory.glorot_forward(0.1, n, [1 / (3 * k) for k in n]), 0.1 / 3.0 ** np.arange(1, 4))
  # Backward twin: the weights above layers 1 and 2 have fan-out 1000; the top layer keeps top_var.
  np.testing.assert_allclose(theory.glorot_backward(2.0, [1000, 1000], [1 / 3000, 1 / 3000]), [2 / 9, 2 / 3, 2])


def test_he_products_relu_and_leaky():
  np.testing.assert_allclose(theory.he_forward(1.5, [512] * 29, [2 / 512] * 29), np.full(30, 1.5))
  np.testing.assert_allclose(theory.he_forward(1.0, [512] * 29, [1 / 512] * 29)[-1], 2.0**-29)
  a = 0.25
  np.testing.assert_allclose(theory.he_forward(1.0, [100] * 3, [2 / ((1 + a**2) * 100)] * 3, a), np.ones(4))
  np.testing.assert_allclose(theory.he_backward(1.0, [100] * 3, [1 / 100] * 3), [1 / 8, 1 / 4, 1 / 2, 1])


def test_mean_field_prediction_reduces_to_he_for_relu():
  """Quadrature of E[relu(z)²] = q/2 reproduces He's Eq. 9: two independent routes, one number."""
  n, v = [300, 512, 512, 512], [2 / 300, 1 / 512, 3 / 512, 2 / 512]
  forward = theory.predicted_forward(jax.nn.relu, 0.7, n, v)
  np.testing.assert_allclose(forward, theory.he_forward(300 * v[0] * 0.7, n[1:], v[1:]), rtol=1e-3)
  backward = theory.predicted_backward(jax.nn.relu, 1.0, forward, n[1:], v[1:])
  np.testing.assert_allclose(backward, theory.he_backward(1.0, n[1:], v[1:]), rtol=1e-3)
