"""Experiments that train one network per curve and follow it: sigmoid saturation (Glorot & Bengio Fig. 2), a
30-layer ReLU net under two initializers (He et al. Fig. 3), the lab's sigmoid-vs-ReLU gradients, dropout."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from lab10 import config as config_lib
from lab10 import probes, train
from lab10.experiments.common import (GLOROT_PROBE_EXAMPLES, GRAD_PROBE_EXAMPLES, LAB_BATCH, MOMENTUM, Result, _f,
                                      _mlp_config, _mnist, _train_probed)

EARLY_STEP = 1000  # Fig. 2's "early in training": the probe point nearest this step


def _grad_norms(batch: dict) -> Callable:
  """A probe: the weight-gradient norm ‖∂L/∂W_l‖ of every hidden layer, of the cross-entropy on ``batch``."""

  def probe(model):
    stats = probes.init_stats(model, batch)  # jitted: XLA drops the statistics not returned
    return {"norms": jnp.stack([stats[f"grads/{n}/norm"] for n in model.layer_names])}

  return probe


# --- Glorot & Bengio Fig. 2: sigmoid saturation during training -------------------------------------


def glorot_fig2_sigmoid_saturation(data_dir=None, width: int = 1000, depth: int = 4, steps: int = 20_000,
                                   every: int = 250, lr: float = 0.1, batch_size: int = 10,
                                   seed: int = 0) -> Result:
  """Glorot & Bengio 2010 Fig. 2: mean and std of each sigmoid layer's activations over SGD training."""
  ds = _mnist(data_dir)
  probe_x = jnp.asarray(ds.test_x[:GLOROT_PROBE_EXAMPLES])
  c = _mlp_config(depth=depth, width=(width,), activation="sigmoid", init="glorot_standard", optimizer="sgd",
                  lr=lr, batch_size=batch_size, seed=seed)

  def probe(model):
    _, acts = model.forward(probe_x)
    stats = probes.layer_stats(model.layer_names, acts)  # jitted: XLA drops the statistics not returned
    return {"mean": jnp.stack([stats[f"forward/{n}/act_mean"] for n in model.layer_names]),
            "std": jnp.sqrt(jnp.stack([stats[f"forward/{n}/act_var"] for n in model.layer_names]))}

  run = _train_probed(c, ds, steps=steps, every=every, probe=probe)
  means = np.array([p["mean"] for p in run["probes"]])  # (points, layers)
  stds = np.array([p["std"] for p in run["probes"]])
  names = [f"layer {i + 1}" + (" (top)" if i == depth - 1 else "") for i in range(depth)]
  return Result.of(
      data=dict(steps=run["steps"], mean={n: _f(means[:, i]) for i, n in enumerate(names)},
                spread={n: (_f(means[:, i] - stds[:, i]), _f(means[:, i] + stds[:, i])) for i, n in enumerate(names)},
                ylabel="sigmoid activation (mean ± std)",
                title=f"Glorot & Bengio Fig. 2: sigmoid, {depth}×{width}, standard init, SGD"),
      claims=_saturation_claims(run, means, names, every),
      setting=f"sigmoid MLP {depth}×{width}, standard init U[±1/√n], zero biases; plain SGD lr {lr}, batch "
              f"{batch_size}, {steps} steps on the 60k MNIST training set; statistics every {every} steps on "
              f"{GLOROT_PROBE_EXAMPLES} fixed test images; seed {seed}.")


