"""What the experiments share: the result type, MNIST subsets, MLP configs, one backward pass that keeps every
per-layer array, a probed training run, and the sizes several figures use."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

from lab10 import config as config_lib
from lab10 import data, probes, train
from lab10 import step as step_lib

GLOROT_PROBE_EXAMPLES = 300  # Glorot & Bengio: statistics on 300 fixed test images
GRAD_PROBE_EXAMPLES = 500    # weight-gradient norms during training, on 500 fixed training images
LAB_BATCH = 100              # the seed labs' minibatch size
MOMENTUM = 0.9               # the heavy-ball momentum of every "SGD with momentum" run
NUM_CLASSES = 10             # MNIST's digits

_CLAIM_ID = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclasses.dataclass
class Result:
  data: dict                  # keyword arguments of the figure's plotting function; JSON-serialisable
  claims: dict[str, float]    # measured numbers that back the figure's claim, by short identifier
  claim_text: dict[str, str]  # what each claim measures, in words, by the same identifiers
  setting: str                # the scale and settings, one paragraph
  table: list[dict] = dataclasses.field(default_factory=list)  # rows of the figure's table, if it has one (CSV)

  def __post_init__(self):
    bad = [k for k in self.claims if not _CLAIM_ID.fullmatch(k)]
    if bad or self.claims.keys() != self.claim_text.keys():
      raise ValueError(f"claim identifiers must be short names, each with a text: {bad or set(self.claims)}")

  @classmethod
  def of(cls, data: dict, claims: dict[str, tuple[float, str]], setting: str, table: list[dict] = ()) -> Result:
    """A ``Result`` from ``claims = {identifier: (value, text)}``."""
    return cls(data, {k: v for k, (v, _) in claims.items()}, {k: t for k, (_, t) in claims.items()}, setting,
               list(table))


@dataclasses.dataclass(frozen=True)
class Check:
  """One claim of a figure, in words and as a test of its measured numbers (``holds(claims)``): figures/README.md
  states ``text`` beside each figure, and tests/test_figures.py asserts ``holds`` on the committed JSON."""
  text: str
  holds: Callable[[dict[str, float]], bool]


class Skipped(Exception):
  """A figure cannot be made here (e.g. its input file is absent); the message says why."""


def _mnist(data_dir, n_train: int | None = None, n_test: int | None = None) -> data.Dataset:
  ds = data.load("mnist", data_dir)
  return dataclasses.replace(ds, train_x=ds.train_x[:n_train], train_y=ds.train_y[:n_train],
                             test_x=ds.test_x[:n_test], test_y=ds.test_y[:n_test])


def _model(c: config_lib.Config, input_shape, seed: int = 0, num_classes: int = NUM_CLASSES):
  return config_lib.make_model(c, input_shape, num_classes, nnx.Rngs(params=jax.random.key(seed)))


def _mlp_config(**overrides) -> config_lib.Config:
  """An MLP config with zero biases (the papers' setting) unless overridden."""
  return config_lib.with_preset(None, **{"bias_init": "zeros", **overrides})


def _f(values) -> list:
  """Plain floats for JSON (NaN stays NaN; runs.write_json turns it into null)."""
  return [float(v) for v in np.asarray(values, dtype=float).ravel()]


def backprop(model, x: jax.Array, loss: Callable[[jax.Array], jax.Array]) -> dict:
  """One forward/backward pass (``probes.layer_gradients`` of ``loss(logits) -> scalar``): per hidden layer
  the full arrays ``post`` = h, ``pre`` = z, ``dz`` = ∂L/∂z and ``dw`` = ∂L/∂W.

  Kept beside ``probes.init_stats``, which reduces these to moments of the cross-entropy's gradients: the
  Glorot histograms need every value, and variance_vs_depth needs E[z²] of another loss in float64.
  """
  acts, deltas, grads = probes.layer_gradients(model, x, loss)
  dw = probes.layer_kernels(grads)
  return {name: {"pre": a["pre"], "post": a["post"], "dz": d, "dw": w}
          for name, a, d, w in zip(model.layer_names, acts, deltas, dw)}


def _train_probed(c: config_lib.Config, ds: data.Dataset, *, steps: int, every: int,
                  probe: Callable[[nnx.Module], dict] | None = None) -> dict:
  """Train ``c`` on ``ds`` for ``steps`` minibatch steps through ``train.loop`` (``c.seed``'s key plan); at
  step 0 and every ``every`` steps call ``probe(model)`` (jitted; returns a dict of arrays). Returns ``steps``
  (probe points), ``loss`` and ``accuracy`` (means over each piece of ``every`` training steps), ``probes``
  (one dict per probe point) and ``test_accuracy`` at the end.

  These figures probe a fixed set of examples in eval mode, where ``fit``'s ``--log_stats_every`` measures
  each logged training minibatch in train mode."""
  s = train.setup(c, ds.input_shape, ds.num_classes)
  steps_per_epoch = len(ds.train_y) // c.batch_size
  run_epoch = train.make_epoch(step_lib.make_train_step(s.graphdef, s.tx), c.batch_size)
  run_probe = jax.jit(lambda state: probe(nnx.merge(s.graphdef, state.params, state.rest)) if probe else {})
  x, y = jax.device_put(ds.train_x), jax.device_put(ds.train_y)
  out = {"steps": [0], "loss": [], "accuracy": [], "probes": [jax.device_get(run_probe(s.state))]}
  state, done, losses, accuracies = s.state, 0, [], []
  # Pieces that end at every probe point and every epoch's end.
  for _, _, state, metrics, probed in train.loop(run_epoch, s.state, x, y, s.data_key,
                                                 chunk=math.gcd(every, steps_per_epoch),
                                                 epochs=range(1, -(-steps // steps_per_epoch) + 1),
                                                 steps_per_epoch=steps_per_epoch, measure=run_probe,
                                                 precision=c.matmul_precision):
    done += len(metrics["loss"])
    losses.append(metrics["loss"])
    accuracies.append(metrics["accuracy"])
    if done % every and done < steps:
      continue
    out["steps"].append(done)
    out["probes"].append(probed)
    out["loss"].append(float(np.mean(np.concatenate(losses))))
    out["accuracy"].append(float(np.mean(np.concatenate(accuracies))))
    losses, accuracies = [], []
    if done >= steps:
      break
  evaluate = train.make_evaluate(s.graphdef)
  out["test_accuracy"] = float(evaluate(state.params, state.rest, ds.test_x, ds.test_y)["accuracy"])
  return out
