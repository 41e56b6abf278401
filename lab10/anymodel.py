"""Per-layer gradient flow of any Flax NNX model, with the user's own loss and no change to the model's class.

    loss, grads, stats = anymodel.value_and_grad(loss_fn)(model, batch)   # where nnx.value_and_grad was

``grads`` are ``nnx.value_and_grad``'s (an ``nnx.State`` of the parameters); ``stats`` the statistics below for
every layer with a kernel — ``nnx.Linear``, ``nnx.Conv``, ``nnx.LinearGeneral``, ``nnx.Einsum`` (``KERNEL_LAYERS``),
the four inside each ``nnx.MultiHeadAttention`` included — as ``{"<group>/<layer>/<stat>": scalar}``. It works
inside ``jax.jit`` / ``nnx.jit`` and at initialization; state the loss changes (batch-norm statistics, RNG counts)
is written back to ``model`` as ``nnx.value_and_grad`` does.

How: while the loss is traced, those layer classes' ``__call__`` is wrapped (and restored after): each call on one
of the model's layers records its input x and output z, and adds to z a zero "tap" whose gradient is
δ = ∂L/∂z. Layers are named by their path in the model (``blocks.3.attn.query``) and listed in the order the
forward pass first calls them (``call_order``: a dict leaving ``jax.jit`` has its keys sorted); a layer called
again is recorded again as ``<path>@2``, ``@3``, … A module of
another kind that holds a parameter named ``kernel`` raises ``UnknownLayer`` naming it: no layer is left out
silently.

=========================================  ==========================================================
``forward/L/in_mean``, ``in_var``          mean, variance of the signal x entering the layer
``forward/L/in_abs_p98``                   98th percentile of |x| (as ``np.percentile``)
``forward/L/in_dead``                      fraction of x's features (last axis) ≤ 0 for every example and
                                           position: units of the layer below that are dead for the batch
``forward/L/out_mean``, ``out_var``        mean, variance of the layer's output z
``backward/L/grad_mean``, ``grad_var``     mean, variance of δ = ∂L/∂z
``params/L/norm``                          ‖W‖₂ of the kernel
``grads/L/norm``, ``grads/L/var``          ‖∂L/∂W‖₂ and the variance of its entries
``updates/L/norm``, ``updates/L/ratio``    ‖ΔW‖₂ and ‖ΔW‖₂ / ‖W‖₂: ``update_stats(kernels(before), kernels(after))``
=========================================  ==========================================================

Moments pool every element (examples, positions, heads, units). For lab10's own MLP these are the numbers of
``lab10.probes`` under other names (``tests/test_anymodel.py`` checks every shared one): layer ``blocks.i.layer``'s
``out_*`` and ``backward`` are ``dense_i``'s ``pre_*`` and ``backward`` (no batch norm), ``blocks.i+1.layer``'s
``in_*`` are ``dense_i``'s ``act_*`` (eval mode: no dropout).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lab10 import percentile, probes, runlog, runs, workdir
from lab10 import tensorboard as tensorboard_lib

KERNEL_LAYERS: tuple[type, ...] = tuple(getattr(nnx, name) for name in ("Linear", "Conv", "LinearGeneral", "Einsum")
                                        if hasattr(nnx, name))
_patch_lock = threading.RLock()  # one trace at a time wraps the classes' __call__


class UnknownLayer(ValueError):
  """A module holds a kernel but is none of ``KERNEL_LAYERS``: its statistics cannot be taken."""


def _name(path) -> str:
  return ".".join(str(p) for p in path)


def layers(model: nnx.Module) -> dict[str, nnx.Module]:
  """The model's layers with a kernel, by path (in the model's own sorted order; ``value_and_grad`` lists them
  in call order). ``UnknownLayer`` for a module of another kind holding a ``kernel``; ``TypeError`` for a Flax
  linen module."""
  _check_nnx(model)
  found = {}
  for path, node in nnx.iter_graph(model):
    if isinstance(node, KERNEL_LAYERS):
      found[_name(path)] = node
    elif isinstance(node, nnx.Module) and isinstance(vars(node).get("kernel"), nnx.Variable):
      raise UnknownLayer(f"layer {_name(path) or '(the model)'} ({type(node).__name__}) holds a kernel, but lab10 "
                         f"takes statistics of {', '.join(t.__name__ for t in KERNEL_LAYERS)} layers only")
  return found


def _check_nnx(model) -> None:
  if isinstance(model, nnx.Module):
    return
  try:
    from flax import linen
  except ImportError:  # pragma: no cover - linen ships with flax
    linen = None
  if linen is not None and isinstance(model, linen.Module):
    raise TypeError(f"{type(model).__name__} is a Flax linen module; lab10.anymodel takes flax.nnx modules. Write "
                    "the model with flax.nnx layers (nnx.Linear, nnx.Conv, …): linen layers run inside "
                    "nnx.bridge.ToNNX are not visible to it")
  raise TypeError(f"lab10.anymodel takes a flax.nnx.Module, not {type(model).__name__}")


def kernels(model: nnx.Module) -> dict[str, jax.Array]:
  """Each layer's kernel (its current value, an immutable array): take it before and after an update for
  ``update_stats``."""
  return {name: layer.kernel[...] for name, layer in layers(model).items()}


def update_stats(before: dict[str, jax.Array], after: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """``updates/L/norm`` = ‖W_after − W_before‖₂ and ``updates/L/ratio`` = that / ‖W_before‖₂, per layer."""
  out = {}
  for name, w in before.items():
    norm = jnp.linalg.norm((after[name] - w).reshape(-1))
    out[f"updates/{name}/norm"] = norm
    out[f"updates/{name}/ratio"] = norm / jnp.linalg.norm(w.reshape(-1))
  return out


@contextlib.contextmanager
def _intercepted(ids: dict[int, str], taps: dict[str, jax.Array] | None) -> Iterator[dict[str, tuple]]:
  """While the block runs, every call of a layer in ``ids`` (id → path) records ``(x, z)`` in the yielded dict,
  in call order, and returns z + its tap."""
  calls: dict[str, tuple] = {}
  counts: dict[int, int] = {}

  def wrap(call: Callable) -> Callable:
    def tapped(self, *args, **kwargs):
      z = call(self, *args, **kwargs)
      if id(self) not in ids:
        return z
      counts[id(self)] = counts.get(id(self), 0) + 1
      name = ids[id(self)] + ("" if counts[id(self)] == 1 else f"@{counts[id(self)]}")
      x = args[0] if args else kwargs["inputs"]
      calls[name] = (x, z)
      return z if taps is None else z + taps[name].astype(z.dtype)
    return tapped

  # The class in each layer type's MRO that defines __call__: a subclass that overrides it and calls super()
  # is recorded by its base's call.
  owners = {next(c for c in cls.__mro__ if "__call__" in vars(c)) for cls in KERNEL_LAYERS}
  with _patch_lock:
    originals = {owner: vars(owner)["__call__"] for owner in owners}
    try:
      for owner, call in originals.items():
        owner.__call__ = wrap(call)
      yield calls
    finally:
      for owner, call in originals.items():
        owner.__call__ = call


def _kernel_of(state, path: str) -> jax.Array:
  """The kernel of layer ``path`` in a params-shaped ``nnx.State`` (parameters or gradients)."""
  node = state
  for key in path.split("."):
    keys = list(node.keys())
    node = node[key] if key in keys else node[int(key)]
  return node["kernel"][...]


def _traced(loss_fn: Callable, has_aux: bool) -> Callable:
  """``run(graphdef, params, rest, taps, *args, **kwargs) -> (loss, (aux, calls, rest after))``: ``loss_fn`` on
  the merged model with its kernel layers intercepted (taps None: recorded, not tapped)."""

  def run(graphdef, params, rest, taps, *args, **kwargs):
    # Fresh Variables for this trace: the loss may mutate state (batch norm), as in lab10.step.
    m = nnx.merge(graphdef, params, jax.tree.map(lambda v: v, rest))
    ids = {id(layer): name for name, layer in layers(m).items()}
    with _intercepted(ids, taps) as calls:
      out = loss_fn(m, *args, **kwargs)
    loss, aux = out if has_aux else (out, None)
    return loss, (aux, calls, nnx.split(m, nnx.Param, ...)[2])

  return run


def call_order(loss_fn: Callable, *, has_aux: bool = False) -> Callable:
  """``f(model, *args, **kwargs) -> [layer, …]``: the names ``value_and_grad`` gives, in the order the forward
  pass of ``loss_fn`` calls the layers (traced abstractly: nothing is computed)."""

  def order(model: nnx.Module, *args, **kwargs) -> list[str]:
    layers(model)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    run = _traced(loss_fn, has_aux)
    names = []
    jax.eval_shape(lambda p, r: names.extend(run(graphdef, p, r, None, *args, **kwargs)[1][1]), params, rest)
    return names

  return order


def value_and_grad(loss_fn: Callable, *, has_aux: bool = False, histograms: bool = False) -> Callable:
  """``f(model, *args, **kwargs) -> (loss, grads, stats)`` (``((loss, aux), grads, stats)`` with ``has_aux``):
  ``nnx.value_and_grad(loss_fn, has_aux=has_aux)`` that also returns every kernel layer's statistics (the
  module docstring) for this call of ``loss_fn(model, *args, **kwargs)``. With ``histograms``, ``stats`` also
  holds ``stats["histograms"]``: ``{tag: {"edges", "counts"}}`` of each layer's input x (``inputs/<layer>``),
  kernel (``weights/<layer>``) and kernel gradient (``grads/<layer>``), 50 bins from each one's smallest to its
  largest value (``probes.fitted_histogram``); ``Logger.stats`` writes them to stats_histograms.npz."""

  def wrapped(model: nnx.Module, *args, **kwargs):
    paths = layers(model)  # UnknownLayer / TypeError before any tracing
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    traced = _traced(loss_fn, has_aux)
    run = lambda params, rest, taps: traced(graphdef, params, rest, taps, *args, **kwargs)
    shapes = jax.eval_shape(lambda p, r: run(p, r, None)[1][1], params, rest)  # every z's shape, traced once
    taps = {name: jnp.zeros(z.shape, z.dtype) for name, (_, z) in shapes.items()}
    (loss, (aux, calls, new_rest)), (grads, deltas) = jax.value_and_grad(run, argnums=(0, 2), has_aux=True)(
        params, rest, taps)
    nnx.update(model, new_rest)
    weights = {name: (_kernel_of(params, name), _kernel_of(grads, name)) for name in paths}
    stats = _stats(calls, deltas, weights)
    if histograms:
      stats["histograms"] = {f"inputs/{name}": probes.fitted_histogram(x) for name, (x, _) in calls.items()}
      for name, (kernel, grad) in weights.items():
        stats["histograms"][f"weights/{name}"] = probes.fitted_histogram(kernel)
        stats["histograms"][f"grads/{name}"] = probes.fitted_histogram(grad)
    return ((loss, aux) if has_aux else loss), grads, stats

  return wrapped


def _stats(calls: dict[str, tuple], deltas: dict[str, jax.Array],
           weights: dict[str, tuple[jax.Array, jax.Array]]) -> dict[str, jax.Array]:
  names = list(calls)
  p98 = percentile.abs_percentiles([calls[n][0] for n in names], probes.P98)  # one search for all layers
  nested: dict[str, dict[str, dict]] = {"forward": {}, "backward": {}}
  for name, abs_p98 in zip(names, p98):
    x, z = calls[name]
    (in_mean, in_var), (out_mean, out_var) = probes.moments(x), probes.moments(z)
    nested["forward"][name] = {"in_mean": in_mean, "in_var": in_var, "in_abs_p98": abs_p98,
                               "in_dead": probes.dead_fraction(x), "out_mean": out_mean, "out_var": out_var}
    nested["backward"][name] = probes.backward_stats(deltas[name])
  for name in [n for n in names if "@" not in n] + [n for n in weights if n not in calls]:
    for group, stats in probes.weight_stats(*weights[name]).items():
      nested.setdefault(group, {})[name] = stats
  return probes.flatten(nested)


class Logger:
  """``value_and_grad``'s statistics from the user's own loop into ``folder`` as lab10's runs write them:
  stats.jsonl (a line per logged step: ``epoch``, ``step``, the scalars given, every statistic), metrics.jsonl (a
  line per epoch, ``epoch()``) and, with ``tensorboard=True``, the TensorBoard events of ``lab10.tensorboard``
  (``<folder>/tensorboard``, each epoch's lines as it ends). ``scripts/to_tensorboard.py FOLDER`` converts it later
  as it converts a run of ``train.py``. Statistics taken with ``value_and_grad(..., histograms=True)`` bring their
  histograms, written to stats_histograms.npz (as ``train.py --log_histograms`` writes it) when each epoch ends.

      log = anymodel.Logger("runs/mine", every=100)
      ...  log.stats(step, stats, loss=loss)   # written when step % every == 0 (one host read)
      ...  log.epoch(epoch, step, test_accuracy=acc)
  """

  def __init__(self, folder, every: int, *, tensorboard: bool = False):
    if every < 1:
      raise ValueError(f"every={every} is out of range; expected an integer >= 1")
    self.folder, self.every, self.current = Path(folder), every, 1
    self.folder.mkdir(parents=True, exist_ok=True)
    self._lines: list[dict] = []
    self._histograms: dict[str, list] = {}  # every logged step's, as stats_histograms.npz holds them
    self._unwritten = False
    self._events = tensorboard_lib.Writer(self.folder) if tensorboard else None

  def due(self, step: int) -> bool:
    """Whether ``step`` is one to log: take ``value_and_grad``'s statistics on these steps only."""
    return int(step) % self.every == 0

  def stats(self, step: int, stats: dict, **scalars) -> None:
    """Append one stats.jsonl line for ``step`` if it is due."""
    if not self.due(step):
      return
    values = jax.device_get({**scalars, **stats})  # the logged step's one device→host read
    histograms = values.pop("histograms", None)
    line = {"epoch": self.current, "step": int(step), **{k: float(v) for k, v in values.items()}}
    if histograms is not None:
      one_step = {tag: {part: np.asarray(v)[None] for part, v in h.items()} for tag, h in histograms.items()}
      runlog.add_histograms(self._histograms, [int(step)], self.current, one_step)
      self._unwritten = True
    runs.append_jsonl(self.folder / workdir.STATS, line)
    self._lines.append(line)

  def epoch(self, epoch: int, step: int, **metrics) -> dict:
    """Append the metrics.jsonl line of ``epoch`` (ended at ``step``) and write its TensorBoard events."""
    record = {"epoch": int(epoch), "step": int(step), **{k: float(v) for k, v in jax.device_get(metrics).items()}}
    runs.append_jsonl(self.folder / workdir.METRICS, record)
    self._write_histograms()
    if self._events is not None:
      self._events(record, self._lines)
    self._lines, self.current = [], int(epoch) + 1
    return record

  def _write_histograms(self) -> None:
    if self._unwritten:
      runs.write_npz(self.folder / workdir.HISTOGRAMS, runlog.histogram_arrays(self._histograms))
      self._unwritten = False

  def close(self) -> None:
    self._write_histograms()
    if self._events is not None:
      self._events.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
