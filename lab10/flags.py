"""Command-line flags → a validated ``Config``: one flag per Config field, errors in one line.

Unset flags stay None, so that a preset fills them and explicit flags override it; with --resume the run's own
config.json is the base.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
  p.add_argument("--config", default=None, metavar="FILE",
                 help="JSON or YAML file of Config fields, e.g. a run's own config.json; a --preset flag replaces the "
                      "file's, explicit flags override both (default: none)")
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
  """Config from parsed flags: defaults < preset < --config file < explicit flags; with --resume, the run's own
  config."""
  names = {f.name for f in dataclasses.fields(config_lib.Config)} - {"preset"}
  flagged = {k: v for k, v in vars(args).items() if k in names and v is not None}
  filed = read_config_file(args.config) if getattr(args, "config", None) else {}
  preset = args.preset if args.preset is not None else filed.get("preset")
  if args.preset is not None:
    flagged["preset"] = args.preset
  overrides = {k: v for k, v in {**filed, **flagged}.items() if k != "preset"}
  try:
    if overrides.get("resume") and overrides.get("workdir"):
      stored = Path(overrides["workdir"]) / "config.json"
      if stored.exists():
        return config_lib.resumed(config_lib.load_json(stored), args.preset, overrides)
    return config_lib.with_preset(preset, **overrides)
  except config_lib.ConfigError as e:
    flag = re.match(r"--(\w+)", str(e))
    if flag and flag.group(1) in filed and flag.group(1) not in flagged:
      raise config_lib.ConfigError(f"{args.config}: field {str(e)[2:]}") from None
    raise


# Fields of a run's config.json that name that run, not a setting to repeat: dropped when it is read as --config.
_RUN_OWN = ("workdir", *config_lib.ACTIONS)


def read_config_file(path: str) -> dict:
  """The Config fields a JSON or YAML file sets (``.yaml``/``.yml``: YAML, else JSON), converted to their types;
  a run's config.json (``{"config": {...}, "config_sha256": ...}``) gives its settings without its workdir.
  ConfigError in one line naming the file and the bad field, with the valid choices."""
  try:
    text = Path(path).read_text()
  except OSError as e:
    raise config_lib.ConfigError(f"--config {path}: cannot be read ({e.strerror or e})") from None
  try:
    if Path(path).suffix.lower() in (".yaml", ".yml"):
      import yaml  # PyYAML: a dependency of flax
      values = yaml.safe_load(text)
    else:
      values = json.loads(text)
  except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
    first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
    raise config_lib.ConfigError(f"--config {path}: not valid {'YAML' if path.endswith(('.yaml', '.yml')) else 'JSON'} "
                                 f"({first})") from None
  if isinstance(values, dict) and isinstance(values.get("config"), dict) and "config_sha256" in values:
    values = {k: v for k, v in values["config"].items() if k not in _RUN_OWN}
  if not isinstance(values, dict):
    raise config_lib.ConfigError(f"--config {path}: expected a mapping of Config fields, e.g. {{\"lr\": 0.01}}")
  hints = typing.get_type_hints(config_lib.Config)
  valid = [f.name for f in dataclasses.fields(config_lib.Config) if f.name not in config_lib.ACTIONS]
  out = {}
  for name, value in values.items():
    if name not in valid:
      raise config_lib.ConfigError(f"{path}: unknown field {name!r}; valid fields: {', '.join(valid)}")
    out[name] = _typed(path, name, value, hints[name])
  return out


def _typed(path: str, name: str, value, hint):
  """``value`` as field ``name``'s type (a list or "256,256" for widths, an int for a float), else ConfigError."""
  is_number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
  if hint == tuple[int, ...]:
    if isinstance(value, str):
      try:
        return _parse_widths(value)
      except argparse.ArgumentTypeError:
        pass
    items = value if isinstance(value, list) else [value]
    if items and all(isinstance(v, int) and not isinstance(v, bool) for v in items):
      return tuple(items)
    expected = "an integer or a list of integers"
  elif hint is int:
    if isinstance(value, int) and not isinstance(value, bool):
      return value
    expected = "an integer"
  elif hint is float:
    if is_number(value):
      return float(value)
    expected = "a number"
  elif hint is bool:
    if isinstance(value, bool):
      return value
    expected = "true or false"
  elif hint == str | None:
    if value is None or isinstance(value, str):
      return value
    expected = "a string or null"
  else:
    if isinstance(value, str):
      return value
    expected = "a string"
  raise config_lib.ConfigError(f"{path}: field {name} {value!r} is not {expected}")


def check_data_dir(parser: argparse.ArgumentParser, value: str | None) -> None:
  """One-line ``parser.error`` if ``--data_dir`` was given empty (left out, the bundled MNIST is read)."""
  if value is not None and not value.strip():
    parser.error("--data_dir is empty; expected the folder of the MNIST IDX files (leave it out for the bundled copy)")


def check_folder(parser: argparse.ArgumentParser, flag: str, value: str | None) -> None:
  """One-line ``parser.error`` unless ``value`` (a ``--flag`` naming a folder to write, or None: its default) can be
  that folder: not empty, not a file, and no file where one of its parents should be."""
  if value is None:
    return
  if not value.strip():
    parser.error(f"--{flag} is empty; expected a folder")
  path = Path(value).expanduser()
  if path.exists() and not path.is_dir():
    parser.error(f"--{flag} {value} exists and is not a folder")
  blocking = next((q for q in path.parents if q.exists() and not q.is_dir()), None)
  if blocking is not None:
    parser.error(f"--{flag} {value} cannot be a folder: {blocking} is a file")


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
