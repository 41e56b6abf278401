#!/usr/bin/env python
"""Regenerate the paper-style figures in figures/: PNG + PDF + the data (JSON) per figure, and figures/README.md.

Each figure's experiment lives in lab10/experiments/, its drawing in lab10/plotting.py; --quick runs the
smaller scale of experiments.QUICK. The README entry of each figure is generated from its measured data.
"""

from lab10 import cli

if __name__ == "__main__":  # before the heavy imports: a signal while JAX loads is one line too
  cli.exit_on_signals()

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")  # figures are files here: no window, whatever the machine offers

from lab10 import config, experiments, plotting, progress, runs  # noqa: E402

# name → (experiment, drawing, the paper figure or claim it mirrors)
FIGURES = {
    "variance_vs_depth": (experiments.variance_vs_depth, plotting.variance_vs_depth,
                          "He et al. 2015, Eq. 9 and 13 (§2.2): with ReLU, ½·n·Var[W] = 1 keeps forward and "
                          "backward variances flat over depth; Var 1/n shrinks them by ½ per layer "
                          "(≈ 2⁻²⁹ ≈ 1.9e−9 over 30 layers)."),
    "glorot_fig6_activations": (experiments.glorot_fig6_activations, plotting.layer_histograms,
                                "Glorot & Bengio 2010, Fig. 6: under standard init the tanh activation "
                                "histograms narrow with depth; under normalized init they stay similar."),
    "glorot_fig7_backprop_gradients": (experiments.glorot_fig7_backprop_gradients, plotting.layer_histograms,
                                       "Glorot & Bengio 2010, Fig. 7: under standard init back-propagated "
                                       "gradients shrink toward the input (≈ ×1/√3 per layer); under normalized "
                                       "init they stay level."),
    "glorot_fig8_weight_gradients": (experiments.glorot_fig8_weight_gradients, plotting.layer_histograms,
                                     "Glorot & Bengio 2010, Fig. 8: weight-gradient spread is similar across "
                                     "layers (with normalized init, the same at every layer)."),
    "glorot_fig2_sigmoid_saturation": (experiments.glorot_fig2_sigmoid_saturation, plotting.activation_trajectories,
                                       "Glorot & Bengio 2010, Fig. 2: with sigmoid and standard init the top "
                                       "hidden layer saturates at 0 early in training and only slowly leaves it "
                                       "while the error falls; the lower layers' means stay near or above 0.5."),
    "glorot_training_saturation": (experiments.glorot_training_saturation, plotting.curves,
                                   "Glorot & Bengio 2010, Figs. 3-4: during training with standard init, tanh layers "
                                   "saturate one after the other, from the first hidden layer up; softsign layers "
                                   "move together and saturate less."),
    "he_fig3_deep_relu": (experiments.he_fig3_deep_relu, plotting.curves,
                          "He et al. 2015, Fig. 3: a 30-layer plain ReLU net trained with SGD (momentum 0.9, weight "
                          "decay 5e-4) stalls completely with Xavier init (\"its gradients are all diminishing\"); "
                          "with He init it converges."),
    "he_fig2_fig3_depth": (experiments.he_fig2_fig3_depth, plotting.curves,
                           "He et al. 2015, Figs. 2 and 3: with the paper's optimizer, a 22-layer plain ReLU net "
                           "converges under both initializations, He's starting earlier; at 30 layers Xavier's "
                           "stalls and He's converges."),
    "lab10_sigmoid_vs_relu": (experiments.lab10_sigmoid_vs_relu, plotting.curves,
                              "Lab 10's story (sigmoid → ReLU): the gradient reaching the first layer of a deep "
                              "sigmoid net is orders of magnitude smaller than the last layer's; with ReLU it is not."),
    "activation_zoo": (experiments.activation_zoo, plotting.heatmaps,
                       "Lab 10's exercise \"try other activations and initializers\": which pairs train, and how "
                       "balanced the gradient is from first to last layer at init."),
    "dropout_overfitting": (experiments.dropout_overfitting, plotting.curves,
                            "Lab 10-5 (and Srivastava et al. 2014): dropout narrows the train–test gap of a deep "
                            "MLP that overfits, and raises its test accuracy."),
    "meanfield_phase_diagram": (experiments.meanfield_phase_diagram, plotting.phase_diagram,
                                "Poole et al. 2016 / Schoenholz et al. 2017: tanh χ₁ = 1 line (σ_b² = 0.05 → "
                                "σ_w² ≈ 1.76), depth scale ξ_c, trainable up to ≈ 6ξ_c."),
    "selu_self_normalization": (experiments.selu_self_normalization, plotting.self_normalization,
                                "Klambauer et al. 2017: (mean 0, variance 1) attracts SELU + LeCun activations from "
                                "inputs with mean 0.5 and variance 4 (|mean|, |var − 1| < 0.05 by layer 16–32)."),
    "lab_accuracies": (experiments.lab_accuracies, plotting.accuracy_bars,
                       "The seed labs (Deep Learning Zero To All, Lab 10): published test accuracies of TF1, TF2 "
                       "and PyTorch versions beside ours."),
    "glorot_table1_mnist": (experiments.glorot_table1_mnist, plotting.accuracy_bars,
                            "Glorot & Bengio 2010 Table 1 (MNIST): test error of 5×1000 sigmoid, tanh and softsign "
                            "nets, standard vs normalized init; sigmoid worst, normalized init helps tanh."),
    "lab_learning_curves": (experiments.lab_learning_curves, plotting.curves,
                            "The seed labs' story, softmax → sigmoid → ReLU → Xavier → deep → dropout → batch norm, "
                            "as learning curves over seeds."),
}
COMMITTED = "figures"             # the full-scale set, committed with the repository
SCALES = {"quick": experiments.QUICK, "full": {}, "long": experiments.LONG}  # scale → overrides per figure
README_HEAD = """# figures/

Written only by `scripts/make_figures.py`, never by hand: each figure as PNG (200 dpi) and PDF, the data behind it
as JSON (`<name>.json`: the plotted data, the claims by identifier with what each measures, and the settings), and
this file. Each entry below says what the figure shows, as statements that tests/test_figures.py asserts on the
committed JSON (a figure whose data contradict them fails the tests), then the command and scale that produced it
and every measured number. The same experiments are also tested at reduced scale.

Full scale is each experiment's defaults (`python scripts/make_figures.py`, written here);
`--quick` (`--scale quick`) runs the same experiments smaller (`lab10.experiments.QUICK`), `--scale long` with the
longer budgets of `lab10.experiments.LONG` (for an accelerator), into runs/figures-<scale>/ unless `--out` names
another folder. `--redraw` redraws PNG and PDF from the saved JSON without re-running anything. `lab_accuracies` needs figures/labs.json from scripts/reproduce_labs.py
and is skipped without it; `lab_learning_curves` reads that script's runs under runs/labs/ and trains the ones
absent there. A NaN (null in the JSON) marks a run that diverged, or an event that never happened.
"""