def _saturation_claims(run: dict, means: np.ndarray, names: list[str], every: int) -> dict:
  early = min(len(run["steps"]) - 1, max(1, EARLY_STEP // every))  # the probe point nearest EARLY_STEP
  claims = {}
  for i, name in enumerate(names):
    claims[f"layer{i + 1}_mean_early"] = (float(means[early, i]),
                                          f"{name}: mean activation at step {run['steps'][early]}")
    claims[f"layer{i + 1}_mean_final"] = (float(means[-1, i]), f"{name}: mean activation at step {run['steps'][-1]}")
  claims["top_min_mean"] = (float(means[:, -1].min()), "top layer: minimum mean over training")
  claims["lower_min_mean"] = (float(means[:, :-1].min()), "lower layers: minimum mean over training")
  claims["final_loss"] = (run["loss"][-1], f"training loss, mean over the last {every} steps")
  claims["test_accuracy"] = (run["test_accuracy"], "final test accuracy")
  return claims


# --- He et al. Fig. 3: a 30-layer ReLU net, Xavier stalls, He converges -------------------------------

HE_FIG3_INITS = {  # id: (legend label, initializer)
    "xavier": ("Xavier (Var 1/n)", "lecun_normal"),
    "he": ("He (Var 2/n)", "he_normal"),
}
STALL_LOSS = 2.0  # a 10-class net "stalls" while its cross-entropy stays near ln 10 ≈ 2.30


def he_fig3_deep_relu(data_dir=None, depth: int = 30, width: int = 128, steps: int = 3000, every: int = 50,
                      lr: float = 0.005, momentum: float = MOMENTUM, n_train: int = 10_000, seed: int = 0) -> Result:
  """He et al. 2015 Fig. 3 on an MLP: training loss of a 30-layer ReLU net and its first/last-layer
  weight-gradient norms over training, Xavier (Var 1/n, He's "Xavier") vs He (Var 2/n).

  lr 0.005 with SGD momentum: at 0.01 the He net's loss spikes during training, which hides the comparison."""
  ds = _mnist(data_dir, n_train)
  probe = _grad_norms({"x": jnp.asarray(ds.train_x[:GRAD_PROBE_EXAMPLES]),
                       "y": jnp.asarray(ds.train_y[:GRAD_PROBE_EXAMPLES])})
  loss, error, grad_lines, claims = {}, {}, {}, {}
  for key, (label, init) in HE_FIG3_INITS.items():
    c = _mlp_config(depth=depth, width=(width,), activation="relu", init=init, optimizer="momentum", lr=lr,
                    momentum=momentum, batch_size=LAB_BATCH, seed=seed)
    run = _train_probed(c, ds, steps=steps, every=every, probe=probe)
    norms = np.array([p["norms"] for p in run["probes"]])  # (points, layers)
    loss[label] = (run["steps"][1:], run["loss"])
    error[label] = (run["steps"][1:], _f(1 - np.asarray(run["accuracy"])))
    grad_lines[f"{label}, layer 1"] = (run["steps"], _f(norms[:, 0]))
    grad_lines[f"{label}, layer {depth}"] = (run["steps"], _f(norms[:, -1]))
    escaped = [s for s, v in zip(run["steps"][1:], run["loss"]) if v < STALL_LOSS]
    claims |= {
        f"{key}_final_loss": (run["loss"][-1], f"{label}: training loss, last {every} steps"),
        f"{key}_first_escape_step": (float(escaped[0]) if escaped else float("nan"),
                                     f"{label}: first step with training loss < {STALL_LOSS} (mean over {every} "
                                     f"steps; NaN: none in {steps})"),
        f"{key}_initial_loss": (run["loss"][0], f"{label}: training loss, first {every} steps"),
        f"{key}_test_accuracy": (run["test_accuracy"], f"{label}: test accuracy"),
        f"{key}_grad_ratio_at_init": (float(norms[0, 0] / norms[0, -1]),
                                      f"{label}: ‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init"),
        f"{key}_first_grad_at_init": (float(norms[0, 0]), f"{label}: ‖∂L/∂W_1‖ at init")}
  return Result.of(
      data=dict(panels={"training loss": loss, "training error": error,
                        f"weight-gradient norm ({GRAD_PROBE_EXAMPLES} fixed examples)": grad_lines},
                xlabel=f"training step (mini-batches of {LAB_BATCH})",
                ylabels=["cross-entropy (nats)", "error rate", r"$\|\partial L/\partial W_l\|_F$"],
                logy=[False, False, True],
                styles={f"{label}, layer {depth}": "--" for label, _ in HE_FIG3_INITS.values()},
                title=f"He et al. Fig. 3 on an MLP: {depth}-layer ReLU, He converges at once, Xavier stalls"),
      claims=claims,
      setting=f"ReLU MLP {depth}×{width}, zero biases; SGD with momentum {momentum}, lr {lr}, batch {LAB_BATCH}, "
              f"{steps} steps on the first {n_train} MNIST training images; gradient norms on "
              f"{GRAD_PROBE_EXAMPLES} fixed training images; seed {seed}. (Layer-{depth} gradient norms are dashed.)")


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


# --- lab 10-5: dropout and overfitting -------------------------------------------------------------

GAP_EPOCHS = 5  # the train–test gaps are averaged over this many last epochs


def dropout_overfitting(data_dir=None, n_train: int = 5000, epochs: int = 15, dropout: float = 0.5,
                        width: int = 512, seed: int = 0) -> Result:
  """Train vs test accuracy and loss per epoch, lab 10-5 network with and without dropout, on a training
  subset: without dropout the test loss climbs while the training loss goes to 0.

  15 epochs as in lab 10-5: trained much longer, the dropout net memorises the small subset too and the gap
  closes again."""
  ds = _mnist(data_dir, n_train)
  accuracy, loss, claims = {}, {}, {}
  for key, label, rate in (("no_dropout", "no dropout", 0.0), ("dropout", f"dropout {dropout}", dropout)):
    with tempfile.TemporaryDirectory() as tmp:
      c = config_lib.with_preset("lab10-5-dropout", dropout=rate, epochs=epochs, width=(width,), val_size=0,
                                 seed=seed, workdir=tmp)
      records = train.fit(c, ds, verbose=False).records
    x = [r["epoch"] for r in records]
    for split, prefix in (("train", "train_eval"), ("test", "test")):
      accuracy[f"{label}: {split}"] = (x, [r[f"{prefix}_accuracy"] for r in records])
      loss[f"{label}: {split}"] = (x, [r[f"{prefix}_loss"] for r in records])
    (_, train_acc), (_, test_acc) = accuracy[f"{label}: train"], accuracy[f"{label}: test"]
    (_, train_loss), (_, test_loss) = loss[f"{label}: train"], loss[f"{label}: test"]
    claims |= {
        f"{key}_final_train_accuracy": (train_acc[-1], f"{label}: final train accuracy"),
        f"{key}_final_test_accuracy": (test_acc[-1], f"{label}: final test accuracy"),
        f"{key}_accuracy_gap": (float(np.mean(np.subtract(train_acc, test_acc)[-GAP_EPOCHS:])),
                                f"{label}: train − test accuracy gap, mean of last {GAP_EPOCHS} epochs"),
        f"{key}_loss_gap": (float(np.mean(np.subtract(test_loss, train_loss)[-GAP_EPOCHS:])),
                            f"{label}: test − train loss gap, mean of last {GAP_EPOCHS} epochs"),
        f"{key}_final_test_loss": (test_loss[-1], f"{label}: final test loss")}
  return Result.of(
      data=dict(panels={"accuracy": accuracy, "cross-entropy": loss}, xlabel="epoch",
                ylabels=["accuracy", "cross-entropy (nats)"], logy=[False, True],
                styles={k: ("o-" if k.endswith("test") else "-") for k in accuracy}, sharey=False,
                title=f"Dropout: lab 10-5 network (4×{width}, Adam 1e-3) on {n_train} MNIST training images"),
      claims=claims,
      setting=f"lab10-5-dropout preset (784-{width}×4-10, glorot_uniform, N(0,1) biases, Adam 1e-3, batch "
              f"{LAB_BATCH}) with dropout {dropout} (TF2's value) vs 0, {epochs} epochs on the first {n_train} MNIST "
              f"training images (a small subset makes overfitting visible); train accuracy and loss scored in eval "
              f"mode on those images, test on the 10k test set; test points marked; seed {seed}.")
