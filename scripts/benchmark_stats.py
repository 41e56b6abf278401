#!/usr/bin/env python
"""Cost of --log_stats_every: compiled-epoch throughput with statistics off, every N steps, every step.

Times whole scanned epochs after one compiling warm-up epoch, interleaving the settings (round-robin)
so that load from other processes hits them alike, and reports the median steps/s of each:

  python scripts/benchmark_stats.py --preset lab10-4-deep --data_dir ../shared/data/mnist --every 0,10,1 --repeats 5
"""

import argparse
import statistics
import sys
import time

import jax
from flax import nnx

from lab10 import config, data, probes, runs, train


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--preset", default="lab10-4-deep")
  p.add_argument("--data_dir", default=None)
  p.add_argument("--every", default="0,10,1", help="comma-separated --log_stats_every values (0: off)")
  p.add_argument("--repeats", type=int, default=5, help="timed epochs per setting")
  p.add_argument("--train_size", type=int, default=None, help="first N training examples (default: all)")
  args = p.parse_args(argv)
  print(runs.device_summary(), flush=True)
  c = config.with_preset(args.preset, data_dir=args.data_dir)
  ds = data.load(c.dataset, c.data_dir, val_size=c.val_size)
  x, y = jax.device_put(ds.train_x[:args.train_size]), jax.device_put(ds.train_y[:args.train_size])
  init_key, _, dropout_key = jax.random.split(jax.random.key(c.seed), 3)
  tx = config.make_optimizer(c)
  graphdef, state0 = train.init_state(config.make_model(c, ds.input_shape, ds.num_classes,
                                                        nnx.Rngs(params=init_key)), tx, dropout_key)
  bounds = config.activation_bounds(c)
  epochs, states = {}, {}
  for every in (int(e) for e in args.every.split(",")):
    step = (train.make_logged_train_step(graphdef, tx, every, bounds=bounds) if every
            else train.make_train_step(graphdef, tx))
    epochs[every] = train.make_epoch(step, c.batch_size)
    states[every] = jax.block_until_ready(epochs[every](jax.tree.map(lambda v: v.copy(), state0), x, y,
                                                        jax.random.key(0))[0])  # compile
  steps = x.shape[0] // c.batch_size
  times = {every: [] for every in epochs}
  for r in range(args.repeats):
    for every, run_epoch in epochs.items():
      t0 = time.perf_counter()
      states[every], metrics = run_epoch(states[every], x, y, jax.random.key(r + 1))
      jax.block_until_ready(metrics)  # the epoch's one sync
      times[every].append(time.perf_counter() - t0)
  base = statistics.median(times[min(epochs, key=lambda e: (e != 0, e))])
  for every, ts in times.items():
    med = statistics.median(ts)
    label = "off" if every == 0 else f"every {every}"
    print(f"stats {label:>9}: {steps / med:7.1f} steps/s (median of {len(ts)} epochs of {steps} steps; "
          f"min {min(ts):.2f}s max {max(ts):.2f}s) overhead {100 * (med / base - 1):+.1f}%", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
