"""scripts/reproduce_labs.py: every bad input exits 2 with one line before any work, and only the complete table
may replace the committed figures/labs.* and README.md's presets table."""

import pytest

import cli
from conftest import ROOT

PARTIAL = "takes the complete table (every preset and the swap table, without --quick); this run makes a part of it"
BAD_INPUTS = [
    (["--seeds", "0"], "--seeds 0 is out of range; expected an integer >= 1"),
    (["--seeds", "-1"], "--seeds -1 is out of range; expected an integer >= 1"),
    (["--swap_seeds", "0"], "--swap_seeds 0 is out of range; expected an integer >= 1"),
    (["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    (["--only", ""], "--only : unknown preset(s) ''; choose from: lab10-1-softmax"),
    (["--only", "lab10-1-softmax,nope"], "unknown preset(s) 'nope'"),
    (["--quick", "--update_readme"], f"--update_readme {PARTIAL}"),
    (["--no_swap", "--update_readme"], f"--update_readme {PARTIAL}"),
    (["--only", "lab10-1-softmax", "--update_readme"], f"--update_readme {PARTIAL}"),
    (["--quick", "--out", "figures"], f"--out figures {PARTIAL}"),
    (["--only", "lab10-2-relu", "--out", str(ROOT / "figures")], f"--out {ROOT / 'figures'} {PARTIAL}"),
    (["--workroot", "{tmp}/file"], "--workroot {tmp}/file exists and is not a folder"),
    (["--out", "{tmp}/file"], "--out {tmp}/file exists and is not a folder"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--seeds"], "argument --seeds: expected one argument"),
    (["--swap_seeds", "x"], "argument --swap_seeds: invalid int value: 'x'"),
    (["--only", "lab10-1-softmax,lab10-1-softmax"], "--only lists lab10-1-softmax more than once"),
    (["--data_dir", ""], "--data_dir is empty; expected the folder of the MNIST IDX files"),
    (["--out", ""], "--out is empty; expected a folder"),
    (["--workroot", " "], "--workroot is empty; expected a folder"),
    (["--out", "{tmp}/file/labs"], "--out {tmp}/file/labs cannot be a folder: {tmp}/file is a file"),
    (["--workroot", "{tmp}/file/runs"], "--workroot {tmp}/file/runs cannot be a folder: {tmp}/file is a file"),
]


@pytest.mark.parametrize("flags,message", BAD_INPUTS, ids=[" ".join(f) for f, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_it(flags, message, tmp_path):
  (tmp_path / "file").write_text("")
  committed = {p: p.read_bytes() for p in [ROOT / "README.md", *(ROOT / "figures").glob("labs.*")]}
  status, lines = cli.main("reproduce_labs", *(f.format(tmp=tmp_path) for f in flags))
  assert status == 2 and len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], lines
  assert committed == {p: p.read_bytes() for p in committed}


def test_a_quick_or_partial_run_writes_under_runs_by_default(monkeypatch):
  parse = cli.load("reproduce_labs")._parse
  quick = parse(["--quick"])
  assert (quick.out, quick.workroot) == ("runs/labs-quick", "runs/labs-quick")  # never the full runs' folder
  partial = parse(["--only", "lab10-2-relu"])
  assert (partial.out, partial.workroot) == ("runs/labs-partial", "runs/labs")
  assert parse([]).out == "figures" and parse(["--seeds", "2", "--update_readme"]).out == "figures"
