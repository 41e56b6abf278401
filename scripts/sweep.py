#!/usr/bin/env python
"""Train many models of one architecture at once: seeds × init gains × learning rates → lab10.sweep.run.

Example: python scripts/sweep.py --preset lab10-4-deep --seeds 0:8 --init_gains 0.5,1,2
Exit status 2 on bad input, 4 when a file cannot be written (lab10.cli).
"""

import sys

from lab10 import cli

if __name__ == "__main__":  # before the heavy imports: a signal while JAX loads is one line too
  cli.exit_on_signals()

from lab10 import config, flags  # noqa: E402  (no JAX: --help and malformed flags are answered at once)


def main(argv=None) -> int:
  args = flags.sweep_parser(__doc__).parse_args(argv)
  from lab10 import compile_cache, data, devices, sweep, workdir  # the flags parse: load JAX now

  try:
    devices.initialize_distributed(args.distributed, args.coordinator, args.num_processes, args.process_id)
  except (ValueError, RuntimeError) as e:  # JAX's own: "Number of processes must be defined.", process_id out of range
    print(f"error: --distributed: {e} (give --coordinator, --num_processes and --process_id)", file=sys.stderr)
    return 2
  compile_cache.enable()
  try:
    configs = sweep.from_args(args)
    sweep.run(configs, workdir=configs[0].workdir or workdir.default(f"sweep-{configs[0].preset or configs[0].model}"))
  except (config.ConfigError, data.DataError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  devices.leave_job()
  return 0


if __name__ == "__main__":
  cli.run(main)
