"""The figures of ``figures/``, in order: one module per figure, or per family of figures that share their networks.

Each module holds everything its figures claim, run, check and draw: a ``Figure`` per figure (``lab10.experiments
.figure``) with the paper result it mirrors, how our setting differs, the settings tried and rejected, its caveats,
its scales (``run``'s defaults are full scale; ``quick`` and ``long`` override them), its ``run``, its ``checks``
and its ``draw``. ``scripts/make_figures.py`` loops over ``FIGURES``; adding a figure is one new module and one line
in ``MODULES``.
"""

from lab10.experiments import (activation_zoo, dropout_overfitting, glorot_fig2_sigmoid_saturation,
                               glorot_init_histograms, glorot_table1_mnist, glorot_training_saturation, he_depth,
                               lab10_sigmoid_vs_relu, lab_accuracies, lab_learning_curves, ln_placement,
                               meanfield_phase_diagram, residual_depth, selu_self_normalization, variance_vs_depth)
from lab10.experiments.figure import Check, Figure, Result, Skipped

MODULES = (variance_vs_depth, glorot_init_histograms, glorot_fig2_sigmoid_saturation, glorot_training_saturation,
           he_depth, lab10_sigmoid_vs_relu, activation_zoo, dropout_overfitting, meanfield_phase_diagram,
           selu_self_normalization, lab_accuracies, glorot_table1_mnist, lab_learning_curves, residual_depth,
           ln_placement)
FIGURES: dict[str, Figure] = {f.name: f for module in MODULES for f in module.FIGURES}

__all__ = ["FIGURES", "MODULES", "Check", "Figure", "Result", "Skipped"]
