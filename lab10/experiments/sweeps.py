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
from lab10 import data, labs, meanfield, probes, progress, sweep
from lab10.activations import DEFAULT_LEAKY_SLOPE
from lab10.experiments.common import (LAB_BATCH, MOMENTUM, NUM_CLASSES, Check, Result, Skipped, _f, _mlp_config,
                                      _mnist, _train_probed)

CHECKS: dict[str, tuple[Check, ...]] = {}  # each figure's claims, tested on its committed JSON

# --- activation × initializer zoo ------------------------------------------------------------------

ZOO_ACTIVATIONS = ("sigmoid", "tanh", "softsign", "relu", "leaky_relu", "elu", "selu", "gelu")
ZOO_INITS: dict[str, tuple[str, dict]] = {  # id: (column label, config overrides)
    "normal": ("normal N(0,1)", dict(init="normal", init_std=1.0)),
    "xavier": ("Xavier", dict(init="glorot_uniform")),
    "he": ("He", dict(init="he_normal")),
    "lecun": ("LeCun", dict(init="lecun_normal")),
}
ZOO_PROBE_EXAMPLES = 1000  # the zoo's gradient ratio at init, on 1000 fixed training images
ZOO_SEEDS = (0, 1, 2)


def _zoo_cell(c: config_lib.Config, seeds, ds: data.Dataset, probe_batch: dict) -> tuple[np.ndarray, np.ndarray]:
  """Per seed: (test accuracy after training, NaN where it diverged; ‖∂L/∂W_1‖ / ‖∂L/∂W_top‖ at init) of the
  networks ``c`` with those seeds, trained at once (``lab10.sweep``: one vmap, exactly ``fit``'s models)."""
  build = lambda key: config_lib.make_model(c, ds.input_shape, NUM_CLASSES, nnx.Rngs(params=key))
  keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))  # the networks the sweep trains
  stats = probes.probe_init(build, probe_batch, keys)
  ratio = stats["grads/dense_0/norm"] / stats[f"grads/dense_{c.depth - 1}/norm"]
  with tempfile.TemporaryDirectory() as tmp:
    folder = sweep.run(sweep.grid(c, seeds), ds, workdir=tmp, verbose=False)
    summaries = [json.loads((folder / sweep.model_name(m) / "summary.json").read_text())
                 for m in sweep.grid(c, seeds)]
  accuracy = np.array([np.nan if r["diverged_epoch"] is not None else r["test_accuracy"] for r in summaries])
  return accuracy, ratio


def activation_zoo(data_dir=None, depth: int = 4, width: int = 512, epochs: int = 1, n_train: int | None = None,
                   activations=ZOO_ACTIVATIONS, inits=tuple(ZOO_INITS), seeds=ZOO_SEEDS) -> Result:
  """Test accuracy (mean ± std over seeds) and the first/last-layer weight-gradient-norm ratio at init for every
  activation × initializer, on the lab 10-4 network (Adam 1e-3, batch 100)."""
  ds = _mnist(data_dir, n_train)
  probe_batch = {"x": jnp.asarray(ds.train_x[:ZOO_PROBE_EXAMPLES]), "y": jnp.asarray(ds.train_y[:ZOO_PROBE_EXAMPLES])}
  acc = np.zeros((len(activations), len(inits), len(seeds)))
  ratio = np.zeros_like(acc)
  ratio_name = f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init (geometric mean)"
  accuracy_name = f"test accuracy (mean ± std, {len(seeds)} seeds)"
  claims = {}
  cells = list(itertools.product(enumerate(activations), enumerate(inits)))
  lines = progress.Lines("activation_zoo cell", len(cells))  # a line per cell; a bar too on a terminal
  for k, ((i, act), (j, init)) in enumerate(progress.iterate(cells, "activation_zoo", "cell"), 1):
    label, overrides = ZOO_INITS[init]
    c = _mlp_config(depth=depth, width=(width,), activation=act, epochs=epochs, val_size=0, **overrides)
    acc[i, j], ratio[i, j] = _zoo_cell(c, seeds, ds, probe_batch)
    lines.done(k, f"{act} / {label}: test accuracy {np.mean(acc[i, j]):.3f} (mean of {len(seeds)} seeds)")
    claims |= {
        f"{act}_{init}_accuracy_mean": (float(np.mean(acc[i, j])), f"{act} / {label}: test accuracy, mean over "
                                                                     f"seeds (NaN: a seed diverged)"),
        f"{act}_{init}_accuracy_std": (float(np.std(acc[i, j])), f"{act} / {label}: test accuracy, std over seeds"),
        f"{act}_{init}_grad_ratio": (float(np.exp(np.mean(np.log(ratio[i, j])))),
                                     f"{act} / {label}: {ratio_name}")}
  mean, std = acc.mean(axis=2), acc.std(axis=2)
  text = [["diverged" if np.isnan(m) else f"{m:.3f}\n±{s:.3f}" for m, s in zip(row_m, row_s)]
          for row_m, row_s in zip(mean, std)]
  return Result.of(
      data=dict(rows=list(activations), cols=[ZOO_INITS[k][0] for k in inits],
                matrices={accuracy_name: mean.tolist(), ratio_name: np.exp(np.log(ratio).mean(axis=2)).tolist()},
                annotations={accuracy_name: text}, fmt={ratio_name: ".2g"}, cmaps={ratio_name: "coolwarm"},
                lognorm=[ratio_name],
                title=f"Activation × initializer: MNIST MLP {depth}×{width}, Adam 1e-3, {epochs} epoch(s), "
                      f"{len(seeds)} seeds"),
      claims=claims,
      setting=f"MLP {depth}×{width} (the lab 10-4 network), zero biases, Adam lr 1e-3, batch {LAB_BATCH}, "
              f"{epochs} epoch(s) on {len(ds.train_y)} MNIST training images (as the TF2 lab: 1 epoch), seeds "
              f"{', '.join(map(str, seeds))} trained at once (lab10.sweep); test accuracy on the 10k test set "
              f"(NaN: diverged); gradient ratio of the cross-entropy at init on {ZOO_PROBE_EXAMPLES} training "
              f"images, geometric mean over the seeds; colour scale logarithmic, centred at 1. leaky_relu slope "
              f"{DEFAULT_LEAKY_SLOPE}; normal = the labs' N(0, 1).")


