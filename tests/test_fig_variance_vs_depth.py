"""He et al. Eq. 9/13 over depth: the experiment at reduced scale and its drawing."""

import math

import numpy as np
import pytest

from lab10.experiments import variance_vs_depth

from drawing import draw, legend_entries, colour  # noqa: F401


def test_variance_vs_depth_follows_he_eq9():
  r = variance_vs_depth.run(width=128, depth=16, batch=32, inits=("normal", "lecun", "he_fan_in", "orthogonal"))
  fwd, bwd = r.claims["he_fan_in_forward_ratio"], r.claims["he_fan_in_backward_ratio"]
  assert 1 / 3 < fwd < 3 and 1 / 3 < bwd < 3, (fwd, bwd)
  # Var 1/n halves E[z²] per layer: 2^-15 over 16 layers (within a factor 5 at width 128; 2^-29 at depth 30).
  for init in ("lecun", "orthogonal"):
    for ratio in (f"{init}_forward_ratio", f"{init}_backward_ratio"):
      assert abs(math.log10(r.claims[ratio] / 2.0**-15)) < math.log10(5), (ratio, r.claims[ratio])
  # N(0, 1) grows by ½·128 = 64 per layer.
  assert abs(math.log10(r.claims["normal_forward_ratio"] / 64.0**15)) < 2
  assert r.claims["he_fan_in_theory_factor"] == pytest.approx(1.0, abs=0.05)
  assert r.data["forward"]["He fan_in, Var 2/n_in"][-1] == fwd  # the data keeps the legend labels
  assert r.claim_text["normal_forward_ratio"] == "N(0, 1): forward E[z_16²]/E[z_1²]"


def test_variance_vs_depth_draws_measurements_theory_and_marks_lines_off_scale(draw):
  layers = [1, 2, 3]
  forward = {"He": [1.0, 1.0, 1.0], "Xavier": [1.0, 0.5, 0.25]}
  backward = {"Xavier": [1e-20, 1e-10, 1.0], "He": [1.0, 1.0, 1.0]}  # the other order: colours follow the label
  fig = draw(variance_vs_depth.draw, layers, forward, backward, theory_forward={"He": [1.0, 1.0, 1.0]},
             title="relu")
  ax_f, ax_b = fig.axes
  assert len(ax_f.lines) == 3  # two measured, one theory (He's)
  assert len(ax_b.lines) == 3  # two measured, the legend's theory sample
  assert ax_f.lines[1].get_linestyle() == "--" and list(ax_f.lines[2].get_ydata()) == [1.0, 0.5, 0.25]
  assert ax_f.get_ylabel() == "forward: E[$z_l^2$] / E[$z_1^2$]" and "delta_{3}" in ax_b.get_ylabel()
  assert ax_f.get_yscale() == ax_b.get_yscale() == "log" and ax_f.get_xlabel() == "layer l"
  assert [t.get_text() for t in ax_b.texts] == ["Xavier: 1.0e-20 at layer 1 (off scale)"] and not ax_f.texts
  assert colour(ax_f, "He") == colour(ax_b, "He") != colour(ax_f, "Xavier") == colour(ax_b, "Xavier")
  assert legend_entries(fig) == ["He", "Xavier", "theory: (½·n·Var[W])$^{\\Delta l}$"]
  assert fig.get_suptitle() == "relu"
  no_theory = draw(variance_vs_depth.draw, layers, forward, backward)
  assert legend_entries(no_theory) == ["He", "Xavier"]  # no dashed lines, no theory entry
  gappy = draw(variance_vs_depth.draw, layers, {"He": [1.0, None, 1e-20]}, {"He": [None, None, None]})
  assert [t.get_text() for t in gappy.axes[0].texts] == ["He: 1.0e-20 at layer 3 (off scale)"]
  assert np.isnan(gappy.axes[0].lines[0].get_ydata()[1]) and not gappy.axes[1].texts  # missing: gaps
