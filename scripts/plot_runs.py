#!/usr/bin/env python
"""Overlay one per-layer statistic of several runs, or of a sweep's models, over training: one panel per setting,
one line per layer; runs that differ only in their seed are one panel (mean, band from the lowest to the highest
seed). Writes OUT.png and OUT.pdf.

  python scripts/plot_runs.py runs/sigmoid runs/relu --stat grads/norm
  python scripts/plot_runs.py runs/sweep --stat backward/grad_var --layers dense_0,dense_3

Exit status 0 done, 2 bad input (a path that is no run or sweep, a statistic or layer the runs do not have),
4 a file could not be written.
"""

import argparse
import sys

from lab10 import cli, flags


def _parse(argv) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("paths", nargs="+", metavar="RUN_OR_SWEEP", help="run directories (train.py, anymodel.Logger) or "
                 "sweep folders (sweep.py: each of its models)")
  p.add_argument("--stat", default="grads/norm", help="GROUP/STAT of stats.jsonl's GROUP/LAYER/STAT keys, e.g. "
                 "forward/act_var, backward/grad_var, updates/ratio (default: grads/norm)")
  p.add_argument("--layers", default="", help="comma-separated layers to draw (default: every layer)")
  p.add_argument("--x", default="step", choices=("step", "epoch"), help="horizontal axis (default: step)")
  p.add_argument("--title", default=None, help="the figure's title (default: STAT per layer)")
  p.add_argument("--out", default=None, metavar="STEM",
                 help="write STEM.png and STEM.pdf (default: runs/plots/<group>_<stat>)")
  return p.parse_args(argv)


if __name__ == "__main__":  # a signal is one line; --help and malformed flags are answered before any import
  cli.exit_on_signals()
  _parse(sys.argv[1:])

from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files, no window

from lab10 import loaders, overlays, plotting, runs  # noqa: E402


def main(argv=None) -> int:
  args = _parse(argv)
  stem = Path(args.out or f"runs/plots/{args.stat.replace('/', '_')}")
  try:
    frames = [loaders.load_run(path) for path in loaders.run_dirs(args.paths)]
    fig = overlays.draw(frames, args.stat, [s for s in args.layers.split(",") if s], args.x, args.title)
  except loaders.LoadError as e:
    print(f"error: {e}", file=sys.stderr)
    return cli.BAD_INPUT
  if stem.parent.exists() and not stem.parent.is_dir():
    print(f"error: --out {stem}: {stem.parent} is not a folder", file=sys.stderr)
    return cli.BAD_INPUT
  stem.parent.mkdir(parents=True, exist_ok=True)
  written = runs.write_figure(fig, stem)
  plotting.close(fig)
  print(f"{args.stat} of {len(frames)} runs: wrote {', '.join(map(str, written))}", flush=True)
  return cli.DONE


if __name__ == "__main__":
  cli.run(main)
