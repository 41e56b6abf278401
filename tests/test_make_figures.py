"""scripts/make_figures.py end to end, the registry of figures, and the committed figures: each one's data back
what figures/README.md says it shows."""

import csv
import json
import subprocess
import sys

import pytest

import cli
from lab10.experiments import FIGURES, MODULES

from conftest import ROOT


def test_make_figures_quick_writes_png_pdf_data_and_readme(tmp_path):
  # --quick without --out writes to runs/figures-quick, never over the committed figures/.
  result = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--quick", "--only",
                           "selu_self_normalization,lab_accuracies"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  assert not (tmp_path / "figures").exists()
  tmp_path = tmp_path / "runs" / "figures-quick"
  assert "lab_accuracies: skipped:" in result.stdout
  for ext in ("png", "pdf", "json"):
    assert (tmp_path / f"selu_self_normalization.{ext}").stat().st_size > 1000
  assert (tmp_path / "selu_self_normalization.png").read_bytes()[:4] == b"\x89PNG"
  record = json.loads((tmp_path / "selu_self_normalization.json").read_text())
  assert record["quick"] is True and abs(record["claims"]["selu_mean_top"]) < 0.05
  assert record["claim_text"]["selu_mean_top"] == "SELU + LeCun: mean at layer 32"
  assert record["statement"] == FIGURES["selu_self_normalization"].statement()
  assert set(record["machine"]["packages"]) == {"jax", "flax", "optax"} and record["machine"]["cpu"]
  readme = (tmp_path / "README.md").read_text()
  assert "## selu_self_normalization" in readme and "--quick" in readme and "## lab_accuracies" not in readme
  assert "| `selu_mean_top` | SELU + LeCun: mean at layer 32 |" in readme
  # --redraw: the PNG again from the saved data, the experiment's measured JSON (command, time, claims, data)
  # untouched and its statement refreshed from the module. A record without a statement redraws too.
  saved = (tmp_path / "selu_self_normalization.json").read_text()
  (tmp_path / "selu_self_normalization.png").unlink()
  old = json.loads((ROOT / "figures" / "dropout_overfitting.json").read_text())
  del old["statement"]
  (tmp_path / "dropout_overfitting.json").write_text(json.dumps(old))
  redraw = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--redraw", "--only",
                           "selu_self_normalization,variance_vs_depth,dropout_overfitting", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert redraw.returncode == 0, redraw.stderr
  assert "variance_vs_depth: skipped: no" in redraw.stdout
  for name in ("selu_self_normalization", "dropout_overfitting"):
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
  assert (tmp_path / "selu_self_normalization.json").read_text() == saved
  assert json.loads((tmp_path / "dropout_overfitting.json").read_text()) == \
      {**old, "statement": FIGURES["dropout_overfitting"].statement()}
  assert "## dropout_overfitting" in (tmp_path / "README.md").read_text()
  long = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--scale", "long", "--only",
                         "lab_accuracies"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
  assert long.returncode == 0 and (tmp_path / "runs" / "figures-long" / "README.md").exists(), long.stderr
  bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--only", "nope"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert bad.returncode == 2 and "unknown figure(s) nope" in bad.stderr
  empty = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_figures.py"), "--only", ""],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert empty.returncode == 2 and "unknown figure(s) ;" in empty.stderr  # never "every figure at full scale"


def test_every_figure_is_one_module_with_a_full_statement_and_a_test_file():
  assert list(FIGURES)[:3] == ["variance_vs_depth", "glorot_fig6_activations", "glorot_fig7_backprop_gradients"]
  for figure in FIGURES.values():
    assert figure.checks and figure.mirrors and figure.differences, figure.name
    assert figure.draw.__module__ in (figure.run.__module__, "lab10.plotting"), f"{figure.name} draws elsewhere"
  for module in MODULES:
    name = module.__name__.rsplit(".", 1)[1]
    assert (ROOT / "tests" / f"test_fig_{name}.py").exists(), f"no tests/test_fig_{name}.py for {module.__name__}"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_committed_figure_data_show_what_the_readme_says(name):
  record = json.loads((ROOT / "figures" / f"{name}.json").read_text())
  assert record["quick"] is False, f"figures/{name}.json is not the full-scale figure"
  assert FIGURES[name].failed_checks(record["claims"]) == []
  entry = (ROOT / "figures" / "README.md").read_text().split(f"## {name}\n")[1].split("\n## ")[0]
  statement = FIGURES[name].statement()
  assert record["statement"] == statement, f"figures/{name}.json states another text: make_figures.py --redraw"
  for text in [*statement["checks"], *statement["differences"], *statement["rejected"], *statement["caveats"]]:
    assert f"- {text}\n" in entry, f"figures/README.md does not state: {text}"
  assert f"**Mirrors:** {statement['mirrors']}" in entry


