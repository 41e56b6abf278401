#!/usr/bin/env python
"""Convert a run directory's metrics.jsonl, stats.jsonl and stats_histograms.npz into TensorBoard event files,
as --tensorboard writes them while training (lab10.tensorboard); a sweep folder: each of its models. View them
with: tensorboard --logdir OUT

Exit status 0 done, 2 bad input (no run directory, or OUT already holds event files), 4 a file could not be written.
"""

import argparse
import sys

from lab10 import cli, config, flags


def _parse(argv) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__)  # argparse errors in one line, exit 2
  p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of scripts/train.py, or a sweep folder of "
                 "scripts/sweep.py (every model)")
  p.add_argument("--out", default=None, help="folder for the event files (default: RUN_DIR/tensorboard; a sweep: "
                 "each model's own, or OUT/<model>)")
  args = p.parse_args(argv)
  if not args.run_dir.strip():
    p.error("RUN_DIR is empty; expected a lab10 run directory or sweep folder")
  flags.check_folder(p, "out", args.out)
  return args


if __name__ == "__main__":  # a signal is one line; --help and malformed flags are answered without loading JAX
  cli.exit_on_signals()
  _parse(sys.argv[1:])

from lab10 import runs, tensorboard  # noqa: E402


def main(argv=None) -> int:
  args = _parse(argv)
  try:
    outs = tensorboard.convert_all(args.run_dir, args.out)
  except (config.ConfigError, runs.RunError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  view = outs[0] if len(outs) == 1 else args.out or args.run_dir
  print(f"wrote TensorBoard events of {args.run_dir} to {', '.join(map(str, outs))}; view them with: "
        f"tensorboard --logdir {view}", flush=True)
  return 0


if __name__ == "__main__":
  cli.run(main)
