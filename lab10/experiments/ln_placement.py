"""Xiong et al. 2020 on a toy sequence task: where the LayerNorm sits (after the residual add, Post-LN, or inside
the branch, Pre-LN) and the weight gradients of a Transformer at initialization. The Transformers are written here
as a user writes a Flax model and measured through ``lab10.anymodel``: ‖∂L/∂W²_l‖ of each block's second
feed-forward kernel (the quantity of Xiong et al.'s Theorem 1) by block, and the last block's by total depth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lab10 import anymodel, compat, plotting, progress
from lab10.experiments.common import floats
from lab10.experiments.figure import Check, Figure, Result

_XAVIER = nnx.initializers.xavier_uniform()  # the initialization Xiong et al.'s analysis assumes
VARIANTS = {"post": "Post-LN: x ← LN(x + F(x))", "pre": "Pre-LN: x ← x + F(LN(x)), final LN"}


class Block(nnx.Module):
  """Self-attention then a ReLU feed-forward net (d → 4d → d), each with a residual add and a LayerNorm placed
  after the add (``post``) or at the start of the branch."""

  def __init__(self, d: int, heads: int, post: bool, *, rngs: nnx.Rngs):
    self.post = post
    self.ln1, self.ln2 = nnx.LayerNorm(d, rngs=rngs), nnx.LayerNorm(d, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=d, decode=False, kernel_init=_XAVIER, rngs=rngs)
    self.up = nnx.Linear(d, 4 * d, kernel_init=_XAVIER, rngs=rngs)
    self.down = nnx.Linear(4 * d, d, kernel_init=_XAVIER, rngs=rngs)

  def __call__(self, x, mask):
    if self.post:
      x = self.ln1(x + self.attn(x, mask=mask))
      return self.ln2(x + self.down(nnx.relu(self.up(x))))
    x = x + self.attn(self.ln1(x), mask=mask)
    return x + self.down(nnx.relu(self.up(self.ln2(x))))


class Transformer(nnx.Module):
  """A causal language model: token embedding with unit-variance entries (as √d · N(0, 1/d) in Vaswani et al.), no
  positional encoding (the causal mask orders the tokens), ``depth`` blocks, a final LayerNorm for Pre-LN only (as
  in Xiong et al.), a linear head; Xavier-uniform kernels, zero biases."""

  def __init__(self, vocab: int, d: int, heads: int, depth: int, post: bool, *, rngs: nnx.Rngs):
    self.post = post
    self.embed = nnx.Embed(vocab, d, embedding_init=nnx.initializers.normal(1.0), rngs=rngs)
    self.blocks = compat.List([Block(d, heads, post, rngs=rngs) for _ in range(depth)])
    self.ln = nnx.LayerNorm(d, rngs=rngs)
    self.head = nnx.Linear(d, vocab, kernel_init=_XAVIER, rngs=rngs)

  def __call__(self, tokens):
    x, mask = self.embed(tokens), nnx.make_causal_mask(tokens)
    for block in self.blocks:
      x = block(x, mask)
    return self.head(x if self.post else self.ln(x))


def next_token_loss(model, tokens):
  logits = model(tokens)
  return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], tokens[:, 1:]).mean()


def repeated_patterns(key, batch: int, length: int, vocab: int, period: int) -> jax.Array:
  """Toy sequences: per sequence, a random pattern of ``period`` tokens drawn uniformly from ``vocab``, repeated to
  ``length`` (``period`` ≥ ``length``: uniformly random tokens)."""
  pattern = jax.random.randint(key, (batch, period), 0, vocab)
  return jnp.tile(pattern, (1, -(-length // period)))[:, :length]


_probe = nnx.jit(anymodel.value_and_grad(next_token_loss))  # compiled once per model shape, reused across seeds


def _down_norms(post: bool, depth: int, seed: int, d: int, heads: int, vocab: int, period: int, length: int,
                batch: int) -> list[float]:
  """‖∂L/∂W²_l‖_F of blocks 1..depth at init, for one seed (init and sequences)."""
  model = Transformer(vocab, d, heads, depth, post, rngs=nnx.Rngs(seed))
  tokens = repeated_patterns(jax.random.key(10_000 + seed), batch, length, vocab, period)
  _, _, stats = _probe(model, tokens)
  return [float(stats[f"grads/blocks.{i}.down/norm"]) for i in range(depth)]


def run(d: int = 128, heads: int = 4, vocab: int = 1000, period: int = 64, length: int = 64, batch: int = 32,
        profile_depth: int = 12, depths: tuple[int, ...] = (2, 4, 8, 16, 32),
        seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> Result:
  """Per variant and seed: every block's ‖∂L/∂W²_l‖ at init in a ``profile_depth``-block Transformer, and the last
  block's in Transformers of each total depth in ``depths``."""
  shape = dict(d=d, heads=heads, vocab=vocab, period=period, length=length, batch=batch)
  lines = progress.Lines("pre_vs_post_ln_gradients run", len(VARIANTS) * (1 + len(depths)))
  profile, last = {}, {}
  for key in VARIANTS:
    profile[key] = [_down_norms(key == "post", profile_depth, s, **shape) for s in seeds]
    lines.done(lines.count + 1, f"{key}-LN, {profile_depth} blocks")
    for depth in depths:
      last.setdefault(key, []).append([_down_norms(key == "post", depth, s, **shape)[-1] for s in seeds])
      lines.done(lines.count + 1, f"{key}-LN, {depth} blocks: last block's ‖∂L/∂W²‖ "
                                  f"{np.median(last[key][-1]):.3g} (median over seeds)")
  return _result(profile, last, profile_depth, depths, seeds, shape)