def test_committed_figure_tables_are_their_csv_and_in_the_readme():
  readme = (ROOT / "figures" / "README.md").read_text()
  tables = {name: json.loads((ROOT / "figures" / f"{name}.json").read_text()).get("table") for name in FIGURES}
  assert tables["glorot_table1_mnist"], "Table 1's figure has a table"
  for name, rows in tables.items():
    if not rows:
      assert not (ROOT / "figures" / f"{name}.csv").exists()
      continue
    # A missing number: NaN ("nan") or None ("") in the CSV, null in the JSON.
    cell = lambda k, v: v if k == "configuration" else None if v in ("", "nan") else float(v)
    with open(ROOT / "figures" / f"{name}.csv", newline="") as f:
      assert [{k: cell(k, v) for k, v in row.items()} for row in csv.DictReader(f)] == rows
    entry = readme.split(f"## {name}\n")[1].split("\n## ")[0]
    assert f"Table ({name}.csv):" in entry and "| " + " | ".join(rows[0]) + " |" in entry


def test_failed_checks_name_what_the_claims_contradict_or_lack():
  name = "he_fig3_deep_relu"
  claims = {"he_first_step_error_below_0.1": None,  # null: NaN (never below), which no comparison passes
            "xavier_min_error": 0.89, "xavier_first_grad_at_init": 1e-5, "he_first_grad_at_init": 1.0}
  assert FIGURES[name].failed_checks(claims) == [FIGURES[name].checks[0].text]
  del claims["xavier_min_error"]
  assert FIGURES[name].failed_checks(claims)[1].endswith("(no claim 'xavier_min_error')")


# (flags, what the one stderr line says); ``{tmp}`` is the test's folder, where ``file`` is a file and
# ``bad/variance_vs_depth.json`` is not JSON.
BAD_INPUTS = [
    (["--only", ""], "unknown figure(s) ; choose from: variance_vs_depth"),
    (["--only", "nope"], "unknown figure(s) nope"),
    (["--scale", "huge"], "argument --scale: invalid choice: 'huge'"),
    (["--time_limit", "-1"], "--time_limit -1 is negative"),
    (["--time_limit", "x"], "argument --time_limit: invalid float value: 'x'"),
    (["--data_dir", "{tmp}/missing"], "--data_dir {tmp}/missing does not exist or is not a folder"),
    (["--data_dir", "{tmp}/file"], "--data_dir {tmp}/file does not exist or is not a folder"),
    (["--out", "{tmp}/file"], "--out {tmp}/file exists and is not a folder"),
    (["--redraw", "--only", "variance_vs_depth", "--out", "{tmp}/bad"],
     "{tmp}/bad/variance_vs_depth.json cannot be read as variance_vs_depth's record (JSONDecodeError"),
    (["--redraw", "--only", "variance_vs_depth", "--out", "{tmp}/other"],
     "{tmp}/other/variance_vs_depth.json cannot be read as variance_vs_depth's record (ValueError: it is the "
     "record of 'selu_self_normalization')"),
    (["--redraw", "--only", "variance_vs_depth", "--out", "{tmp}/nodata"],
     "{tmp}/nodata/variance_vs_depth.json cannot be read as variance_vs_depth's record (KeyError: 'data')"),
    (["--redraw", "--only", "variance_vs_depth", "--out", "{tmp}/wrongdata"],
     "{tmp}/wrongdata/variance_vs_depth.json cannot be read as variance_vs_depth's record (TypeError: missing"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--only", "variance_vs_depth,nope"], "unknown figure(s) nope; choose from"),
    (["--only", "VARIANCE_VS_DEPTH"], "unknown figure(s) VARIANCE_VS_DEPTH"),
    (["--time_limit", "nan"], "--time_limit nan is not a number"),
    (["--time_limit"], "argument --time_limit: expected one argument"),
    (["--scale"], "argument --scale: expected one argument"),
    (["--quick", "--scale", "full"], "--quick and --scale full disagree"),
    (["--sca", "long", "--quick"], "--quick and --scale long disagree"),  # an abbreviation is the flag too
    (["--quick", "--scale=full"], "--quick and --scale full disagree"),
    (["--out", ""], "--out is empty; expected a folder"),
    (["--data_dir", " "], "--data_dir is empty; expected the folder of the MNIST IDX files"),
    (["--out", "{tmp}/file/sub"], "--out {tmp}/file/sub cannot be a folder: {tmp}/file is a file"),
]


@pytest.mark.parametrize("flags,message", BAD_INPUTS, ids=[" ".join(f) for f, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_it(flags, message, tmp_path):
  (tmp_path / "file").write_text("")
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "variance_vs_depth.json").write_text("{bad")
  for folder, record in (("other", {"name": "selu_self_normalization", "data": {}}),
                         ("nodata", {"name": "variance_vs_depth"}),
                         ("wrongdata", {"name": "variance_vs_depth", "data": {"title": "t"}})):
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "variance_vs_depth.json").write_text(json.dumps(record))
  status, lines = cli.main("make_figures", *(f.format(tmp=tmp_path) for f in flags))
  assert status == 2 and len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], lines


def test_the_scale_is_full_unless_given_and_quick_agrees_with_scale_quick():
  parse = cli.load("make_figures")._parse
  assert parse([]).scale == "full" and parse(["--quick"]).scale == "quick"
  assert parse(["--scale", "quick", "--quick"]).scale == "quick" and parse(["--sca", "long"]).scale == "long"
