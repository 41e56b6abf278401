#!/usr/bin/env python
"""Side-by-side training speed on the lab10-4-deep MLP (784-512x4-10, ReLU, Xavier, Adam 1e-3, batch 100) with
MNIST-shaped synthetic data, in one process: lab10's scanned epoch, PyTorch eager and TF2 tf.function peers (when
installed: pip install -e ".[bench]"), vmapped sweeps at several M, and the FLOP floor (the model's FLOPs per step
at the rate of a large matmul timed in the same run). Peers run interleaved, warm-up excluded, median of repeats.
Prints a table and writes it with a JSON beside it.

Example: python scripts/benchmark.py --repeats 5 --out runs/benchmark
"""

import argparse
import dataclasses
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab10 import cli, flags

ROOT = Path(__file__).resolve().parents[1]
PEERS = {"torch": "PyTorch eager", "tensorflow": "TF2 tf.function"}


def _parse(argv) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--steps", type=int, default=550, help="steps per timed single-model run (550 = one MNIST epoch)")
  p.add_argument("--model_steps", type=int, default=1100, help="model-steps per timed sweep run (steps = this / M)")
  p.add_argument("--sweep_sizes", default="1,8,64", help="M, comma-separated")
  p.add_argument("--repeats", type=int, default=5, help="timed runs of every row, interleaved; medians reported")
  p.add_argument("--width", type=int, default=512, help="hidden width (512 in lab10-4-deep; smaller for a smoke test)")
  p.add_argument("--matmul", type=int, default=2048, help="side of the matmul that measures the FLOP rate")
  p.add_argument("--torch_threads", default=f"1,{os.cpu_count()}", help="PyTorch thread counts, one row each")
  p.add_argument("--starts", type=int, default=3,
                 help="pairs of cold and warm train.py runs (a fresh compilation cache each pair; 0: none)")
  p.add_argument("--start_flags", default="--preset lab10-3-xavier --epochs 1",
                 help="what those train.py runs train; also the two fits in one process that time a compilation")
  p.add_argument("--out", default="runs/benchmark", help="writes OUT.md and OUT.json")
  return p.parse_args(argv)


if __name__ == "__main__":  # a signal is one line; --help and malformed flags are answered without loading JAX
  cli.exit_on_signals()
  _parse(sys.argv[1:])

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lab10 import config, data, runs, step, sweep, train  # noqa: E402

BATCH, IN, CLASSES = 100, 784, 10


def _timed(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def _runner(epoch, state, x, y, keys):
  """A closure running one epoch (state donated and carried over) until its results are ready."""
  x, y = jax.device_put(x), jax.device_put(y)
  box = [state]

  def run():
    box[0], metrics = epoch(box[0], x, y, keys, 1)
    jax.block_until_ready((box[0], metrics))
  return run


def lab10_loop(cfg, x, y, log_every: int = 0):
  """One scanned epoch over ``x`` (len(x) / 100 steps) as ``fit`` runs it; per-layer statistics on every
  ``log_every``-th step (0: none)."""
  s = train.setup(cfg, x.shape[1:], CLASSES)
  logged = dict(logged_step=step.make_logged_train_step(s.graphdef, s.tx), log_every=log_every) if log_every else {}
  epoch = train.make_epoch(step.make_train_step(s.graphdef, s.tx), cfg.batch_size, **logged)
  return _runner(epoch, s.state, x, y, s.data_key)


def sweep_loop(cfg, m, x, y):
  graphdef, tx, states, keys = sweep.init_models(sweep.grid(cfg, seeds=range(m)), x.shape[1:], CLASSES)
  return _runner(sweep.make_sweep_epoch(graphdef, tx, cfg.batch_size), states, x, y, keys)


def torch_loop(x, y, widths, steps, threads):
  import torch

  torch.manual_seed(0)
  layers, sizes = [], [IN, *widths]
  for n_in, n_out in zip(sizes[:-1], sizes[1:]):
    layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
  net = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], CLASSES))
  for module in net:
    if isinstance(module, torch.nn.Linear):
      torch.nn.init.xavier_uniform_(module.weight)
      torch.nn.init.normal_(module.bias)
  opt = torch.optim.Adam(net.parameters(), lr=1e-3)
  xt, yt = torch.from_numpy(x.reshape(len(x), -1)), torch.from_numpy(y.astype(np.int64))
  loss_fn = torch.nn.CrossEntropyLoss()

  def run():
    torch.set_num_threads(threads)  # per run: the rows share one process
    order = torch.randperm(len(xt))
    for i in range(steps):
      idx = order[i * BATCH:(i + 1) * BATCH]
      opt.zero_grad(set_to_none=True)
      loss = loss_fn(net(xt[idx]), yt[idx])
      loss.backward()
      opt.step()
    loss.item()
  return run


