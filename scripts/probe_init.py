#!/usr/bin/env python
"""Per-layer forward and backward statistics at initialization, over activations x initializers x depths x
widths (MLPs), averaged over seeds; one CSV row per network and layer (and the same rows as JSON)."""

import argparse
import sys
from pathlib import Path

from lab10 import cli, config, flags


def _names(text: str) -> list[str]:
  return text.split(",")


def _ints(text: str) -> list[int]:
  try:
    return [int(v) for v in text.split(",")]
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def _check(flag: str, values: list[int], what: str) -> None:
  for v in values:
    if v < 1:
      raise config.ConfigError(f"--{flag} {v} is out of range; expected {what}")


MAX_BYTES = 8 << 30  # the kernels of the largest network's seeds, all drawn at once


def _parse(argv) -> argparse.Namespace:
  # argparse errors in one line, exit 2; --help shows every default
  p = flags.OneLineParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--activations", type=_names, default="tanh,relu", help="comma-separated activations")
  p.add_argument("--inits", type=_names, default="glorot_standard,glorot_uniform,he_normal",
                 help="comma-separated kernel initializers")
  p.add_argument("--depths", type=_ints, default="5", help="comma-separated numbers of hidden layers")
  p.add_argument("--widths", type=_ints, default="1000", help="comma-separated hidden widths")
  p.add_argument("--seeds", type=int, default=4, help="parameter draws averaged (one vmap)")
  p.add_argument("--batch", type=int, default=300, help="fixed examples (Glorot & Bengio: 300)")
  p.add_argument("--mnist", action="store_true",
                 help="a fixed batch of MNIST training images (the bundled copy) instead of Gaussian N(0, 1) inputs")
  p.add_argument("--data_dir", default=None, help="another MNIST IDX folder (implies --mnist)")
  p.add_argument("--out", default="runs/probe_init.csv", help="CSV path; the JSON goes beside it")
  p.add_argument("--overwrite", action="store_true", help="replace --out (and its JSON) if they exist")
  args = p.parse_args(argv)
  for flag in ("activations", "inits", "depths", "widths"):
    values = getattr(args, flag)
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
      p.error(f"--{flag} lists {', '.join(twice)} more than once; each grid value once")
  flags.check_data_dir(p, args.data_dir)
  out = Path(args.out)
  if not args.out.strip() or args.out.endswith("/") or out.is_dir():
    p.error(f"--out {args.out!r} is not a file path; give one such as runs/probe_init.csv")
  existing = [str(f) for f in (out, out.with_suffix(".json")) if f.exists()]
  if existing and not args.overwrite:
    p.error(f"--out: {' and '.join(existing)} exist(s); pass --overwrite to replace, or choose another --out")
  params = 4 * args.seeds * max(args.depths, default=1) * max(args.widths, default=1) ** 2  # bytes of the kernels
  if params > MAX_BYTES:
    p.error(f"--widths {max(args.widths)} with --depths {max(args.depths)} and --seeds {args.seeds} needs "
            f"{params / 2**30:.0f} GiB of kernels, more than {MAX_BYTES / 2**30:.0f} GiB; choose smaller values")
  return args


if __name__ == "__main__":  # before the heavy imports: a signal while JAX loads is one line too, and --help and
  cli.exit_on_signals()     # malformed flags are answered without loading JAX
  _parse(sys.argv[1:])

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lab10 import compile_cache, data, probe_grid, runs  # noqa: E402


def main(argv=None) -> int:
  args = _parse(argv)
  compile_cache.enable()
  print(runs.device_summary(), flush=True)
  out = Path(args.out)
  try:
    for name in args.activations:
      config.validate(config.Config(activation=name))
    for name in args.inits:
      config.validate(config.Config(init=name))
    _check("depths", args.depths, "integers >= 1")
    _check("widths", args.widths, "integers >= 1")
    _check("seeds", [args.seeds], "an integer >= 1")
    _check("batch", [args.batch], "an integer >= 1")
    ds = data.load("mnist", args.data_dir) if args.mnist or args.data_dir else data.synthetic(sizes=(args.batch, 1))
    if args.batch > len(ds.train_y):
      raise config.ConfigError(f"--batch {args.batch} is larger than the {len(ds.train_y)} training examples of "
                               f"{ds.name}; expected 1..{len(ds.train_y)}")
    out.parent.mkdir(parents=True, exist_ok=True)
  except (config.ConfigError, data.DataError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except OSError as e:
    print(f"error: --out {args.out}: cannot create its folder ({e.strerror})", file=sys.stderr)
    return 2
  rng = np.random.default_rng(0)  # the fixed batch
  idx = rng.choice(len(ds.train_y), args.batch, replace=False)
  batch = {"x": ds.train_x[idx], "y": ds.train_y[idx]}
  with jax.default_matmul_precision(config.Config.matmul_precision):  # exact float32 on every backend
    per_seed = probe_grid.probe_grid(args.activations, args.inits, args.depths, args.widths, batch,
                                      seeds=args.seeds, verbose=True)
  rows = probe_grid.seed_means(per_seed)
  runs.write_csv(out, rows)  # unbounded activations have no "saturated" column
  runs.write_json(out.with_suffix(".json"), {"data": ds.name, "batch": args.batch, "rows": rows, "per_seed": per_seed})
  print(f"wrote {len(rows)} rows to {out} and {out.with_suffix('.json')}", flush=True)
  return 0


if __name__ == "__main__":
  cli.run(main)
