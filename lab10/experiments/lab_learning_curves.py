"""The seed labs' story as learning curves: test accuracy per epoch of each preset in the lab's order, mean ± std
over seeds, from scripts/reproduce_labs.py's runs (``labs.run_seeds``, reused from ``workroot`` when there).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lab10 import config as config_lib
from lab10 import data, labs, plotting
from lab10.experiments.common import LAB_BATCH, floats, paired_difference
from lab10.experiments.figure import Check, Figure, Result


LAB_SEEDS = 5  # scripts/reproduce_labs.py's default
LAST_EPOCHS = 5  # presets are compared on their mean test accuracy over the last 5 epochs, paired by seed
COMPARED = {  # id: (preset a, preset b, what a − b compares)
    "sigmoid_vs_xavier": ("lab10-1-sigmoid", "lab10-3-xavier", "sigmoid with N(0, 0.05) init vs ReLU with Xavier init, "
                                                                "both 784-256-256-10"),
    "xavier_vs_normal": ("lab10-3-xavier", "lab10-2-relu", "Xavier vs N(0, 1) init, the same 784-256-256-10 ReLU net"),
    "deep_vs_xavier": ("lab10-4-deep", "lab10-3-xavier", "4×512 vs 2×256 ReLU + Xavier"),
    "dropout_vs_deep": ("lab10-5-dropout", "lab10-4-deep", "dropout 0.3 vs none, 4×512"),
    "batchnorm_vs_deep": ("lab10-6-batchnorm", "lab10-4-deep", "batch norm vs none, 4×512"),
}


def run(data_dir=None, seeds: int = LAB_SEEDS, workroot: str = "runs/labs",
        epochs: int | None = None, n_train: int | None = None) -> Result:
  """The seed labs' story as learning curves: test accuracy per epoch of each preset in the lab's order, mean ±
  std over seeds, from scripts/reproduce_labs.py's runs (reused from ``workroot`` when they exist there); the
  presets compared pairwise on the last LAST_EPOCHS epochs, paired by seed."""
  names = list(config_lib.PRESETS)
  overrides = {} if epochs is None else dict(epochs=epochs)
  configs = {n: config_lib.with_preset(n, data_dir=data_dir, **overrides) for n in names}
  ds = data.load("mnist", data_dir, val_size=configs[names[0]].val_size)
  if n_train is not None:
    ds = dataclasses.replace(ds, train_x=ds.train_x[:n_train], train_y=ds.train_y[:n_train])
  per_preset = labs.run_seeds(configs, seeds, ds, Path(workroot))
  accuracy, error = "test accuracy", "test error (log scale)"  # the panels: the same numbers, error = 1 − accuracy
  panels, bands, claims, last = {accuracy: {}, error: {}}, {accuracy: {}, error: {}}, {}, {}
  for n in names:
    acc = np.array([[r["test_accuracy"] for r in s["records"]] for s in per_preset[n]])  # (seeds, epochs)
    epoch = [r["epoch"] for r in per_preset[n][0]["records"]]
    mean = acc.mean(axis=0)
    std = acc.std(axis=0, ddof=1) if len(acc) > 1 else np.zeros_like(mean)  # the sample std, as figures/labs.md
    panels[accuracy][n], bands[accuracy][n] = (epoch, floats(mean)), (floats(mean - std), floats(mean + std))
    panels[error][n], bands[error][n] = (epoch, floats(1 - mean)), (floats(1 - mean - std), floats(1 - mean + std))
    last[n] = acc[:, -LAST_EPOCHS:].mean(axis=1)  # per seed
    claims |= {f"{n}_epoch1_mean": (float(mean[0]), f"{n}: test accuracy after epoch 1, mean over seeds"),
               f"{n}_final_mean": (float(mean[-1]), f"{n}: test accuracy after the last epoch, mean over seeds"),
               f"{n}_final_std": (float(std[-1]), f"{n}: the same, std over seeds (ddof 1)"),
               f"{n}_last_mean": (float(last[n].mean()), f"{n}: test accuracy over the last {LAST_EPOCHS} epochs, "
                                                         "mean over seeds")}
  for key, (a, b, what) in COMPARED.items():
    d = paired_difference(last[a], last[b])
    text = f"{a} − {b} ({what}): test accuracy over the last {LAST_EPOCHS} epochs, paired by seed"
    claims |= {f"{key}_mean": (d["mean"], f"{text}, mean"), f"{key}_std": (d["std"], f"{text}, std (ddof 1)"),
               f"{key}_resolved": (float(d["resolved"]), f"{text}: 1 if every seed's difference has the same sign "
                                                         "and |mean| > std")}
  xavier, normal = (np.asarray(panels[accuracy][n][1]) for n in ("lab10-3-xavier", "lab10-2-relu"))
  claims["xavier_minus_normal_min"] = (float((xavier - normal).min()),
                                       "lab10-3-xavier − lab10-2-relu (Xavier vs N(0, 1) init, same ReLU net), mean "
                                       "test accuracy, smallest difference over the epochs")
  train_time = sum(s["wall_time_s"] for seeds_ in per_preset.values() for s in seeds_)
  c = configs[names[0]]
  scale = (f"{c.epochs} epochs on {'all ' if n_train is None else 'the first '}{len(ds.train_y)} training images"
           f" ({c.val_size} held out for validation)")
  return Result.of(
      data=dict(panels=panels, bands=bands, xlabel="epoch", ylabels=["test accuracy", "test error = 1 − accuracy"],
                logy=[False, True], styles={n: plotting.MARKERS[i % len(plotting.MARKERS)] + "-"
                                            for i, n in enumerate(names)},
                title=f"The seed labs in their order: test accuracy per epoch, mean ± std over {seeds} seeds"),
      claims=claims,
      setting=f"Every preset of lab10.config.PRESETS (the TF1 labs' budget: Adam 1e-3, batch {LAB_BATCH}), "
              f"{scale}, seeds 0–{seeds - 1}: the runs of `python scripts/reproduce_labs.py` in {workroot}/, "
              f"trained there first where absent (their own fit times sum to {train_time / 60:.0f} min on the "
              f"machine that ran them). Lines: mean over seeds of the test accuracy after each epoch (right: the "
              f"same as test error, log scale, where the top presets separate), a colour and marker per preset; "
              f"bands ± one std (ddof 1). Presets compared on each seed's mean over the last {LAST_EPOCHS} epochs, "
              "paired by seed; a difference counts as resolved when every seed's has the same sign and the mean "
              "exceeds their std.")


CHECKS = (
    Check("the lab's first step: a hidden layer lifts the softmax regression — the softmax ends below every other "
          "preset",
          lambda c: all(c["lab10-1-softmax_final_mean"] < c[f"{n}_final_mean"]
                        for n in config_lib.PRESETS if n != "lab10-1-softmax")),
    Check(f"the step from lab 10-2 to 10-3 is an initialization effect: on the same 2×256 ReLU net, Xavier's init is "
          f"ahead of N(0, 1)'s at every epoch, by over 3 points over the last {LAST_EPOCHS} epochs in every seed "
          "(resolved)",
          lambda c: c["xavier_minus_normal_min"] > 0.03 and c["xavier_vs_normal_mean"] > 0.03
          and c["xavier_vs_normal_resolved"] == 1),
    Check(f"sigmoid (N(0, 0.05) init) and ReLU + Xavier at 2×256 end level: their difference over the last "
          f"{LAST_EPOCHS} epochs is under 0.1 point and within its seed spread (not resolved at 5 seeds)",
          lambda c: abs(c["sigmoid_vs_xavier_mean"]) < 0.001 and c["sigmoid_vs_xavier_resolved"] == 0),
    Check("going deeper alone (4×512 vs 2×256) gives no resolved gain; on the deep net dropout and batch norm each "
          "add a resolved 0.2–0.4 point",
          lambda c: c["deep_vs_xavier_resolved"] == 0
          and all(c[f"{k}_resolved"] == 1 and 0.002 < c[f"{k}_mean"] < 0.004
                  for k in ("dropout_vs_deep", "batchnorm_vs_deep"))),
    Check("batch norm is ahead of every other preset after the first epoch",
          lambda c: all(c["lab10-6-batchnorm_epoch1_mean"] > c[f"{n}_epoch1_mean"]
                        for n in config_lib.PRESETS if n != "lab10-6-batchnorm")),
)


FIGURES = (Figure(
    name="lab_learning_curves",
    mirrors="The seed labs' story, softmax → sigmoid → ReLU → Xavier → deep → dropout → batch norm, as learning "
            "curves over seeds.",
    differences=("Every preset at the TF1 budget (15 epochs, batch 100, Adam 1e-3, 55k/5k split), 5 seeds; the "
                 "labs report one final number per version.",),
    rejected=(),
    caveats=("Reads scripts/reproduce_labs.py's runs in runs/labs/ and trains the ones absent there (21 minutes "
             "on a 2-core CPU).",
             "The lab's story needs depth for sigmoid: at the lab's 2×256 the sigmoid net trains as well as ReLU + "
             "Xavier; lab10_sigmoid_vs_relu shows an 8-layer sigmoid net dying under SGD with momentum.",),
    run=run, draw=plotting.curves, checks=CHECKS,
    quick=dict(seeds=2, epochs=2, n_train=2000, workroot="runs/labs-quick")),)
