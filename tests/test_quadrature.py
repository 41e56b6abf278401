"""lab10.quadrature: Gaussian expectations, exact across a kink at 0."""

import math

import numpy as np
import pytest

from lab10 import quadrature


def test_gaussian_quadrature_moments():
  assert quadrature.gaussian_mean(lambda z: z**2, 2.0) == pytest.approx(2.0, rel=1e-12)
  assert quadrature.gaussian_mean(lambda z: z**4, 2.0) == pytest.approx(3 * 4.0, rel=1e-12)
  # A kink at 0 costs nothing: the rule integrates z < 0 and z > 0 apart.
  assert quadrature.gaussian_mean(lambda z: np.maximum(z, 0) ** 2, 3.0) == pytest.approx(1.5, rel=1e-13)
  assert quadrature.gaussian_mean(lambda z: np.abs(z) ** 3, 2.0) == pytest.approx(2 * math.sqrt(2 / math.pi) * 2**1.5,
                                                                                 rel=1e-13)
