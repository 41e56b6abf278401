#!/usr/bin/env python
"""Train one model: flags → Config → lab10.train.fit.

Exit status 0 done, 2 bad input (flags, data files, run directory), 3 divergence, 130 interrupted.
"""

import sys

from lab10 import config, data, devices, divergence, runs, train


def main(argv=None) -> int:
  args = devices.add_flags(config.parser(__doc__)).parse_args(argv)
  devices.initialize_distributed(args.distributed)
  try:
    train.fit(config.from_args(args))
  except (config.ConfigError, data.DataError, runs.RunError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except divergence.Diverged as e:
    print(f"error: {e}", file=sys.stderr)
    return 3
  except KeyboardInterrupt:
    print("interrupted; continue with the same --workdir and --resume", file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