FANS_SCALED = ("xavier", "he", "lecun")  # the initializers that scale with the fans


CHECKS["activation_zoo"] = (
    Check("for every activation, N(0, 1) gives the lowest mean test accuracy of the four initializers",
          lambda c: all(c[f"{a}_normal_accuracy_mean"] < min(c[f"{a}_{i}_accuracy_mean"] for i in FANS_SCALED)
                        for a in ZOO_ACTIVATIONS)),
    Check("at init, sigmoid's first-layer weight gradient is under 1/20 of the last layer's with every fan-scaled "
          "initializer; every other activation's ratio is between 1/3 and 3 with them",
          lambda c: all(c[f"sigmoid_{i}_grad_ratio"] < 0.05 for i in FANS_SCALED)
          and all(1 / 3 < c[f"{a}_{i}_grad_ratio"] < 3 for a in ZOO_ACTIVATIONS if a != "sigmoid"
                  for i in FANS_SCALED)),
)


# --- Poole et al. 2016 / Schoenholz et al. 2017: mean-field phase diagram ------------------------------

XI_CAP = 1e4                  # layers: the phase diagram's ξ_c is infinite on the critical line
THEORY_SIGMA_W2 = (0.5, 5.0)  # the theory panel's σ_w² range
THEORY_SIGMA_B2 = (0.0, 0.3)  # the theory panel's σ_b² range


def _trainability(ds: data.Dataset, depths, sigma_w2s, sigma_b2: float, *, width: int, steps: int,
                  lr_times_depth: float, seed: int) -> np.ndarray:
  """Test accuracy[depth, σ_w²] of tanh MLPs after ``steps`` of SGD with momentum at learning rate
  ``lr_times_depth / depth``; NaN where the training loss turned non-finite (diverged)."""
  acc = np.zeros((len(depths), len(sigma_w2s)))
  cells = list(itertools.product(enumerate(depths), enumerate(sigma_w2s)))
  lines = progress.Lines("trainability net", len(cells))  # a line per net; a bar too on a terminal
  for k, ((i, depth), (j, s_w2)) in enumerate(progress.iterate(cells, "trainability", "net"), 1):
    c = _mlp_config(depth=depth, width=(width,), activation="tanh", init="lecun_normal",
                    init_gain=math.sqrt(s_w2), bias_init="normal", bias_std=math.sqrt(sigma_b2),
                    optimizer="momentum", lr=lr_times_depth / depth, momentum=MOMENTUM, batch_size=LAB_BATCH,
                    seed=seed)
    run = _train_probed(c, ds, steps=steps, every=steps)
    acc[i, j] = run["test_accuracy"] if np.isfinite(run["loss"][-1]) else float("nan")
    lines.done(k, f"depth {depth}, σ_w² = {s_w2:g}: test accuracy {acc[i, j]:.3f}")
  return acc


