"""The experiment behind each figure of ``figures/``: what to run and at which scale, returning plain data.

One public function per figure (or per group of figures sharing one set of networks). Each returns a
``Result``: ``data`` (JSON-serialisable lists and dicts, the keyword arguments of the figure's function in
``lab10/plotting.py``), ``claims`` (the measured numbers backing the figure's claim, each tested in
tests/test_figures.py at reduced scale) and ``setting`` (the scale, in words). Defaults are full scale;
``QUICK[name]`` holds the overrides of ``make_figures.py --quick``. Nothing here draws or writes files.

Per-layer statistics come from lab10/probes.py and the mean-field maps from lab10/theory.py; what is left here
only composes them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tempfile
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lab10 import config as config_lib
from lab10 import data, labs, probes, runs, theory, train


@dataclasses.dataclass
class Result:
  data: dict                 # keyword arguments of the figure's plotting function; JSON-serialisable
  claims: dict[str, float]   # measured numbers that back the figure's claim
  setting: str               # the scale and settings, one paragraph


class Skipped(Exception):
  """A figure cannot be made here (e.g. its input file is absent); the message says why."""


# --- shared machinery ---------------------------------------------------------------------------


def _mnist(data_dir, n_train: int | None = None, n_test: int | None = None) -> data.Dataset:
  ds = data.load("mnist", data_dir)
  return dataclasses.replace(ds, train_x=ds.train_x[:n_train], train_y=ds.train_y[:n_train],
                             test_x=ds.test_x[:n_test], test_y=ds.test_y[:n_test])


def _model(c: config_lib.Config, input_shape, seed: int = 0, num_classes: int = 10):
  return config_lib.make_model(c, input_shape, num_classes, nnx.Rngs(params=jax.random.key(seed)))


def _mlp_config(**overrides) -> config_lib.Config:
  """An MLP config with zero biases (the papers' setting) unless overridden."""
  return config_lib.with_preset(None, **{"bias_init": "zeros", **overrides})


def backprop(model, x: jax.Array, loss: Callable[[jax.Array], jax.Array]) -> dict:
  """One forward/backward pass (``probes.layer_gradients`` of ``loss(logits) -> scalar``): per hidden layer
  the full arrays ``post`` = h, ``pre`` = z, ``dz`` = ∂L/∂z and ``dw`` = ∂L/∂W.

  Kept beside ``probes.init_stats``, which reduces these to moments of the cross-entropy's gradients: the
  Glorot histograms need every value, and variance_vs_depth needs E[z²] of another loss in float64.
  """
  acts, deltas, grads = probes.layer_gradients(model, x, loss)
  dw = probes.layer_kernels(grads, model.layer_names)
  return {name: {"pre": a["pre"], "post": a["post"], "dz": deltas[name], "dw": dw[name]} for name, a in acts.items()}


def _xent(y: jax.Array) -> Callable[[jax.Array], jax.Array]:
  return lambda logits: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _train_probed(c: config_lib.Config, ds: data.Dataset, *, steps: int, every: int,
                  probe: Callable[[nnx.Module], dict] | None = None, seed: int = 0) -> dict:
  """Train ``c`` on ``ds`` for ``steps`` minibatch steps; every ``every`` steps (and at step 0) call
  ``probe(model)`` (jitted; returns a dict of arrays). Returns ``steps`` (probe points), ``loss`` and
  ``accuracy`` (means over each chunk of ``every`` training steps), ``probes`` (one dict per probe point)
  and ``test_accuracy`` at the end.

  Not ``train.make_epoch`` with ``train.make_logged_train_step``: those measure the training minibatch in train
  mode at epoch-local steps, whereas these figures probe a fixed set of examples in eval mode every ``every``
  steps across epoch boundaries, with the data order they were made with."""
  init_key, dropout_key = jax.random.split(jax.random.key(seed))
  model = _model(c, ds.input_shape, seed)
  tx = config_lib.make_optimizer(c)
  graphdef, state = train.init_state(model, tx, dropout_key)
  train_step = train.make_train_step(graphdef, tx)

  @functools.partial(jax.jit, donate_argnums=0)
  def chunk(state, x, y, idx):
    state, m = jax.lax.scan(lambda s, i: train_step(s, {"x": x[i], "y": y[i]}), state, idx)
    return state, jnp.mean(m["loss"]), jnp.mean(m["accuracy"])

  run_probe = jax.jit(lambda params, rest: probe(nnx.merge(graphdef, params, rest))) if probe else None
  n, bs = len(ds.train_y), c.batch_size
  rng = np.random.default_rng(seed)
  order = np.concatenate([rng.permutation(n)[: n // bs * bs] for _ in range(-(-steps * bs // n) + 1)])
  order = order[: steps * bs].reshape(steps, bs)
  x, y = jax.device_put(ds.train_x), jax.device_put(ds.train_y)
  out = {"steps": [0], "loss": [], "accuracy": [], "probes": []}
  if run_probe:
    out["probes"].append(jax.device_get(run_probe(state.params, state.rest)))
  for start in range(0, steps, every):
    state, loss, acc = chunk(state, x, y, jnp.asarray(order[start:start + every]))
    out["steps"].append(min(start + every, steps))
    if run_probe:
      out["probes"].append(jax.device_get(run_probe(state.params, state.rest)))
    out["loss"].append(float(loss))  # host sync once per chunk
    out["accuracy"].append(float(acc))
  evaluate = train.make_evaluate(graphdef)
  out["test_accuracy"] = float(evaluate(state.params, state.rest, ds.test_x, ds.test_y)["accuracy"])
  return out


def _f(values) -> list:
  """Plain floats for JSON (NaN stays NaN; runs.write_json turns it into null)."""
  return [float(v) for v in np.asarray(values, dtype=float).ravel()]


# --- 1. He et al. Eq. 9/13: variance over depth at init -------------------------------------------

VARIANCE_INITS: dict[str, dict] = {
    "N(0, 1)": dict(init="normal", init_std=1.0),
    "Xavier / LeCun, Var 1/n": dict(init="lecun_normal"),
    "Xavier, Var 2/(n_in+n_out)": dict(init="glorot_normal"),
    "He fan_in, Var 2/n_in": dict(init="he_normal", init_mode="fan_in"),
    "He fan_out, Var 2/n_out": dict(init="he_normal", init_mode="fan_out"),
    "orthogonal": dict(init="orthogonal"),
}


def variance_vs_depth(width: int = 1000, depth: int = 30, batch: int = 200, inits=tuple(VARIANCE_INITS),
                      seed: int = 0) -> Result:
  """He et al. 2015 Eq. 9 (forward) and Eq. 13 (backward) for a ReLU MLP at init, per initializer.

  Forward: E[z_l²] relative to layer 1; backward: E[(∂L/∂z_l)²] relative to the top hidden layer, with
  L = Σ logits·g for a fixed Gaussian g (so ∂L/∂logits is unit Gaussian). Theory: both change by the factor
  ½·n·Var[W] per layer (width n everywhere, so fan_in = fan_out). Computed in float64: N(0, 1) grows by
  500× per layer, past float32's range.
  """
  layers = list(range(1, depth + 1))
  forward, backward, theory_f, theory_b, factors = {}, {}, {}, {}, {}
  with jax.enable_x64(True):
    kx, kg = jax.random.split(jax.random.key(seed + 1))
    x = jax.random.normal(kx, (batch, width), jnp.float64)
    g = jax.random.normal(kg, (batch, 10), jnp.float64)
    for label in inits:
      c = _mlp_config(depth=depth, width=(width,), activation="relu", **VARIANCE_INITS[label])
      model = _model(c, (width,), seed)
      stats = backprop(model, x, lambda logits: jnp.sum(logits * g))
      z2 = np.array([float(jnp.mean(stats[n]["pre"] ** 2)) for n in model.layer_names])
      d2 = np.array([float(jnp.mean(stats[n]["dz"] ** 2)) for n in model.layer_names])
      forward[label], backward[label] = _f(z2 / z2[0]), _f(d2 / d2[-1])
      var_w = float(np.mean(np.asarray(model.blocks[1].layer.kernel[...], np.float64) ** 2))
      factor = 0.5 * width * var_w  # He Eq. 9: ½·n_l·Var[w_l]
      factors[label] = factor
      theory_f[label] = _f(factor ** np.arange(depth))
      theory_b[label] = _f(factor ** (depth - np.array(layers)))
  claims = {}
  for label in inits:
    claims[f"{label}: forward E[z_{depth}²]/E[z_1²]"] = forward[label][-1]
    claims[f"{label}: backward E[δ_1²]/E[δ_{depth}²]"] = backward[label][0]
    claims[f"{label}: theory per-layer factor ½·n·Var[W]"] = factors[label]
  return Result(
      data=dict(layers=layers, forward=forward, backward=backward, theory_forward=theory_f,
                theory_backward=theory_b,
                title=f"ReLU MLP at init, width {width}, depth {depth}: He et al. Eq. 9 and 13"),
      claims=claims,
      setting=f"ReLU MLP, {depth} hidden layers of {width}, zero biases, {batch} Gaussian inputs of dimension "
              f"{width}, seed {seed}, float64.")


# --- 2–4. Glorot & Bengio Figs. 6–8: tanh nets at init, standard vs normalized ----------------------

GLOROT_INITS = {"standard U[±1/√n]": "glorot_standard", "normalized (Xavier)": "glorot_uniform"}


@functools.lru_cache(maxsize=4)
def _glorot_tanh_at_init(data_dir, width: int, depth: int, n_examples: int, seed: int, bins: int) -> dict:
  """Per layer and init: values of h, ∂L/∂z and ∂L/∂W on ``n_examples`` MNIST test images (cross-entropy)."""
  ds = _mnist(data_dir)
  x, y = jnp.asarray(ds.test_x[:n_examples]), jnp.asarray(ds.test_y[:n_examples])
  out = {}
  for label, init in GLOROT_INITS.items():
    c = _mlp_config(depth=depth, width=(width,), activation="tanh", init=init)
    model = _model(c, ds.input_shape, seed)
    stats = backprop(model, x, _xent(y))
    out[label] = {f"layer {i + 1}": {k: np.asarray(stats[name][k]).ravel() for k in ("post", "dz", "dw")}
                  for i, name in enumerate(model.layer_names)}
  return out


def _histograms(values: dict, key: str, bins: int, limit: float | None = None) -> tuple[dict, dict]:
  """Histograms of ``values[panel][layer][key]`` (bins shared within a panel, over ±``limit`` or else ±the
  panel's 99.9th percentile of |value|), and each one's std."""
  hists, stds = {}, {}
  for panel, layers in values.items():
    top = limit or max(float(np.percentile(np.abs(v[key]), 99.9)) for v in layers.values())
    edges = np.linspace(-top, top, bins + 1)
    hists[panel] = {layer: (_f(edges), _f(np.histogram(v[key], edges)[0])) for layer, v in layers.items()}
    stds[panel] = {layer: float(np.std(v[key])) for layer, v in layers.items()}
  return hists, stds


def _glorot_figure(key: str, xlabel: str, quantity: str, title: str, limit: float | None, logy: bool, data_dir,
                   width: int, depth: int, n_examples: int, seed: int, bins: int) -> Result:
  values = _glorot_tanh_at_init(data_dir, width, depth, n_examples, seed, bins)
  hists, stds = _histograms(values, key, bins, limit)
  claims = {}
  for panel, per_layer in stds.items():
    s = list(per_layer.values())
    for layer, v in per_layer.items():
      claims[f"{panel}: std of {quantity}, {layer}"] = v
    claims[f"{panel}: std ratio layer {depth} / layer 1"] = s[-1] / s[0]
    claims[f"{panel}: max/min std over layers"] = max(s) / min(s)
  return Result(
      data=dict(panels=hists, xlabel=xlabel, title=title, logy=logy, stds=stds),
      claims=claims,
      setting=f"tanh MLP, {depth} hidden layers of {width}, zero biases, at init (seed {seed}); statistics on "
              f"the first {n_examples} MNIST test images, cross-entropy loss; {bins} shared bins.")


def glorot_fig6_activations(data_dir=None, width: int = 1000, depth: int = 5, n_examples: int = 300,
                            seed: int = 0, bins: int = 81) -> Result:
  """Glorot & Bengio 2010 Fig. 6: per-layer histograms of tanh activations at init."""
  return _glorot_figure("post", "activation value h = tanh(z)", "h", "Glorot & Bengio Fig. 6: tanh activations at init",
                        1.0, False, data_dir, width, depth, n_examples, seed, bins)


def glorot_fig7_backprop_gradients(data_dir=None, width: int = 1000, depth: int = 5, n_examples: int = 300,
                                   seed: int = 0, bins: int = 81) -> Result:
  """Glorot & Bengio 2010 Fig. 7: per-layer histograms of back-propagated gradients ∂L/∂z at init."""
  return _glorot_figure("dz", r"back-propagated gradient $\partial L/\partial z$", "∂L/∂z",
                        "Glorot & Bengio Fig. 7: back-propagated gradients at init",
                        None, True, data_dir, width, depth, n_examples, seed, bins)


def glorot_fig8_weight_gradients(data_dir=None, width: int = 1000, depth: int = 5, n_examples: int = 300,
                                  seed: int = 0, bins: int = 81) -> Result:
  """Glorot & Bengio 2010 Fig. 8: per-layer histograms of weight gradients ∂L/∂W at init."""
  return _glorot_figure("dw", r"weight gradient $\partial L/\partial W$", "∂L/∂W",
                        "Glorot & Bengio Fig. 8: weight gradients at init",
                        None, True, data_dir, width, depth, n_examples, seed, bins)


# --- 5. Glorot & Bengio Fig. 2: sigmoid saturation during training -------------------------------


def glorot_fig2_sigmoid_saturation(data_dir=None, width: int = 1000, depth: int = 4, steps: int = 20_000,
                                   every: int = 250, lr: float = 0.1, batch_size: int = 10,
                                   seed: int = 0) -> Result:
  """Glorot & Bengio 2010 Fig. 2: mean and std of each sigmoid layer's activations over SGD training."""
  ds = _mnist(data_dir)
  probe_x = jnp.asarray(ds.test_x[:300])
  c = _mlp_config(depth=depth, width=(width,), activation="sigmoid", init="glorot_standard", optimizer="sgd",
                  lr=lr, batch_size=batch_size)

  def probe(model):
    _, acts = model.forward(probe_x)
    stats = probes.layer_stats(acts)  # jitted: XLA drops the statistics not returned
    return {"mean": jnp.stack([stats[f"forward/{n}/act_mean"] for n in acts]),
            "std": jnp.sqrt(jnp.stack([stats[f"forward/{n}/act_var"] for n in acts]))}

  run = _train_probed(c, ds, steps=steps, every=every, probe=probe, seed=seed)
  means = np.array([p["mean"] for p in run["probes"]])  # (points, layers)
  stds = np.array([p["std"] for p in run["probes"]])
  names = [f"layer {i + 1}" + (" (top)" if i == depth - 1 else "") for i in range(depth)]
  early = min(len(run["steps"]) - 1, max(1, 1000 // every))  # the probe point nearest step 1000
  claims = {f"{name}: mean activation at step {run['steps'][early]}": float(means[early, i])
            for i, name in enumerate(names)}
  claims |= {f"{name}: mean activation at step {run['steps'][-1]}": float(means[-1, i])
             for i, name in enumerate(names)}
  claims["top layer: minimum mean over training"] = float(means[:, -1].min())
  claims["lower layers: minimum mean over training"] = float(means[:, :-1].min())
  claims["final training loss (mean of last chunk)"] = run["loss"][-1]
  claims["final test accuracy"] = run["test_accuracy"]
  return Result(
      data=dict(steps=run["steps"], mean={n: _f(means[:, i]) for i, n in enumerate(names)},
                spread={n: (_f(means[:, i] - stds[:, i]), _f(means[:, i] + stds[:, i])) for i, n in enumerate(names)},
                ylabel="sigmoid activation (mean ± std)",
                title=f"Glorot & Bengio Fig. 2: sigmoid, {depth}×{width}, standard init, SGD"),
      claims=claims,
      setting=f"sigmoid MLP {depth}×{width}, standard init U[±1/√n], zero biases; plain SGD lr {lr}, batch "
              f"{batch_size}, {steps} steps on the 60k MNIST training set; statistics every {every} steps on 300 "
              f"fixed test images; seed {seed}.")


# --- 6. He et al. Fig. 3: a 30-layer ReLU net, Xavier stalls, He converges -----------------------

HE_FIG3_INITS = {"Xavier (Var 1/n)": "lecun_normal", "He (Var 2/n)": "he_normal"}
STALL_LOSS = 2.0  # a 10-class net "stalls" while its cross-entropy stays near ln 10 ≈ 2.30


def he_fig3_deep_relu(data_dir=None, depth: int = 30, width: int = 128, steps: int = 3000, every: int = 50,
                      lr: float = 0.005, momentum: float = 0.9, n_train: int = 10_000, seed: int = 0) -> Result:
  """He et al. 2015 Fig. 3 on an MLP: training loss of a 30-layer ReLU net and its first/last-layer
  weight-gradient norms over training, Xavier (Var 1/n, He's "Xavier") vs He (Var 2/n).

  lr 0.005 with momentum 0.9: at 0.01 the He net converges, then blows up and relearns within 3000 steps (loss
  0.57 → 1.9 → 1.3), which hides the comparison; at 0.005 and 0.002 it converges steadily (2026-11-26, seed 0)."""
  ds = _mnist(data_dir, n_train)
  probe_x, probe_y = jnp.asarray(ds.train_x[:500]), jnp.asarray(ds.train_y[:500])
  loss, error, first, last, claims = {}, {}, {}, {}, {}

  def probe(model):
    stats = probes.init_stats(model, {"x": probe_x, "y": probe_y})  # jitted: only the two norms are computed
    names = model.layer_names
    return {"first": stats[f"grads/{names[0]}/norm"], "last": stats[f"grads/{names[-1]}/norm"]}

  for label, init in HE_FIG3_INITS.items():
    c = _mlp_config(depth=depth, width=(width,), activation="relu", init=init, optimizer="momentum", lr=lr,
                    momentum=momentum, batch_size=100)
    run = _train_probed(c, ds, steps=steps, every=every, probe=probe, seed=seed)
    loss[label] = (run["steps"][1:], run["loss"])
    error[label] = (run["steps"][1:], _f(1 - np.asarray(run["accuracy"])))
    first[label] = (run["steps"], _f([p["first"] for p in run["probes"]]))
    last[label] = (run["steps"], _f([p["last"] for p in run["probes"]]))
    claims[f"{label}: training loss, last {every} steps"] = run["loss"][-1]
    escaped = [s for s, v in zip(run["steps"][1:], run["loss"]) if v < STALL_LOSS]
    claims[f"{label}: first step with training loss < {STALL_LOSS} (mean over {every} steps)"] = \
        escaped[0] if escaped else f"none in {steps}"
    claims[f"{label}: training loss, first {every} steps"] = run["loss"][0]
    claims[f"{label}: test accuracy"] = run["test_accuracy"]
    claims[f"{label}: ‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init"] = first[label][1][0] / last[label][1][0]
    claims[f"{label}: ‖∂L/∂W_1‖ at init"] = first[label][1][0]
  grad_lines = {f"{label}, layer {k}": series[label] for label in HE_FIG3_INITS
                for k, series in ((1, first), (depth, last))}
  return Result(
      data=dict(panels={"training loss": loss, "training error": error,
                        "weight-gradient norm (500 fixed examples)": grad_lines},
                xlabel="training step (mini-batches of 100)",
                ylabels=["cross-entropy (nats)", "error rate", r"$\|\partial L/\partial W_l\|_F$"],
                logy=[False, False, True],
                styles={f"{label}, layer {depth}": "--" for label in HE_FIG3_INITS},
                title=f"He et al. Fig. 3 on an MLP: {depth}-layer ReLU, He converges at once, Xavier stalls"),
      claims=claims,
      setting=f"ReLU MLP {depth}×{width}, zero biases; SGD with momentum {momentum}, lr {lr}, batch 100, {steps} "
              f"steps on the first {n_train} MNIST training images; gradient norms on 500 fixed training images; "
              f"seed {seed}. (Layer-{depth} gradient norms are dashed.)")


# --- 7. the lab's story: sigmoid vs ReLU gradient norms per layer --------------------------------


def lab10_sigmoid_vs_relu(data_dir=None, depth: int = 8, width: int = 256, steps: int = 2000, every: int = 100,
                          lr: float = 0.01, n_train: int = 20_000, seed: int = 0) -> Result:
  """Per-layer weight-gradient norms over training, sigmoid vs ReLU, same deep MLP and Xavier init, SGD with
  momentum (under Adam's per-parameter scaling the sigmoid net escapes within ~100 steps; plain gradients
  show the vanishing directly)."""
  ds = _mnist(data_dir, n_train)
  probe_x, probe_y = jnp.asarray(ds.train_x[:500]), jnp.asarray(ds.train_y[:500])

  def probe(model):
    stats = probes.init_stats(model, {"x": probe_x, "y": probe_y})  # jitted: only the norms are computed
    return {"norms": jnp.stack([stats[f"grads/{n}/norm"] for n in model.layer_names])}

  panels, claims = {}, {}
  for act in ("sigmoid", "relu"):
    c = _mlp_config(depth=depth, width=(width,), activation=act, init="glorot_uniform", optimizer="momentum",
                    lr=lr, momentum=0.9)
    run = _train_probed(c, ds, steps=steps, every=every, probe=probe, seed=seed)
    norms = np.array([p["norms"] for p in run["probes"]])  # (points, layers)
    panels[f"{act} + Xavier"] = {f"layer {i + 1}": (run["steps"], _f(norms[:, i])) for i in range(depth)}
    claims[f"{act}: ‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init"] = float(norms[0, 0] / norms[0, -1])
    claims[f"{act}: median over training of ‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖"] = float(np.median(norms[:, 0] / norms[:, -1]))
    claims[f"{act}: test accuracy after {steps} steps"] = run["test_accuracy"]
  return Result(
      data=dict(panels=panels, xlabel="training step (mini-batches of 100)",
                ylabels=[r"$\|\partial L/\partial W_l\|_F$"] * 2, logy=[True, True], sharey=True,
                title=f"Vanishing gradients: {depth}-layer MLP, sigmoid vs ReLU (Xavier, SGD momentum)"),
      claims=claims,
      setting=f"MLP {depth}×{width}, glorot_uniform, zero biases, SGD momentum 0.9 lr {lr}, batch 100, {steps} steps on the "
              f"first {n_train} MNIST training images; gradient norms of the cross-entropy on 500 fixed training "
              f"images every {every} steps; seed {seed}.")


# --- 8. activation × initializer zoo ------------------------------------------------------------

ZOO_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu")
ZOO_INITS = {"normal N(0,1)": dict(init="normal", init_std=1.0), "Xavier": dict(init="glorot_uniform"),
             "He": dict(init="he_normal"), "LeCun": dict(init="lecun_normal")}


def activation_zoo(data_dir=None, depth: int = 4, width: int = 512, epochs: int = 3, n_train: int | None = None,
                   activations=ZOO_ACTIVATIONS, inits=tuple(ZOO_INITS), seed: int = 0) -> Result:
  """Final test accuracy and the first/last-layer weight-gradient-norm ratio at init for every activation ×
  initializer, on the lab 10-4 network (Adam 1e-3, batch 100)."""
  ds = _mnist(data_dir, n_train)
  probe = {"x": jnp.asarray(ds.train_x[:1000]), "y": jnp.asarray(ds.train_y[:1000])}
  acc = np.zeros((len(activations), len(inits)))
  ratio = np.zeros_like(acc)
  for i, act in enumerate(activations):
    for j, init in enumerate(ZOO_INITS[k] for k in inits):
      with tempfile.TemporaryDirectory() as tmp:
        c = _mlp_config(depth=depth, width=(width,), activation=act, epochs=epochs, seed=seed, workdir=tmp, **init)
        build = lambda key: config_lib.make_model(c, ds.input_shape, 10, nnx.Rngs(params=key))  # = _model(c, …, seed)
        stats = probes.probe_init(build, probe, jax.random.key(seed)[None])
        ratio[i, j] = stats["grads/dense_0/norm"] / stats[f"grads/dense_{depth - 1}/norm"]
        try:
          train.fit(c, ds, verbose=False)
          acc[i, j] = runs.read_jsonl(f"{tmp}/metrics.jsonl")[-1]["test_accuracy"]
        except train.Diverged:
          acc[i, j] = float("nan")
  inits = list(inits)
  claims = {f"{a} / {k}: test accuracy": float(acc[i, j]) for i, a in enumerate(activations)
            for j, k in enumerate(inits)}
  claims |= {f"{a} / {k}: ‖∂L/∂W_1‖/‖∂L/∂W_{depth}‖ at init": float(ratio[i, j])
             for i, a in enumerate(activations) for j, k in enumerate(inits)}
  n = len(ds.train_y)
  return Result(
      data=dict(rows=list(activations), cols=inits,
                matrices={"test accuracy": acc.tolist(),
                          f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init": ratio.tolist()},
                fmt={"test accuracy": ".3f", f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init": ".2g"},
                cmaps={f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init": "coolwarm"},
                lognorm=[f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init"],
                title=f"Activation × initializer: MNIST MLP {depth}×{width}, Adam 1e-3, {epochs} epochs"),
      claims=claims,
      setting=f"MLP {depth}×{width} (the lab 10-4 network), zero biases, Adam lr 1e-3, batch 100, {epochs} epochs "
              f"on {n} MNIST training images, test accuracy on the 10k test set; gradient ratio of the "
              f"cross-entropy at init on 1000 training images; seed {seed}. leaky_relu slope 0.01; "
              "normal = the labs' N(0, 1).")


# --- 9. dropout and overfitting ------------------------------------------------------------------


def dropout_overfitting(data_dir=None, n_train: int = 5000, epochs: int = 15, dropout: float = 0.5,
                        width: int = 512, seed: int = 0) -> Result:
  """Train vs test accuracy and loss per epoch, lab 10-5 network with and without dropout, on a training
  subset: without dropout the test loss climbs while the training loss goes to 0.

  15 epochs as in lab 10-5. Trained on to 30 epochs, the dropout net memorises the 5000 images too (train
  accuracy 0.997; accuracy gaps 0.049 vs 0.051), so the gap closes again (2026-11-26, seed 0)."""
  ds = _mnist(data_dir, n_train)
  accuracy, loss, claims = {}, {}, {}
  for label, rate in (("no dropout", 0.0), (f"dropout {dropout}", dropout)):
    with tempfile.TemporaryDirectory() as tmp:
      c = config_lib.with_preset("lab10-5-dropout", dropout=rate, epochs=epochs, width=(width,), val_size=0,
                                 seed=seed, workdir=tmp)
      train.fit(c, ds, verbose=False)
      records = runs.read_jsonl(f"{tmp}/metrics.jsonl")
    x = [r["epoch"] for r in records]
    for split, key in (("train", "train_eval"), ("test", "test")):
      accuracy[f"{label}: {split}"] = (x, [r[f"{key}_accuracy"] for r in records])
      loss[f"{label}: {split}"] = (x, [r[f"{key}_loss"] for r in records])
    acc_gap = np.array(accuracy[f"{label}: train"][1]) - np.array(accuracy[f"{label}: test"][1])
    loss_gap = np.array(loss[f"{label}: test"][1]) - np.array(loss[f"{label}: train"][1])
    claims[f"{label}: final train accuracy"] = accuracy[f"{label}: train"][1][-1]
    claims[f"{label}: final test accuracy"] = accuracy[f"{label}: test"][1][-1]
    claims[f"{label}: train − test accuracy gap, mean of last 5 epochs"] = float(acc_gap[-5:].mean())
    claims[f"{label}: test − train loss gap, mean of last 5 epochs"] = float(loss_gap[-5:].mean())
    claims[f"{label}: final test loss"] = loss[f"{label}: test"][1][-1]
  styles = {k: ("o-" if k.endswith("test") else "-") for k in accuracy}
  return Result(
      data=dict(panels={"accuracy": accuracy, "cross-entropy": loss}, xlabel="epoch",
                ylabels=["accuracy", "cross-entropy (nats)"], logy=[False, True], styles=styles, sharey=False,
                title=f"Dropout: lab 10-5 network (4×{width}, Adam 1e-3) on {n_train} MNIST training images"),
      claims=claims,
      setting=f"lab10-5-dropout preset (784-{width}×4-10, glorot_uniform, N(0,1) biases, Adam 1e-3, batch 100) "
              f"with dropout {dropout} (TF2's value) vs 0, {epochs} epochs on the first {n_train} MNIST training "
              f"images (a small subset makes overfitting visible); train accuracy and loss scored in eval mode on "
              f"those images, test on the 10k test set; test points marked; seed {seed}.")


# --- 10. mean-field phase diagram ----------------------------------------------------------------

XI_CAP = 1e4  # layers: the phase diagram's ξ_c is infinite on the critical line


def meanfield_phase_diagram(data_dir=None, sigma_b2_grid: float = 0.05, depths=(10, 20, 40, 80),
                            sigma_w2s=(0.7, 1.0, 1.3, 1.76, 2.5, 3.5, 5.0), width: int = 128, steps: int = 1000,
                            lr: float = 0.005, n_train: int = 10_000, seed: int = 0, resolution: int = 60) -> Result:
  """Poole et al. 2016 / Schoenholz et al. 2017 for tanh: depth scale ξ_c over (σ_w², σ_b²), the χ₁ = 1 line,
  and the test accuracy of tanh MLPs over depth × σ_w² at σ_b² = ``sigma_b2_grid``, with the 6ξ_c curve."""
  tanh = jnp.tanh  # = activations.get("tanh"), the trained nets' φ
  w2 = np.linspace(0.5, 5.0, resolution)
  b2 = np.linspace(0.0, 0.3, resolution // 2)
  xi = np.minimum(theory.correlation_depth_scale(tanh, w2[None, :], b2[:, None]), XI_CAP)
  critical = theory.critical_sigma_w2(tanh, b2)
  ds = _mnist(data_dir, n_train)
  acc = np.zeros((len(depths), len(sigma_w2s)))
  for i, depth in enumerate(depths):
    for j, s_w2 in enumerate(sigma_w2s):
      c = _mlp_config(depth=depth, width=(width,), activation="tanh", init="lecun_normal",
                      init_gain=math.sqrt(s_w2), bias_init="normal", bias_std=math.sqrt(sigma_b2_grid),
                      optimizer="momentum", lr=lr, momentum=0.9, batch_size=100)
      run = _train_probed(c, ds, steps=steps, every=steps, seed=seed)
      acc[i, j] = run["test_accuracy"] if np.isfinite(run["loss"][-1]) else 0.1
  xi_grid = np.minimum(theory.correlation_depth_scale(tanh, np.asarray(sigma_w2s, float), sigma_b2_grid), XI_CAP)
  claims = {"critical σ_w² at σ_b² = 0.05 (χ₁ = 1)": theory.critical_sigma_w2(tanh, 0.05),
            "critical σ_w² at σ_b² = 0": theory.critical_sigma_w2(tanh, 0.0)}
  claims |= {f"ξ_c at σ_w² = {s}": float(x) for s, x in zip(sigma_w2s, xi_grid)}
  claims |= {f"test accuracy, depth {d}, σ_w² = {s}": float(acc[i, j]) for i, d in enumerate(depths)
             for j, s in enumerate(sigma_w2s)}
  return Result(
      data=dict(sigma_w2=_f(w2), sigma_b2=_f(b2), depth_scale=xi.tolist(), critical_w2=_f(critical),
                trained=(list(sigma_w2s), list(depths), acc.tolist()), bias_for_grid=sigma_b2_grid,
                title="Mean field, tanh: order-to-chaos transition and trainable depth"),
      claims=claims,
      setting=f"theory on a {resolution}×{resolution // 2} (σ_w², σ_b²) grid (Gauss–Legendre quadrature); "
              f"trainability: tanh MLPs of width {width}, W ~ N(0, σ_w²/n), b ~ N(0, {sigma_b2_grid}), SGD "
              f"momentum 0.9 lr {lr}, batch 100, {steps} steps on the first {n_train} MNIST training images, "
              f"test accuracy on the 10k test set (diverged runs count as 0.1); seed {seed}.")


# --- 11. SELU self-normalisation ------------------------------------------------------------------

SELU_NETS = {"SELU + LeCun": dict(activation="selu", init="lecun_normal"),
             "ReLU + He": dict(activation="relu", init="he_normal"),
             "tanh + Xavier": dict(activation="tanh", init="glorot_normal")}


def selu_self_normalization(width: int = 1000, depth: int = 32, batch: int = 500, input_mean: float = 0.5,
                            input_var: float = 4.0, seed: int = 0) -> Result:
  """Klambauer et al. 2017: per-layer mean and variance of the activations at init, from inputs with mean
  0.5 and variance 4, for SELU + LeCun beside ReLU + He and tanh + Xavier."""
  x = input_mean + math.sqrt(input_var) * jax.random.normal(jax.random.key(seed + 1), (batch, width))
  layers = list(range(1, depth + 1))
  mean, var, claims = {}, {}, {}
  for label, net in SELU_NETS.items():
    c = _mlp_config(depth=depth, width=(width,), **net)
    _, acts = _model(c, (width,), seed).forward(x)
    h = [a["post"] for a in acts.values()]
    mean[label] = _f([jnp.mean(v) for v in h])
    var[label] = _f([jnp.var(v) for v in h])
    claims[f"{label}: mean at layer {depth}"] = mean[label][-1]
    claims[f"{label}: variance at layer {depth}"] = var[label][-1]
  ok = [l for l, m, v in zip(layers, mean["SELU + LeCun"], var["SELU + LeCun"])
        if abs(m) < 0.05 and abs(v - 1) < 0.05]
  claims["SELU + LeCun: first layer with |mean| < 0.05 and |var − 1| < 0.05"] = float(ok[0]) if ok else float("nan")
  return Result(
      data=dict(layers=layers, mean=mean, var=var, input_mean=input_mean, input_var=input_var,
                title=f"Self-normalisation at init: width {width}, inputs with mean {input_mean}, variance {input_var}"),
      claims=claims,
      setting=f"MLPs of {depth} hidden layers of {width}, zero biases, at init (seed {seed}); {batch} Gaussian "
              f"inputs of dimension {width} with mean {input_mean} and variance {input_var}; mean and variance "
              "over all units and examples of each layer's activations h.")


# --- 12. the seed labs' accuracies ---------------------------------------------------------------


def lab_accuracies(labs_json: str = "figures/labs.json") -> Result:
  """Our test accuracy per preset (mean ± std over seeds, from scripts/reproduce_labs.py) beside the published
  numbers of the three lab versions."""
  try:
    import json

    with open(labs_json) as f:
      result = json.load(f)
  except FileNotFoundError:
    raise Skipped(f"{labs_json} not found; run scripts/reproduce_labs.py first") from None
  rows = result["presets"]
  names = sorted(rows, key=lambda n: list(labs.PUBLISHED).index(n) if n in labs.PUBLISHED else len(labs.PUBLISHED))
  published = {v: [labs.PUBLISHED.get(n, {}).get(v) for n in names] for v in ("TF1", "TF2", "PyTorch")}
  claims = {f"{n}: test accuracy mean (n={len(rows[n]['seeds'])})": rows[n]["test_accuracy_mean"] for n in names}
  claims |= {f"{n}: test accuracy std": rows[n]["test_accuracy_std"] for n in names}
  scale = "--quick (1 epoch, 5000 images)" if result.get("quick") else "the TF1 budget (15 epochs)"
  return Result(
      data=dict(names=names, ours_mean=[rows[n]["test_accuracy_mean"] for n in names],
                ours_std=[rows[n]["test_accuracy_std"] for n in names], published=published,
                title="The seed labs: our test accuracy beside the published numbers"),
      claims=claims,
      setting=f"read from {labs_json}, written by `{result.get('command', 'scripts/reproduce_labs.py')}` at {scale}.")


# --quick: the same experiments, smaller. Full scale is each function's defaults.
QUICK: dict[str, dict] = {
    "variance_vs_depth": dict(width=500, batch=40),
    "glorot_fig6_activations": {},
    "glorot_fig7_backprop_gradients": {},
    "glorot_fig8_weight_gradients": {},
    "glorot_fig2_sigmoid_saturation": dict(steps=2000, every=100),
    "he_fig3_deep_relu": dict(steps=600, every=25),
    "lab10_sigmoid_vs_relu": dict(steps=400, every=25, n_train=5000),
    "activation_zoo": dict(width=256, epochs=1, n_train=10_000),
    "dropout_overfitting": dict(n_train=2000, epochs=12, width=256),
    "meanfield_phase_diagram": dict(depths=(10, 20, 40), sigma_w2s=(1.0, 1.76, 3.5, 5.0), steps=300,
                                    n_train=5000, width=64),
    "selu_self_normalization": dict(batch=100),
    "lab_accuracies": {},
}
