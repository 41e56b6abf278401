"""What is written beside each figure: its JSON record and its entry in figures/README.md, both from the figure's
full statement (``Figure.statement``) and its measured numbers."""

from __future__ import annotations

import math

from lab10 import runs
from lab10.experiments.figure import Figure, Result

README_HEAD = """# figures/

Written only by `scripts/make_figures.py`, never by hand: each figure as PNG (200 dpi) and PDF, the data behind it
as JSON (`<name>.json`: the plotted data; the claims by identifier with what each measures; the figure's statement —
the paper result it mirrors, how our setting differs, the settings tried and rejected, its caveats, the texts of its
checks; the scale, command, software versions and machine), and this file. Each figure is one module of
`lab10/experiments/` (`lab10.experiments.FIGURES` lists them). Each entry below says what the figure shows, as
statements that the figure's tests (`tests/test_fig_<module>.py`) assert on the committed JSON (a figure whose data
contradict them fails the tests), then the command, scale and machine that produced it and every measured number.

Full scale is each experiment's defaults (`python scripts/make_figures.py`, written here); `--quick`
(`--scale quick`) runs the same experiments smaller (each figure's `quick`), `--scale long` with its longer budgets
(`long`, for an accelerator), into runs/figures-<scale>/ unless `--out` names another folder. `--redraw` redraws
PNG and PDF from the saved JSON without re-running anything (its measured numbers kept, its statement refreshed
from the module). `lab_accuracies` needs figures/labs.json from scripts/reproduce_labs.py and is skipped without it;
`lab_learning_curves` reads that script's runs under runs/labs/ and trains the ones absent there. A NaN (null in the
JSON) marks a run that diverged, or an event that never happened.
"""


def value(v) -> str:
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return "NaN"  # JSON null: a diverged run, or an event that never happened
  return f"{v:.4g}" if isinstance(v, float) else str(v)


def scale_of(record: dict) -> str:
  return record.get("scale", "quick" if record["quick"] else "full")  # records before --scale: quick or full


def record(figure: Figure, result: Result, *, scale: str, command: str, wall_time_s: float) -> dict:
  """The figure's JSON: how it was made, its statement, its claims and table, and the data ``draw`` takes."""
  return {"name": figure.name, "command": command, "scale": scale, "quick": scale == "quick",
          "wall_time_s": wall_time_s, "machine": runs.machine(), "statement": figure.statement(),
          "setting": result.setting, "claims": result.claims, "claim_text": result.claim_text, "table": result.table,
          "data": result.data}


def _machine(record: dict) -> str:
  m = record.get("machine")
  if m is None:
    return "machine and versions not recorded"
  return (f"{m['cpu']}, {m['backend']} backend ({', '.join(m['devices'])}); "
          + ", ".join(f"{k} {v}" for k, v in m["packages"].items()))


def _list(title: str, items: list[str]) -> str:
  return f"**{title}:**\n\n" + "".join(f"- {item}\n" for item in items) + "\n" if items else ""


def entry(figure: Figure, record: dict) -> str:
  """The figure's section of figures/README.md."""
  name, text = figure.name, record.get("claim_text", {})
  claims = "\n".join(f"| `{k}` | {text.get(k, '')} | {value(v)} |" for k, v in record["claims"].items())
  failed = figure.failed_checks(record["claims"])
  shown = [f"{'**does not hold:** ' if c.text in failed else ''}{c.text}" for c in figure.checks]
  table = (f"Table ({name}.csv):\n\n{runs.markdown_table(record['table'], value)}\n" if record.get("table") else "")
  return (f"## {name}\n\n![{name}]({name}.png)\n\n**Mirrors:** {figure.mirrors}\n\n"
          f"{_list(f'Shows (each asserted on {name}.json by its tests)', shown)}"
          f"{_list('Differs from the paper', list(figure.differences))}"
          f"{_list('Tried and rejected', list(figure.rejected))}"
          f"{_list('Caveats', list(figure.caveats))}"
          f"**Produced by:** `{record['command']}` ({scale_of(record)} scale, {record['wall_time_s']:.0f} s; "
          f"{_machine(record)}). {record['setting']}\n\n{table}"
          f"| claim | measured | value |\n|---|---|---|\n{claims}\n")


def readme(figures: list[Figure], records: dict[str, dict]) -> str:
  """figures/README.md over the figures whose records are given, in ``figures``' order."""
  entries = [entry(f, records[f.name]) for f in figures if f.name in records]
  scales = {scale_of(r) for r in records.values()}
  total = sum(r["wall_time_s"] for r in records.values())
  scale = (f"**Scale of the figures below: {' and '.join(sorted(scales))}; {total:.0f} s in all (the sum of the "
           "per-figure times).**\n" if records else "")
  return README_HEAD + "\n" + scale + "\n" + "\n".join(entries)
