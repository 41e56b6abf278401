"""Float64 NumPy references the tests compare lab10 against: an MLP's forward and backward pass written out
by hand, and every per-layer statistic of ``lab10.probes`` from its definition."""

import math

import numpy as np
from flax import nnx

TANH = (np.tanh, lambda z: 1 - np.tanh(z) ** 2, (-1.0, 1.0))  # (φ, φ', bounds)
RELU = (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(np.float64), None)


def f64(v) -> np.ndarray:
  return np.asarray(v[...] if isinstance(v, nnx.Variable) else v, np.float64)


def mlp_pass(model, batch: dict, phi, dphi) -> dict:
  """Forward pass of a dropout-free, batch-norm-free ``lab10.models.MLP`` and the backward pass of its mean
  softmax cross-entropy: ``zs``, ``hs`` and ``deltas`` (∂L/∂z) per hidden layer, ``kernels`` and ``grads``
  (∂L/∂W) per kernel (hidden layers, then the head), ``logits`` and ``loss``."""
  kernels = [f64(b.layer.kernel) for b in model.blocks] + [f64(model.head.kernel)]
  biases = [f64(b.layer.bias) for b in model.blocks] + [f64(model.head.bias)]
  x = np.asarray(batch["x"], np.float64).reshape(len(batch["y"]), -1)
  h, zs, hs = x, [], []
  for w, b in zip(kernels[:-1], biases[:-1]):
    zs.append(h @ w + b)
    h = phi(zs[-1])
    hs.append(h)
  logits = h @ kernels[-1] + biases[-1]
  shifted = logits - logits.max(1, keepdims=True)
  p = np.exp(shifted) / np.exp(shifted).sum(1, keepdims=True)
  n, classes = logits.shape
  onehot = np.eye(classes)[batch["y"]]
  loss = -np.mean(np.sum(onehot * (shifted - np.log(np.exp(shifted).sum(1, keepdims=True))), axis=1))
  delta = (p - onehot) / n  # ∂L/∂logits of the mean cross-entropy
  grads, deltas = [None] * len(kernels), [None] * len(zs)
  grads[-1] = (hs[-1] if hs else x).T @ delta
  for l in range(len(zs) - 1, -1, -1):
    delta = (delta @ kernels[l + 1].T) * dphi(zs[l])
    deltas[l] = delta
    grads[l] = (hs[l - 1] if l else x).T @ delta
  return {"zs": zs, "hs": hs, "deltas": deltas, "kernels": kernels, "grads": grads, "logits": logits, "loss": loss}


def stats(ref: dict, bounds) -> dict[str, float]:
  """Every statistic ``probes.layer_stats`` reports for ``mlp_pass``'s tensors (no updates), from its definition."""
  out = {}
  for l, (z, h, d) in enumerate(zip(ref["zs"], ref["hs"], ref["deltas"])):
    name = f"dense_{l}"
    out.update({f"forward/{name}/pre_mean": z.mean(), f"forward/{name}/pre_var": z.var(),
                f"forward/{name}/act_mean": h.mean(), f"forward/{name}/act_var": h.var(),
                f"forward/{name}/act_abs_p98": np.percentile(np.abs(h), 98),
                f"forward/{name}/dead": np.mean(np.all(z <= 0, axis=0)),
                f"backward/{name}/grad_mean": d.mean(), f"backward/{name}/grad_var": d.var()})
    if bounds is not None:
      lo, hi = bounds
      out[f"forward/{name}/saturated"] = np.mean((h < lo + 0.01 * (hi - lo)) | (h > hi - 0.01 * (hi - lo)))
  names = [f"dense_{l}" for l in range(len(ref["zs"]))] + ["head"]
  for name, w, g in zip(names, ref["kernels"], ref["grads"]):
    out.update({f"params/{name}/norm": np.sqrt(np.sum(w**2)), f"grads/{name}/norm": np.sqrt(np.sum(g**2)),
                f"grads/{name}/var": g.var()})
  return out


def assert_close(got: dict, want: dict[str, float], rtol=1e-5, atol=1e-9) -> None:
  """Same keys, and every value of ``got`` within tolerance of ``want``'s (all the misses in one message)."""
  assert set(got) == set(want), f"keys differ: {set(got) ^ set(want)}"
  bad = {k: (float(got[k]), v) for k, v in want.items()
         if not math.isclose(float(got[k]), v, rel_tol=rtol, abs_tol=atol)}
  assert not bad, bad
