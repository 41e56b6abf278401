"""Flax NNX models: an MLP and a plain VGG-style CNN, parameterised by callables.

Both expose ``forward(x, *, train, dropout_key, taps) -> (logits, acts)``:

* ``acts[i] = {"pre": z, "post": h}`` for hidden layer i, in layer order (named ``layer_names[i]``:
  ``dense_i`` / ``conv_i``), the values the forward pass really used — z after the affine map (and batch
  norm), h = φ(z) before dropout. A list, so the order survives JAX's pytree round trips (which sort dict keys);
* ``taps[i]``, if given, is added to layer i's z — pass zeros and differentiate to get ∂L/∂z.

``__call__`` returns the logits alone; under ``jax.jit`` the unused activations cost
nothing, so training and analysis share one code path. (We return activations
explicitly instead of ``sow``: ``sow``'s storage semantics changed between Flax 0.10
and 0.12 — without an ``nnx.capture`` context it now writes into the module's state.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from lab10 import compat
from lab10.initializers import Initializer

Activation = Callable[[jax.Array], jax.Array]
Acts = list[dict[str, jax.Array]]  # per hidden layer, in order: {"pre": z, "post": h}


def hidden_blocks(tree) -> list:
  """The per-layer subtrees of a params-shaped ``nnx.State`` (parameters, gradients, updates), in layer order."""
  blocks = tree["blocks"] if "blocks" in tree else {}
  return [blocks[i] for i in sorted(blocks.keys())]


class Block(nnx.Module):
  """One hidden layer: affine map (dense or 3×3 conv) → [batch norm] → φ → [dropout]."""

  def __init__(self, layer: nnx.Module, features: int, activation: Activation,
               batchnorm: bool, dropout_rate: float, rngs: nnx.Rngs):
    self.layer = layer
    self.norm = nnx.BatchNorm(features, rngs=rngs) if batchnorm else None
    self.dropout = nnx.Dropout(dropout_rate) if dropout_rate > 0 else None
    self.activation = activation

  def __call__(self, x, *, train: bool, rngs: nnx.Rngs | None, tap: jax.Array | None):
    z = self.layer(x)
    if self.norm is not None:
      z = self.norm(z, use_running_average=not train)
    if tap is not None:
      z = z + tap
    h = self.activation(z)
    out = h
    if self.dropout is not None:
      out = self.dropout(h, deterministic=not train, rngs=rngs)
    return out, z, h


class _Classifier(nnx.Module):
  """Shared forward pass over ``self.blocks`` and ``self.head``."""

  prefix = "layer"

  def _features(self, x: jax.Array, i: int) -> jax.Array:
    return x

  def _pool(self, x: jax.Array) -> jax.Array:
    return x

  def forward(self, x: jax.Array, *, train: bool = False, dropout_key: jax.Array | None = None,
              taps: Sequence[jax.Array | None] | None = None) -> tuple[jax.Array, Acts]:
    """Logits and per-hidden-layer ``{"pre", "post"}`` activations, in layer order. Dropout needs
    ``dropout_key`` when training."""
    rngs = nnx.Rngs(dropout=dropout_key) if dropout_key is not None else None
    h = self._prepare(x)
    acts: Acts = []
    for i, block in enumerate(self.blocks):
      h, z, post = block(h, train=train, rngs=rngs, tap=None if taps is None else taps[i])
      acts.append({"pre": z, "post": post})
      h = self._features(h, i)
    return self.head(self._pool(h)), acts

  def __call__(self, x: jax.Array, *, train: bool = False, dropout_key: jax.Array | None = None) -> jax.Array:
    return self.forward(x, train=train, dropout_key=dropout_key)[0]

  @property
  def layer_names(self) -> list[str]:
    return [f"{self.prefix}_{i}" for i in range(len(self.blocks))]


class MLP(_Classifier):
  """Fully connected net: in → widths[0] → … → widths[-1] → classes. No hidden layer = softmax regression."""

  prefix = "dense"

  def __init__(self, in_features: int, widths: Sequence[int], num_classes: int, *,
               activation: Activation, kernel_init: Initializer, bias_init: Initializer,
               dropout_rate: float = 0.0, batchnorm: bool = False, rngs: nnx.Rngs):
    sizes = [in_features, *widths]

    def dense(n_in, n_out, use_bias=True):
      return nnx.Linear(n_in, n_out, use_bias=use_bias, kernel_init=kernel_init,
                        bias_init=bias_init, rngs=rngs)

    # With batch norm the affine layer's bias is redundant (BN's β takes its place).
    self.blocks = compat.List([
        Block(dense(n_in, n_out, use_bias=not batchnorm), n_out, activation, batchnorm, dropout_rate, rngs)
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ])
    self.head = dense(sizes[-1], num_classes)

  def _prepare(self, x):
    return x.reshape(x.shape[0], -1)


def cnn_stage_channels(depth: int, width: int, stages: int = 3) -> list[int]:
  """Channels of each of ``depth`` conv layers: ``stages`` equal-as-possible stages, doubling per stage."""
  stages = max(1, min(stages, depth))
  per_stage = [depth // stages + (s < depth % stages) for s in range(stages)]
  return [width * 2**s for s, n in enumerate(per_stage) for _ in range(n)]


class CNN(_Classifier):
  """Plain VGG-style stack of 3×3 'SAME' convs (no residuals), 2×2 max-pool after each stage,
  global average pooling, then a dense classifier. Inputs are NHWC."""

  prefix = "conv"

  def __init__(self, in_channels: int, depth: int, width: int, num_classes: int, *,
               activation: Activation, kernel_init: Initializer, bias_init: Initializer,
               dropout_rate: float = 0.0, batchnorm: bool = False, stages: int = 3, rngs: nnx.Rngs):
    channels = cnn_stage_channels(depth, width, stages)
    ins = [in_channels, *channels[:-1]]
    self.blocks = compat.List([
        Block(nnx.Conv(c_in, c_out, (3, 3), use_bias=not batchnorm, kernel_init=kernel_init,
                       bias_init=bias_init, rngs=rngs), c_out, activation, batchnorm, dropout_rate, rngs)
        for c_in, c_out in zip(ins, channels)
    ])
    # Pool where the channel count changes next, i.e. at the end of each stage but the last.
    self.pool_after = tuple(i for i in range(depth - 1) if channels[i + 1] != channels[i])
    self.head = nnx.Linear(channels[-1], num_classes, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)

  def _prepare(self, x):
    return x

  def _features(self, x, i):
    if i in self.pool_after:
      return nnx.max_pool(x, (2, 2), strides=(2, 2))
    return x

  def _pool(self, x):
    return jnp.mean(x, axis=(1, 2))
