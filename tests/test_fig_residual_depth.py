"""Identity shortcuts on he_fig3's 30-layer ReLU MLP: the networks, the gradients measured through lab10.anymodel
against a float64 reference, a reduced-scale run, and the drawing."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lab10 import anymodel
from lab10.experiments import residual_depth as rd

from drawing import colour, draw, legend_entries  # noqa: F401


def _numpy_forward(model, x, alpha):
  """The network in float64 NumPy: h ← φ(Wh + b), after the first layer h ← h + α φ(Wh + b) (α None: plain)."""
  h = np.asarray(x, np.float64)
  for i, layer in enumerate(model.layers):
    out = np.maximum(h @ np.asarray(layer.kernel[...], np.float64) + np.asarray(layer.bias[...], np.float64), 0)
    h = out if alpha is None or i == 0 else h + alpha * out
  return h @ np.asarray(model.head.kernel[...], np.float64) + np.asarray(model.head.bias[...], np.float64)


def test_the_networks_are_plain_or_residual_as_written_and_var_1_over_n():
  x = jax.random.normal(jax.random.key(0), (16, 20))
  for alpha in (None, 1.0, 0.25):
    model = rd.DeepMLP(20, 64, 6, 10, alpha, rngs=nnx.Rngs(1))
    np.testing.assert_allclose(model(x), _numpy_forward(model, x, alpha), rtol=1e-4, atol=1e-5)
  kernel = np.asarray(rd.DeepMLP(20, 512, 2, 10, None, rngs=nnx.Rngs(2)).layers[1].kernel[...])
  assert abs(kernel.var() * 512 - 1) < 0.02  # lecun_normal: Var 1/fan_in


def test_gradient_norms_through_anymodel_are_the_backward_pass_of_the_loss():
  x, y = jax.random.normal(jax.random.key(0), (32, 20)), jnp.arange(32) % 10
  model = rd.DeepMLP(20, 16, 8, 10, 1 / np.sqrt(8), rngs=nnx.Rngs(3))
  _, grads, stats = anymodel.value_and_grad(rd.xent)(model, x, y)
  direct = nnx.grad(rd.xent)(model, x, y)
  for i in range(8):
    want = np.linalg.norm(np.asarray(direct["layers"][i]["kernel"][...], np.float64))
    assert abs(float(stats[f"grads/layers.{i}/norm"]) / want - 1) < 1e-5


def test_at_reduced_scale_shortcuts_scaled_by_1_over_sqrt_depth_train_where_plain_stalls(mnist_dir):
  r = rd.run(data_dir=mnist_dir, depth=30, width=64, steps=150, every=50, n_train=3200, seeds=(0, 1))
  c = r.claims
  assert c["plain_grad_max_at_init"] < 1e-3 and c["plain_stalled"] == 2  # all diminishing; both seeds stall
  assert c["residual_init_loss"] > 100  # unscaled branches add up their variance over 30 layers
  assert 1e-2 < c["residual_scaled_grad_min_at_init"] and c["residual_scaled_grad_max_at_init"] < 1e2
  assert c["residual_scaled_stalled"] == 0 and c["residual_scaled_final_error_max"] < 0.5
  error = r.data["panels"]["training error (mean over seeds)"]
  assert error["plain"][0] == [50, 100, 150] and min(error["plain"][1]) > 0.85


def test_the_figure_has_one_colour_per_network_in_both_panels(draw):
  lines = {label: ([1, 2], [1.0, 0.5]) for label, _ in rd.VARIANTS.values()}
  panels = {"grads": lines, "error": lines}
  fig = draw(rd.draw, panels, {}, "x", ["g", "e"], [True, False], "t")
  labels = [label for label, _ in rd.VARIANTS.values()]
  assert legend_entries(fig) == labels
  assert len({colour(fig.axes[0], label) for label in labels}) == 3
  assert colour(fig.axes[0], labels[2]) == colour(fig.axes[1], labels[2])
  assert fig.axes[0].get_yscale() == "log" and fig.axes[1].get_xlabel() == "training step"


def _reference_errors(model, ds, steps, every, lr, seed):
  """``rd._train`` written step by step: epoch e's permutation drawn for every step, SGD with momentum and weight
  decay on the kernels through optax, the training error of each block of ``every`` steps."""
  import optax

  tx = optax.chain(optax.add_decayed_weights(rd.HE_WEIGHT_DECAY, mask=lambda p: jax.tree.map(lambda v: v.ndim > 1, p)),
                   optax.sgd(lr, momentum=rd.MOMENTUM))
  graphdef, params = nnx.split(model, nnx.Param)
  opt_state = tx.init(params)
  x, y = jnp.asarray(ds.train_x.reshape(len(ds.train_x), -1)), jnp.asarray(ds.train_y)
  per_epoch, wrong = len(y) // rd.HE_BATCH, []
  for t in range(steps):
    order = jax.random.permutation(jax.random.fold_in(jax.random.key(seed), t // per_epoch), len(y))
    idx = order[(t % per_epoch) * rd.HE_BATCH:(t % per_epoch + 1) * rd.HE_BATCH]
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(x[idx]), y[idx]).mean()
    logits = nnx.merge(graphdef, params)(x[idx])
    wrong.append(float(jnp.mean(jnp.argmax(logits, -1) != y[idx])))
    updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
    params = optax.apply_updates(params, updates)
  return [float(np.mean(wrong[i:i + every])) for i in range(0, steps, every)]


def test_training_takes_each_epochs_batches_in_its_permutation_order_across_blocks(mnist_dir):
  from lab10.experiments.common import mnist

  ds = mnist(mnist_dir, 640)  # 5 steps per epoch of batch 128: blocks of 7 steps span two and three epochs
  make = lambda: rd.DeepMLP(784, 16, 3, 10, None, rngs=nnx.Rngs(4))
  got = rd._train(make(), ds, 21, 7, 0.05, seed=3)
  np.testing.assert_allclose(got, _reference_errors(make(), ds, 21, 7, 0.05, seed=3), atol=1e-6)


def test_a_diverging_network_has_nan_from_its_first_non_finite_block_on(mnist_dir):
  from lab10.experiments.common import mnist

  ds = mnist(mnist_dir, 640)
  errors = rd._train(rd.DeepMLP(784, 16, 3, 10, 1.0, rngs=nnx.Rngs(4)), ds, 30, 5, 1e30, seed=0)
  assert len(errors) == 6 and np.isnan(errors[-1])
  first = next(i for i, e in enumerate(errors) if np.isnan(e))
  assert all(np.isnan(errors[first:])) and first < 5
