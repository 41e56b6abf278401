"""Experiments that train one network per curve and follow it: sigmoid saturation (Glorot & Bengio Fig. 2), a
30-layer ReLU net under two initializers (He et al. Fig. 3), the lab's sigmoid-vs-ReLU gradients, dropout."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from lab10 import config as config_lib
from lab10 import probes, progress, runs, train, workdir
from lab10.experiments.common import (GLOROT_PROBE_EXAMPLES, GRAD_PROBE_EXAMPLES, LAB_BATCH, MOMENTUM, Check,
                                      Result, _f, _mlp_config, _mnist, _train_probed)

CHECKS: dict[str, tuple[Check, ...]] = {}  # each figure's claims, tested on its committed JSON

EARLY_STEP = 1000  # Fig. 2's "early in training": the probe point nearest this step
TEST_ERROR_EXAMPLES = 2000  # Fig. 2's test error during training, on the first 2000 test images


def _grad_norms(batch: dict) -> Callable:
  """A probe: the weight-gradient norm ‖∂L/∂W_l‖ of every hidden layer, of the cross-entropy on ``batch``."""

  def probe(model):
    stats = probes.init_stats(model, batch)  # jitted: XLA drops the statistics not returned
    return {"norms": jnp.stack([stats[f"grads/{n}/norm"] for n in model.layer_names])}

  return probe


# --- Glorot & Bengio Fig. 2: sigmoid saturation during training -------------------------------------


def glorot_fig2_sigmoid_saturation(data_dir=None, width: int = 1000, depth: int = 4, steps: int = 20_000,
                                   every: int = 500, lr: float = 1.0, batch_size: int = 10,
                                   seed: int = 0) -> Result:
  """Glorot & Bengio 2010 Fig. 2: mean and std of each sigmoid layer's activations over SGD training, beside the
  training and test error.

  lr 1.0: at 0.1 the network had not started to learn after 20,000 steps (loss ln 10), and the paper tuned its
  rates for speed on validation data."""
  ds = _mnist(data_dir)
  probe_x = jnp.asarray(ds.test_x[:GLOROT_PROBE_EXAMPLES])
  test_x, test_y = jnp.asarray(ds.test_x[:TEST_ERROR_EXAMPLES]), jnp.asarray(ds.test_y[:TEST_ERROR_EXAMPLES])
  c = _mlp_config(depth=depth, width=(width,), activation="sigmoid", init="glorot_standard", optimizer="sgd",
                  lr=lr, batch_size=batch_size, seed=seed)

  def probe(model):
    _, acts = model.forward(probe_x)
    stats = probes.layer_stats(model.layer_names, acts)  # jitted: XLA drops the statistics not returned
    logits, _ = model.forward(test_x)
    return {"mean": jnp.stack([stats[f"forward/{n}/act_mean"] for n in model.layer_names]),
            "std": jnp.sqrt(jnp.stack([stats[f"forward/{n}/act_var"] for n in model.layer_names])),
            "test_error": jnp.mean(jnp.argmax(logits, -1) != test_y)}

  run = _train_probed(c, ds, steps=steps, every=every, probe=probe)
  means = np.array([p["mean"] for p in run["probes"]])  # (points, layers)
  stds = np.array([p["std"] for p in run["probes"]])
  test_error = np.array([float(p["test_error"]) for p in run["probes"]])
  names = [f"layer {i + 1}" + (" (top)" if i == depth - 1 else "") for i in range(depth)]
  return Result.of(
      data=dict(steps=run["steps"], mean={n: _f(means[:, i]) for i, n in enumerate(names)},
                spread={n: (_f(means[:, i] - stds[:, i]), _f(means[:, i] + stds[:, i])) for i, n in enumerate(names)},
                error=(run["steps"], {f"test error ({TEST_ERROR_EXAMPLES} test images)": _f(test_error),
                                      f"training error (mean over {every} steps)":
                                          [None, *_f(1 - np.asarray(run["accuracy"]))]}),
                ylabel="sigmoid activation",
                title=f"Glorot & Bengio Fig. 2: sigmoid {depth}×{width}, standard init, SGD lr {lr:g}: the top layer "
                      f"saturates at 0, then slowly leaves it as the error falls"),
      claims=_saturation_claims(run, means, test_error, names, every),
      setting=f"sigmoid MLP {depth}×{width}, standard init U[±1/√n], zero biases; plain SGD lr {lr:g}, batch "
              f"{batch_size} (the paper's), {steps} steps on the 60k MNIST training set; activation statistics every "
              f"{every} steps on {GLOROT_PROBE_EXAMPLES} fixed test images, test error on the first "
              f"{TEST_ERROR_EXAMPLES} test images; seed {seed}.")


def _saturation_claims(run: dict, means: np.ndarray, test_error: np.ndarray, names: list[str], every: int) -> dict:
  early = min(len(run["steps"]) - 1, max(1, EARLY_STEP // every))  # the probe point nearest EARLY_STEP
  lowest = int(np.argmin(means[:, -1]))
  claims = {}
  for i, name in enumerate(names):
    claims[f"layer{i + 1}_mean_early"] = (float(means[early, i]),
                                          f"{name}: mean activation at step {run['steps'][early]}")
    claims[f"layer{i + 1}_mean_final"] = (float(means[-1, i]), f"{name}: mean activation at step {run['steps'][-1]}")
  claims |= {
      "early_step": (float(run["steps"][early]), "the step of the '_early' values"),
      "top_min_mean": (float(means[lowest, -1]), "top layer: lowest mean over training"),
      "top_min_step": (float(run["steps"][lowest]), "top layer: the step of its lowest mean"),
      "top_max_mean_after_min": (float(means[lowest:, -1].max()), "top layer: highest mean after its lowest"),
      "lower_min_mean": (float(means[:, :-1].min()), "lower layers: lowest mean over training"),
      "initial_test_error": (float(test_error[0]), "test error at init"),
      "final_test_error": (float(test_error[-1]), f"test error at step {run['steps'][-1]}"),
      "final_loss": (run["loss"][-1], f"training loss, mean over the last {every} steps"),
      "test_accuracy": (run["test_accuracy"], "final test accuracy (10k test images)")}
  return claims


CHECKS["glorot_fig2_sigmoid_saturation"] = (
    Check("the top hidden layer's mean activation falls below 0.05 within the first 1000 steps (saturation at 0)",
          lambda c: c["early_step"] <= 1000 and c["layer4_mean_early"] < 0.05),
    Check("after its lowest point the top layer's mean rises again, to at least 5 times that lowest value and above "
          "0.02 (it slowly leaves saturation)",
          lambda c: c["top_max_mean_after_min"] > max(5 * c["top_min_mean"], 0.02)),
    Check("meanwhile the network learns: test error below 0.1 at the end, from about 0.9 at init",
          lambda c: c["final_test_error"] < 0.1 and c["initial_test_error"] > 0.8),
    Check("unlike the paper's, the lower layers' means do not stay near 0.5 at this learning rate: each ends below 0.3",
          lambda c: max(c[f"layer{i}_mean_final"] for i in (1, 2, 3)) < 0.3),
)


# --- Glorot & Bengio Figs. 3-4: tanh and softsign saturation during training ------------------------

SATURATION_RUNS = {  # id: (panel title, activation, initializer)
    "tanh_standard": ("tanh, standard init", "tanh", "glorot_standard"),
    "tanh_normalized": ("tanh, normalized init", "tanh", "glorot_uniform"),
    "softsign_standard": ("softsign, standard init", "softsign", "glorot_standard"),
    "softsign_normalized": ("softsign, normalized init", "softsign", "glorot_uniform"),
}
SATURATED_P98 = 0.9  # a layer "saturates": the 98th percentile of its |h| passes this (the bound is 1)


def glorot_training_saturation(data_dir=None, width: int = 1000, depth: int = 5, epochs: int = 1,
                               log_every: int = 200, lr: float = 0.1, batch_size: int = 10,
                               n_train: int | None = 20_000, seed: int = 0) -> Result:
  """Glorot & Bengio 2010 Figs. 3-4: each hidden layer's 98th percentile of |h| and the std of h during SGD
  training, tanh and softsign, standard vs normalized init, read from the stats.jsonl of real
  ``--log_stats_every`` runs (``train.fit``; statistics of each logged training minibatch).

  2000 steps (one epoch of 20,000 images) at full scale; ``--scale long``: 10 epochs of all 60,000."""
  ds = _mnist(data_dir, n_train)
  panels, claims = {}, {}
  lines = progress.Lines("glorot_training_saturation run", len(SATURATION_RUNS))
  for k, (key, (title, activation, init)) in enumerate(SATURATION_RUNS.items(), 1):
    with tempfile.TemporaryDirectory() as tmp:
      c = _mlp_config(depth=depth, width=(width,), activation=activation, init=init, optimizer="sgd", lr=lr,
                      batch_size=batch_size, epochs=epochs, val_size=0, log_stats_every=log_every, seed=seed,
                      workdir=tmp)
      result = train.fit(c, ds, verbose=False)
      stats = runs.read_jsonl(result.workdir / workdir.STATS)
    steps = [r["step"] for r in stats]
    names = [f"dense_{i}" for i in range(depth)]
    p98 = np.array([[r[f"forward/{n}/act_abs_p98"] for n in names] for r in stats])  # (points, layers)
    std = np.sqrt(np.array([[r[f"forward/{n}/act_var"] for n in names] for r in stats]))
    panels[title] = {}
    for i in range(depth):
      panels[title][f"layer {i + 1}: 98th percentile of |h|"] = (steps, _f(p98[:, i]))
      panels[title][f"layer {i + 1}: std of h"] = (steps, _f(std[:, i]))
    for i in range(depth):
      above = [s for s, v in zip(steps, p98[:, i]) if v > SATURATED_P98]
      claims[f"{key}_layer{i + 1}_p98_init"] = (float(p98[0, i]), f"{title}, layer {i + 1}: 98th percentile of |h| "
                                                                  f"at step 0")
      claims[f"{key}_layer{i + 1}_p98_final"] = (float(p98[-1, i]), f"{title}, layer {i + 1}: 98th percentile of "
                                                                    f"|h| at step {steps[-1]}")
      claims[f"{key}_layer{i + 1}_first_saturated_step"] = (
          float(above[0]) if above else float("nan"),
          f"{title}, layer {i + 1}: first logged step whose 98th percentile of |h| is above {SATURATED_P98:g} "
          f"(NaN: none)")
    claims[f"{key}_test_accuracy"] = (result.records[-1]["test_accuracy"], f"{title}: test accuracy at the end")
    lines.done(k, f"{title}: test accuracy {result.records[-1]['test_accuracy']:.4f}")
  return Result.of(
      data=dict(panels=panels, xlabel="training step (mini-batches of 10)", sharey=True,
                ylabels=["p98 of |h| (solid), std (dashed)"] * len(panels),
                styles={f"layer {i + 1}: std of h": "--" for i in range(depth)},
                title=f"Glorot & Bengio Figs. 3-4: activations of each layer during SGD training, {depth}×{width} "
                      f"tanh and softsign nets, standard vs normalized init"),
      claims=claims,
      setting=f"MLPs {depth}×{width}, zero biases; standard init U[±1/√n] or normalized (Xavier) "
              f"U[±√6/√(n_in+n_out)]; plain SGD lr {lr:g}, batch {batch_size} (the paper's), {epochs} epoch(s) on "
              f"{len(ds.train_y)} MNIST training images (train.fit with --log_stats_every {log_every}: statistics of "
              f"the logged training minibatch, over all its units and examples); seed {seed}.")


def _final_p98(c: dict, key: str, depth: int = 5) -> list[float]:
  return [c[f"{key}_layer{i}_p98_final"] for i in range(1, depth + 1)]


CHECKS["glorot_training_saturation"] = (
    Check("at init, standard init's 98th percentile of |h| shrinks with depth, layer 5's under 1/5 of layer 1's "
          "(Fig. 6's narrowing); normalized init's keeps over 0.4 of it",
          lambda c: all(c[f"{a}_standard_layer5_p98_init"] < 0.2 * c[f"{a}_standard_layer1_p98_init"] and
                        c[f"{a}_normalized_layer5_p98_init"] > 0.4 * c[f"{a}_normalized_layer1_p98_init"]
                        for a in ("tanh", "softsign"))),
    Check("tanh, both inits: the upper layers end nearest saturation — each layer above the first ends with a "
          "higher 98th percentile than the first, layers 3-5 above 0.75 — the reverse of the paper's Fig. 3 order, "
          "where the first hidden layer saturates first",
          lambda c: all(min(_final_p98(c, k)[1:]) > _final_p98(c, k)[0] and min(_final_p98(c, k)[2:]) > 0.75
                        for k in ("tanh_standard", "tanh_normalized"))),
    Check("softsign, both inits: no layer saturates — every layer's 98th percentile ends between 0.3 and 0.7 (the "
          "knee of x/(1+|x|)), the five layers within 0.1 of each other (the paper: softsign layers move together)",
          lambda c: all(0.3 < min(_final_p98(c, k)) and max(_final_p98(c, k)) < 0.7 and
                        max(_final_p98(c, k)) - min(_final_p98(c, k)) < 0.1
                        for k in ("softsign_standard", "softsign_normalized"))),
)


# --- He et al. Fig. 3: a 30-layer ReLU net, Xavier stalls, He converges -------------------------------

HE_FIG3_INITS = {  # id: (legend label, initializer)
    "xavier": ("Xavier (Var 1/n)", "lecun_normal"),
    "he": ("He (Var 2/n)", "he_normal"),
}
HE_BATCH = 128             # He et al.'s mini-batch
HE_WEIGHT_DECAY = 5e-4     # He et al.'s weight decay (L2 on the kernels)
CONVERGED_ERROR = 0.1      # "converges": training error below this (chance is 0.9)
STALLED_ERROR = 0.85       # "stalls": training error never below this


def he_fig3_deep_relu(data_dir=None, depth: int = 30, width: int = 128, steps: int = 4680, every: int = 117,
                      lr: float = 0.01, momentum: float = MOMENTUM, weight_decay: float = HE_WEIGHT_DECAY,
                      batch_size: int = HE_BATCH, n_train: int | None = None, seed: int = 0) -> Result:
  """He et al. 2015 Fig. 3 on an MLP: training error of a 30-layer plain ReLU net and its first/last-layer
  weight-gradient norms over training, Xavier (Var 1/n, He's "Xavier") vs He (Var 2/n), with the paper's optimizer
  (SGD, momentum 0.9, weight decay 5e-4, batch 128, lr 1e-2) on the whole MNIST training set.

  10 epochs of 468 steps, probed every quarter epoch. The Xavier net's plateau ends by chance: on the first 10k or
  51,200 images (other data orders) it left it after about 2000 steps; on the whole set, seed 0, it stays."""
  ds = _mnist(data_dir, n_train)
  probe = _grad_norms({"x": jnp.asarray(ds.train_x[:GRAD_PROBE_EXAMPLES]),
                       "y": jnp.asarray(ds.train_y[:GRAD_PROBE_EXAMPLES])})
  loss, error, grad_lines, claims = {}, {}, {}, {}
  pair = _he_pair(ds, progress.Lines("he_fig3_deep_relu run", len(HE_FIG3_INITS)), depth=depth, width=width,
                  steps=steps, every=every, lr=lr, momentum=momentum, weight_decay=weight_decay,
                  batch_size=batch_size, seed=seed, probe=probe)
  for key, (label, _) in HE_FIG3_INITS.items():
    run = pair[key]
    norms = np.array([p["norms"] for p in run["probes"]])  # (points, layers)
    loss[label] = (run["steps"][1:], run["loss"])
    error[label] = (run["steps"][1:], _f(run["error"]))
    grad_lines[f"{label}, layer 1"] = (run["steps"], _f(norms[:, 0]))
    grad_lines[f"{label}, layer {depth}"] = (run["steps"], _f(norms[:, -1]))
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
  ``_train_probed``'s run, with ``error`` = 1 − training accuracy per probe interval; ``lines`` counts on."""
  pair = {}
  for k, (key, (label, init)) in enumerate(HE_FIG3_INITS.items(), lines.count + 1):
    c = _mlp_config(depth=depth, width=(width,), activation="relu", init=init, optimizer="momentum", lr=lr,
                    momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    run = _train_probed(c, ds, steps=steps, every=every, probe=probe)
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


CHECKS["he_fig3_deep_relu"] = (
    Check(f"He's training error falls below {CONVERGED_ERROR:g} within 1000 steps",
          lambda c: c[f"he_first_step_error_below_{CONVERGED_ERROR:g}"] <= 1000),
    Check(f"Xavier's training error never falls below {STALLED_ERROR:g} (chance: 0.9): it stalls for all 10 epochs "
          "(seed 0, whole training set; with other data orders, the first 10k or 51,200 images, the Xavier net left "
          "its plateau after about 2000 steps)",
          lambda c: c["xavier_min_error"] > STALLED_ERROR),
    Check("at init Xavier's ‖∂L/∂W_1‖ is under 1/1000 of He's (\"its gradients are all diminishing\")",
          lambda c: c["xavier_first_grad_at_init"] < 1e-3 * c["he_first_grad_at_init"]),
)


def he_fig2_fig3_depth(data_dir=None, depths: tuple[int, ...] = (22, 30), width: int = 128, steps: int = 4680,
                       every: int = 117, lr: float = 0.01, momentum: float = MOMENTUM,
                       weight_decay: float = HE_WEIGHT_DECAY, batch_size: int = HE_BATCH, n_train: int | None = None,
                       seed: int = 0) -> Result:
  """He et al. 2015 Figs. 2 and 3 side by side on MLPs: training error of plain ReLU nets of 22 and 30 layers,
  Xavier (Var 1/n) vs He (Var 2/n), with the paper's optimizer on the whole MNIST training set.

  The same networks, optimizer and budget as ``he_fig3_deep_relu`` (its 30-layer runs are these, bit for bit)."""
  ds = _mnist(data_dir, n_train)
  panels, claims = {}, {}
  lines = progress.Lines("he_fig2_fig3_depth run", len(depths) * len(HE_FIG3_INITS))
  for depth in depths:
    pair = _he_pair(ds, lines, depth=depth, width=width, steps=steps, every=every, lr=lr,
                    momentum=momentum, weight_decay=weight_decay, batch_size=batch_size, seed=seed)
    panels[f"{depth} layers"] = {label: (pair[key]["steps"][1:], _f(pair[key]["error"]))
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
CHECKS["he_fig2_fig3_depth"] = (
    Check(f"22 layers: both nets converge (training error below {CONVERGED_ERROR:g} within the 10 epochs), He's first",
          lambda c: c[f"d22_he_{_BELOW}"] < c[f"d22_xavier_{_BELOW}"] <= 4680),
    Check(f"30 layers: He's net converges, Xavier's never falls below {STALLED_ERROR:g} (chance: 0.9): it stalls",
          lambda c: c[f"d30_he_{_BELOW}"] <= 4680 and c["d30_xavier_min_error"] > STALLED_ERROR),
)


# --- the lab's story: sigmoid vs ReLU gradient norms per layer ---------------------------------------


def lab10_sigmoid_vs_relu(data_dir=None, depth: int = 8, width: int = 256, steps: int = 2000, every: int = 100,
                          lr: float = 0.01, n_train: int = 20_000, seed: int = 0) -> Result:
  """Per-layer weight-gradient norms over training, sigmoid vs ReLU, same deep MLP and Xavier init.

  SGD with momentum, not Adam: Adam's per-parameter scaling lets the sigmoid net escape quickly, where plain
  gradients show the vanishing directly."""
  ds = _mnist(data_dir, n_train)
  probe = _grad_norms({"x": jnp.asarray(ds.train_x[:GRAD_PROBE_EXAMPLES]),
                       "y": jnp.asarray(ds.train_y[:GRAD_PROBE_EXAMPLES])})
  panels, claims = {}, {}
  for act in ("sigmoid", "relu"):
    c = _mlp_config(depth=depth, width=(width,), activation=act, init="glorot_uniform", optimizer="momentum",
                    lr=lr, momentum=MOMENTUM, batch_size=LAB_BATCH, seed=seed)
    run = _train_probed(c, ds, steps=steps, every=every, probe=probe)
    norms = np.array([p["norms"] for p in run["probes"]])  # (points, layers)
    panels[f"{act} + Xavier"] = {f"layer {i + 1}": (run["steps"], _f(norms[:, i])) for i in range(depth)}
    ratio = f"‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖"
    claims |= {
        f"{act}_grad_ratio_at_init": (float(norms[0, 0] / norms[0, -1]), f"{act}: {ratio} at init"),
        f"{act}_grad_ratio_median": (float(np.median(norms[:, 0] / norms[:, -1])),
                                     f"{act}: median over training of {ratio}"),
        f"{act}_test_accuracy": (run["test_accuracy"], f"{act}: test accuracy after {steps} steps")}
  return Result.of(
      data=dict(panels=panels, xlabel=f"training step (mini-batches of {LAB_BATCH})",
                ylabels=[r"$\|\partial L/\partial W_l\|_F$"] * 2, logy=[True, True], sharey=True,
                title=f"Vanishing gradients: {depth}-layer MLP, sigmoid vs ReLU (Xavier, SGD momentum)"),
      claims=claims,
      setting=f"MLP {depth}×{width}, glorot_uniform, zero biases, SGD momentum {MOMENTUM} lr {lr}, batch "
              f"{LAB_BATCH}, {steps} steps on the first {n_train} MNIST training images; gradient norms of the "
              f"cross-entropy on {GRAD_PROBE_EXAMPLES} fixed training images every {every} steps; seed {seed}.")


CHECKS["lab10_sigmoid_vs_relu"] = (
    Check("sigmoid: the first layer's weight gradient is under 1/1000 of the last layer's, at init and (median) "
          "over training", lambda c: c["sigmoid_grad_ratio_at_init"] < 1e-3 and c["sigmoid_grad_ratio_median"] < 1e-3),
    Check("ReLU: the ratio stays between 0.1 and 10, at init and over training",
          lambda c: 0.1 < c["relu_grad_ratio_at_init"] < 10 and 0.1 < c["relu_grad_ratio_median"] < 10),
    Check("in the same 2000 steps the ReLU net reaches test accuracy above 0.9; the sigmoid net stays below 0.2",
          lambda c: c["relu_test_accuracy"] > 0.9 and c["sigmoid_test_accuracy"] < 0.2),
)


# --- lab 10-5: dropout and overfitting -------------------------------------------------------------

DROPOUT_SEEDS = (0, 1, 2)
GAP_EPOCHS = 5  # the train–test gaps are averaged over this many last epochs


def _mean_band(curves: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
  """Per epoch: the mean over seeds, and mean − std, mean + std (the band)."""
  a = np.asarray(curves, dtype=float)
  mean, std = a.mean(axis=0), a.std(axis=0)
  return _f(mean), _f(mean - std), _f(mean + std)


def dropout_overfitting(data_dir=None, n_train: int = 1000, epochs: int = 50, dropout: float = 0.5,
                        width: int = 512, seeds=DROPOUT_SEEDS) -> Result:
  """Train and test accuracy and loss per epoch (mean ± std over seeds), lab 10-5's network with and without
  dropout, on a training subset it memorises.

  1000 images and 50 epochs: on 5000 images for lab 10-5's 15 epochs the two end level (0.936 vs 0.933)."""
  ds = _mnist(data_dir, n_train)
  panels = {"accuracy": {}, "cross-entropy": {}}
  bands = {"accuracy": {}, "cross-entropy": {}}  # mean ± std over seeds
  claims, final_test = {}, {}
  lines = progress.Lines("dropout_overfitting run", 2 * len(seeds))
  for key, label, rate in (("no_dropout", "no dropout", 0.0), ("dropout", f"dropout {dropout}", dropout)):
    per_seed = []
    for seed in seeds:
      with tempfile.TemporaryDirectory() as tmp:
        c = config_lib.with_preset("lab10-5-dropout", dropout=rate, epochs=epochs, width=(width,), val_size=0,
                                   seed=seed, workdir=tmp)
        per_seed.append(train.fit(c, ds, verbose=False).records)
      lines.done(len(final_test) * len(seeds) + len(per_seed),
                 f"{label}, seed {seed}: test accuracy {per_seed[-1][-1]['test_accuracy']:.4f}")
    x = [r["epoch"] for r in per_seed[0]]
    for split, prefix in (("train", "train_eval"), ("test", "test")):
      for panel, metric in (("accuracy", "accuracy"), ("cross-entropy", "loss")):
        mean, low, high = _mean_band([[r[f"{prefix}_{metric}"] for r in records] for records in per_seed])
        panels[panel][f"{label}: {split}"] = (x, mean)
        bands[panel][f"{label}: {split}"] = (low, high)
    test_acc = np.array([[r["test_accuracy"] for r in records] for records in per_seed])
    train_acc = np.array([[r["train_eval_accuracy"] for r in records] for records in per_seed])
    test_loss = np.array([[r["test_loss"] for r in records] for records in per_seed])
    final_test[key] = test_acc[:, -GAP_EPOCHS:].mean(axis=1)
    claims |= {
        f"{key}_final_test_accuracy_mean": (float(test_acc[:, -1].mean()), f"{label}: final test accuracy, mean"),
        f"{key}_final_test_accuracy_std": (float(test_acc[:, -1].std()), f"{label}: final test accuracy, std"),
        f"{key}_final_train_accuracy_mean": (float(train_acc[:, -1].mean()), f"{label}: final train accuracy, mean"),
        f"{key}_accuracy_gap": (float((train_acc - test_acc)[:, -GAP_EPOCHS:].mean()),
                                f"{label}: train − test accuracy gap, mean of the last {GAP_EPOCHS} epochs and seeds"),
        f"{key}_test_loss_rise": (float((test_loss[:, -1] - test_loss.min(axis=1)).mean()),
                                  f"{label}: final test loss minus its lowest, mean over seeds")}
  gain = final_test["dropout"] - final_test["no_dropout"]  # paired by seed
  claims |= {"test_accuracy_gain_mean": (float(gain.mean()), f"test accuracy of the last {GAP_EPOCHS} epochs, "
                                                              "dropout − no dropout, mean over seeds (paired by seed)"),
             "test_accuracy_gain_min": (float(gain.min()), "the same, smallest over seeds")}
  return Result.of(
      data=dict(panels=panels, bands=bands, xlabel="epoch", ylabels=["accuracy", "cross-entropy (nats)"],
                logy=[False, True], styles={k: ("--" if k.endswith("train") else "-") for k in panels["accuracy"]},
                sharey=False,
                title=f"Dropout: lab 10-5 network (4×{width}, Adam 1e-3) on {n_train} MNIST images, "
                      f"{len(seeds)} seeds"),
      claims=claims,
      setting=f"lab10-5-dropout preset (784-{width}×4-10, glorot_uniform, N(0,1) biases, Adam 1e-3, batch "
              f"{LAB_BATCH}) with dropout {dropout} (TF2's value) vs 0, {epochs} epochs on the first {n_train} "
              f"MNIST training images (a subset the net memorises); train accuracy and loss scored in eval mode on "
              f"those images (dashed), test on the 10k test set (solid); lines are means over seeds "
              f"{', '.join(map(str, seeds))}, bands ± one std.")


CHECKS["dropout_overfitting"] = (
    Check("without dropout the net memorises its training images (training accuracy above 0.999) and its test loss "
          "climbs by more than 0.2 from its lowest",
          lambda c: c["no_dropout_final_train_accuracy_mean"] > 0.999 and c["no_dropout_test_loss_rise"] > 0.2),
    Check("dropout roughly halves that rise of the test loss (to under 0.6 of it)",
          lambda c: c["dropout_test_loss_rise"] < 0.6 * c["no_dropout_test_loss_rise"]),
    Check(f"the test-accuracy gain is small here: between 0 and 1 point on average over the seeds (last "
          f"{GAP_EPOCHS} epochs), within the seeds' spread (the smallest paired gain is below 0.5 point), and the "
          "train − test accuracy gap narrows by under 1 point",
          lambda c: 0 < c["test_accuracy_gain_mean"] < 0.01 and c["test_accuracy_gain_min"] < 0.005
          and 0 < c["no_dropout_accuracy_gap"] - c["dropout_accuracy_gap"] < 0.01),
)
