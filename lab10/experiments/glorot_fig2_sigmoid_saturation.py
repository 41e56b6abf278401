"""Glorot & Bengio 2010, Fig. 2: mean and std of each sigmoid layer's activations during SGD training of a 4×1000
net with standard init, beside its training and test error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from lab10 import plotting, probes
from lab10.experiments.common import GLOROT_PROBE_EXAMPLES, floats, mlp_config, mnist, train_probed
from lab10.experiments.figure import Check, Figure, Result


EARLY_STEP = 1000  # Fig. 2's "early in training": the probe point nearest this step
TEST_ERROR_EXAMPLES = 2000  # Fig. 2's test error during training, on the first 2000 test images


def run(data_dir=None, width: int = 1000, depth: int = 4, steps: int = 20_000,
        every: int = 500, lr: float = 1.0, batch_size: int = 10,
        seed: int = 0) -> Result:
  """Glorot & Bengio 2010 Fig. 2: mean and std of each sigmoid layer's activations over SGD training, beside the
  training and test error.

  lr 1.0: at 0.1 the network had not started to learn after 20,000 steps (loss ln 10), and the paper tuned its
  rates for speed on validation data."""
  ds = mnist(data_dir)
  probe_x = jnp.asarray(ds.test_x[:GLOROT_PROBE_EXAMPLES])
  test_x, test_y = jnp.asarray(ds.test_x[:TEST_ERROR_EXAMPLES]), jnp.asarray(ds.test_y[:TEST_ERROR_EXAMPLES])
  c = mlp_config(depth=depth, width=(width,), activation="sigmoid", init="glorot_standard", optimizer="sgd",
                  lr=lr, batch_size=batch_size, seed=seed)

  def probe(model):
    _, acts = model.forward(probe_x)
    stats = probes.layer_stats(model.layer_names, acts)  # jitted: XLA drops the statistics not returned
    logits, _ = model.forward(test_x)
    return {"mean": jnp.stack([stats[f"forward/{n}/act_mean"] for n in model.layer_names]),
            "std": jnp.sqrt(jnp.stack([stats[f"forward/{n}/act_var"] for n in model.layer_names])),
            "test_error": jnp.mean(jnp.argmax(logits, -1) != test_y)}

  run = train_probed(c, ds, steps=steps, every=every, probe=probe)
  means = np.array([p["mean"] for p in run["probes"]])  # (points, layers)
  stds = np.array([p["std"] for p in run["probes"]])
  test_error = np.array([float(p["test_error"]) for p in run["probes"]])
  names = [f"layer {i + 1}" + (" (top)" if i == depth - 1 else "") for i in range(depth)]
  return Result.of(
      data=dict(steps=run["steps"], mean={n: floats(means[:, i]) for i, n in enumerate(names)},
                spread={n: (floats(means[:, i] - stds[:, i]), floats(means[:, i] + stds[:, i])) for i, n in enumerate(names)},
                error=(run["steps"], {f"test error ({TEST_ERROR_EXAMPLES} test images)": floats(test_error),
                                      f"training error (mean over {every} steps)":
                                          [None, *floats(1 - np.asarray(run["accuracy"]))]}),
                ylabel="sigmoid activation",
                title=f"Glorot & Bengio Fig. 2: sigmoid {depth}×{width}, standard init, SGD lr {lr:g}: the top layer "
                      f"saturates at 0 and stays near it while the error falls"),
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


CHECKS = (
    Check("the top hidden layer's mean activation falls below 0.05 within the first 1000 steps (saturation at 0)",
          lambda c: c["early_step"] <= 1000 and c["layer4_mean_early"] < 0.05),
    Check("it does not leave saturation within the 20,000 steps: after its lowest point its mean stays below 0.05 to "
          "the end (the paper's top layer slowly leaves it, later in training)",
          lambda c: c["top_max_mean_after_min"] < 0.05 and c["layer4_mean_final"] < 0.05),
    Check("meanwhile the network learns: test error below 0.1 at the end, from about 0.9 at init",
          lambda c: c["final_test_error"] < 0.1 and c["initial_test_error"] > 0.8),
    Check("unlike the paper's, the lower layers' means do not stay near 0.5 at this learning rate: each ends below 0.3",
          lambda c: max(c[f"layer{i}_mean_final"] for i in (1, 2, 3)) < 0.3),
)


def draw(steps: Sequence[int], mean: Mapping[str, Sequence[float]],
         spread: Mapping[str, tuple[Sequence[float], Sequence[float]]],
         ylabel: str = "activation value", title: str = "",
         error: tuple[Sequence[int], Mapping[str, Sequence[float]]] | None = None):
  """Glorot & Bengio 2010 Fig. 2: per-layer mean activation over training, with a band (e.g. ±std); with
  ``error = (steps, {label: values})`` a second panel of error rates (e.g. training and test error) beside it."""
  fig, axes = plotting.figure(1 if error is None else 2, width=4.4, height=3.2)
  ax = axes[0]
  for color, (layer, values) in zip(plotting.colors(len(mean)), mean.items()):
    ax.plot(steps, plotting.floats(values), color=color, label=layer)
    lo, hi = spread[layer]
    ax.fill_between(steps, plotting.floats(lo), plotting.floats(hi), color=color, alpha=0.15, linewidth=0)
  ax.set_xlabel("training step (mini-batches)")
  ax.set_ylabel(ylabel)
  ax.set_title("mean activation per layer (± std)")
  if error is not None:
    ax_e = axes[1]
    error_steps, rates = error
    for k, (label, values) in enumerate(rates.items()):
      ax_e.plot(error_steps, plotting.floats(values), "k" + ("-" if k == 0 else "--"), label=label)
    ax_e.set_yscale("log")
    ax_e.set_xlabel("training step (mini-batches)")
    ax_e.set_ylabel("error rate (log scale)")
    ax_e.set_title("the network learns")
  plotting.legend_below(fig, axes)
  plotting.suptitle(fig, title)
  return fig


FIGURES = (Figure(
    name="glorot_fig2_sigmoid_saturation",
    mirrors="Glorot & Bengio 2010, Fig. 2: with sigmoid and standard init the top hidden layer saturates at 0 early "
            "in training and only slowly leaves it while the error falls; the lower layers' means stay near or "
            "above 0.5.",
    differences=("MNIST (the 60k training images) instead of Shapeset-3×2; activation statistics on 300 fixed MNIST "
                 "test images, as the paper's 300 fixed examples.",
                 "20,000 updates of batch 10 at lr 1.0; the paper's horizon is longer and its rate tuned on "
                 "validation (not given)."),
    rejected=("lr 0.1: after 20,000 steps the network had not started to learn (loss ln 10), so the top layer's "
              "recovery could not be seen.",),
    caveats=("At lr 1.0 the lower layers' means fall below 0.3 by the end, unlike the paper's lower layers near "
             "0.5: stated as a check.",
             "The top layer's recovery, the second half of the paper's Fig. 2, is not reached at this budget: its mean "
             "rises from its lowest (3e-4) but stays below 0.05; --scale long follows the net 10× longer.",),
    run=run, draw=draw, checks=CHECKS,
    quick=dict(steps=2000, every=100), long=dict(steps=200_000, every=5000)),)
