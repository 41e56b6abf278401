"""Variance-propagation predictions: Glorot & Bengio 2010 and He et al. 2015, and the same for a concrete
finite-width network through the mean-field maps of lab10/meanfield.py.

Layers are numbered from 1 (the first hidden layer); ``fan_in[l]``, ``fan_out[l]`` and ``weight_var[l]``
describe the weights W_l that produce layer l's pre-activation z_l. Products run over NumPy float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lab10 import meanfield
from lab10.meanfield import Activation


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


# --- a concrete network -------------------------------------------------------------------------


def predicted_forward(phi: Activation, input_second_moment: float, fan_in: Sequence[int],
                      weight_var: Sequence[float], bias_var: float = 0.0) -> np.ndarray:
  """Var[z_l] for l = 1..L of a finite-width MLP with zero-mean i.i.d. weights, the mean-field map
  with the network's own scales: Var[z_1] = n_1 Var[W_1] E[x²] + Var[b],
  Var[z_l] = n_l Var[W_l] E_{z~N(0, Var[z_{l−1}])}[φ(z)²] + Var[b]. For ReLU this is He's Eq. 7–9, in
  the linear regime Glorot's Eq. 5; E[φ(z)²] (not Var[φ(z)]) enters because W has zero mean."""
  q = [fan_in[0] * weight_var[0] * input_second_moment + bias_var]
  for n, v in zip(fan_in[1:], weight_var[1:]):
    q.append(meanfield.length_map(phi, q[-1], n * v, bias_var))
  return np.asarray(q)


def predicted_backward(phi: Activation, top_var: float, forward_var: Sequence[float], fan_out: Sequence[int],
                       weight_var: Sequence[float]) -> np.ndarray:
  """Var[∂L/∂z_l] for l = 1..L from the top layer's ``top_var``: Var[δ_l] = n̂_{l+1} Var[W_{l+1}]
  E_{z~N(0, Var[z_l])}[φ'(z)²] Var[δ_{l+1}] (Schoenholz et al. 2017, Eq. 12, with finite widths;
  He's Eq. 13 for ReLU). ``fan_out[l]`` / ``weight_var[l]`` are of the weights above layer l."""
  out = [top_var]
  for q, n, v in zip(forward_var[-2::-1], fan_out[::-1], weight_var[::-1]):
    out.append(meanfield.chi1(phi, n * v, 0.0, q=q) * out[-1])
  return np.asarray(out[::-1])
