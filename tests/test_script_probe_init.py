"""scripts/probe_init.py as a user runs it: bad inputs exit 2 with one line; a small grid writes one row per
network and layer, and each draw's values beside them."""

import csv
import json

import numpy as np
import pytest

import cli

# A small grid, so that a row whose input is wrongly accepted ends in seconds.
BASE = ["--activations", "tanh", "--inits", "glorot_uniform", "--depths", "2", "--widths", "8", "--seeds", "1",
        "--batch", "10"]


# Each row: flags after BASE (``{tmp}``: the test's folder, where ``file`` is a file), and what the one stderr
# line says. Every row but the --out one writes to --out {tmp}/out/init.csv, which must not be created.
BAD_INPUTS = [
    (["--activations", "tanh,swish2"], "--activation 'swish2' is not valid; choose from: sigmoid, tanh, relu"),
    (["--inits", "xavier"], "--init 'xavier' is not valid; choose from: normal, glorot_uniform"),
    (["--data_dir", "/nonexistent/lab10"], "data directory /nonexistent/lab10 does not exist"),
    (["--depths", "x"], "argument --depths: 'x' is not a comma-separated list of integers"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--depths", "0"], "--depths 0 is out of range; expected integers >= 1"),
    (["--depths", "2,-1"], "--depths -1 is out of range; expected integers >= 1"),
    (["--widths", "0"], "--widths 0 is out of range; expected integers >= 1"),
    (["--seeds", "0"], "--seeds 0 is out of range; expected an integer >= 1"),
    (["--batch", "0"], "--batch 0 is out of range; expected an integer >= 1"),
    (["--out", "{tmp}/file/init.csv"], "--out {tmp}/file/init.csv: cannot create its folder"),
    (["--out", ""], "--out '' is not a file path"),
    (["--out", "{tmp}"], "--out '{tmp}' is not a file path"),
    (["--out", "{tmp}/file"], "--out: {tmp}/file exist(s); pass --overwrite to replace, or choose another --out"),
    (["--widths", "100000000"], "--widths 100000000 with --depths 2 and --seeds 1 needs"),
    (["--seeds", "100000000"], "--widths 8 with --depths 2 and --seeds 100000000 needs 48 GiB of kernels"),
    (["--activations", ""], "--activation '' is not valid; choose from: sigmoid, tanh, relu"),
    (["--inits", ""], "--init '' is not valid; choose from: normal, glorot_uniform"),
    (["--depths", ""], "argument --depths: '' is not a comma-separated list of integers"),
    (["--depths", "2,,3"], "argument --depths: '2,,3' is not a comma-separated list of integers"),
    (["--widths", "1.5"], "argument --widths: '1.5' is not a comma-separated list of integers"),
    (["--seeds", "-1"], "--seeds -1 is out of range; expected an integer >= 1"),
    (["--batch", "x"], "argument --batch: invalid int value: 'x'"),
    (["--activations", "tanh,relu,tanh"], "--activations lists tanh more than once"),
    (["--widths", "8,8"], "--widths lists 8 more than once"),
    (["--data_dir", ""], "--data_dir is empty; expected the folder of the MNIST IDX files"),
    (["--data_dir", "{tmp}/file"], "data directory {tmp}/file does not exist"),
]


@pytest.mark.parametrize("flags,message", BAD_INPUTS, ids=[" ".join(flags) for flags, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_naming_it(flags, message, tmp_path):
  (tmp_path / "file").write_text("x")
  flags = [f.format(tmp=tmp_path) for f in flags]
  out = [] if "--out" in flags else ["--out", str(tmp_path / "out" / "init.csv")]
  status, lines = cli.main("probe_init", *BASE, *out, *flags)
  assert status == 2 and len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], lines
  assert not (tmp_path / "out").exists(), "a rejected probe must not write"
  assert (tmp_path / "file").read_text() == "x"


def test_probe_init_writes_one_row_per_network_and_layer(tmp_path):
  out = tmp_path / "probe" / "init.csv"
  status, lines = cli.main("probe_init", "--activations", "tanh", "--inits", "glorot_standard,glorot_uniform",
                           "--depths", "3", "--widths", "64", "--seeds", "2", "--batch", "40", "--out", str(out))
  assert (status, lines) == (0, [])
  rows = list(csv.DictReader(open(out)))
  assert [(r["init"], r["layer"], r["seeds"]) for r in rows] == [
      (i, str(l), "2") for i in ("glorot_standard", "glorot_uniform") for l in range(3)]
  var = {(r["init"], int(r["layer"])): float(r["forward/pre_var"]) for r in rows}
  # Standard init: n·Var[W] = 1/3, so the (near-linear) tanh signal loses variance layer after layer.
  assert var["glorot_standard", 2] < 0.5 * var["glorot_standard", 1] < 0.25 * var["glorot_standard", 0]
  saved = json.loads(out.with_suffix(".json").read_text())
  assert saved["data"] == "synthetic" and saved["batch"] == 40 and len(saved["rows"]) == 6
  per_seed = saved["per_seed"]
  assert len(per_seed) == 12 and {r["seed"] for r in per_seed} == {0, 1}
  for row in rows:  # each row is the mean of its network's two draws
    draws = [r["forward/pre_var"] for r in per_seed if (r["init"], r["layer"]) == (row["init"], int(row["layer"]))]
    assert len(draws) == 2 and draws[0] != draws[1]
    assert float(row["forward/pre_var"]) == pytest.approx(np.mean(draws), rel=1e-6)
