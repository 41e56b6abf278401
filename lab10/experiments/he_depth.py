"""He et al. 2015, Figs. 2–3 on MLPs: plain ReLU nets of 22 and 30 layers trained with the paper's optimizer, Xavier
(Var 1/n) vs He (Var 2/n) init. One family: ``he_fig3_deep_relu`` follows one seed's 30-layer pair in detail (error,
loss, first/last-layer gradient norms); ``he_fig2_fig3_depth`` trains 10 seeds of each (depth, init) and states how
often each converges or stalls, and when (seed 0's 30-layer nets start as he_fig3_deep_relu's, with its data order;
trained by the sweep's program, whose float rounding differs, they need not match it step for step).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from lab10 import plotting, progress
from lab10.experiments.common import (GRAD_PROBE_EXAMPLES, MOMENTUM, floats, grad_norms, mlp_config, mnist,
                                      train_probed, train_seeds)
from lab10.experiments.figure import Check, Figure, Result


HE_FIG3_INITS = {  # id: (legend label, initializer)
    "xavier": ("Xavier (Var 1/n)", "lecun_normal"),
    "he": ("He (Var 2/n)", "he_normal"),
}


HE_BATCH = 128             # He et al.'s mini-batch
HE_WEIGHT_DECAY = 5e-4     # He et al.'s weight decay (L2 on the kernels)
CONVERGED_ERROR = 0.1      # "converges": training error below this (chance is 0.9)
STALLED_ERROR = 0.85       # "stalls": training error never below this
DEPTH_SEEDS = tuple(range(10))


def run_fig3(data_dir=None, depth: int = 30, width: int = 128, steps: int = 4680, every: int = 117,
             lr: float = 0.01, momentum: float = MOMENTUM, weight_decay: float = HE_WEIGHT_DECAY,
             batch_size: int = HE_BATCH, n_train: int | None = None, seed: int = 0) -> Result:
  """He et al. 2015 Fig. 3 on an MLP: training error of a 30-layer plain ReLU net and its first/last-layer
  weight-gradient norms over training, Xavier (Var 1/n, He's "Xavier") vs He (Var 2/n), with the paper's optimizer
  (SGD, momentum 0.9, weight decay 5e-4, batch 128, lr 1e-2) on the whole MNIST training set.

  10 epochs of 468 steps, probed every quarter epoch. The Xavier net's plateau ends by chance: on the first 10k or
  51,200 images (other data orders) it left it after about 2000 steps; on the whole set, seed 0, it stays."""
  ds = mnist(data_dir, n_train)
  probe = grad_norms({"x": jnp.asarray(ds.train_x[:GRAD_PROBE_EXAMPLES]),
                       "y": jnp.asarray(ds.train_y[:GRAD_PROBE_EXAMPLES])})
  loss, error, grad_lines, claims = {}, {}, {}, {}
  pair = _he_pair(ds, progress.Lines("he_fig3_deep_relu run", len(HE_FIG3_INITS)), depth=depth, width=width,
                  steps=steps, every=every, lr=lr, momentum=momentum, weight_decay=weight_decay,
                  batch_size=batch_size, seed=seed, probe=probe)
  for key, (label, _) in HE_FIG3_INITS.items():
    run = pair[key]
    norms = np.array([p["norms"] for p in run["probes"]])  # (points, layers)
    loss[label] = (run["steps"][1:], run["loss"])
    error[label] = (run["steps"][1:], floats(run["error"]))
    grad_lines[f"{label}, layer 1"] = (run["steps"], floats(norms[:, 0]))
    grad_lines[f"{label}, layer {depth}"] = (run["steps"], floats(norms[:, -1]))
    claims |= _convergence_claims(key, label, run, every, steps) | {
        f"{key}_test_accuracy": (run["test_accuracy"], f"{label}: test accuracy after {steps} steps"),
        f"{key}_grad_ratio_at_init": (float(norms[0, 0] / norms[0, -1]),
                                      f"{label}: ‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init"),
        f"{key}_first_grad_at_init": (float(norms[0, 0]), f"{label}: ‖∂L/∂W_1‖ at init")}
  return Result.of(
      data=dict(panels={"training error": error, "training loss": loss,
                        f"weight-gradient norm ({GRAD_PROBE_EXAMPLES} fixed examples)": grad_lines},
                xlabel=f"training step (mini-batches of {batch_size})",
                ylabels=["training error (chance: 0.9)", "cross-entropy (nats)", r"$\|\partial L/\partial W_l\|_F$"],
                logy=[False, False, True],
                styles={f"{label}, layer {depth}": "--" for label, _ in HE_FIG3_INITS.values()},
                title=f"He et al. Fig. 3 on an MLP: {depth}-layer plain ReLU net, SGD momentum {momentum} + weight "
                      f"decay: He converges, Xavier stalls at chance for all {steps} steps"),
      claims=claims,
      setting=f"ReLU MLP {depth}×{width}, zero biases; SGD with momentum {momentum}, lr {lr}, weight decay "
              f"{weight_decay:g} on the kernels, batch {batch_size}, {steps} steps "
              f"({steps * batch_size / len(ds.train_y):.1f} epochs) on {len(ds.train_y)} MNIST training images; training error and loss are means over each "
              f"{every} steps; gradient norms of the cross-entropy on {GRAD_PROBE_EXAMPLES} fixed training images "
              f"(layer {depth} dashed); seed {seed}.")


def _he_pair(ds, lines: progress.Lines, *, depth: int, width: int, steps: int, every: int, lr: float,
             momentum: float, weight_decay: float, batch_size: int, seed: int,
             probe: Callable | None = None) -> dict[str, dict]:
  """The Xavier and He nets of He et al.'s depth experiments at ``depth``, trained with their optimizer: each
  ``train_probed``'s run, with ``error`` = 1 − training accuracy per probe interval; ``lines`` counts on."""
  pair = {}
  for k, (key, (label, init)) in enumerate(HE_FIG3_INITS.items(), lines.count + 1):
    c = mlp_config(depth=depth, width=(width,), activation="relu", init=init, optimizer="momentum", lr=lr,
                    momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    run = train_probed(c, ds, steps=steps, every=every, probe=probe)
    run["error"] = 1 - np.asarray(run["accuracy"])
    pair[key] = run
    lines.done(k, f"{depth} layers, {label}: training error {run['error'][-1]:.3f} after {steps} steps")
  return pair


def _convergence_claims(key: str, label: str, run: dict, every: int, steps: int) -> dict:
  errors = run["error"]
  converged = [s for s, e in zip(run["steps"][1:], errors) if e < CONVERGED_ERROR]
  return {
      f"{key}_first_step_error_below_{CONVERGED_ERROR:g}": (
          float(converged[0]) if converged else float("nan"),
          f"{label}: first step whose training error (mean over the last {every} steps) is below "
          f"{CONVERGED_ERROR:g} (NaN: none in {steps})"),
      f"{key}_min_error": (float(errors.min()), f"{label}: lowest training error (means over {every} steps)"),
      f"{key}_final_error": (float(errors[-1]), f"{label}: training error, last {every} steps")}


CHECKS_FIG3 = (
    Check(f"He's training error falls below {CONVERGED_ERROR:g} within 1000 steps",
          lambda c: c[f"he_first_step_error_below_{CONVERGED_ERROR:g}"] <= 1000),
    Check(f"Xavier's training error never falls below {STALLED_ERROR:g} (chance: 0.9): it stalls for all 10 epochs "
          "(seed 0, whole training set; with other data orders, the first 10k or 51,200 images, the Xavier net left "
          "its plateau after about 2000 steps)",
          lambda c: c["xavier_min_error"] > STALLED_ERROR),
    Check("at init Xavier's ‖∂L/∂W_1‖ is under 1/1000 of He's (\"its gradients are all diminishing\")",
          lambda c: c["xavier_first_grad_at_init"] < 1e-3 * c["he_first_grad_at_init"]),
)


def run_depths(data_dir=None, depths: tuple[int, ...] = (22, 30), width: int = 128, steps: int = 4680,
               every: int = 117, lr: float = 0.01, momentum: float = MOMENTUM, weight_decay: float = HE_WEIGHT_DECAY,
               batch_size: int = HE_BATCH, n_train: int | None = None, seeds=DEPTH_SEEDS) -> Result:
  """He et al. 2015 Figs. 2 and 3 on MLPs, over seeds: training error of plain ReLU nets of 22 and 30 layers,
  Xavier (Var 1/n) vs He (Var 2/n), with the paper's optimizer on the whole MNIST training set; each (depth, init)
  trains all ``seeds`` at once (``train_seeds``: one vmap). Per run: the first step whose training error is below
  CONVERGED_ERROR, and whether it stalls (never below STALLED_ERROR)."""
  ds = mnist(data_dir, n_train)
  panels, first_below, claims = {}, {}, {}
  lines = progress.Lines("he_fig2_fig3_depth net", len(depths) * len(HE_FIG3_INITS))
  for depth in depths:
    panels[f"{depth} layers"] = {}
    for key, (label, init) in HE_FIG3_INITS.items():
      c = mlp_config(depth=depth, width=(width,), activation="relu", init=init, optimizer="momentum", lr=lr,
                     momentum=momentum, weight_decay=weight_decay, batch_size=batch_size)
      run = train_seeds(c, seeds, ds, steps=steps, every=every)
      error = 1 - run["accuracy"]  # (points, seeds)
      firsts = [next((s for s, e in zip(run["steps"], error[:, i]) if e < CONVERGED_ERROR), math.nan)
                for i in range(len(seeds))]
      stalled = error.min(axis=0) > STALLED_ERROR
      panels[f"{depth} layers"][label] = (run["steps"], [floats(error[:, i]) for i in range(len(seeds))])
      first_below[f"{depth} layers, {label}"] = floats(firsts)
      claims |= _seed_claims(f"d{depth}_{key}", f"{depth} layers, {label}", firsts, stalled, steps)
      lines.done(lines.count + 1, f"{depth} layers, {label}: {int(stalled.sum())} of {len(seeds)} stalled, "
                                  f"{sum(f == f for f in firsts)} below {CONVERGED_ERROR:g}")
    he, xavier = (np.array(first_below[f"{depth} layers, {HE_FIG3_INITS[k][0]}"]) for k in ("he", "xavier"))
    claims[f"d{depth}_he_first_in_pairs"] = (float(np.sum(he < np.where(np.isnan(xavier), np.inf, xavier))),
                                             f"{depth} layers: seeds whose He net fell below {CONVERGED_ERROR:g} "
                                             f"before the Xavier net of the same seed (a Xavier net that never did "
                                             f"counts as later)")
  return Result.of(
      data=dict(panels=panels, first_below=first_below, steps=steps, threshold=CONVERGED_ERROR,
                xlabel=f"training step (mini-batches of {batch_size})",
                title=f"An MLP analogue of He et al. 2015 Figs. 2–3: plain ReLU nets of "
                      f"{' and '.join(map(str, depths))} layers, Xavier vs He init, {len(seeds)} seeds each"),
      claims=claims,
      setting=f"ReLU MLPs of {', '.join(map(str, depths))} hidden layers of {width}, zero biases; SGD with momentum "
              f"{momentum}, lr {lr}, weight decay {weight_decay:g} on the kernels, batch {batch_size}, {steps} steps "
              f"({steps * batch_size / len(ds.train_y):.1f} epochs) on {len(ds.train_y)} MNIST training images; "
              f"training error is the mean over each {every} steps; seeds {seeds[0]}–{seeds[-1]} (init and data "
              f"order), each (depth, init) trained at once (one vmap).")


def _seed_claims(key: str, label: str, firsts: list[float], stalled: np.ndarray, steps: int) -> dict:
  reached = np.array([f for f in firsts if f == f])
  n = len(firsts)
  return {
      f"{key}_stalled_fraction": (float(stalled.mean()), f"{label}: fraction of the {n} runs whose training error "
                                                         f"never fell below {STALLED_ERROR:g} (stalled)"),
      f"{key}_converged_fraction": (len(reached) / n, f"{label}: fraction of the runs whose training error fell "
                                                      f"below {CONVERGED_ERROR:g} within {steps} steps"),
      f"{key}_first_step_median": (float(np.median(reached)) if len(reached) else math.nan,
                                   f"{label}: median over those runs of the first step below {CONVERGED_ERROR:g}"),
      f"{key}_first_step_max": (float(reached.max()) if len(reached) else math.nan,
                                f"{label}: the latest first step below {CONVERGED_ERROR:g} among those runs")}


def draw_depths(panels, first_below, steps: int, threshold: float, xlabel: str, title: str = ""):
  """One panel per depth: each seed's training error (thin lines, a colour per init); the last panel: the fraction
  of runs whose training error has fallen below ``threshold`` by each step, per depth and init."""
  fig, axes = plotting.figure(len(panels) + 1, width=3.8)
  color_of = plotting.color_map(label for lines in panels.values() for label in lines)
  for ax, (panel, lines) in zip(axes, panels.items()):
    for label, (x, per_seed) in lines.items():
      for k, y in enumerate(per_seed):
        ax.plot(x, plotting.floats(y), color=color_of[label], alpha=0.5, linewidth=0.8,
                label=label if k == 0 else None)
    ax.axhline(threshold, color="k", linestyle=":", linewidth=0.8)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training error (chance: 0.9)")
  ax = axes[-1]
  for name, firsts in first_below.items():
    depth, label = name.split(", ", 1)
    f = np.sort(plotting.floats(firsts))
    reached = f[np.isfinite(f)]
    x = np.concatenate([[0], np.repeat(reached, 2), [steps]])
    y = np.concatenate([[0], np.repeat(np.arange(len(reached) + 1), 2)[1:-1], [len(reached)]]) / len(f)
    ax.plot(x, y, "-" if depth == next(iter(panels)) else "--", color=color_of[label], label=name)
  ax.set_xlim(0, steps)
  ax.set_ylim(-0.02, 1.02)
  ax.set_title(f"runs below {threshold:g} training error by step s")
  ax.set_xlabel(xlabel)
  ax.set_ylabel("fraction of runs")
  plotting.legend_below(fig, axes)
  plotting.suptitle(fig, title)
  return fig


CHECKS_DEPTHS = (
    Check(f"22 layers: every He net falls below {CONVERGED_ERROR:g} training error within 600 steps; 7 of the 10 Xavier "
          "nets do within the 10 epochs, at a median step over 3 times later; He's is first in every seed pair, and "
          "no net stalls",
          lambda c: c["d22_he_converged_fraction"] == 1 and c["d22_he_first_step_max"] <= 600
          and c["d22_xavier_converged_fraction"] == 0.7
          and c["d22_xavier_first_step_median"] > 3 * c["d22_he_first_step_median"]
          and c["d22_he_first_in_pairs"] == len(DEPTH_SEEDS)
          and c["d22_he_stalled_fraction"] == c["d22_xavier_stalled_fraction"] == 0),
    Check(f"30 layers: every He net falls below {CONVERGED_ERROR:g} within 1000 steps; no Xavier net does in the 10 "
          f"epochs, and 3 of the 10 stall completely (training error never below {STALLED_ERROR:g}, chance 0.9) — the "
          "paper's \"stalls completely\" holds for those seeds, the others are slowed",
          lambda c: c["d30_he_converged_fraction"] == 1 and c["d30_he_first_step_max"] <= 1000
          and c["d30_xavier_converged_fraction"] == 0 and c["d30_xavier_stalled_fraction"] == 0.3),
)


_DIFFERENCES = ("Width-128 MLPs on MNIST instead of the paper's conv nets on ImageNet.",
                "Training error (means over each quarter epoch), not validation error.",
                "10 epochs (4,680 steps of batch 128) at a constant lr 1e-2; the paper's schedule goes 1e-2 → 1e-4.")
_ONE_SEED = ("One seed (0) on the whole training set: with other data orders (the first 10k or 51,200 images) the "
             "30-layer Xavier net left its plateau after about 2,000 steps; he_fig2_fig3_depth states how often "
             "over 10 seeds.",)
FIGURES = (
    Figure(name="he_fig3_deep_relu",
           mirrors="He et al. 2015, Fig. 3: a 30-layer plain ReLU net trained with SGD (momentum 0.9, weight decay "
                   "5e-4) stalls completely with Xavier init (\"its gradients are all diminishing\"); with He init "
                   "it converges.",
           differences=_DIFFERENCES, rejected=(), caveats=_ONE_SEED, run=run_fig3, draw=plotting.curves,
           checks=CHECKS_FIG3, quick=dict(steps=400, every=50, n_train=6400), long=dict(steps=20_000, every=400)),
    Figure(name="he_fig2_fig3_depth",
           mirrors="He et al. 2015, Figs. 2 and 3: with the paper's optimizer, a 22-layer plain ReLU net converges "
                   "under both initializations, He's starting to reduce the error earlier; at 30 layers Xavier's "
                   "stalls completely (\"its gradients are all diminishing\") and He's converges.",
           differences=_DIFFERENCES, rejected=(),
           caveats=(f"Each (depth, init) over {len(DEPTH_SEEDS)} seeds (init and data order): the claims are "
                    "fractions of runs and the distribution of the step each run first falls below 0.1 training "
                    "error.",),
           run=run_depths, draw=draw_depths, checks=CHECKS_DEPTHS,
           quick=dict(steps=400, every=50, n_train=6400, seeds=(0, 1, 2)), long=dict(steps=20_000, every=400)),
)