def tf_loop(x, y, widths, steps):
  import tensorflow as tf

  tf.random.set_seed(0)
  layers = [tf.keras.layers.Dense(w, "relu", kernel_initializer="glorot_uniform",
                                  bias_initializer="random_normal") for w in widths]
  net = tf.keras.Sequential([tf.keras.Input((IN,)), *layers, tf.keras.layers.Dense(CLASSES)])
  opt = tf.keras.optimizers.Adam(1e-3)
  loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  xt, yt = tf.constant(x.reshape(len(x), -1)), tf.constant(y)

  @tf.function
  def step(xb, yb):
    with tf.GradientTape() as tape:
      loss = loss_fn(yb, net(xb, training=True))
    opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
    return loss

  def run():
    order = tf.random.shuffle(tf.range(len(x)))
    for i in range(steps):
      idx = order[i * BATCH:(i + 1) * BATCH]
      loss = step(tf.gather(xt, idx), tf.gather(yt, idx))
    loss.numpy()
  return run


def _children_cpu_s() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def _script(argv: list[str], env: dict) -> dict:
  """CPU (user + system, all threads) and wall seconds of ``python argv`` in a child process."""
  cpu, start = _children_cpu_s(), time.perf_counter()
  done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
  if done.returncode:
    raise RuntimeError(f"python {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-300:]}")
  return {"cpu_s": _children_cpu_s() - cpu, "wall_s": time.perf_counter() - start}


def measure_starts(args: argparse.Namespace) -> dict:
  """``--starts`` pairs of train.py runs, each pair a cold start (an empty compilation cache of its own) and a
  warm one (the same command again, the cache the first filled), and train.py --help: the start-up a user waits
  for, as CPU seconds of the whole process."""
  pairs = []
  with tempfile.TemporaryDirectory(prefix="lab10-benchmark-") as tmp:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    for i in range(args.starts):
      env["LAB10_COMPILATION_CACHE"] = f"{tmp}/cache{i}"
      train_py = lambda name: ["scripts/train.py", *args.start_flags.split(), "--workdir", f"{tmp}/{name}{i}"]
      cold, warm = _script(train_py("cold"), env), _script(train_py("warm"), env)
      pairs.append({"cold": cold, "warm": warm, "warm_over_cold_cpu": warm["cpu_s"] / cold["cpu_s"]})
    helps = [_script(["scripts/train.py", "--help"], env)["cpu_s"] for _ in range(3)]
  return {"pairs": pairs, "help_cpu_s": statistics.median(helps),
          "warm_over_cold_cpu": statistics.median(p["warm_over_cold_cpu"] for p in pairs) if pairs else None}


def measure_fit_compile(args: argparse.Namespace) -> dict:
  """Two fits of one network in this process (``--start_flags``; seeds 0 and 1), no persistent cache: the
  first traces and compiles its programs, the second reuses them (``train.compiled``)."""
  base = flags.from_args(flags.parser("").parse_args(args.start_flags.split()))
  walls = []
  with tempfile.TemporaryDirectory(prefix="lab10-benchmark-") as tmp:
    for seed in (0, 1):
      start = time.perf_counter()
      train.fit(dataclasses.replace(base, seed=seed, workdir=f"{tmp}/seed{seed}"), verbose=False)
      walls.append(time.perf_counter() - start)
  return {"first_fit_s": walls[0], "second_fit_s": walls[1], "compile_s": walls[0] - walls[1]}


