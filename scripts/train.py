#!/usr/bin/env python
"""Train one model: flags → Config → lab10.train.fit.

Exit status 0 done, 2 bad input (flags, data files, run directory), 3 divergence, 4 a file could not be written,
5 another process of a --distributed job failed, 130 / 143 interrupted by SIGINT / SIGTERM (lab10.cli). After 4,
5, 130 and 143 the run continues with --resume.
"""

import sys

from lab10 import cli

if __name__ == "__main__":  # before the heavy imports: Ctrl-C while JAX loads is one line too
  cli.exit_on_signals("; continue with the same --workdir and --resume")

from lab10 import config, flags  # noqa: E402  (no JAX: --help and bad flags are answered at once)


def main(argv=None) -> int:
  args = flags.add_distributed(flags.parser(__doc__)).parse_args(argv)
  try:
    run_config = flags.from_args(args)
  except config.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return cli.BAD_INPUT
  import jax  # the flags are good: load JAX now

  from lab10 import compile_cache, data, devices, divergence, runs, train

  try:
    devices.initialize_distributed(args.distributed, args.coordinator, args.num_processes, args.process_id)
  except (ValueError, RuntimeError) as e:  # JAX's own: "Number of processes must be defined.", process_id out of range
    print(f"error: --distributed: {e} (give --coordinator, --num_processes and --process_id)", file=sys.stderr)
    return cli.BAD_INPUT
  compile_cache.enable()
  if devices.native_log:
    print(f"XLA's own log lines: {devices.native_log}", flush=True)
  try:
    train.fit(run_config)
  except (config.ConfigError, data.DataError, runs.RunError) as e:
    print(f"error: {e}", file=sys.stderr)
    return cli.BAD_INPUT
  except divergence.Diverged as e:
    print(f"error: {e}", file=sys.stderr)
    return cli.DIVERGED
  except (runs.WriteError, jax.errors.JaxRuntimeError) as e:
    if devices.peer_failed(e):
      print(f"error: another process of the job failed or left ({str(e).splitlines()[0]}); the run stopped; "
            f"restart every process with the same --workdir and --resume (XLA's log: {devices.native_log})",
            file=sys.stderr)
      return cli.PEER_FAILED
    if not isinstance(e, runs.WriteError):
      raise
    print(f"error: {e}; the run stopped; once fixed, continue with the same --workdir and --resume", file=sys.stderr)
    return cli.WRITE_FAILED
  except KeyboardInterrupt:  # main() called from Python, without exit_on_signals
    print("interrupted; continue with the same --workdir and --resume", file=sys.stderr)
    return 130
  devices.leave_job()
  return cli.DONE


if __name__ == "__main__":
  cli.run(main)
