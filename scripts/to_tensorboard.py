#!/usr/bin/env python
"""Convert a run directory's metrics.jsonl, stats.jsonl and stats_histograms.npz into TensorBoard event files,
as --tensorboard writes them while training (lab10.tensorboard). View them with: tensorboard --logdir OUT

Exit status 0 done, 2 bad input (no run directory, or OUT already holds event files), 4 a file could not be written.
"""

import argparse
import sys

from lab10 import cli, config, flags


def _parse(argv) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__)  # argparse errors in one line, exit 2
  p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of scripts/train.py (or one model of a sweep)")
  p.add_argument("--out", default=None, help="folder for the event files (default: RUN_DIR/tensorboard)")
  return p.parse_args(argv)


if __name__ == "__main__":  # a signal is one line; --help and malformed flags are answered without loading JAX
  cli.exit_on_signals()
  _parse(sys.argv[1:])

from lab10 import runs, tensorboard  # noqa: E402


def main(argv=None) -> int:
  args = _parse(argv)
  try:
    out = tensorboard.convert(args.run_dir, args.out)
  except (config.ConfigError, runs.RunError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote TensorBoard events of {args.run_dir} to {out}; view them with: tensorboard --logdir {out}", flush=True)
  return 0


if __name__ == "__main__":
  cli.run(main)