def matmul_rate(n: int) -> tuple[float, callable]:
  """FLOP/s of an n×n float32 matmul: the machine's practical ceiling for this model's dense layers."""
  a = jax.random.normal(jax.random.key(0), (n, n))
  b = jax.random.normal(jax.random.key(1), (n, n))
  matmul = jax.jit(lambda a, b: a @ b)
  return 2.0 * n**3, lambda: matmul(a, b).block_until_ready()


def model_flops_per_step(widths) -> float:
  """The matmul FLOPs a training step must do: per dense layer 2·B·in·out forward and as much for the weight
  gradient, and 2·B·in·out for the input gradient of every layer but the first (the data need none; XLA
  computes none). The 6·B·Σ in·out rule of thumb counts that one too, 80 MFLOP more for lab10-4-deep."""
  sizes = [IN, *widths, CLASSES]
  macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
  return 2.0 * BATCH * (2 * sum(macs) + sum(macs[1:]))


def measure(args: argparse.Namespace) -> dict:
  """Time every row, interleaved (machine noise hits every row alike), and the FLOP floor: the results as data."""
  cfg = dataclasses.replace(config.with_preset("lab10-4-deep"), width=(args.width,))
  batches = lambda steps, seed: data.synthetic(sizes=(steps * BATCH, 1), seed=seed)
  ds = batches(args.steps, 0)
  x, y = ds.train_x, ds.train_y
  flops = model_flops_per_step(cfg.hidden_widths)
  matmul_flops, matmul = matmul_rate(args.matmul)

  # name → (run, steps per run, models); each run is warmed up once (compilation) before timing.
  rows = {"lab10 (stats off)": (lab10_loop(cfg, x, y), args.steps, 1),
          "lab10 (stats every 10 steps)": (lab10_loop(cfg, x, y, 10), args.steps, 1),
          "lab10 (stats every step)": (lab10_loop(cfg, x, y, 1), args.steps, 1)}
  missing = [name for module, name in PEERS.items() if not importlib.util.find_spec(module)]
  if missing:
    print(f"not measured: {', '.join(missing)} (not installed; pip install -e \".[bench]\" adds them)", flush=True)
  if importlib.util.find_spec("torch"):
    # Both thread counts: on a busy 2-core machine OpenMP's spinning can make 2 threads far slower than 1.
    for threads in (int(t) for t in args.torch_threads.split(",")):
      rows[f"PyTorch eager ({threads} thread{'s' * (threads > 1)})"] = (torch_loop(x, y, cfg.hidden_widths, args.steps, threads),
                                                                      args.steps, 1)
  if importlib.util.find_spec("tensorflow"):
    rows["TF2 tf.function"] = (tf_loop(x, y, cfg.hidden_widths, args.steps), args.steps, 1)
  for m in (int(v) for v in args.sweep_sizes.split(",")):
    steps = max(2, args.model_steps // m)
    sweep_ds = batches(steps, m)
    rows[f"lab10 sweep M={m}"] = (sweep_loop(cfg, m, sweep_ds.train_x, sweep_ds.train_y), steps, m)
  for run, _, _ in rows.values():
    run()
  matmul()

  times = {name: [] for name in rows}
  matmul_times = []
  for _ in range(args.repeats):
    for name, (run, _, _) in rows.items():
      times[name].append(_timed(run))
    matmul_times.append(_timed(matmul))

  rate = matmul_flops / statistics.median(matmul_times)
  floor_ms = 1e3 * flops / rate
  results = []
  for name, (_, steps, m) in rows.items():
    t = statistics.median(times[name])
    results.append({"name": name, "models": m, "steps_per_s": steps / t, "model_steps_per_s": m * steps / t,
                    "ms_per_step": 1e3 * t / steps, "ms_per_model_step": 1e3 * t / (m * steps),
                    "floor_fraction": floor_ms / (1e3 * t / (m * steps)), "repeats_s": times[name]})
  for r in results:
    r["of_single"] = r["model_steps_per_s"] / results[0]["model_steps_per_s"]
  # The statistics' cost from each repeat's pair of runs (back to back, so a noisy moment hits both) and from minima.
  off = results[0]["repeats_s"]
  single_steps = rows[results[0]["name"]][1]
  for r in results:  # a sweep's model-steps/s over the single run's, repeat by repeat (the same round of rows)
    if r["name"].startswith("lab10 sweep"):
      _, steps, m = rows[r["name"]]
      ratios = [(m * steps / t) / (single_steps / o) for t, o in zip(r["repeats_s"], off)]
      r["of_single_paired"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
  for r in results[1:3]:
    r["overhead_paired"] = statistics.median(t / o for t, o in zip(r["repeats_s"], off)) - 1
    r["overhead_min"] = min(r["repeats_s"]) / min(off) - 1
  return {"rows": results, "missing_peers": missing, "flops_per_step": flops, "matmul_flops_per_s": rate, "floor_ms_per_step": floor_ms,
          "matmul": args.matmul, "settings": vars(args), "environment": runs.environment()}


def format_table(measured: dict) -> str:
  """The results of ``measure`` as a Markdown table, lab10's plain row compared with each single-model peer."""
  results, floor_ms = measured["rows"], measured["floor_ms_per_step"]
  lab10 = results[0]
  peers = [r for r in results[1:] if r["models"] == 1 and not r["name"].startswith("lab10")]
  header = ["run", "steps/s", "ms/step", "model-steps/s", "of FLOP floor"] + [f"lab10 / {r['name']}" for r in peers]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for r in results:
    cells = [r["name"], f"{r['steps_per_s']:.0f}", f"{r['ms_per_step']:.2f}", f"{r['model_steps_per_s']:.0f}",
             f"{r['floor_fraction']:.2f}"]
    lines.append("| " + " | ".join(cells + [f"{lab10['steps_per_s'] / q['steps_per_s']:.2f}x" if r is lab10 else ""
                                           for q in peers]) + " |")
  lines.append(f"| FLOP floor ({measured['flops_per_step'] / 1e6:.0f} MFLOP/step at "
               f"{measured['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s, {measured['matmul']}² matmul) | "
               f"{1e3 / floor_ms:.0f} | {floor_ms:.2f} | | 1.00 |" + " |" * len(peers))
  for r in results[1:3]:
    lines.append(f"\n{r['name']}: {100 * r['overhead_paired']:+.1f}% over stats off (median of the per-repeat "
                 f"ratios), {100 * r['overhead_min']:+.1f}% (fastest repeat over fastest)")
  for r in results:
    if "of_single_paired" in r:
      paired = r["of_single_paired"]
      lines.append(f"\n{r['name']}: {paired['median']:.3f}x the model-steps/s of {lab10['name']} (median of the "
                   f"per-repeat ratios, {paired['min']:.3f}-{paired['max']:.3f}); {r['of_single']:.3f}x median over "
                   "median")
  return "\n".join(lines + _start_lines(measured))


def _start_lines(measured: dict) -> list[str]:
  lines = []
  if measured.get("fit_compile"):
    f = measured["fit_compile"]
    lines.append(f"\nfit of {measured['start_flags']}, twice in one process: first {f['first_fit_s']:.2f} s, "
                 f"second (the same network, another seed) {f['second_fit_s']:.2f} s wall")
  starts = measured.get("starts") or {}
  if starts.get("pairs"):
    cold = statistics.median(p["cold"]["cpu_s"] for p in starts["pairs"])
    warm = statistics.median(p["warm"]["cpu_s"] for p in starts["pairs"])
    lines.append(f"\ntrain.py {measured['start_flags']}: cold start {cold:.2f} s CPU, warm start {warm:.2f} s CPU; "
                 f"warm / cold {starts['warm_over_cold_cpu']:.2f} (median of {len(starts['pairs'])} pairs)")
  if starts:
    lines.append(f"\ntrain.py --help: {starts['help_cpu_s']:.2f} s CPU")
  return lines


def main(argv=None) -> int:
  args = _parse(argv)
  print(runs.device_summary(), flush=True)
  measured = measure(args)
  # Compilation before the starts: their child processes would share the cores with it.
  measured["fit_compile"] = measure_fit_compile(args)
  measured["starts"] = measure_starts(args)
  measured["start_flags"] = args.start_flags
  table = format_table(measured)
  print(table)
  out = Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  runs.write_text(out.with_suffix(".md"), table + "\n")
  runs.write_json(out.with_suffix(".json"), measured)
  print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
  return 0


if __name__ == "__main__":
  cli.run(main)
