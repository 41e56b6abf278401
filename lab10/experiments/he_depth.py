"""He et al. 2015, Figs. 2–3 on MLPs: plain ReLU nets of 22 and 30 layers trained with the paper's optimizer, Xavier
(Var 1/n) vs He (Var 2/n) init. One family: ``he_fig3_deep_relu`` follows the 30-layer pair in detail (error, loss,
first/last-layer gradient norms); ``he_fig2_fig3_depth`` sets 22 and 30 layers side by side; the 30-layer runs are
the same networks, bit for bit (``_he_pair``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from lab10 import plotting, progress
from lab10.experiments.common import (GRAD_PROBE_EXAMPLES, MOMENTUM, floats, grad_norms, mlp_config, mnist,
                                      train_probed)
from lab10.experiments.figure import Check, Figure, Result


HE_FIG3_INITS = {  # id: (legend label, initializer)
    "xavier": ("Xavier (Var 1/n)", "lecun_normal"),
    "he": ("He (Var 2/n)", "he_normal"),
}


HE_BATCH = 128             # He et al.'s mini-batch
HE_WEIGHT_DECAY = 5e-4     # He et al.'s weight decay (L2 on the kernels)
CONVERGED_ERROR = 0.1      # "converges": training error below this (chance is 0.9)
STALLED_ERROR = 0.85       # "stalls": training error never below this


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
               every: int = 117, lr: float = 0.01, momentum: float = MOMENTUM,
               weight_decay: float = HE_WEIGHT_DECAY, batch_size: int = HE_BATCH, n_train: int | None = None,
               seed: int = 0) -> Result:
  """He et al. 2015 Figs. 2 and 3 side by side on MLPs: training error of plain ReLU nets of 22 and 30 layers,
  Xavier (Var 1/n) vs He (Var 2/n), with the paper's optimizer on the whole MNIST training set.

  The same networks, optimizer and budget as ``he_fig3_deep_relu`` (its 30-layer runs are these, bit for bit)."""
  ds = mnist(data_dir, n_train)
  panels, claims = {}, {}
  lines = progress.Lines("he_fig2_fig3_depth run", len(depths) * len(HE_FIG3_INITS))
  for depth in depths:
    pair = _he_pair(ds, lines, depth=depth, width=width, steps=steps, every=every, lr=lr,
                    momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    panels[f"{depth} layers"] = {label: (pair[key]["steps"][1:], floats(pair[key]["error"]))
                                 for key, (label, _) in HE_FIG3_INITS.items()}
    for key, (label, _) in HE_FIG3_INITS.items():
      claims |= _convergence_claims(f"d{depth}_{key}", f"{depth} layers, {label}", pair[key], every, steps)
  return Result.of(
      data=dict(panels=panels, xlabel=f"training step (mini-batches of {batch_size})",
                ylabels=["training error (chance: 0.9)"] * len(depths), sharey=True,
                title=f"He et al. Figs. 2–3 on MLPs: plain ReLU nets of {' and '.join(map(str, depths))} layers, "
                      f"Xavier vs He init, SGD momentum {momentum} + weight decay"),
      claims=claims,
      setting=f"ReLU MLPs of {', '.join(map(str, depths))} hidden layers of {width}, zero biases; SGD with momentum "
              f"{momentum}, lr {lr}, weight decay {weight_decay:g} on the kernels, batch {batch_size}, {steps} steps "
              f"({steps * batch_size / len(ds.train_y):.1f} epochs) on {len(ds.train_y)} MNIST training images; "
              f"training error is the mean over each {every} steps; seed {seed}.")


_BELOW = f"first_step_error_below_{CONVERGED_ERROR:g}"
CHECKS_DEPTHS = (
    Check(f"22 layers: both nets converge (training error below {CONVERGED_ERROR:g} within the 10 epochs), He's first",
          lambda c: c[f"d22_he_{_BELOW}"] < c[f"d22_xavier_{_BELOW}"] <= 4680),
    Check(f"30 layers: He's net converges, Xavier's never falls below {STALLED_ERROR:g} (chance: 0.9): it stalls",
          lambda c: c[f"d30_he_{_BELOW}"] <= 4680 and c["d30_xavier_min_error"] > STALLED_ERROR),
)


_DIFFERENCES = ("Width-128 MLPs on MNIST instead of the paper's conv nets on ImageNet.",
                "Training error (means over each quarter epoch), not validation error.",
                "10 epochs (4,680 steps of batch 128) at a constant lr 1e-2; the paper's schedule goes 1e-2 → 1e-4.")
_ONE_SEED = ("One seed (0) on the whole training set: with other data orders (the first 10k or 51,200 images) the "
             "30-layer Xavier net left its plateau after about 2,000 steps.",)
FIGURES = (
    Figure(name="he_fig3_deep_relu",
           mirrors="He et al. 2015, Fig. 3: a 30-layer plain ReLU net trained with SGD (momentum 0.9, weight decay "
                   "5e-4) stalls completely with Xavier init (\"its gradients are all diminishing\"); with He init "
                   "it converges.",
           differences=_DIFFERENCES, rejected=(), caveats=_ONE_SEED, run=run_fig3, draw=plotting.curves,
           checks=CHECKS_FIG3, quick=dict(steps=400, every=50, n_train=6400), long=dict(steps=20_000, every=400)),
    Figure(name="he_fig2_fig3_depth",
           mirrors="He et al. 2015, Figs. 2 and 3: with the paper's optimizer, a 22-layer plain ReLU net converges "
                   "under both initializations, He's starting earlier; at 30 layers Xavier's stalls and He's "
                   "converges.",
           differences=_DIFFERENCES, rejected=(), caveats=_ONE_SEED, run=run_depths, draw=plotting.curves,
           checks=CHECKS_DEPTHS, quick=dict(steps=400, every=50, n_train=6400), long=dict(steps=20_000, every=400)),
)
