"""The seed labs: their runs over seeds, their published accuracies, and the table of ours beside them.

Published numbers: Lab 10 of Sung Kim et al.'s "Deep Learning Zero To All", one unseeded run each, in its three
versions: TF1 (``lab-10-*.py``) and TF2 (``tf2/tf2-10-*.py``) in https://github.com/hunkim/DeepLearningZeroToAll,
PyTorch (``CNN/lab-10-*``) in https://github.com/deeplearningzerotoall/PyTorch. TF1: 15 epochs, batch 100; TF2:
1 epoch, batch 128; PyTorch: 15 epochs, batch 100 (its 10-1 and 10-2 figures were computed on unscaled 0–255 test
inputs, a bug in the original notebooks).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from lab10 import config, data, progress, runs, train

PUBLISHED: dict[str, dict[str, float | None]] = {
    "lab10-1-softmax": {"TF1": 0.9035, "TF2": None, "PyTorch": 0.8944},
    "lab10-1-sigmoid": {"TF1": None, "TF2": 0.9241, "PyTorch": None},
    "lab10-2-relu": {"TF1": 0.9455, "TF2": 0.9558, "PyTorch": 0.9423},
    "lab10-3-xavier": {"TF1": 0.9783, "TF2": 0.9607, "PyTorch": 0.9805},
    "lab10-4-deep": {"TF1": 0.9742, "TF2": 0.9684, "PyTorch": 0.9819},
    "lab10-5-dropout": {"TF1": 0.9804, "TF2": 0.9562, "PyTorch": 0.9772},
    "lab10-6-batchnorm": {"TF1": 0.9737, "TF2": 0.9685, "PyTorch": None},
}
NOTES = {
    "lab10-1-sigmoid": "exists only in TF2 (1 epoch); here at the TF1 budget",
    "lab10-2-relu": "PyTorch figure on unscaled test inputs",
    "lab10-1-softmax": "PyTorch figure on unscaled test inputs",
    "lab10-6-batchnorm": "TF1's BN lab was 784-32-32-10, lr 0.01, batch 32, 10 epochs; ours is TF2's net",
}


def _finished(workdir: Path, c: config.Config) -> bool:
  """A finished run of this config (run-control flags aside) is already in ``workdir``: reuse it."""
  try:
    same = not config.differences(c, config.load_json(workdir / "config.json"))
    return same and len(runs.read_jsonl(workdir / "metrics.jsonl")) == c.epochs \
        and (workdir / "summary.json").exists()
  except (OSError, config.ConfigError):
    return False


def run_seeds(configs: dict[str, config.Config], seeds: int, ds: data.Dataset, workroot: Path) -> dict:
  """Train ``configs[name]`` with seeds 0 … ``seeds`` − 1 in ``workroot/name/seed<k>``, reusing a finished run
  of the same config there; ``{name: [{"seed", "records" (metrics.jsonl), "wall_time_s" (its own fit time)}]}``.

  scripts/reproduce_labs.py and the lab_learning_curves figure share these runs."""
  results = {}
  jobs = [(name, seed) for name in configs for seed in range(seeds)]
  lines = progress.Lines("run", len(jobs))
  for i, (name, seed) in enumerate(progress.iterate(jobs, "runs", "run"), 1):  # a bar on a terminal
    # An unfinished run left in the workdir is replaced, not resumed (its results were never read): a run
    # checkpoints its last epoch only.
    c = dataclasses.replace(configs[name], seed=seed, workdir=str(workroot / name / f"seed{seed}"), overwrite=True,
                            checkpoint_every=configs[name].epochs)
    workdir = Path(c.workdir)
    reused = _finished(workdir, c)
    if not reused:
      workdir = train.fit(c, ds, verbose=False).workdir
    records = runs.read_jsonl(workdir / "metrics.jsonl")
    wall = json.loads((workdir / "summary.json").read_text())["wall_time_s"]
    results.setdefault(name, []).append({"seed": seed, "records": records, "wall_time_s": wall})
    lines.done(i, f"{name} seed {seed}: test accuracy {records[-1]['test_accuracy']:.4f} ({wall:.0f}s"
                  f"{', reused' if reused else ''})")
  return results


def best_val_test_accuracy(records: list[dict]) -> float:
  """Test accuracy at the epoch of highest validation accuracy (first such epoch)."""
  best = max(records, key=lambda r: (r["val_accuracy"], -r["epoch"]))
  return best["test_accuracy"]


def summarize(runs: dict[str, list[dict]]) -> dict:
  """``runs[name]`` = one dict per seed: {"seed", "records" (metrics.jsonl), "wall_time_s"} → table rows."""
  rows = {}
  for name, seeds in runs.items():
    final = np.array([s["records"][-1]["test_accuracy"] for s in seeds])
    selected = np.array([best_val_test_accuracy(s["records"]) for s in seeds])
    rows[name] = {
        "seeds": [s["seed"] for s in seeds],
        "test_accuracy": final.tolist(),
        "test_accuracy_mean": float(final.mean()),
        "test_accuracy_std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
        "val_selected_test_accuracy_mean": float(selected.mean()),
        "val_selected_test_accuracy_std": float(selected.std(ddof=1)) if len(selected) > 1 else 0.0,
        "wall_time_s_per_seed": float(np.mean([s["wall_time_s"] for s in seeds])),
        "published": PUBLISHED.get(name, {}),
    }
  return rows


def _pm(mean: float, std: float) -> str:
  return f"{mean:.4f} ± {std:.4f}"


def markdown_table(rows: dict, published: bool = True) -> str:
  """A Markdown table of ``summarize`` rows; with ``published``, the three lab versions beside ours and
  how far our mean falls short of each published figure above it."""
  head = "| run | test acc (final epoch) | test acc (best val epoch) |"
  rule = "|---|---|---|"
  if published:
    head += " TF1 | TF2 | PyTorch | short of |"
    rule += "---|---|---|---|"
  head += " s / seed |"
  rule += "---|"
  lines = [head, rule]
  # The labs in their own order, anything else alphabetically (JSON round trips sort the keys).
  order = {name: i for i, name in enumerate(PUBLISHED)}
  for name, r in sorted(rows.items(), key=lambda item: (order.get(item[0], len(order)), item[0])):
    n = len(r["seeds"])
    line = (f"| `{name}` | {_pm(r['test_accuracy_mean'], r['test_accuracy_std'])} (n={n}) | "
            f"{_pm(r['val_selected_test_accuracy_mean'], r['val_selected_test_accuracy_std'])} |")
    if published:
      pub = r["published"]
      line += "".join(f" {pub.get(v):.4f} |" if pub.get(v) is not None else " – |" for v in ("TF1", "TF2", "PyTorch"))
      short = [f"{(r['test_accuracy_mean'] - v) * 100:+.2f} pts ({k})" for k, v in pub.items()
               if v is not None and r["test_accuracy_mean"] < v]
      line += f" {', '.join(short) or 'none'} |"
    line += f" {r['wall_time_s_per_seed']:.0f} |"
    lines.append(line)
  return "\n".join(lines) + "\n"


README_START = "<!-- presets-table: generated by scripts/reproduce_labs.py from figures/labs.json -->"
README_END = "<!-- /presets-table -->"


def report(result: dict) -> str:
  """figures/labs.md: both tables, the command, the machine and the wall time."""
  m = result["machine"]
  scale = "QUICK (1 epoch, 5000-example subset): not comparable to the published numbers" if result["quick"] \
      else "TF1 budget: 15 epochs, batch 100, Adam 1e-3, 55k/5k/10k split"
  parts = [
      "# The seed labs, reproduced over seeds\n",
      f"Command: `{result['command']}`  \nScale: {scale}  \n"
      f"Machine: {m['processor']} ({m['platform']}), backend {m['backend']}, jax {m['jax']}  \n"
      f"Training time (each run's own fit time, summed): presets {result['presets_wall_time_s'] / 60:.1f} min, "
      f"activation swap {result['swap_wall_time_s'] / 60:.1f} min\n",
      "## Presets (mean ± std over seeds)\n",
      markdown_table(result["presets"]),
      "Published numbers: one unseeded run each of \"Deep Learning Zero To All\" Lab 10 (TF1, TF2, PyTorch; "
      "sources in lab10/labs.py). "
      "\"short of\" lists each published figure above our mean, and by how many points.\n",
  ]
  notes = [f"- `{k}`: {v}" for k, v in NOTES.items() if k in result["presets"]]
  if notes:
    parts.append("\n".join(notes) + "\n")
  if result.get("activation_swap"):
    parts += ["## Swap the activation: lab10-4-deep network, same budget\n",
              markdown_table(result["activation_swap"], published=False)]
  return "\n".join(parts)


def readme_table(result: dict) -> str:
  """The README's presets table, between its markers."""
  return f"{README_START}\n{markdown_table(result['presets'])}{README_END}"
