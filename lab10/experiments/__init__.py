"""The experiment behind each figure of ``figures/``: what to run and at which scale, returning plain data.

One public function per figure (or per group of figures sharing one set of networks). Each returns a
``Result``: ``data`` (JSON-serialisable lists and dicts, the keyword arguments of the figure's function in
``lab10/plotting.py``), ``claims`` (the measured numbers backing the figure's claim, by short identifier, each
tested in tests/test_figures.py at reduced scale), ``claim_text`` (what each identifier measures, in words)
``setting`` (the scale, in words) and, for a figure with a table, ``table`` (its rows; make_figures.py writes
them as ``<name>.csv`` and into figures/README.md). Defaults are full scale; ``QUICK[name]`` holds the overrides of
``make_figures.py --quick``. Nothing here draws or writes files.

By kind: ``at_init`` (networks at initialisation), ``training`` (one network per curve, followed over
training), ``sweeps`` (grids of trained networks); ``common`` holds what they share. Per-layer statistics come
from lab10/probes.py and the mean-field maps from lab10/meanfield.py; what is left here only composes them.
"""

import math

from lab10.experiments import at_init, sweeps, training
from lab10.experiments.at_init import (glorot_fig6_activations, glorot_fig7_backprop_gradients,
                                       glorot_fig8_weight_gradients, probe_grid, seed_means, selu_self_normalization,
                                       variance_vs_depth)
from lab10.experiments.common import Check, Result, Skipped
from lab10.experiments.sweeps import (activation_zoo, glorot_table1_mnist, lab_accuracies, lab_learning_curves,
                                      meanfield_phase_diagram)
from lab10.experiments.training import (dropout_overfitting, glorot_fig2_sigmoid_saturation,
                                        glorot_training_saturation, he_fig2_fig3_depth, he_fig3_deep_relu,
                                        lab10_sigmoid_vs_relu)

# Every figure's experiment by name, with the overrides of --quick: the same experiments, smaller.
QUICK: dict[str, dict] = {
    "variance_vs_depth": dict(width=500, batch=40),
    "glorot_fig6_activations": {},
    "glorot_fig7_backprop_gradients": {},
    "glorot_fig8_weight_gradients": {},
    "glorot_fig2_sigmoid_saturation": dict(steps=2000, every=100),
    "glorot_training_saturation": dict(n_train=2000, log_every=50),
    "he_fig3_deep_relu": dict(steps=400, every=50, n_train=6400),
    "he_fig2_fig3_depth": dict(steps=400, every=50, n_train=6400),
    "lab10_sigmoid_vs_relu": dict(steps=400, every=25, n_train=5000),
    "activation_zoo": dict(width=256, epochs=1, n_train=10_000, seeds=(0, 1)),
    "dropout_overfitting": dict(epochs=12, width=256, seeds=(0, 1)),
    "meanfield_phase_diagram": dict(depths=(10, 20, 40), sigma_w2s=(1.0, 1.76, 3.5, 5.0), steps=300,
                                    n_train=5000, width=64),
    "selu_self_normalization": dict(batch=100),
    "lab_accuracies": {},
    "lab_learning_curves": dict(seeds=2, epochs=2, n_train=2000, workroot="runs/labs-quick"),
    "glorot_table1_mnist": dict(width=256, n_train=2000),
}

# Longer budgets, closer to the papers' (make_figures.py --scale long, for an accelerator): Glorot's sigmoid net
# followed 10× longer, the tanh and softsign nets for 10 epochs of all 60k images, He's nets for 50 epochs, the zoo
# for the TF1 labs' 15 epochs, the phase diagram 5× longer at width 512, Table 1 for 20 epochs of all 50k
# training images with 5 learning rates (up to 1, where the sigmoid net learns) and 3 seeds.
LONG: dict[str, dict] = {
    "glorot_fig2_sigmoid_saturation": dict(steps=200_000, every=5000),
    "glorot_training_saturation": dict(n_train=None, epochs=10, log_every=1000),
    "he_fig3_deep_relu": dict(steps=20_000, every=400),
    "he_fig2_fig3_depth": dict(steps=20_000, every=400),
    "activation_zoo": dict(epochs=15),
    "dropout_overfitting": dict(epochs=200),
    "meanfield_phase_diagram": dict(steps=5000, width=512),
    "glorot_table1_mnist": dict(epochs=20, n_train=None, lrs=(0.01, 0.03, 0.1, 0.3, 1.0), seeds=(0, 1, 2)),
}

# Every figure's claims, in words and as tests of its numbers (figures/README.md states them; tests/test_figures.py
# asserts them on the committed JSON).
CHECKS: dict[str, tuple[Check, ...]] = {**at_init.CHECKS, **training.CHECKS, **sweeps.CHECKS}


def failed_checks(name: str, claims: dict) -> list[str]:
  """The texts of figure ``name``'s checks that its ``claims`` (as saved: null for NaN) do not satisfy."""
  numbers = {k: math.nan if v is None else v for k, v in claims.items()}
  failed = []
  for check in CHECKS[name]:
    try:
      if not check.holds(numbers):
        failed.append(check.text)
    except KeyError as e:  # data written before the claim existed
      failed.append(f"{check.text} (no claim {e})")
  return failed


__all__ = ["CHECKS", "LONG", "QUICK", "Check", "Result", "Skipped", "activation_zoo", "dropout_overfitting",
           "failed_checks", "glorot_fig2_sigmoid_saturation", "glorot_training_saturation", "glorot_fig6_activations",
           "glorot_fig7_backprop_gradients", "glorot_fig8_weight_gradients", "glorot_table1_mnist", "he_fig2_fig3_depth",
           "he_fig3_deep_relu",
           "lab10_sigmoid_vs_relu", "lab_accuracies", "lab_learning_curves", "meanfield_phase_diagram", "probe_grid", "seed_means",
           "selu_self_normalization", "variance_vs_depth"]