def _committed_time(name: str, scale: str) -> str:
  """How long the committed figure took to make, as text, when it was made at the scale asked for."""
  path = Path(COMMITTED) / f"{name}.json"
  if scale != "full" or not path.exists():
    return ""
  return f" (the committed one took {json.loads(path.read_text())['wall_time_s']:.0f} s)"


def _scale(record: dict) -> str:
  return record.get("scale", "quick" if record["quick"] else "full")  # records before --scale: quick or full


def _command(argv) -> str:
  return " ".join(["python scripts/make_figures.py", *argv])


def _value(v) -> str:
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return "NaN"  # JSON null: a diverged run, or an event that never happened
  return f"{v:.4g}" if isinstance(v, float) else str(v)


def _entry(name: str, mirrors: str, doc: str, record: dict) -> str:
  text = record.get("claim_text", {})  # absent from records written before claims had identifiers
  claims = "\n".join(f"| `{k}` | {text.get(k, '')} | {_value(v)} |" for k, v in record["claims"].items())
  failed = experiments.failed_checks(name, record["claims"])
  shown = "\n".join(f"- {'**does not hold:** ' if c.text in failed else ''}{c.text}" for c in experiments.CHECKS[name])
  return (f"## {name}\n\n![{name}]({name}.png)\n\n{doc}\n\n**Mirrors:** {mirrors}\n\n"
          f"**Shows** (each asserted on {name}.json by tests/test_figures.py):\n\n{shown}\n\n"
          f"**Produced by:** `{record['command']}` ({_scale(record)} scale, "
          f"{record['wall_time_s']:.0f} s). {record['setting']}\n\n{_table(name, record.get('table'))}"
          f"| claim | measured | value |\n|---|---|---|\n{claims}\n")


def _table(name: str, rows: list[dict] | None) -> str:
  """The figure's table (also ``<name>.csv``), in Markdown; nothing for a figure without one."""
  return f"Table ({name}.csv):\n\n{runs.markdown_table(rows, _value)}\n" if rows else ""


def _draw(draw, data: dict, stem: Path) -> None:
  with plotting.style():
    fig = draw(**data)
    for kind in ("png", "pdf"):  # atomically, like every file lab10 writes
      with runs.atomic(stem.with_suffix(f".{kind}")) as tmp:
        fig.savefig(tmp, format=kind, dpi=200)
  plotting.close(fig)


