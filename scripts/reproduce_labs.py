#!/usr/bin/env python
"""Run every seed-lab preset over several seeds and write figures/labs.md and figures/labs.json.

Also the lab's "swap the activation" table: tanh, elu, selu, leaky_relu, gelu × Xavier, He on lab10-4-deep.
--quick: 1 epoch and a 5000-example training subset — a smoke test of the pipeline, not the numbers.
Finished runs of the same config under --workroot are reused, so an interrupted table resumes.
"""

import argparse
import dataclasses
import os
import platform
import sys
from pathlib import Path

from lab10 import cli, flags
from lab10.config import PRESETS  # (no JAX)

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = "figures"  # the committed table: figures/labs.{md,json}, and README.md's presets table


def _parse(argv) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--seeds", type=int, default=5, help="seeds per preset")
  p.add_argument("--swap_seeds", type=int, default=None, help="seeds for the activation-swap table (None: --seeds)")
  p.add_argument("--quick", action="store_true", help="1 epoch on 5000 training examples: a smoke test")
  p.add_argument("--only", default=None, help="comma-separated presets (None: all)")
  p.add_argument("--no_swap", action="store_true", help="skip the activation-swap table")
  p.add_argument("--data_dir", default=None, help="folder with the MNIST IDX files (None: the bundled copy)")
  p.add_argument("--out", default=None,
                 help=f"folder for labs.md and labs.json (None: {COMMITTED} for the complete table, every preset and "
                      "the swap table at full scale; runs/labs-quick or runs/labs-partial otherwise)")
  p.add_argument("--workroot", default=None,
                 help="folder of the runs; finished ones are reused (None: runs/labs, runs/labs-quick with --quick)")
  p.add_argument("--update_readme", action="store_true",
                 help="rewrite README.md's presets table from the result (the complete table only)")
  args = p.parse_args(argv)
  for flag in ("seeds", "swap_seeds"):
    if getattr(args, flag) is not None and getattr(args, flag) < 1:
      p.error(f"--{flag} {getattr(args, flag)} is out of range; expected an integer >= 1")
  if args.only is not None:
    args.only = args.only.split(",")
    unknown = [name for name in args.only if name not in PRESETS]
    if unknown:
      p.error(f"--only {','.join(args.only)}: unknown preset(s) {', '.join(map(repr, unknown))}; choose from: "
              f"{', '.join(PRESETS)}")
    twice = sorted({name for name in args.only if args.only.count(name) > 1})
    if twice:
      p.error(f"--only lists {', '.join(twice)} more than once; each preset once")
  flags.check_data_dir(p, args.data_dir)
  flags.check_folder(p, "out", args.out)
  flags.check_folder(p, "workroot", args.workroot)
  complete = not (args.quick or args.no_swap or (args.only is not None and set(args.only) != set(PRESETS)))
  if not complete and (args.update_readme or (args.out is not None and Path(args.out).resolve() == ROOT / COMMITTED)):
    what = "--update_readme" if args.update_readme else f"--out {args.out}"
    p.error(f"{what} takes the complete table (every preset and the swap table, without --quick); this run makes a "
            "part of it: drop the flag, or write it elsewhere with --out")
  args.out = args.out or (COMMITTED if complete else "runs/labs-quick" if args.quick else "runs/labs-partial")
  args.workroot = args.workroot or ("runs/labs-quick" if args.quick else "runs/labs")
  return args


if __name__ == "__main__":  # before the heavy imports: a signal while JAX loads is one line too, and --help and
  cli.exit_on_signals('; finished runs are reused when it runs again')  # malformed flags need no JAX
  _parse(sys.argv[1:])

import jax  # noqa: E402

from lab10 import compile_cache, config, data, labs, runs  # noqa: E402

SWAP_ACTIVATIONS = ("tanh", "elu", "selu", "leaky_relu", "gelu")
SWAP_INITS = {"xavier": "glorot_uniform", "he": "he_normal"}


def _cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
  args = _parse(argv)
  if args.update_readme:  # checked before any training
    text = (ROOT / "README.md").read_text()
    if labs.README_START not in text or labs.README_END not in text:
      print(f"error: --update_readme: README.md has no presets-table markers ({labs.README_START} … "
            f"{labs.README_END}) to replace", file=sys.stderr)
      return 2
  compile_cache.enable()
  presets = args.only or list(config.PRESETS)
  try:
    overrides = dict(epochs=1) if args.quick else {}
    configs = {name: config.with_preset(name, data_dir=args.data_dir, **overrides) for name in presets}
    ds = data.load("mnist", args.data_dir, val_size=5000)
  except (config.ConfigError, data.DataError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.quick:
    ds = dataclasses.replace(ds, train_x=ds.train_x[:5000], train_y=ds.train_y[:5000])
  print(runs.device_summary(), flush=True)
  table_runs = labs.run_seeds(configs, args.seeds, ds, Path(args.workroot))
  table = labs.summarize(table_runs)
  swap, swap_runs = {}, {}
  if not args.no_swap:
    swap_configs = {f"{act} / {init}": config.with_preset("lab10-4-deep", activation=act, init=name, **overrides)
                    for act in SWAP_ACTIVATIONS for init, name in SWAP_INITS.items()}
    swap_runs = labs.run_seeds(swap_configs, args.swap_seeds or args.seeds, ds, Path(args.workroot) / "swap")
    swap = labs.summarize(swap_runs)
  # Each run's own fit time (its summary.json), summed: reused runs keep the time they took.
  presets_wall, swap_wall = (sum(s["wall_time_s"] for seeds in r.values() for s in seeds) for r in (table_runs, swap_runs))
  machine = {"platform": platform.platform(), "processor": _cpu_name(), "cpus": os.cpu_count(),
             "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
             "jax": jax.__version__}
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  command = "python scripts/reproduce_labs.py " + " ".join(argv if argv is not None else sys.argv[1:])
  result = {"command": command.strip(), "quick": args.quick, "presets_wall_time_s": presets_wall,
            "swap_wall_time_s": swap_wall, "machine": machine, "presets": table, "activation_swap": swap}
  runs.write_json(out / "labs.json", result)
  runs.write_text(out / "labs.md", labs.report(result))
  if args.update_readme:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start_at, end_at = text.index(labs.README_START), text.index(labs.README_END) + len(labs.README_END)
    runs.write_text(readme, text[:start_at] + labs.readme_table(result) + text[end_at:])
  print(f"wrote {out / 'labs.md'} and {out / 'labs.json'} ({presets_wall + swap_wall:.0f}s)", flush=True)
  return 0


if __name__ == "__main__":
  cli.run(main, '; finished runs are reused when it runs again')