def meanfield_phase_diagram(data_dir=None, sigma_b2_grid: float = 0.05, depths=(10, 20, 40, 80),
                            sigma_w2s=(0.7, 1.0, 1.3, 1.76, 2.5, 3.5, 5.0), width: int = 128, steps: int = 1000,
                            lr_times_depth: float = 0.08, n_train: int = 10_000, seed: int = 0,
                            resolution: int = 60) -> Result:
  """Poole et al. 2016 / Schoenholz et al. 2017 for tanh: depth scale ξ_c over (σ_w², σ_b²), the χ₁ = 1 line,
  and the test accuracy of tanh MLPs over depth × σ_w² at σ_b² = ``sigma_b2_grid``, with the 6ξ_c curve.

  The learning rate falls with depth (0.08 / L): at a fixed 0.005, no 80-layer net trained in 1000 steps, not even
  at criticality; at 0.001 the critical one reaches test accuracy 0.92 in 2000 steps (at 0.02 it stays at chance)."""
  tanh = jnp.tanh  # = activations.get("tanh"), the trained nets' φ
  w2 = np.linspace(*THEORY_SIGMA_W2, resolution)
  b2 = np.linspace(*THEORY_SIGMA_B2, resolution // 2)
  xi = np.minimum(meanfield.correlation_depth_scale(tanh, w2[None, :], b2[:, None]), XI_CAP)
  acc = _trainability(_mnist(data_dir, n_train), depths, sigma_w2s, sigma_b2_grid, width=width, steps=steps,
                      lr_times_depth=lr_times_depth, seed=seed)
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
              f"momentum {MOMENTUM}, lr {lr_times_depth:g}/L at depth L, batch {LAB_BATCH}, {steps} steps on the "
              f"first {n_train} MNIST training images, test accuracy on the 10k test set (NaN: diverged); seed {seed}.")


def _beyond_depth_scale(c: dict, factor: float) -> list[float]:
  """Test accuracies of the trained nets deeper than ``factor`` × 6ξ_c."""
  cells = [(int(k.split("_")[1][5:]), k.split("_w2_")[1]) for k in c if k.startswith("accuracy_depth")]
  return [c[f"accuracy_depth{d}_w2_{w}"] for d, w in cells if d > factor * 6 * c[f"xi_w2_{w}"]]


CHECKS["meanfield_phase_diagram"] = (
    Check("the χ₁ = 1 line meets σ_b² = 0.05 at σ_w² = 1.7610 (Poole et al.: ≈ 1.76) and σ_b² = 0 at σ_w² = 1.0000",
          lambda c: abs(c["tanh_critical_w2_b0.05"] - 1.76095) < 1e-4 and abs(c["tanh_critical_w2_b0"] - 1) < 1e-4),
    Check("at depth 80 the critical σ_w² = 1.76 trains (test accuracy above 0.8); σ_w² = 0.7 and 1.0, whose 6ξ_c is "
          "under 25 layers, stay below 0.3",
          lambda c: c["accuracy_depth80_w2_1.76"] > 0.8
          and max(c["accuracy_depth80_w2_0.7"], c["accuracy_depth80_w2_1"]) < 0.3),
    Check("no net deeper than twice 6ξ_c trains (test accuracy below 0.5)",
          lambda c: max(_beyond_depth_scale(c, 2), default=0) < 0.5),
)


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
                note="; ".join(f"{name}: {text}" for name, text in labs.NOTES.items() if name in names),
                title="The seed labs: our test accuracy beside the published numbers"),
      claims=claims,
      setting=f"read from {labs_json}, written by `{result.get('command', 'scripts/reproduce_labs.py')}` at {scale}.")


CHECKS["lab_accuracies"] = (
    Check("every preset with a TF1 number comes within 0.01 of it (TF1's budget: 15 epochs, batch 100)",
          lambda c: all(abs(c[f"{n}_accuracy_mean"] - tf1) < 0.01 for n, v in labs.PUBLISHED.items()
                        if (tf1 := v.get("TF1")) is not None)),
    Check("the lab's story in our numbers: softmax < ReLU with N(0, 1) init < ReLU with Xavier init",
          lambda c: c["lab10-1-softmax_accuracy_mean"] < c["lab10-2-relu_accuracy_mean"]
          < c["lab10-3-xavier_accuracy_mean"]),
)
