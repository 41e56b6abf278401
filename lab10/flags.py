"""Command-line flags → a validated ``Config``: one flag per Config field, errors in one line.

Unset flags stay None, so that a preset fills them and explicit flags override it; with --resume the run's own
config.json is the base.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

from lab10 import config as config_lib


class OneLineParser(argparse.ArgumentParser):
  """argparse whose errors are one line (``prog: error: …``), exit status 2."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    # Read "-1e-4" as a negative number, not a flag, as Python 3.13's argparse does (3.11: "-1.5" only).
    self._negative_number_matcher = re.compile(r"^-\.?\d")

  def error(self, message):
    self.exit(2, f"{self.prog}: error: {message}\n")


def _parse_widths(text: str) -> tuple[int, ...]:
  try:
    return tuple(int(w) for w in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer or a comma-separated list of integers")


def _parse_bool(text: str) -> bool:
  if text.lower() in ("1", "true", "yes", "on"):
    return True
  if text.lower() in ("0", "false", "no", "off"):
    return False
  raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; choose from: true, false")


def parser(description: str) -> argparse.ArgumentParser:
  """Flags for every config_lib.Config field; unset flags stay None so presets can fill them, and each help text ends
  with the config_lib.Config default."""
  p = OneLineParser(description=description)
  p.add_argument("--preset", default=None,
                 help=f"one of {', '.join(config_lib.PRESETS)}; explicit flags override it (default: none)")
  # (--preset is added first so that its list of names heads the help.)
  parse = {str: str, str | None: str, int: int, float: float, bool: _parse_bool, tuple[int, ...]: _parse_widths}
  hints = typing.get_type_hints(config_lib.Config)
  defaults = config_lib.Config()
  for f in dataclasses.fields(config_lib.Config):
    if f.name == "preset":
      continue
    default = getattr(defaults, f.name)
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    # A bare boolean flag (--resume) means true.
    optional = dict(nargs="?", const=True) if hints[f.name] is bool else {}
    p.add_argument(f"--{f.name}", type=parse[hints[f.name]], default=None,
                   metavar="BOOL" if hints[f.name] is bool else "X",
                   help=f"{f.metadata['help']} (default: {shown})", **optional)
  return p


def from_args(args: argparse.Namespace) -> config_lib.Config:
  """Config from parsed flags: defaults < preset < explicit flags; with --resume, the run's own config."""
  names = {f.name for f in dataclasses.fields(config_lib.Config)} - {"preset"}
  overrides = {k: v for k, v in vars(args).items() if k in names and v is not None}
  if overrides.get("resume") and overrides.get("workdir"):
    stored = Path(overrides["workdir"]) / "config.json"
    if stored.exists():
      return config_lib.resumed(config_lib.load_json(stored), args.preset, overrides)
  return config_lib.with_preset(args.preset, **overrides)


def _address(text: str) -> str:
  host, _, port = text.rpartition(":")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:1234, a port in 1..65535)")
  return text


def add_distributed(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
  """--distributed and the values it needs (``lab10.devices.initialize_distributed``)."""
  parser.add_argument("--distributed", action="store_true",
                      help="join a job of several processes first (jax.distributed.initialize): detected on TPU "
                           "pods and under SLURM / Open MPI, else give --coordinator, --num_processes, --process_id")
  parser.add_argument("--coordinator", metavar="HOST:PORT", type=_address,
                      help="with --distributed: process 0's address, where the others join it (e.g. 127.0.0.1:1234)")
  parser.add_argument("--num_processes", type=int, metavar="N", help="with --distributed: how many processes")
  parser.add_argument("--process_id", type=int, metavar="I", help="with --distributed: this process, 0 … N − 1")
  return parser


# --- scripts/sweep.py: the swept values ---------------------------------------------------------


def _ints(text: str) -> list[int]:
  """``0:8`` (a range) or ``0,3,5``."""
  try:
    if ":" in text:
      lo, hi = text.split(":")
      values = list(range(int(lo), int(hi)))
    else:
      values = [int(t) for t in text.split(",")]
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a range like 0:8 or a list like 0,3,5")
  if not values:
    raise argparse.ArgumentTypeError(f"{text!r} is empty; expected a range like 0:8 or a list like 0,3,5")
  return values


def _floats(text: str) -> list[float]:
  try:
    return [float(t) for t in text.split(",")]
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers")


def sweep_parser(description: str) -> argparse.ArgumentParser:
  """Every Config flag (the shared settings), the swept values, and --distributed."""
  p = parser(description)
  p.add_argument("--seeds", type=_ints, default=None, metavar="A:B|A,B,..", help="seeds to sweep (default: --seed)")
  p.add_argument("--init_gains", type=_floats, default=None, metavar="G,..", help="init gains sigma_w to sweep (default: --init_gain)")
  p.add_argument("--lrs", type=_floats, default=None, metavar="LR,..", help="learning rates to sweep (default: --lr)")
  return add_distributed(p)
