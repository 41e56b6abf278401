#!/usr/bin/env python
"""What lab10.anymodel's statistics cost in your own training loop.

The model is the Pre-LN Transformer of ``lab10.experiments.ln_placement`` (a causal language model on random
tokens), trained with Adam in a plain user loop: ``nnx.value_and_grad`` on every step ("plain"), or, every
``--every`` steps, ``anymodel.value_and_grad`` with the update statistics, written by ``anymodel.Logger``
("logged"; the other steps are the plain step). Both loops are compiled before the clock starts and timed
``--repeats`` times, interleaved; the medians are reported.

  python scripts/benchmark_anymodel.py --steps 200 --every 10 --repeats 5
"""

import argparse
import sys

from lab10 import cli, flags


def _parse(argv) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--d", type=int, default=128, help="model width (default: 128)")
  p.add_argument("--depth", type=int, default=4, help="Transformer blocks (default: 4)")
  p.add_argument("--batch", type=int, default=32, help="sequences per step (default: 32)")
  p.add_argument("--length", type=int, default=64, help="tokens per sequence (default: 64)")
  p.add_argument("--steps", type=int, default=200, help="steps per timed run (default: 200)")
  p.add_argument("--every", type=int, default=10, help="statistics every this many steps in the logged loop "
                 "(default: 10)")
  p.add_argument("--repeats", type=int, default=5, help="timed runs of each loop, interleaved; medians reported "
                 "(default: 5)")
  p.add_argument("--out", default="runs/benchmark_anymodel", help="writes OUT.md and OUT.json "
                 "(default: runs/benchmark_anymodel)")
  args = p.parse_args(argv)
  for name in ("d", "depth", "batch", "length", "steps", "every", "repeats"):
    if getattr(args, name) < 1:
      p.error(f"--{name} {getattr(args, name)} is out of range; expected an integer >= 1")
  if args.d % 4:
    p.error(f"--d {args.d} is not a multiple of the 4 attention heads")
  return args


if __name__ == "__main__":  # a signal is one line; --help and malformed flags are answered before any import
  cli.exit_on_signals()
  _parse(sys.argv[1:])

import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from lab10 import anymodel, runs  # noqa: E402
from lab10.experiments import ln_placement  # noqa: E402


def _loops(args: argparse.Namespace):
  """The user's model, optimizer and the two steps: plain, and with the statistics."""
  model = ln_placement.Transformer(1000, args.d, 4, args.depth, post=False, rngs=nnx.Rngs(0))
  tx = optax.adam(1e-3)
  opt_state = tx.init(nnx.state(model, nnx.Param))
  loss_fn = ln_placement.next_token_loss

  @nnx.jit
  def plain_step(model, opt_state, tokens):
    loss, grads = nnx.value_and_grad(loss_fn)(model, tokens)
    updates, opt_state = tx.update(grads, opt_state)
    nnx.update(model, optax.apply_updates(nnx.state(model, nnx.Param), updates))
    return loss, opt_state

  @nnx.jit
  def logged_step(model, opt_state, tokens):
    before = anymodel.kernels(model)
    loss, grads, stats = anymodel.value_and_grad(loss_fn)(model, tokens)
    updates, opt_state = tx.update(grads, opt_state)
    nnx.update(model, optax.apply_updates(nnx.state(model, nnx.Param), updates))
    return loss, opt_state, {**stats, **anymodel.update_stats(before, anymodel.kernels(model))}

  return model, opt_state, plain_step, logged_step


def measure(args: argparse.Namespace) -> dict:
  model, opt_state, plain_step, logged_step = _loops(args)
  batches = [ln_placement.repeated_patterns(jax.random.key(i), args.batch, args.length, 1000, args.length)
             for i in range(args.steps)]
  n_stats = len(logged_step(model, opt_state, batches[0])[2])  # compiles both steps before any clock
  jax.block_until_ready(plain_step(model, opt_state, batches[0]))

  def plain():
    nonlocal opt_state
    for tokens in batches:
      loss, opt_state = plain_step(model, opt_state, tokens)
    jax.block_until_ready(loss)

  def logged(folder):
    nonlocal opt_state
    with anymodel.Logger(folder, every=args.every) as log:
      for step, tokens in enumerate(batches):
        if log.due(step):
          loss, opt_state, stats = logged_step(model, opt_state, tokens)
          log.stats(step, stats, loss=loss)
        else:
          loss, opt_state = plain_step(model, opt_state, tokens)
      jax.block_until_ready(loss)

  times = {"plain": [], "logged": []}
  with tempfile.TemporaryDirectory() as tmp:
    for r in range(args.repeats):
      start = time.perf_counter()
      plain()
      times["plain"].append(time.perf_counter() - start)
      start = time.perf_counter()
      logged(Path(tmp) / f"run{r}")
      times["logged"].append(time.perf_counter() - start)
  ms = {k: 1e3 * statistics.median(v) / args.steps for k, v in times.items()}
  paired = [logged / plain - 1 for logged, plain in zip(times["logged"], times["plain"])]
  m = runs.machine()
  return {"settings": vars(args), "statistics_per_logged_step": n_stats, "ms_per_step": ms,
          "overhead": ms["logged"] / ms["plain"] - 1, "overhead_paired": statistics.median(paired),
          "overhead_paired_range": [min(paired), max(paired)], "times_s": times,
          "machine": f"{m['cpu']}, {m['backend']} backend, jax {m['packages']['jax']}"}


def format_table(m: dict) -> str:
  a, (lo, hi) = m["settings"], m["overhead_paired_range"]
  return "\n".join([
      f"Pre-LN Transformer d {a['d']}, {a['depth']} blocks, batch {a['batch']}×{a['length']} tokens, Adam; "
      f"{a['steps']} steps, median of {a['repeats']} runs; {m['machine']}",
      "",
      "| loop | ms / step | vs plain |",
      "| --- | ---: | ---: |",
      f"| plain (nnx.value_and_grad every step) | {m['ms_per_step']['plain']:.2f} | 1.00 |",
      f"| statistics every {a['every']} steps ({m['statistics_per_logged_step']} numbers, anymodel.Logger) | "
      f"{m['ms_per_step']['logged']:.2f} | {1 + m['overhead']:.3f} |",
      "",
      f"Overhead paired by repeat (logged / plain run of the same repeat − 1): median "
      f"{100 * m['overhead_paired']:+.1f}%, from {100 * lo:+.1f}% to {100 * hi:+.1f}%.",
  ])


def main(argv=None) -> int:
  args = _parse(argv)
  measured = measure(args)
  table = format_table(measured)
  print(table)
  out = Path(args.out)
  runs.write_text(out.with_suffix(".md"), table + "\n")
  runs.write_json(out.with_suffix(".json"), measured)
  return cli.DONE


if __name__ == "__main__":
  cli.run(main)
