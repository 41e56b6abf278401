"""lab10.cli's contract for every script: a file that cannot be written ends it in one line naming the file, with
exit status 4 (train.py's own cases, resuming after it: tests/test_script_train.py)."""

import shutil

import pytest

import cli
from conftest import ROOT, fill

TINY_TRAIN = ["--dataset", "synthetic", "--depth", "1", "--width", "8", "--epochs", "1"]


@pytest.mark.parametrize("script, flags, written", [
    ("sweep", [*TINY_TRAIN, "--seeds", "0:2", "--workdir", "{disk}/sweep"], "{disk}/sweep"),
    ("probe_init", ["--depths", "1", "--widths", "8", "--seeds", "1", "--batch", "10", "--out", "{disk}/p.csv"],
     "{disk}/p.csv"),
    ("make_figures", ["--redraw", "--only", "variance_vs_depth", "--out", "{disk}"], "{disk}/variance_vs_depth"),
    ("reproduce_labs", ["--quick", "--only", "lab10-1-sigmoid", "--seeds", "1", "--no_swap",
                        "--workroot", "{disk}/runs", "--out", "{disk}"], "{disk}/runs"),
])
def test_a_full_disk_ends_each_script_in_one_line_with_status_4(script, flags, written, small_disk):
  if script == "make_figures":  # redrawing needs the figure's data, copied in before the disk fills
    shutil.copy(ROOT / "figures" / "variance_vs_depth.json", small_disk)
  fill(small_disk)
  status, _, err = cli.run(script, *(f.format(disk=small_disk) for f in flags))
  assert status == 4 and err.count("\n") == 1, err
  assert err.startswith(f"error: cannot write {written.format(disk=small_disk)}")
  assert "No space left on device (ENOSPC)" in err
