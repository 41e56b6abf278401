"""Float64 references for tests/test_anymodel.py, independent of lab10.anymodel: each model's forward pass written
out as a function of its parameters with an explicit zero tap after every kernel layer, differentiated by JAX in
float64 (run as a script with JAX_ENABLE_X64=1), and every statistic from its definition in NumPy.

Usage: python anymodel_reference.py IN.npz OUT.json  (IN holds ``model`` (its name), ``P.<param path>`` and
``batch.<key>``; OUT gets ``{stat key: value}`` and, per mean, the std of its tensor).
"""

import json
import sys

import numpy as np


def _linear(P, name, x):
  return x @ P[f"{name}.kernel"] + P[f"{name}.bias"]


def _conv(P, name, x):
  import jax

  return jax.lax.conv_general_dilated(x, P[f"{name}.kernel"], (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC")) + P[f"{name}.bias"]


def _avg_pool(x):
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _xent(logits, y):
  import jax

  logp = jax.nn.log_softmax(logits)
  return -(logp * jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype)).sum(-1).mean()


def tutorial_cnn(P, batch, tap):
  """The Flax NNX MNIST tutorial's CNN: conv1 → relu → avg_pool → conv2 → relu → avg_pool → linear1 → relu → linear2."""
  import jax

  relu = jax.nn.relu
  x = _avg_pool(relu(tap("conv1", batch["x"], _conv(P, "conv1", batch["x"]))))
  x = _avg_pool(relu(tap("conv2", x, _conv(P, "conv2", x))))
  x = x.reshape(x.shape[0], -1)
  x = relu(tap("linear1", x, _linear(P, "linear1", x)))
  return _xent(tap("linear2", x, _linear(P, "linear2", x)), batch["y"])


def residual_mlp(P, batch, tap, depth=4):
  """x → inp → depth × (h + relu(layer_i(h))) → head."""
  import jax

  h = tap("inp", batch["x"], _linear(P, "inp", batch["x"]))
  for i in range(depth):
    name = f"layers.{i}"
    h = h + jax.nn.relu(tap(name, h, _linear(P, name, h)))
  return _xent(tap("head", h, _linear(P, "head", h)), batch["y"])


def _layer_norm(P, name, x, eps=1e-6):
  import jax.numpy as jnp

  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / jnp.sqrt(var + eps) * P[f"{name}.scale"] + P[f"{name}.bias"]


def pre_ln_transformer(P, batch, tap, depth=2):
  """Embedding → depth × (x + attn(ln1(x)); x + down(gelu(up(ln2(x))))) → ln → head; next-token cross-entropy."""
  import jax
  import jax.numpy as jnp

  x = P["embed.embedding"][batch["tokens"]]
  for i in range(depth):
    b = f"blocks.{i}"
    h = _layer_norm(P, f"{b}.ln1", x)
    q, k, v = (tap(f"{b}.attn.{n}", h, jnp.einsum("btf,fhd->bthd", h, P[f"{b}.attn.{n}.kernel"])
                   + P[f"{b}.attn.{n}.bias"]) for n in ("query", "key", "value"))
    weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q / jnp.sqrt(q.shape[-1]), k), axis=-1)
    heads = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    x = x + tap(f"{b}.attn.out", heads, jnp.einsum("bthd,hdf->btf", heads, P[f"{b}.attn.out.kernel"])
                + P[f"{b}.attn.out.bias"])
    h = _layer_norm(P, f"{b}.ln2", x)
    u = tap(f"{b}.up", h, _linear(P, f"{b}.up", h))
    g = jax.nn.gelu(u, approximate=True)
    x = x + tap(f"{b}.down", g, _linear(P, f"{b}.down", g))
  h = _layer_norm(P, "ln", x)
  logits = tap("head", h, _linear(P, "head", h))
  return _xent(logits[:, :-1], batch["tokens"][:, 1:])


MODELS = {"tutorial_cnn": tutorial_cnn, "residual_mlp": residual_mlp, "pre_ln_transformer": pre_ln_transformer}


def reference(model: str, P: dict, batch: dict) -> dict:
  import jax

  loss_of = MODELS[model]
  seen = {}

  def record(name, x, z):
    seen[name] = (x, z)
    return z

  loss_of(P, batch, record)  # the inputs and outputs of every layer, and the taps' shapes
  inputs = {name: np.asarray(x) for name, (x, _) in seen.items()}
  outputs = {name: np.asarray(z) for name, (_, z) in seen.items()}

  def loss(P, taps):
    return loss_of(P, batch, lambda name, x, z: z + taps[name])

  grads, deltas = jax.grad(loss, argnums=(0, 1))(P, {n: np.zeros_like(z) for n, z in outputs.items()})
  out, scale = {}, {}
  for name in outputs:
    x, z, d = inputs[name], outputs[name], np.asarray(deltas[name])
    out.update({f"forward/{name}/in_mean": x.mean(), f"forward/{name}/in_var": x.var(),
                f"forward/{name}/in_abs_p98": np.percentile(np.abs(x), 98),
                f"forward/{name}/in_dead": np.mean(np.all(x.reshape(-1, x.shape[-1]) <= 0, axis=0)),
                f"forward/{name}/out_mean": z.mean(), f"forward/{name}/out_var": z.var(),
                f"backward/{name}/grad_mean": d.mean(), f"backward/{name}/grad_var": d.var()})
    scale.update({f"forward/{name}/in_mean": x.std(), f"forward/{name}/out_mean": z.std(),
                  f"backward/{name}/grad_mean": d.std()})
    w, g = P[f"{name}.kernel"], np.asarray(grads[f"{name}.kernel"])
    out.update({f"params/{name}/norm": np.sqrt(np.sum(w ** 2)), f"grads/{name}/norm": np.sqrt(np.sum(g ** 2)),
                f"grads/{name}/var": g.var()})
  return {"stats": {k: float(v) for k, v in out.items()}, "scale": {k: float(v) for k, v in scale.items()},
          "order": list(outputs)}


if __name__ == "__main__":
  import jax

  assert jax.config.jax_enable_x64, "run with JAX_ENABLE_X64=1"
  data = np.load(sys.argv[1])
  P = {k[2:]: np.asarray(data[k], np.float64) for k in data.files if k.startswith("P.")}
  batch = {k[6:]: data[k] if data[k].dtype.kind in "iu" else np.asarray(data[k], np.float64)
           for k in data.files if k.startswith("batch.")}
  with open(sys.argv[2], "w") as f:
    json.dump(reference(str(data["model"]), P, batch), f)
