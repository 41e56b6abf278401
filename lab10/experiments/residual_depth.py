"""He et al. 2016 on MLPs: identity shortcuts and the 30-layer ReLU MLP that stalls as a plain net under Xavier init
(he_fig3_deep_relu's network and optimizer). The residual nets are models lab10's MLP does not offer, written here
as a user writes a Flax model and measured through ``lab10.anymodel``: per-layer weight-gradient norms at
initialization, training error over seeds.
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from lab10 import anymodel, compat, plotting, progress
from lab10.experiments.common import GRAD_PROBE_EXAMPLES, MOMENTUM, floats, mnist
from lab10.experiments.figure import Check, Figure, Result
from lab10.experiments.he_depth import HE_BATCH, HE_WEIGHT_DECAY, STALLED_ERROR


VARIANTS = {  # id: (legend label, branch scale α as a function of depth L; None: no shortcut)
    "plain": ("plain", None),
    "residual": ("residual (h + φ(Wh))", lambda depth: 1.0),
    "residual_scaled": ("scaled residual (h + φ(Wh)/√L)", lambda depth: 1.0 / math.sqrt(depth)),
}


class DeepMLP(nnx.Module):
  """``depth`` ReLU layers of ``width`` units (the first maps the input), Var 1/n ("Xavier" in He et al.) kernels,
  zero biases, then a linear head. ``alpha`` None: plain, h ← φ(W h + b); else each layer after the first adds
  its output to an identity shortcut, h ← h + α φ(W h + b)."""

  def __init__(self, d_in: int, width: int, depth: int, classes: int, alpha: float | None, *, rngs: nnx.Rngs):
    init = nnx.initializers.lecun_normal()
    self.alpha = alpha
    self.layers = compat.List([nnx.Linear(d_in if i == 0 else width, width, kernel_init=init, rngs=rngs)
                         for i in range(depth)])
    self.head = nnx.Linear(width, classes, kernel_init=init, rngs=rngs)

  def __call__(self, x):
    h = x
    for i, layer in enumerate(self.layers):
      out = nnx.relu(layer(h))
      h = out if self.alpha is None or i == 0 else h + self.alpha * out
    return self.head(h)


def xent(model, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def _train(model: DeepMLP, ds, steps: int, every: int, lr: float, seed: int) -> list[float]:
  """SGD (momentum 0.9, weight decay 5e-4 on the kernels, batch 128, lr) for ``steps``, epoch e's batches in the
  order of permutation ``fold_in(key(seed), e)``; the training error of each block of ``every`` steps, in order
  (NaN from the block where the loss is first not finite: training stops there)."""
  tx = optax.chain(optax.add_decayed_weights(HE_WEIGHT_DECAY, mask=lambda p: jax.tree.map(lambda v: v.ndim > 1, p)),
                   optax.sgd(lr, momentum=MOMENTUM))
  graphdef, params = nnx.split(model, nnx.Param)
  x, y = jnp.asarray(ds.train_x.reshape(len(ds.train_x), -1)), jnp.asarray(ds.train_y)
  per_epoch = len(y) // HE_BATCH
  spanned = -(-every // per_epoch) + 1  # the most epochs a block of ``every`` steps reaches into

  @jax.jit
  def block(params, opt_state, start):
    # The data orders of the epochs this block's steps fall in: each permutation once per block, not per step.
    first = start // per_epoch
    orders = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(jax.random.key(seed), e), len(y)))(
        first + jnp.arange(spanned))

    def step(carry, i):
      params, opt_state = carry
      epoch, k = (start + i) // per_epoch, (start + i) % per_epoch
      idx = jax.lax.dynamic_slice_in_dim(orders[epoch - first], k * HE_BATCH, HE_BATCH)

      def loss(p):
        logits = nnx.merge(graphdef, p)(x[idx])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean(), logits

      (value, logits), grads = jax.value_and_grad(loss, has_aux=True)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      error = jnp.where(jnp.isfinite(value), jnp.mean(jnp.argmax(logits, -1) != y[idx]), jnp.nan)
      return (optax.apply_updates(params, updates), opt_state), error

    (params, opt_state), errors = jax.lax.scan(step, (params, opt_state), jnp.arange(every))
    return params, opt_state, jnp.mean(errors)

  opt_state, errors, starts = tx.init(params), [], range(0, steps, every)
  for start in starts:
    params, opt_state, error = block(params, opt_state, start)
    errors.append(float(error))
    if math.isnan(errors[-1]):  # diverged: NaN from here on, without training further
      return errors + [math.nan] * (len(starts) - len(errors))
  return errors


def run(data_dir=None, depth: int = 30, width: int = 128, steps: int = 4680, every: int = 117, lr: float = 0.01,
        n_train: int | None = None, seeds: tuple[int, ...] = (0, 1, 2)) -> Result:
  """Per variant and seed: ‖∂L/∂W_l‖ of every layer at init (cross-entropy on 500 fixed training images, through
  ``anymodel.value_and_grad``) and the training error of each quarter epoch over ``steps`` steps."""
  ds = mnist(data_dir, n_train)
  probe_x = jnp.asarray(ds.train_x[:GRAD_PROBE_EXAMPLES].reshape(GRAD_PROBE_EXAMPLES, -1))
  probe_y = jnp.asarray(ds.train_y[:GRAD_PROBE_EXAMPLES])
  lines = progress.Lines("residual_vs_plain_depth run", len(VARIANTS) * len(seeds))
  norms, errors, init_loss = {}, {}, {}
  for key, (label, alpha) in VARIANTS.items():
    for seed in seeds:
      model = DeepMLP(probe_x.shape[1], width, depth, 10, None if alpha is None else alpha(depth),
                      rngs=nnx.Rngs(seed))
      loss, _, stats = nnx.jit(anymodel.value_and_grad(xent))(model, probe_x, probe_y)
      names = [f"layers.{i}" for i in range(depth)]
      norms.setdefault(key, []).append([float(stats[f"grads/{n}/norm"]) for n in names])
      init_loss.setdefault(key, []).append(float(loss))
      errors.setdefault(key, []).append(_train(model, ds, steps, every, lr, seed))
      lines.done(lines.count + 1, f"{label}, seed {seed}: training error {errors[key][-1][-1]:.3f} after {steps} steps")
  x_steps = [every * (i + 1) for i in range(len(errors["plain"][0]))]
  with warnings.catch_warnings():  # a diverged network's errors are all NaN: its statistics are NaN, said so
    warnings.simplefilter("ignore", RuntimeWarning)
    return _result(norms, errors, init_loss, x_steps, depth, width, steps, lr, seeds, len(ds.train_y))


def _result(norms, errors, init_loss, x_steps, depth, width, steps, lr, seeds, n_train) -> Result:
  claims = {}
  for key, (label, _) in VARIANTS.items():
    n, e = np.array(norms[key]), np.array(errors[key], dtype=float)
    final, per_layer = e[:, -1], np.median(n, axis=0)
    claims |= {
        f"{key}_grad_min_at_init": (float(per_layer.min()), f"{label}: smallest layer's ‖∂L/∂W_l‖ at init (median over seeds)"),
        f"{key}_grad_max_at_init": (float(per_layer.max()), f"{label}: largest layer's ‖∂L/∂W_l‖ at init (median over seeds)"),
        f"{key}_grad_ratio_at_init": (float(np.median(n[:, 0] / n[:, -1])),
                                      f"{label}: ‖∂L/∂W_1‖ / ‖∂L/∂W_{depth}‖ at init, median over seeds"),
        f"{key}_init_loss": (float(np.median(init_loss[key])), f"{label}: cross-entropy at init, median over seeds"),
        f"{key}_stalled": (float(np.sum(~(np.nanmin(e, axis=1) < STALLED_ERROR))),
                           f"{label}: seeds whose training error never fell below {STALLED_ERROR} (of {len(seeds)})"),
        f"{key}_final_error_max": (float(np.max(np.where(np.isfinite(final), final, 1.0))),
                                   f"{label}: training error of the last quarter epoch, worst seed (non-finite: 1)"),
    }
  grad_panel = {label: (list(range(1, depth + 1)), floats(np.median(norms[key], axis=0)))
                for key, (label, _) in VARIANTS.items()}
  grad_band = {label: (floats(np.min(norms[key], axis=0)), floats(np.max(norms[key], axis=0)))
               for key, (label, _) in VARIANTS.items()}
  error_panel = {label: (x_steps, floats(np.nanmean(np.array(errors[key], dtype=float), axis=0)))
                 for key, (label, _) in VARIANTS.items()}
  error_band = {label: (floats(np.nanmin(np.array(errors[key], dtype=float), axis=0)),
                        floats(np.nanmax(np.array(errors[key], dtype=float), axis=0)))
                for key, (label, _) in VARIANTS.items()}
  grads_title, error_title = "‖∂L/∂W_l‖ at init (median over seeds)", "training error (mean over seeds)"
  return Result.of(
      data=dict(panels={grads_title: grad_panel, error_title: error_panel},
                bands={grads_title: grad_band, error_title: error_band}, xlabel="layer l  |  training step",
                ylabels=["‖∂L/∂W_l‖_F", "training error"], logy=[True, False],
                title=f"{depth}-layer ReLU MLP, Xavier (Var 1/n) init: plain vs identity shortcuts "
                      f"({len(seeds)} seeds; bands min–max)"),
      claims=claims,
      setting=f"MLP {depth}×{width} ReLU, lecun_normal kernels (He et al.'s \"Xavier\", Var 1/n), zero biases, "
              f"linear head; SGD momentum {MOMENTUM}, weight decay {HE_WEIGHT_DECAY} on kernels, lr {lr}, batch "
              f"{HE_BATCH}, {steps} steps on {n_train} MNIST training images; gradient norms at init on "
              f"{GRAD_PROBE_EXAMPLES} fixed training images through lab10.anymodel; seeds {list(seeds)}.")


def draw(panels, bands, xlabel, ylabels, logy, title):
  fig = plotting.curves(panels, xlabel, ylabels, logy=logy, title=title, bands=bands)
  fig.axes[0].set_xlabel("layer l (1: input side)")
  fig.axes[1].set_xlabel("training step")
  return fig


CHECKS = (
    Check("plain: at init every layer's weight gradient is under 1e-3 (median over seeds): they are all diminishing",
          lambda c: c["plain_grad_max_at_init"] < 1e-3),
    Check("unscaled residual: the loss at init is over 100 (the branches' variance adds up over 30 layers) and no "
          "seed's training error ever falls below 0.85", lambda c: c["residual_init_loss"] > 100 and c["residual_stalled"] == 3),
    Check("scaled residual (φ(Wh)/√L): every layer's weight gradient at init is within [1e-2, 1e2] (median over seeds)",
          lambda c: 1e-2 < c["residual_scaled_grad_min_at_init"] and c["residual_scaled_grad_max_at_init"] < 1e2),
    Check("after the same steps every scaled-residual seed's training error is under 0.1, while the plain net's worst "
          "seed is still above 0.1", lambda c: c["residual_scaled_final_error_max"] < 0.1 < c["plain_final_error_max"]),
)

FIGURES = (
    Figure(name="residual_vs_plain_depth",
           mirrors="He et al. 2016 (ResNets), Figs. 1 and 4: identity shortcuts let nets train at depths where the "
                   "plain net of the same layers does not; here on he_fig3_deep_relu's 30-layer ReLU MLP under "
                   "Xavier init, where He et al. 2015 saw the plain net stall.",
           differences=("Width-128 MLPs on MNIST, no batch normalization, instead of conv nets with BN on "
                        "ImageNet/CIFAR.",
                        "Training error (means over each quarter epoch), 10 epochs at a constant lr 1e-2.",
                        "Without BN, an unscaled shortcut adds the branch's variance at every layer (×1.5 per layer "
                        "under Var 1/n): shown as it is, beside the branch scaled by 1/√L (as in Fixup-style "
                        "initializations)."),
           rejected=(),
           caveats=("Three seeds (init and data order) per network; the claims count seeds.",
                    "The plain nets here leave chance within the 10 epochs and learn slowly; whether this plain "
                    "net stalls for good depends on the seed (he_fig3_deep_relu's seed 0 stalls; "
                    "he_fig2_fig3_depth counts how often over 10 seeds).",
                    "A run whose loss is not finite has no training error from then on: a gap in its line.",),
           run=run, draw=draw, checks=CHECKS,
           quick=dict(steps=200, every=50, n_train=3200, seeds=(0, 1, 2)), long=dict(steps=20_000, every=400)),
)