def _result(profile, last, profile_depth, depths, seeds, shape) -> Result:
  claims = {}
  for key in VARIANTS:
    p, q = np.array(profile[key]), np.array(last[key])  # seeds × blocks; depths × seeds
    ratio = p[:, -1] / p[:, 0]
    slope = np.polyfit(np.log(depths), np.log(np.median(q, axis=1)), 1)[0]
    claims |= {
        f"{key}_last_over_first_median": (float(np.median(ratio)), f"{key}-LN, {profile_depth} blocks: "
                                          "‖∂L/∂W²‖ of the last block / of the first, median over seeds"),
        f"{key}_last_over_first_min": (float(ratio.min()), f"{key}-LN: the same ratio, smallest over seeds"),
        f"{key}_last_over_first_max": (float(ratio.max()), f"{key}-LN: the same ratio, largest over seeds"),
        f"{key}_depth_slope": (float(slope), f"{key}-LN: slope of log ‖∂L/∂W²_L‖ (last block, median over seeds) "
                               f"against log L, L in {list(depths)}"),
    }
  profile_title = f"‖∂L/∂W²_l‖ by block, {profile_depth} blocks"
  depth_title = "last block's ‖∂L/∂W²_L‖ by depth L"
  blocks = list(range(1, profile_depth + 1))
  panels = {profile_title: {VARIANTS[k]: (blocks, floats(np.median(profile[k], axis=0))) for k in VARIANTS},
            depth_title: {VARIANTS[k]: (list(depths), floats(np.median(last[k], axis=1))) for k in VARIANTS}}
  bands = {profile_title: {VARIANTS[k]: (floats(np.min(profile[k], axis=0)), floats(np.max(profile[k], axis=0)))
                           for k in VARIANTS},
           depth_title: {VARIANTS[k]: (floats(np.min(last[k], axis=1)), floats(np.max(last[k], axis=1)))
                         for k in VARIANTS}}
  pre = np.median(last["pre"], axis=1)
  guide = ("∝ 1/√L (Xiong et al., Pre-LN)", (list(depths), floats(pre[0] * np.sqrt(depths[0] / np.array(depths)))))
  s = shape
  tokens = (f"drawn uniformly from a vocabulary of {s['vocab']}" if s["period"] >= s["length"] else
            f"each a random pattern of {s['period']} tokens from a vocabulary of {s['vocab']}, repeated")
  return Result.of(
      data=dict(panels=panels, bands=bands, guide=guide,
                title=f"Transformer at init (d {s['d']}, Xavier): Post-LN vs Pre-LN ({len(seeds)} seeds; "
                      f"median, band min–max)"),
      claims=claims,
      setting=f"Causal Transformer, d {s['d']}, {s['heads']} heads, ReLU feed-forward d→4d→d, Xavier-uniform "
              f"kernels, zero biases, unit-variance token embedding, no positional encoding; next-token "
              f"cross-entropy on {s['batch']} sequences of {s['length']} tokens {tokens}; gradients at init through "
              f"lab10.anymodel; {profile_depth} blocks for the profile, depths {list(depths)} for the last block; "
              f"seeds {list(seeds)} (init and sequences).")


