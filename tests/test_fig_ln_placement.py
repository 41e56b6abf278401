"""Post-LN vs Pre-LN Transformers at init: the networks as written, the gradients measured through lab10.anymodel
against the backward pass of the loss, a reduced-scale run, and the drawing."""

import jax
import numpy as np
from flax import nnx

from lab10 import anymodel
from lab10.experiments import ln_placement as ln

from drawing import draw, legend_entries  # noqa: F401


def _residual_stream(model, tokens):
  """The representation after each block."""
  x, mask, out = model.embed(tokens), nnx.make_causal_mask(tokens), []
  for block in model.blocks:
    x = block(x, mask)
    out.append(np.asarray(x, np.float64))
  return out


def test_post_ln_normalizes_the_residual_stream_and_pre_ln_lets_it_grow():
  tokens = ln.repeated_patterns(jax.random.key(0), 4, 16, 50, 16)
  post = _residual_stream(ln.Transformer(50, 32, 2, 6, True, rngs=nnx.Rngs(0)), tokens)
  for x in post:  # LayerNorm (scale 1, bias 0 at init) after every residual add
    np.testing.assert_allclose(x.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(x.var(-1), 1, rtol=1e-3)
  pre = [x.var(-1).mean() for x in _residual_stream(ln.Transformer(50, 32, 2, 6, False, rngs=nnx.Rngs(0)), tokens)]
  assert all(b > a for a, b in zip(pre, pre[1:])) and pre[-1] > 2  # each branch adds its variance


def test_the_model_is_causal_and_the_patterns_repeat():
  tokens = ln.repeated_patterns(jax.random.key(1), 3, 20, 7, 5)
  assert tokens.shape == (3, 20) and int(tokens.max()) < 7
  np.testing.assert_array_equal(tokens[:, 5:10], tokens[:, :5])
  for post in (True, False):
    model = ln.Transformer(7, 16, 2, 2, post, rngs=nnx.Rngs(2))
    changed = tokens.at[:, 12].set((tokens[:, 12] + 1) % 7)
    np.testing.assert_allclose(model(changed)[:, :12], model(tokens)[:, :12], atol=1e-6)
    assert not np.allclose(model(changed)[:, 12], model(tokens)[:, 12])


def test_w2_gradient_norms_through_anymodel_are_the_backward_pass_of_the_loss():
  tokens = ln.repeated_patterns(jax.random.key(3), 4, 12, 30, 12)
  for post in (True, False):
    model = ln.Transformer(30, 16, 2, 3, post, rngs=nnx.Rngs(4))
    _, _, stats = anymodel.value_and_grad(ln.next_token_loss)(model, tokens)
    direct = nnx.grad(ln.next_token_loss)(model, tokens)
    for i in range(3):
      want = np.linalg.norm(np.asarray(direct["blocks"][i]["down"]["kernel"][...], np.float64))
      assert abs(float(stats[f"grads/blocks.{i}.down/norm"]) / want - 1) < 1e-5


def test_at_reduced_scale_pre_ln_last_block_gradients_fall_with_depth_and_post_ln_do_not():
  r = ln.run(d=64, profile_depth=8, depths=(2, 8), seeds=(0, 1))
  c = r.claims
  assert -0.8 < c["pre_depth_slope"] < -0.3 and abs(c["post_depth_slope"]) < 0.2
  assert c["pre_last_over_first_max"] < 0.8  # Pre-LN's first blocks get the largest gradients
  by_depth = r.data["panels"]["last block's ‖∂L/∂W²_L‖ by depth L"]
  assert by_depth[ln.VARIANTS["pre"]][0] == [2, 8]
  assert by_depth[ln.VARIANTS["pre"]][1][1] < by_depth[ln.VARIANTS["post"]][1][1]


def test_the_figure_has_both_variants_and_the_one_over_sqrt_depth_guide(draw):
  lines = {label: ([2, 4], [1.0, 0.5]) for label in ln.VARIANTS.values()}
  fig = draw(ln.draw, {"by block": lines, "by depth": lines}, {}, ("∝ 1/√L", ([2, 4], [1.0, 0.7])), "t")
  assert legend_entries(fig) == [*ln.VARIANTS.values(), "∝ 1/√L"]
  assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_xscale() == "log"
