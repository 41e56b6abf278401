"""Experiments over a grid of trained networks, scored by their final accuracy: activation × initializer, the
mean-field trainability grid beside its theory, and the seed labs' accuracies beside the published ones.

A run whose loss turns non-finite is marked diverged: its accuracy is NaN (null in the JSON), never a number
that could be mistaken for a trained network's.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lab10 import config as config_lib
from lab10 import data, divergence, labs, meanfield, probes, progress, train
from lab10.activations import DEFAULT_LEAKY_SLOPE
from lab10.experiments.common import (LAB_BATCH, MOMENTUM, NUM_CLASSES, Result, Skipped, _f, _mlp_config, _mnist,
                                      _train_probed)

# --- activation × initializer zoo ------------------------------------------------------------------

ZOO_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu")
ZOO_INITS: dict[str, tuple[str, dict]] = {  # id: (column label, config overrides)
    "normal": ("normal N(0,1)", dict(init="normal", init_std=1.0)),
    "xavier": ("Xavier", dict(init="glorot_uniform")),
    "he": ("He", dict(init="he_normal")),
    "lecun": ("LeCun", dict(init="lecun_normal")),
}
ZOO_PROBE_EXAMPLES = 1000  # the zoo's gradient ratio at init, on 1000 fixed training images


def _zoo_cell(c: config_lib.Config, ds: data.Dataset, probe_batch: dict) -> tuple[float, float]:
  """(test accuracy after ``fit``, NaN if it diverged; ‖∂L/∂W_1‖ / ‖∂L/∂W_top‖ at init) of one network."""
  build = lambda key: config_lib.make_model(c, ds.input_shape, NUM_CLASSES, nnx.Rngs(params=key))
  stats = probes.probe_init(build, probe_batch, jax.random.key(c.seed)[None])  # the network fit() trains
  ratio = float(stats["grads/dense_0/norm"][0] / stats[f"grads/dense_{c.depth - 1}/norm"][0])
  try:
    accuracy = train.fit(c, ds, verbose=False).records[-1]["test_accuracy"]
  except divergence.Diverged:
    accuracy = float("nan")
  return accuracy, ratio


def activation_zoo(data_dir=None, depth: int = 4, width: int = 512, epochs: int = 3, n_train: int | None = None,
                   activations=ZOO_ACTIVATIONS, inits=tuple(ZOO_INITS), seed: int = 0) -> Result:
  """Final test accuracy and the first/last-layer weight-gradient-norm ratio at init for every activation ×
  initializer, on the lab 10-4 network (Adam 1e-3, batch 100)."""
  ds = _mnist(data_dir, n_train)
  probe_batch = {"x": jnp.asarray(ds.train_x[:ZOO_PROBE_EXAMPLES]), "y": jnp.asarray(ds.train_y[:ZOO_PROBE_EXAMPLES])}
  acc = np.zeros((len(activations), len(inits)))
  ratio = np.zeros_like(acc)
  ratio_name = f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init"
  accuracy_claims, ratio_claims = {}, {}
  cells = list(itertools.product(enumerate(activations), enumerate(inits)))
  for (i, act), (j, init) in progress.iterate(cells, "activation_zoo", "net"):  # a bar on a terminal
    label, overrides = ZOO_INITS[init]
    with tempfile.TemporaryDirectory() as tmp:
      c = _mlp_config(depth=depth, width=(width,), activation=act, epochs=epochs, seed=seed, workdir=tmp, **overrides)
      acc[i, j], ratio[i, j] = _zoo_cell(c, ds, probe_batch)
    accuracy_claims[f"{act}_{init}_test_accuracy"] = (float(acc[i, j]),
                                                      f"{act} / {label}: test accuracy (NaN: diverged)")
    ratio_claims[f"{act}_{init}_grad_ratio_at_init"] = (float(ratio[i, j]), f"{act} / {label}: {ratio_name}")
  return Result.of(
      data=dict(rows=list(activations), cols=[ZOO_INITS[k][0] for k in inits],
                matrices={"test accuracy": acc.tolist(), ratio_name: ratio.tolist()},
                fmt={"test accuracy": ".3f", ratio_name: ".2g"}, cmaps={ratio_name: "coolwarm"},
                lognorm=[ratio_name],
                title=f"Activation × initializer: MNIST MLP {depth}×{width}, Adam 1e-3, {epochs} epochs"),
      claims=accuracy_claims | ratio_claims,
      setting=f"MLP {depth}×{width} (the lab 10-4 network), zero biases, Adam lr 1e-3, batch {LAB_BATCH}, "
              f"{epochs} epochs on {len(ds.train_y)} MNIST training images, test accuracy on the 10k test set "
              f"(NaN: diverged); gradient ratio of the cross-entropy at init on {ZOO_PROBE_EXAMPLES} "
              f"training images; seed {seed}. leaky_relu slope {DEFAULT_LEAKY_SLOPE}; normal = the labs' N(0, 1).")


# --- Poole et al. 2016 / Schoenholz et al. 2017: mean-field phase diagram ------------------------------

XI_CAP = 1e4                  # layers: the phase diagram's ξ_c is infinite on the critical line
THEORY_SIGMA_W2 = (0.5, 5.0)  # the theory panel's σ_w² range
THEORY_SIGMA_B2 = (0.0, 0.3)  # the theory panel's σ_b² range


def _trainability(ds: data.Dataset, depths, sigma_w2s, sigma_b2: float, *, width: int, steps: int, lr: float,
                  seed: int) -> np.ndarray:
  """Test accuracy[depth, σ_w²] of tanh MLPs after ``steps`` of SGD with momentum; NaN where the training loss
  turned non-finite (diverged)."""
  acc = np.zeros((len(depths), len(sigma_w2s)))
  cells = list(itertools.product(enumerate(depths), enumerate(sigma_w2s)))
  for (i, depth), (j, s_w2) in progress.iterate(cells, "trainability", "net"):  # a bar on a terminal
    c = _mlp_config(depth=depth, width=(width,), activation="tanh", init="lecun_normal",
                    init_gain=math.sqrt(s_w2), bias_init="normal", bias_std=math.sqrt(sigma_b2),
                    optimizer="momentum", lr=lr, momentum=MOMENTUM, batch_size=LAB_BATCH, seed=seed)
    run = _train_probed(c, ds, steps=steps, every=steps)
    acc[i, j] = run["test_accuracy"] if np.isfinite(run["loss"][-1]) else float("nan")
  return acc


def meanfield_phase_diagram(data_dir=None, sigma_b2_grid: float = 0.05, depths=(10, 20, 40, 80),
                            sigma_w2s=(0.7, 1.0, 1.3, 1.76, 2.5, 3.5, 5.0), width: int = 128, steps: int = 1000,
                            lr: float = 0.005, n_train: int = 10_000, seed: int = 0, resolution: int = 60) -> Result:
  """Poole et al. 2016 / Schoenholz et al. 2017 for tanh: depth scale ξ_c over (σ_w², σ_b²), the χ₁ = 1 line,
  and the test accuracy of tanh MLPs over depth × σ_w² at σ_b² = ``sigma_b2_grid``, with the 6ξ_c curve."""
  tanh = jnp.tanh  # = activations.get("tanh"), the trained nets' φ
  w2 = np.linspace(*THEORY_SIGMA_W2, resolution)
  b2 = np.linspace(*THEORY_SIGMA_B2, resolution // 2)
  xi = np.minimum(meanfield.correlation_depth_scale(tanh, w2[None, :], b2[:, None]), XI_CAP)
  acc = _trainability(_mnist(data_dir, n_train), depths, sigma_w2s, sigma_b2_grid, width=width, steps=steps,
                      lr=lr, seed=seed)
  xi_grid = np.minimum(meanfield.correlation_depth_scale(tanh, np.asarray(sigma_w2s, float), sigma_b2_grid), XI_CAP)
  claims = {f"tanh_critical_w2_b{b:g}": (meanfield.critical_sigma_w2(tanh, b),
                                          f"critical σ_w² at σ_b² = {b:g} (χ₁ = 1)")
            for b in (sigma_b2_grid, 0.0)}
  claims |= {f"xi_w2_{s:g}": (float(x), f"ξ_c at σ_w² = {s}, σ_b² = {sigma_b2_grid}")
             for s, x in zip(sigma_w2s, xi_grid)}
  claims |= {f"accuracy_depth{d}_w2_{s:g}": (float(acc[i, j]),
                                              f"test accuracy, depth {d}, σ_w² = {s} (NaN: diverged)")
             for i, d in enumerate(depths) for j, s in enumerate(sigma_w2s)}
  claims["diverged_runs"] = (int(np.isnan(acc).sum()), "trained networks whose training loss turned non-finite")
  critical = meanfield.critical_sigma_w2(tanh, b2)
  return Result.of(
      data=dict(sigma_w2=_f(w2), sigma_b2=_f(b2), depth_scale=xi.tolist(), critical_w2=_f(critical),
                trained=(list(sigma_w2s), list(depths), acc.tolist()), bias_for_grid=sigma_b2_grid,
                title="Mean field, tanh: order-to-chaos transition and trainable depth"),
      claims=claims,
      setting=f"theory on a {resolution}×{resolution // 2} (σ_w², σ_b²) grid (Gauss–Legendre quadrature on each side of 0); "
              f"trainability: tanh MLPs of width {width}, W ~ N(0, σ_w²/n), b ~ N(0, {sigma_b2_grid}), SGD "
              f"momentum {MOMENTUM} lr {lr}, batch {LAB_BATCH}, {steps} steps on the first {n_train} MNIST training "
              f"images, test accuracy on the 10k test set (NaN: diverged); seed {seed}.")


# --- the seed labs' accuracies ---------------------------------------------------------------------


def lab_accuracies(labs_json: str = "figures/labs.json") -> Result:
  """Our test accuracy per preset (mean ± std over seeds, from scripts/reproduce_labs.py) beside the published
  numbers of the three lab versions."""
  try:
    with open(labs_json) as f:
      result = json.load(f)
  except FileNotFoundError:
    raise Skipped(f"{labs_json} not found; run scripts/reproduce_labs.py first") from None
  rows = result["presets"]
  order = list(labs.PUBLISHED)
  names = sorted(rows, key=lambda n: order.index(n) if n in labs.PUBLISHED else len(order))
  published = {v: [labs.PUBLISHED.get(n, {}).get(v) for n in names] for v in ("TF1", "TF2", "PyTorch")}
  claims = {f"{n}_accuracy_mean": (rows[n]["test_accuracy_mean"],
                                   f"{n}: test accuracy mean (n={len(rows[n]['seeds'])})") for n in names}
  claims |= {f"{n}_accuracy_std": (rows[n]["test_accuracy_std"], f"{n}: test accuracy std") for n in names}
  scale = "--quick (1 epoch, 5000 images)" if result.get("quick") else "the TF1 budget (15 epochs)"
  return Result.of(
      data=dict(names=names, ours_mean=[rows[n]["test_accuracy_mean"] for n in names],
                ours_std=[rows[n]["test_accuracy_std"] for n in names], published=published,
                title="The seed labs: our test accuracy beside the published numbers"),
      claims=claims,
      setting=f"read from {labs_json}, written by `{result.get('command', 'scripts/reproduce_labs.py')}` at {scale}.")
