"""The experiment behind each figure of ``figures/``: what to run and at which scale, returning plain data.

One public function per figure (or per group of figures sharing one set of networks). Each returns a
``Result``: ``data`` (JSON-serialisable lists and dicts, the keyword arguments of the figure's function in
``lab10/plotting.py``), ``claims`` (the measured numbers backing the figure's claim, by short identifier, each
tested in tests/test_figures.py at reduced scale), ``claim_text`` (what each identifier measures, in words)
and ``setting`` (the scale, in words). Defaults are full scale; ``QUICK[name]`` holds the overrides of
``make_figures.py --quick``. Nothing here draws or writes files.

By kind: ``at_init`` (networks at initialisation), ``training`` (one network per curve, followed over
training), ``sweeps`` (grids of trained networks); ``common`` holds what they share. Per-layer statistics come
from lab10/probes.py and the mean-field maps from lab10/meanfield.py; what is left here only composes them.
"""

from lab10.experiments.at_init import (glorot_fig6_activations, glorot_fig7_backprop_gradients,
                                       glorot_fig8_weight_gradients, probe_grid, seed_means, selu_self_normalization,
                                       variance_vs_depth)
from lab10.experiments.common import Result, Skipped
from lab10.experiments.sweeps import activation_zoo, lab_accuracies, meanfield_phase_diagram
from lab10.experiments.training import (dropout_overfitting, glorot_fig2_sigmoid_saturation, he_fig3_deep_relu,
                                        lab10_sigmoid_vs_relu)

# Every figure's experiment by name, with the overrides of --quick: the same experiments, smaller.
QUICK: dict[str, dict] = {
    "variance_vs_depth": dict(width=500, batch=40),
    "glorot_fig6_activations": {},
    "glorot_fig7_backprop_gradients": {},
    "glorot_fig8_weight_gradients": {},
    "glorot_fig2_sigmoid_saturation": dict(steps=2000, every=100),
    "he_fig3_deep_relu": dict(steps=600, every=25),
    "lab10_sigmoid_vs_relu": dict(steps=400, every=25, n_train=5000),
    "activation_zoo": dict(width=256, epochs=1, n_train=10_000),
    "dropout_overfitting": dict(n_train=2000, epochs=12, width=256),
    "meanfield_phase_diagram": dict(depths=(10, 20, 40), sigma_w2s=(1.0, 1.76, 3.5, 5.0), steps=300,
                                    n_train=5000, width=64),
    "selu_self_normalization": dict(batch=100),
    "lab_accuracies": {},
}

__all__ = ["QUICK", "Result", "Skipped", "activation_zoo", "dropout_overfitting", "glorot_fig2_sigmoid_saturation",
           "glorot_fig6_activations", "glorot_fig7_backprop_gradients", "glorot_fig8_weight_gradients",
           "he_fig3_deep_relu", "lab10_sigmoid_vs_relu", "lab_accuracies", "meanfield_phase_diagram", "probe_grid",
           "seed_means", "selu_self_normalization", "variance_vs_depth"]
