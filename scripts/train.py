#!/usr/bin/env python
"""Train one model: flags → Config → lab10.train.fit. Exit status 2 on bad input, 3 on divergence."""

import sys

from lab10 import config, data, devices, train


def main(argv=None) -> int:
  args = devices.add_flags(config.parser(__doc__)).parse_args(argv)
  devices.initialize_distributed(args.distributed)
  try:
    train.fit(config.from_args(args))
  except (config.ConfigError, data.DataError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except train.Diverged as e:
    print(f"error: {e}", file=sys.stderr)
    return 3
  return 0


if __name__ == "__main__":
  sys.exit(main())