def _redraw(name: str, out: Path) -> None:
  """Redraw from the saved JSON's data; the JSON itself (command, time, claims) is kept."""
  path = out / f"{name}.json"
  if not path.exists():
    print(f"{name}: skipped: no {path} to redraw from", flush=True)
    return
  _draw(FIGURES[name][1], json.loads(path.read_text())["data"], out / name)
  print(f"{name}: redrawn from {path}", flush=True)


def _make(name: str, args: argparse.Namespace, argv: list[str]) -> None:
  """Run the experiment of figure ``name``, draw it, and write its JSON."""
  experiment, draw, _ = FIGURES[name]
  out = Path(args.out)
  kwargs = dict(SCALES[args.scale].get(name, {}))
  if "data_dir" in inspect.signature(experiment).parameters:
    kwargs["data_dir"] = args.data_dir
  if name == "lab_accuracies":
    kwargs["labs_json"] = str(out / "labs.json")
  start = time.perf_counter()
  try:
    with jax.default_matmul_precision(config.Config.matmul_precision):  # exact float32 on every backend
      result = experiment(**kwargs)
  except experiments.Skipped as e:
    print(f"{name}: skipped: {e}", flush=True)
    return
  wall = time.perf_counter() - start
  _draw(draw, result.data, out / name)
  # In the order the experiment gave (panels, legend entries): --redraw draws the same figure.
  runs.write_json(out / f"{name}.json", {
      "name": name, "command": _command(argv), "scale": args.scale, "quick": args.scale == "quick",
      "wall_time_s": wall,
      "setting": result.setting, "claims": result.claims, "claim_text": result.claim_text, "table": result.table,
      "data": result.data}, sort_keys=False)
  if result.table:
    runs.write_csv(out / f"{name}.csv", result.table)
  for text in experiments.failed_checks(name, result.claims):
    print(f"{name}: this run does not show its stated claim: {text}", flush=True)
  print(f"{name}: {wall:.0f}s; " + "; ".join(f"{k} = {_value(v)}" for k, v in list(result.claims.items())[:4]),
        flush=True)


def _write_readme(out: Path) -> None:
  """figures/README.md over every figure whose data is in ``out``, so --only updates one entry and keeps the rest."""
  records = {name: json.loads((out / f"{name}.json").read_text()) for name in FIGURES
             if (out / f"{name}.json").exists()}
  entries = [_entry(name, FIGURES[name][2], FIGURES[name][0].__doc__.split("\n\n")[0].strip(), record)
             for name, record in records.items()]
  scales = {_scale(r) for r in records.values()}
  total = sum(r["wall_time_s"] for r in records.values())
  scale = (f"**Scale of the figures below: {' and '.join(sorted(scales))}; {total:.0f} s in all (the sum of the "
           "per-figure times).**\n" if records else "")
  runs.write_text(out / "README.md", README_HEAD + "\n" + scale + "\n" + "\n".join(entries))


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--only", default=None, help=f"comma-separated figure names (None: all): {', '.join(FIGURES)}")
  p.add_argument("--scale", choices=list(SCALES), default="full",
                 help="quick: smaller (experiments.QUICK), minutes on a CPU; full: the committed figures' scale; "
                      "long: longer budgets, closer to the papers' (experiments.LONG), for an accelerator")
  p.add_argument("--quick", action="store_true", help="the same as --scale quick")
  p.add_argument("--data_dir", default=None, help="folder with the MNIST IDX files (None: the bundled copy)")
  p.add_argument("--out", default=None,
                 help=f"folder for the figures, their JSON and README.md (None: {COMMITTED} at full scale, "
                      f"runs/figures-<scale> at another --scale: the committed set is replaced only when asked)")
  p.add_argument("--redraw", action="store_true",
                 help="redraw the PNG and PDF from each figure's saved JSON without re-running its experiment "
                      "(after a change to lab10/plotting.py); the JSON and its command are kept")
  args = p.parse_args(argv)
  if args.quick:
    args.scale = "quick"
  names = args.only.split(",") if args.only else list(FIGURES)
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
  with progress.bar(len(names), "figures", "fig") as figures:
    for i, name in enumerate(names, 1):
      figures.set_postfix_str(name)
      if not args.redraw:
        print(f"figure {i}/{len(names)}: {name}{_committed_time(name, args.scale)} ...", flush=True)
      if args.redraw:
        _redraw(name, out)
      else:
        _make(name, args, argv)
      figures.update()
      lines.done(i, name)
  _write_readme(out)
  print(f"wrote {len(names)} figure(s) and {out / 'README.md'} in {time.perf_counter() - total:.0f}s", flush=True)
  return 0


if __name__ == "__main__":
  cli.run(main)
