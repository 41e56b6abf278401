#!/usr/bin/env python
"""Regenerate the paper-style figures in figures/: PNG + PDF + the data (JSON) per figure, and figures/README.md.

Each figure is one module of lab10/experiments/ (lab10.experiments.FIGURES, in order): its claim, run, checks and
drawing. --quick runs each figure's smaller scale. The README entry of each figure is generated from its module's
statement and its measured data.
"""

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path

from lab10 import cli, flags

COMMITTED = "figures"  # the full-scale set, committed with the repository
SCALES = ("quick", "full", "long")


def _parse(argv: list[str]) -> argparse.Namespace:
  p = flags.OneLineParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--only", default=None,
                 help="comma-separated figure names (None: all; a wrong name is answered with the list)")
  p.add_argument("--scale", choices=SCALES, default="full",
                 help="quick: smaller (each figure's quick), minutes on a CPU; full: the committed figures' scale; "
                      "long: longer budgets, closer to the papers' (each figure's long), for an accelerator")
  p.add_argument("--quick", action="store_true", help="the same as --scale quick")
  p.add_argument("--data_dir", default=None, help="folder with the MNIST IDX files (None: the bundled copy)")
  p.add_argument("--out", default=None,
                 help=f"folder for the figures, their JSON and README.md (None: {COMMITTED} at full scale, "
                      f"runs/figures-<scale> at another --scale: the committed set is replaced only when asked)")
  p.add_argument("--redraw", action="store_true",
                 help="redraw the PNG and PDF from each figure's saved JSON without re-running its experiment; "
                      "its measured numbers and command are kept, its statement refreshed from its module")
  p.add_argument("--time_limit", type=float, default=None,
                 help="minutes: figures made of resumable runs (glorot_table1_mnist, glorot_training_saturation) "
                      "start no new training after "
                      "this long and draw what is finished, the rest marked (0: draw without training; None: train "
                      "to the end)")
  # A namespace that has ``scale`` keeps it unless the flag is given (as --scale, --sca or --scale=): None = not given.
  args = p.parse_args(argv, namespace=argparse.Namespace(scale=None))
  if args.quick and args.scale not in (None, "quick"):
    p.error(f"--quick and --scale {args.scale} disagree; give one of them")
  args.scale = "quick" if args.quick else args.scale or "full"
  if args.time_limit is not None and math.isnan(args.time_limit):
    p.error("--time_limit nan is not a number; expected minutes ≥ 0")
  if args.time_limit is not None and args.time_limit < 0:
    p.error(f"--time_limit {args.time_limit:g} is negative; expected minutes ≥ 0")
  flags.check_data_dir(p, args.data_dir)
  if args.data_dir is not None and not Path(args.data_dir).expanduser().is_dir():
    p.error(f"--data_dir {args.data_dir} does not exist or is not a folder; expected the folder of the MNIST IDX files")
  flags.check_folder(p, "out", args.out)
  return args


if __name__ == "__main__":  # before the heavy imports: a signal while JAX loads is one line too, and --help and
  cli.exit_on_signals()     # malformed flags are answered without loading JAX
  _parse(sys.argv[1:])

import jax  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")  # figures are files here: no window, whatever the machine offers

from lab10 import compile_cache, config, plotting, progress, runs  # noqa: E402
from lab10.experiments import FIGURES, Figure, Skipped, report  # noqa: E402


def _draw(figure: Figure, data: dict, stem: Path) -> None:
  with plotting.style():
    fig = figure.draw(**data)
    runs.write_figure(fig, stem)
  plotting.close(fig)


class BadRecord(Exception):
  """A figure's saved JSON that --redraw cannot read."""


def _redraw(figure: Figure, out: Path) -> None:
  """Redraw from the saved JSON's data; its measured numbers, command and time are kept, its statement refreshed."""
  path = out / f"{figure.name}.json"
  if not path.exists():
    print(f"{figure.name}: skipped: no {path} to redraw from", flush=True)
    return
  try:
    record = json.loads(path.read_text())
    data = record["data"]
    if record.get("name") != figure.name:
      raise ValueError(f"it is the record of {record.get('name')!r}")
    inspect.signature(figure.draw).bind(**data)  # the data the figure's drawing takes, no more, no less
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise BadRecord(f"{path} cannot be read as {figure.name}'s record ({type(e).__name__}: "
                    f"{str(e).splitlines()[0]}); make the figure again without --redraw") from None
  _draw(figure, data, out / figure.name)
  runs.write_json(path, {**record, "statement": figure.statement()}, sort_keys=False)
  print(f"{figure.name}: redrawn from {path}", flush=True)


