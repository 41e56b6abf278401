#!/usr/bin/env python
"""Probe your own Flax model: lab10's per-layer statistics from a model and a training loop lab10 did not write.

The model below is an ordinary ``flax.nnx`` module; the loop is a plain optax loop on MNIST. Every ``--every``
steps one call, ``anymodel.value_and_grad``, takes the place of ``nnx.value_and_grad`` and returns, beside the loss
and the gradients, every layer's statistics, which ``anymodel.Logger`` writes as a run of ``train.py`` is written
(stats.jsonl, metrics.jsonl, TensorBoard events). At the end it prints the last logged step's statistics by layer.

  python scripts/probe_your_model.py --workdir runs/probe_mine --steps 300 --every 10
  python scripts/plot_runs.py runs/probe_mine          # then lab10's plots of that run
"""

import argparse
import sys

from lab10 import cli, flags, names


def _parse(argv) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", default="runs/probe_your_model", help="where the run is written "
                 "(default: runs/probe_your_model)")
  p.add_argument("--steps", type=int, default=300, help="training steps of batch 100 (default: 300)")
  p.add_argument("--every", type=int, default=10, help="statistics every this many steps (default: 10)")
  p.add_argument("--lr", type=float, default=0.1, help="SGD learning rate (default: 0.1)")
  p.add_argument("--overwrite", action="store_true", help="replace a run already in --workdir")
  args = p.parse_args(argv)
  for name in ("steps", "every"):
    if getattr(args, name) < 1:
      p.error(f"--{name} {getattr(args, name)} is out of range; expected an integer >= 1")
  if not 0 < args.lr < float("inf"):
    p.error(f"--lr {args.lr} is out of range; expected a positive finite number")
  return args


if __name__ == "__main__":  # a signal is one line; --help and malformed flags are answered before any import
  cli.exit_on_signals()
  _parse(sys.argv[1:])

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from lab10 import anymodel, data  # noqa: E402


class MLP(nnx.Module):  # yours: nothing in it knows about lab10
  def __init__(self, rngs: nnx.Rngs):
    self.hidden1 = nnx.Linear(784, 256, rngs=rngs)
    self.hidden2 = nnx.Linear(256, 256, rngs=rngs)
    self.out = nnx.Linear(256, 10, rngs=rngs)

  def __call__(self, x):
    return self.out(nnx.relu(self.hidden2(nnx.relu(self.hidden1(x)))))


def loss_fn(model, x, y):
  return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def main(argv=None) -> int:
  args = _parse(argv)
  folder = Path(args.workdir)
  if folder.exists() and not folder.is_dir():
    print(f"error: --workdir {folder} is a file; expected a directory", file=sys.stderr)
    return cli.BAD_INPUT
  if (folder / names.STATS).exists():
    if not args.overwrite:
      print(f"error: --workdir {folder} already holds a run; pass --overwrite to replace it, or choose another "
            "--workdir", file=sys.stderr)
      return cli.BAD_INPUT
    shutil.rmtree(folder)
  ds = data.load("mnist")
  x_train, x_test = ds.train_x.reshape(len(ds.train_x), -1), ds.test_x.reshape(len(ds.test_x), -1)
  model, tx = MLP(nnx.Rngs(0)), optax.sgd(args.lr)
  opt_state = tx.init(nnx.state(model, nnx.Param))

  @nnx.jit
  def plain_step(model, opt_state, x, y):
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    updates, opt_state = tx.update(grads, opt_state)
    nnx.update(model, optax.apply_updates(nnx.state(model, nnx.Param), updates))
    return loss, opt_state

  @nnx.jit
  def logged_step(model, opt_state, x, y):
    before = anymodel.kernels(model)
    loss, grads, stats = anymodel.value_and_grad(loss_fn)(model, x, y)  # the one call
    updates, opt_state = tx.update(grads, opt_state)
    nnx.update(model, optax.apply_updates(nnx.state(model, nnx.Param), updates))
    return loss, opt_state, {**stats, **anymodel.update_stats(before, anymodel.kernels(model))}

  order = np.random.default_rng(0).permutation(len(x_train))
  with anymodel.Logger(args.workdir, every=args.every, tensorboard=True) as log:
    for step in range(args.steps):
      idx = order[(step * 100) % len(order):][:100]
      if log.due(step):
        loss, opt_state, stats = logged_step(model, opt_state, x_train[idx], ds.train_y[idx])
        log.stats(step, stats, loss=loss)
        last = jax.device_get(stats)
      else:
        loss, opt_state = plain_step(model, opt_state, x_train[idx], ds.train_y[idx])
    accuracy = float(np.mean(np.argmax(model(x_test), -1) == ds.test_y))
    log.epoch(1, step=args.steps, train_loss=loss, test_accuracy=accuracy)

  print(f"test accuracy {accuracy:.4f} after {args.steps} steps; run written to {args.workdir}")
  print(f"{'layer':<10} {'Var x_in':>10} {'dead in':>8} {'Var z':>10} {'Var dL/dz':>11} {'|dL/dW|':>10} "
        f"{'|dW|/|W|':>10}")
  for layer in anymodel.call_order(loss_fn)(model, x_train[:2], ds.train_y[:2]):
    f, b = f"forward/{layer}/", f"backward/{layer}/"
    print(f"{layer:<10} {last[f + 'in_var']:>10.3g} {last[f + 'in_dead']:>8.3f} {last[f + 'out_var']:>10.3g} "
          f"{last[b + 'grad_var']:>11.3g} {last[f'grads/{layer}/norm']:>10.3g} {last[f'updates/{layer}/ratio']:>10.3g}")
  return cli.DONE


if __name__ == "__main__":
  cli.run(main)