def draw(panels, bands, guide, title):
  fig = plotting.curves(panels, "", ["‖∂L/∂W²_l‖_F", "‖∂L/∂W²_L‖_F"], logy=[True, True], title=title, bands=bands)
  label, (x, y) = guide
  fig.axes[1].plot(x, y, ":", color="0.4", label=label)
  fig.axes[1].set_xscale("log", base=2)
  for legend in fig.legends:  # one legend below, now with the guide
    legend.remove()
  plotting.legend_below(fig, fig.axes)
  fig.axes[0].set_xlabel("block l (1: input side)")
  fig.axes[1].set_xlabel("depth L (blocks)")
  return fig


CHECKS = (
    Check("Post-LN: the last block's W² gradient is larger than the first block's in every seed (they shrink toward "
          "the input), by more than 10% at the median",
          lambda c: c["post_last_over_first_min"] > 1 and c["post_last_over_first_median"] > 1.1),
    Check("Pre-LN is not level here: its last block's W² gradient is smaller than its first block's in every seed, "
          "by more than 30% at the median (they grow toward the input)",
          lambda c: c["pre_last_over_first_max"] < 1 and c["pre_last_over_first_median"] < 0.7),
    Check("Theorem 1 of Xiong et al.: the last block's W² gradient falls with depth as about 1/√L for Pre-LN "
          "(log-log slope within [−0.7, −0.3]) and stays level for Post-LN (slope within [−0.15, 0.15])",
          lambda c: -0.7 <= c["pre_depth_slope"] <= -0.3 and -0.15 <= c["post_depth_slope"] <= 0.15),
)

FIGURES = (
    Figure(name="pre_vs_post_ln_gradients",
           mirrors="Xiong et al. 2020 (On Layer Normalization in the Transformer Architecture), Theorem 1 and "
                   "Fig. 3: at initialization the Post-LN Transformer's gradients near the output are large and "
                   "the last layer's do not shrink with depth, while the Pre-LN Transformer's last-layer gradient "
                   "scales as 1/√L; their Fig. 3 shows Post-LN's gradient norm growing with the layer index and "
                   "Pre-LN's level.",
           differences=("A toy causal language model on uniformly random tokens (vocabulary 1000) instead of "
                        "IWSLT/WMT translation; decoder blocks only, no encoder–decoder attention.",
                        "d 128, 4 heads, no positional encoding, instead of Transformer-base with sinusoidal "
                        "positions.",
                        "Gradients of one batch of 32 sequences per seed, at initialization only; nothing is "
                        "trained."),
           rejected=("Sequences of a random 8-token pattern from a vocabulary of 8, repeated (run(vocab=8, "
                     "period=8, d=64, profile_depth=6, depths=(2, 4, 8), seeds=(0, 1, 2))): Post-LN's W² gradients "
                     "grow more steeply toward the output (last / first block 1.28), but its last block's gradient "
                     "also grows with depth (log-log slope +0.39), unlike Theorem 1; the tokens' representations "
                     "are correlated across positions there, which the theorem's setting does not have.",
                     "A 16-token pattern from a vocabulary of 1000, repeated (period=16; d 128, 12 blocks, 3 "
                     "seeds): Post-LN's profile dips in the middle blocks (0.171, 0.148, 0.196 at blocks 1, 7, 12) "
                     "instead of growing steadily; depth slopes +0.01 (Post-LN) and −0.48 (Pre-LN).",
                     "8 blocks and 16 sequences per batch with uniformly random tokens (3 seeds): Post-LN's W² "
                     "gradients level within 10% (first block 0.145, last 0.135); 12 blocks and 32 sequences "
                     "show the growth toward the output."),
           caveats=("Pre-LN's gradients are not level by block in this setting: the earliest blocks' are the "
                    "largest (the residual stream's variance grows with depth and each branch's LayerNorm divides "
                    "its gradient by it), unlike Xiong et al.'s Fig. 3.",
                    "Post-LN's growth toward the output is mild here (about 10% over 12 blocks at the median; "
                    "the claims give the spread over seeds): the direction of Xiong et al.'s Fig. 3, not a "
                    "measure of its size, which depends on the data (see the settings tried).",
                    "Five seeds (init and sequences); the claims count seeds.",),
           run=run, draw=draw, checks=CHECKS,
           quick=dict(d=64, profile_depth=6, depths=(2, 4, 8), seeds=(0, 1, 2))),
)