def _make(figure: Figure, args: argparse.Namespace, argv: list[str]) -> None:
  """Run figure's experiment, draw it, and write its JSON (and CSV, for a figure with a table)."""
  out = Path(args.out)
  kwargs = {"quick": figure.quick, "full": {}, "long": figure.long}[args.scale]
  given = {"data_dir": args.data_dir, "out": str(out),
           "time_limit_s": None if args.time_limit is None else 60 * args.time_limit}
  kwargs = {**kwargs, **{k: v for k, v in given.items() if k in inspect.signature(figure.run).parameters}}
  start = time.perf_counter()
  try:
    with jax.default_matmul_precision(config.Config.matmul_precision):  # exact float32 on every backend
      result = figure.run(**kwargs)
  except Skipped as e:
    print(f"{figure.name}: skipped: {e}", flush=True)
    return
  wall = time.perf_counter() - start
  _draw(figure, result.data, out / figure.name)
  # In the order the experiment gave (panels, legend entries): --redraw draws the same figure.
  command = " ".join(["python scripts/make_figures.py", *argv])
  runs.write_json(out / f"{figure.name}.json", report.record(figure, result, scale=args.scale, command=command,
                                                              wall_time_s=wall), sort_keys=False)
  if result.table:
    runs.write_csv(out / f"{figure.name}.csv", result.table)
  for text in figure.failed_checks(result.claims):
    print(f"{figure.name}: this run does not show its stated claim: {text}", flush=True)
  print(f"{figure.name}: {wall:.0f}s; " + "; ".join(f"{k} = {report.value(v)}" for k, v in
                                                   list(result.claims.items())[:4]), flush=True)


def _committed_time(name: str, scale: str) -> str:
  """How long the committed figure took to make, as text, when it was made at the scale asked for."""
  path = Path(COMMITTED) / f"{name}.json"
  if scale != "full" or not path.exists():
    return ""
  return f" (the committed one took {json.loads(path.read_text())['wall_time_s']:.0f} s)"


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  args = _parse(argv)
  compile_cache.enable()
  names = args.only.split(",") if args.only is not None else list(FIGURES)  # --only "": no figure named ""
  unknown = [n for n in names if n not in FIGURES]
  if unknown:
    print(f"error: unknown figure(s) {', '.join(unknown)}; choose from: {', '.join(FIGURES)}", file=sys.stderr)
    return 2
  if args.out is None:
    args.out = COMMITTED if args.scale == "full" else f"runs/figures-{args.scale}"
  out = Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  print(runs.device_summary(), flush=True)
  total = time.perf_counter()
  # A line as each figure starts, with the time its committed version took, and one as it ends, with elapsed and
  # time left; on a terminal also a bar, and the experiments' own bars and lines of the networks they train.
  lines = progress.Lines("figure", len(names))
  with progress.bar(len(names), "figures", "fig") as bar:
    for i, name in enumerate(names, 1):
      bar.set_postfix_str(name)
      if args.redraw:
        try:
          _redraw(FIGURES[name], out)
        except BadRecord as e:
          print(f"error: {e}", file=sys.stderr)
          return 2
      else:
        print(f"figure {i}/{len(names)}: {name}{_committed_time(name, args.scale)} ...", flush=True)
        _make(FIGURES[name], args, argv)
      bar.update()
      lines.done(i, name)
  records = {n: json.loads((out / f"{n}.json").read_text()) for n in FIGURES if (out / f"{n}.json").exists()}
  runs.write_text(out / "README.md", report.readme(list(FIGURES.values()), records))
  print(f"wrote {len(names)} figure(s) and {out / 'README.md'} in {time.perf_counter() - total:.0f}s", flush=True)
  return 0


if __name__ == "__main__":
  cli.run(main)
