"""lab10.train: setup from one seed, epochs (whole and in pieces), the one training loop, evaluation, fit."""

import dataclasses
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import ROOT
from lab10 import checkpoints as checkpoints_lib
from lab10 import config as C
from lab10 import flags
from lab10 import data, divergence, progress, runs, step, train, workdir


@pytest.fixture(scope="module")
def small_synthetic():
  return data.synthetic(sizes=(2000, 500))


def _tiny(seed=0, **overrides):
  c = C.with_preset(None, depth=2, width=(16,), activation="tanh", init="glorot_normal", bias_init="normal",
                    bias_std=0.1, seed=seed, **overrides)
  return train.setup(c, (4, 4, 1), 3)


def _data(n=50, seed=1):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((n, 4, 4, 1)).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


def _copy(state):
  """A fresh copy: an epoch donates the state it is given."""
  return jax.tree.map(jnp.array, state)


def _same(a, b) -> bool:
  """Bitwise equality of two train states (the PRNG key compared through its data)."""
  leaves = lambda s: jax.tree.leaves((s.params, s.rest, s.opt_state, s.step, jax.random.key_data(s.dropout_key)))
  return all(np.array_equal(u, v) for u, v in zip(leaves(a), leaves(b), strict=True))


# --- setup --------------------------------------------------------------------------------------


def test_setup_derives_model_data_order_and_dropout_from_the_seed():
  c = C.with_preset(None, depth=2, width=(16,), seed=7)
  s = train.setup(c, (4, 4, 1), 3)
  init_key, data_key, dropout_key = jax.random.split(jax.random.key(7), 3)
  model = C.make_model(c, (4, 4, 1), 3, nnx.Rngs(params=init_key))
  assert runs.tree_sha256(s.state.params) == runs.tree_sha256(nnx.state(model, nnx.Param))
  np.testing.assert_array_equal(jax.random.key_data(s.data_key), jax.random.key_data(data_key))
  np.testing.assert_array_equal(jax.random.key_data(s.state.dropout_key), jax.random.key_data(dropout_key))
  assert s.names == ["dense_0", "dense_1", "head"] and int(s.state.step) == 0
  assert runs.tree_sha256(train.setup(c, (4, 4, 1), 3).state.params) == runs.tree_sha256(s.state.params)
  assert runs.tree_sha256(_tiny(seed=8).state.params) != runs.tree_sha256(_tiny(seed=7).state.params)
  tx = C.make_optimizer(dataclasses.replace(c, optimizer="sgd"))
  given = train.setup(c, (4, 4, 1), 3, tx)
  assert given.tx is tx and jax.tree.leaves(given.state.opt_state) == []  # plain SGD keeps no state


# --- epochs -------------------------------------------------------------------------------------


def test_epoch_scan_equals_python_loop_of_steps_in_that_epochs_order():
  s = _tiny()
  x, y = _data()
  step_fn = jax.jit(step.make_train_step(s.graphdef, s.tx))
  loop_state, losses = s.state, []
  # Epoch 3's permutation: the data key folded with the epoch; the 50 % 8 = 2 last examples skipped.
  order = np.asarray(jax.random.permutation(jax.random.fold_in(s.data_key, 3), 50))[:48].reshape(6, 8)
  for idx in order:
    loop_state, m = step_fn(loop_state, {"x": x[idx], "y": y[idx]})
    losses.append(float(m["loss"]))
  scan_state, metrics = train.make_epoch(step.make_train_step(s.graphdef, s.tx), 8)(_copy(s.state), x, y, s.data_key, 3)
  np.testing.assert_allclose(metrics["loss"], losses, rtol=1e-5)
  np.testing.assert_allclose(scan_state.params["head"]["kernel"][...], loop_state.params["head"]["kernel"][...],
                             rtol=1e-5, atol=1e-7)
  assert int(scan_state.step) == 6 and bool(metrics["params_finite"])
  assert metrics["forward_finite"].shape == (6, 3) and metrics["final_params_finite"].tolist() == [True] * 3


@pytest.mark.parametrize("logged", [False, True])
def test_an_epoch_in_pieces_equals_the_epoch_in_one_piece(logged):
  s = _tiny(dropout=0.2, batchnorm=True)  # dropout keys and batch-norm statistics carry across pieces
  x, y = _data()
  kw = dict(logged_step=step.make_logged_train_step(s.graphdef, s.tx), log_every=2) if logged else {}
  epoch = train.make_epoch(step.make_train_step(s.graphdef, s.tx), 5, **kw)
  whole, metrics = epoch(_copy(s.state), x, y, s.data_key, 2)
  state, pieces = _copy(s.state), []
  for start, count in ((0, 4), (4, 4), (8, 2)):
    state, m = epoch(state, x, y, s.data_key, 2, start, count)
    pieces.append(m)
  assert _same(state, whole) and int(state.step) == 10  # bitwise
  for key in ("loss", "accuracy", "forward_finite"):
    np.testing.assert_array_equal(np.concatenate([m[key] for m in pieces]), metrics[key])
  if logged:  # the logged steps are the epoch's 0, 2, 4, …, whichever piece runs them
    assert [m["logged_index"].tolist() for m in pieces] == [[0, 2], [4, 6], [8]]
    assert metrics["logged_index"].tolist() == [0, 2, 4, 6, 8]
    for key, values in metrics["stats"].items():
      np.testing.assert_array_equal(np.concatenate([m["stats"][key] for m in pieces]), values, err_msg=key)
  # join_pieces gives back what the whole epoch returned, key by key (the parameter checks: the last piece's).
  joined, whole_metrics = train.join_pieces(jax.device_get(pieces)), jax.device_get(metrics)
  assert joined.keys() == whole_metrics.keys()
  jax.tree.map(np.testing.assert_array_equal, joined, whole_metrics)


@pytest.mark.parametrize("every", [1, 3, 10, 25])
def test_logged_epoch_trains_exactly_like_the_plain_one(every):
  s = _tiny()
  x, y = _data()  # 10 steps of 5
  plain = train.make_epoch(step.make_train_step(s.graphdef, s.tx), 5)
  logged = train.make_epoch(step.make_train_step(s.graphdef, s.tx), 5, log_every=every,
                            logged_step=step.make_logged_train_step(s.graphdef, s.tx, bounds=(-1.0, 1.0)))
  s1, m1 = plain(_copy(s.state), x, y, s.data_key, 1)
  s2, m2 = logged(_copy(s.state), x, y, s.data_key, 1)
  np.testing.assert_allclose(m2["loss"], m1["loss"], rtol=1e-6)
  np.testing.assert_array_equal(m2["forward_finite"], m1["forward_finite"])
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert m2["logged_index"].tolist() == list(range(0, 10, every))
  assert m2["stats"]["forward/dense_0/act_var"].shape == (len(range(0, 10, every)),)


def _weight_copies_in_loops(hlo: str, shape: str) -> int:
  bodies = set(re.findall(r"body=%?([\w.\-]+)", hlo))
  computation, copies = None, 0
  for line in hlo.splitlines():
    header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*->.*{$", line)
    computation = header.group(1) if header else computation
    copies += computation in bodies and re.search(rf"= f32\[{shape}\]\{{[0-9,]*\}} copy\(", line) is not None
  return copies


def test_epochs_update_weights_in_place(monkeypatch):
  # Width 24 ≠ the input's 16 features: the 24 × 24 kernels (2) are the ones the backward pass reads.
  c = C.with_preset(None, depth=3, width=(24,), activation="relu", init="he_normal", optimizer="adam")
  s = train.setup(c, (4, 4, 1), 3)
  x, y = np.zeros((80, 4, 4, 1), np.float32), np.zeros(80, np.int32)

  def copies(**logged):
    epoch = train.make_epoch(step.make_train_step(s.graphdef, s.tx), 8, **logged)
    return _weight_copies_in_loops(epoch.lower(s.state, x, y, s.data_key, 1).compile().as_text(), "24,24")

  every_5 = lambda: dict(logged_step=step.make_logged_train_step(s.graphdef, s.tx), log_every=5)
  assert copies() == 0
  # A logged step keeps W_t beside W_{t+1} for ‖W_{t+1} − W_t‖: one copy per kernel.
  assert copies(**every_5()) == 2
  # Without exact_zero's data dependences (after_backward's, and the logged scan's), XLA copies the weights.
  monkeypatch.setattr(step, "exact_zero", lambda tree: np.float32(0))
  assert copies() > 0 and copies(**every_5()) > 2, (
      "this XLA updates in place without exact_zero's data dependences: remove them (step.after_backward, "
      "train._logged_scan) and this half of the test")


# --- the loop -----------------------------------------------------------------------------------


def test_loop_yields_each_piece_and_trains_as_whole_epochs():
  s = _tiny()
  x, y = _data(n=35)  # 7 steps of 5
  run_epoch = train.make_epoch(step.make_train_step(s.graphdef, s.tx), 5)
  measure = lambda state: {"step": state.step, "head": state.params["head"]["kernel"][...].sum()}
  whole = list(train.loop(run_epoch, _copy(s.state), x, y, s.data_key, epochs=range(1, 3), steps_per_epoch=7,
                          measure=measure))
  pieces = list(train.loop(run_epoch, _copy(s.state), x, y, s.data_key, epochs=range(1, 3), steps_per_epoch=7,
                           measure=measure, chunk=3))
  assert [(e, done, int(m["step"])) for e, done, _, _, m in whole] == [(1, 7, 7), (2, 7, 14)]
  assert [(e, done, int(m["step"])) for e, done, _, _, m in pieces] == [
      (1, 3, 3), (1, 6, 6), (1, 7, 7), (2, 3, 10), (2, 6, 13), (2, 7, 14)]
  assert _same(pieces[-1][2], whole[-1][2])
  assert all(isinstance(v, np.ndarray) for _, _, _, steps, m in pieces for v in (steps["loss"], m["head"]))
  np.testing.assert_array_equal(np.concatenate([p[3]["loss"] for p in pieces[3:]]), whole[1][3]["loss"])
  # Stopping the iteration stops training: nothing runs past the piece yielded.
  started = train.loop(run_epoch, _copy(s.state), x, y, s.data_key, epochs=range(1, 100), steps_per_epoch=7,
                       measure=measure, chunk=3)
  assert int(next(started)[4]["step"]) == 3
  started.close()


# --- evaluation ---------------------------------------------------------------------------------


def test_evaluate_handles_a_partial_last_batch():
  s = _tiny()
  x, y = _data(n=37, seed=2)
  got = train.make_evaluate(s.graphdef, batch_size=10)(s.state.params, s.state.rest, x, y)
  logits = np.asarray(nnx.merge(s.graphdef, s.state.params, s.state.rest)(x), np.float64)
  logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  assert float(got["loss"]) == pytest.approx(-logp[np.arange(37), y].mean(), rel=1e-5)
  assert float(got["accuracy"]) == pytest.approx(np.mean(logits.argmax(1) == y))


def test_eval_arrays_score_test_a_training_subset_and_validation_if_held_out():
  ds = data.synthetic(sizes=(12_000, 100))
  sets = train.eval_arrays(ds)
  assert list(sets) == ["test", "train_eval"] and len(sets["train_eval"][1]) == train.TRAIN_EVAL_SIZE == 10_000
  np.testing.assert_array_equal(sets["train_eval"][0], ds.train_x[:10_000])
  held_out = dataclasses.replace(ds, val_x=ds.test_x[:7], val_y=ds.test_y[:7])
  assert list(train.eval_arrays(held_out)) == ["test", "train_eval", "val"]


# --- fit ----------------------------------------------------------------------------------------


def test_fit_writes_run_files_returns_its_records_and_is_deterministic(small_synthetic, tmp_path):
  def run(name, seed=5, epochs=2):
    c = C.with_preset(None, dataset="synthetic", depth=2, width=(32,), epochs=epochs, batch_size=50,
                      dropout=0.2, batchnorm=True, seed=seed, workdir=str(tmp_path / name))
    return train.fit(c, small_synthetic, verbose=False)

  a, b = run("a"), run("b")
  assert a.workdir == tmp_path / "a"
  assert (a.workdir / "metrics.jsonl").read_bytes() == (b.workdir / "metrics.jsonl").read_bytes()
  records = runs.read_jsonl(a.workdir / "metrics.jsonl")
  assert a.records == records  # what fit returns is what it wrote
  assert [r["epoch"] for r in records] == [1, 2] and records[-1]["step"] == 80
  assert records[1]["train_loss"] < records[0]["train_loss"] - 0.2  # it learns
  assert records[1]["train_eval_accuracy"] > 0.25 and records[1]["test_accuracy"] > 0.12  # chance: 0.1
  cfg = json.loads((a.workdir / "config.json").read_text())
  assert cfg["config"]["seed"] == 5 and cfg["environment"]["packages"]["jax"] == jax.__version__
  assert cfg["environment"]["devices"] and cfg["num_params"] == 784 * 32 + 32 * 32 + 32 * 10 + 10 + 4 * 32
  summary = (a.workdir / "summary.json").read_text()
  assert json.loads(summary)["epoch"] == 2 and json.loads(summary)["resumed_from_epoch"] == 0
  assert run("c", seed=6, epochs=1).records[0] != records[0]
  # A finished run, resumed: nothing to train, and the same records back.
  again = train.fit(C.with_preset(None, dataset="synthetic", depth=2, width=(32,), epochs=2, batch_size=50,
                                  dropout=0.2, batchnorm=True, seed=5, workdir=str(a.workdir), resume=True),
                    small_synthetic, verbose=False)
  assert again.records == records and (a.workdir / "summary.json").read_text() == summary


@pytest.mark.parametrize("precision,hlo", [(None, "HIGHEST"), ("high", "HIGH"), ("default", "DEFAULT")])
def test_fit_compiles_every_matmul_at_the_configs_precision(precision, hlo, small_synthetic, tmp_path, monkeypatch):
  lowered = []
  make_epoch = train.make_epoch

  def spied(*args, **kwargs):  # the epoch fit compiles, lowered again with the arguments of its first call
    run_epoch = make_epoch(*args, **kwargs)

    def run(*a):
      lowered.append(run_epoch.lower(*a).as_text())
      return run_epoch(*a)
    return run

  monkeypatch.setattr(train, "make_epoch", spied)
  c = C.with_preset(None, dataset="synthetic", depth=2, width=(16,), epochs=1, workdir=str(tmp_path),
                    **({"matmul_precision": precision} if precision else {}))
  train.fit(c, small_synthetic, verbose=False)
  # Forward and backward of 3 dense layers: 3 + 5 (no ∂L/∂x).
  precisions = re.findall(r"stablehlo\.dot_general .*precision = \[(\w+), (\w+)\]", lowered[0])
  assert len(precisions) >= 8 and set(precisions) == {(hlo, hlo)}, precisions


def test_callbacks_receive_each_epochs_records_once_written(tmp_path):
  calls = []

  def callback(record, stats):  # what the files hold when it is called
    written = runs.read_jsonl(tmp_path / "metrics.jsonl")
    calls.append((record, stats, written[-1], [s for s in runs.read_jsonl(tmp_path / "stats.jsonl")
                                                if s["epoch"] == record["epoch"]]))

  c = C.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=2, batch_size=100, log_stats_every=2,
                    workdir=str(tmp_path))
  result = train.fit(c, data.synthetic(sizes=(500, 100)), verbose=False, callbacks=[callback])
  assert [record for record, *_ in calls] == result.records == runs.read_jsonl(tmp_path / "metrics.jsonl")
  for record, stats, last_written, stats_written in calls:
    assert record == last_written and stats == stats_written and [s["step"] for s in stats] == [
        record["step"] - 5, record["step"] - 3, record["step"] - 1]  # 5 steps an epoch, logged at 0, 2, 4


def test_cnn_trains_on_mnist_subset(mnist, tmp_path):
  subset = dataclasses.replace(mnist, train_x=mnist.train_x[:3000], train_y=mnist.train_y[:3000],
                               test_x=mnist.test_x[:1000], test_y=mnist.test_y[:1000])
  c = C.with_preset(None, model="cnn", depth=3, width=(8,), init="he_normal", epochs=2, batch_size=50, lr=3e-3,
                    workdir=str(tmp_path))
  records = train.fit(c, subset, verbose=False).records
  assert records[-1]["train_loss"] < records[0]["train_loss"] and records[-1]["test_accuracy"] > 0.5


def test_training_with_log_stats_every_writes_every_logged_step(tmp_path):
  args = flags.parser("test").parse_args(["--dataset", "synthetic", "--depth", "3", "--width", "16", "--activation",
                                      "tanh", "--epochs", "2", "--batch_size", "100", "--log_stats_every", "3",
                                      "--log_histograms", "true", "--workdir", str(tmp_path)])
  ds = data.synthetic(sizes=(1000, 200))
  result = train.fit(flags.from_args(args), ds, verbose=False)
  records = runs.read_jsonl(result.workdir / "stats.jsonl")
  # 10 steps per epoch; every epoch logs its local steps 0, 3, 6, 9, at global steps 0, 3, … 10, 13, ….
  assert [r["step"] for r in records] == [0, 3, 6, 9, 10, 13, 16, 19] and [r["epoch"] for r in records][-1] == 2
  for r in records:
    for layer in ("dense_0", "dense_1", "dense_2"):
      for key in ("forward/{}/act_var", "forward/{}/saturated", "backward/{}/grad_var", "grads/{}/norm",
                  "updates/{}/ratio"):
        assert math.isfinite(r[key.format(layer)]), key.format(layer)
    assert r["forward/dense_0/act_var"] > 0 and r["grads/head/norm"] > 0
  assert records[0]["loss"] == pytest.approx(result.records[0]["train_loss"], rel=0.2)
  assert len(result.records) == 2
  hist = np.load(result.workdir / "stats_histograms.npz")
  assert hist["step"].tolist() == [0, 3, 6, 9, 10, 13, 16, 19] and hist["epoch"].tolist() == [1] * 4 + [2] * 4
  assert sorted(k.rsplit("/", 1)[0] for k in hist.files if k.endswith("/counts")) == sorted(
      [f"activations/dense_{i}" for i in range(3)] + [f"{kind}/{layer}" for kind in ("grads", "weights")
                                                       for layer in ("dense_0", "dense_1", "dense_2", "head")])
  assert (hist["activations/dense_2/counts"].sum(axis=1) == 100 * 16).all()
  assert (hist["weights/dense_1/counts"].sum(axis=1) == 16 * 16).all()
  assert (hist["activations/dense_2/edges"][:, 0] >= -1).all() and (hist["activations/dense_2/edges"][:, -1] <= 1).all()
  # The bins span each step's values: the first weights' extremes are those of the initial kernel.
  kernel = np.asarray(train.setup(flags.from_args(args), ds.input_shape, ds.num_classes).state.params["blocks"][0]["layer"]["kernel"][...])
  assert hist["weights/dense_0/edges"][0][[0, -1]].tolist() == [kernel.min(), kernel.max()]


def test_fit_in_pieces_writes_the_files_of_whole_epochs(monkeypatch, tmp_path):
  ds = data.synthetic(sizes=(1000, 200))  # 10 steps an epoch

  def run(name: str, piece: int) -> tuple[train.FitResult, list[int]]:
    starts = []
    # Pieces of ``piece`` steps whatever the clock says (Pace picks the length from timings).
    monkeypatch.setattr(progress, "Pace", lambda steps, align: lambda start: starts.append(start) or piece)
    c = C.with_preset(None, dataset="synthetic", depth=2, width=(16,), activation="tanh", epochs=2, batch_size=100,
                      dropout=0.2, log_stats_every=3, log_histograms=True, workdir=str(tmp_path / name))
    return train.fit(c, ds, verbose=False), starts

  whole, whole_starts = run("whole", 10)
  pieces, piece_starts = run("pieces", 6)
  assert whole_starts == [0, 0] and piece_starts == [0, 6, 0, 6]
  for name in ("metrics.jsonl", "stats.jsonl"):
    assert (pieces.workdir / name).read_bytes() == (whole.workdir / name).read_bytes(), name
  assert [r["step"] for r in runs.read_jsonl(pieces.workdir / "stats.jsonl")] == [0, 3, 6, 9, 10, 13, 16, 19]
  with np.load(whole.workdir / "stats_histograms.npz") as a, np.load(pieces.workdir / "stats_histograms.npz") as b:
    assert a.files == b.files
    for k in a.files:
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  summary = lambda r: json.loads((r.workdir / "summary.json").read_text())["params_sha256"]
  assert summary(pieces) == summary(whole)


def test_fit_prints_epoch_lines_with_time_left_and_draws_bars_only_on_a_terminal(small_synthetic, tmp_path,
                                                                                  capsys, monkeypatch):
  c = C.with_preset(None, dataset="synthetic", depth=1, width=(8,), epochs=3, batch_size=100)
  fit = lambda name, **kw: train.fit(dataclasses.replace(c, workdir=str(tmp_path / name)), small_synthetic, **kw)
  fit("quiet", verbose=False)
  assert capsys.readouterr() == ("", "")  # verbose=False prints nothing
  fit("log")  # captured: neither stdout nor stderr is a terminal, as in CI or `> log`
  out, err = capsys.readouterr()
  lines = [l for l in out.splitlines() if l.startswith("epoch ")]
  assert [l.split(" | ")[0] for l in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
  assert all(re.search(r"loss \d\.\d{4} test acc \d\.\d{4} \| \d+\.\ds, elapsed \d\d:\d\d, left \d\d:\d\d$", l)
             for l in lines), lines
  assert lines[-1].endswith("left 00:00") and "\r" not in out + err and err == ""

  class Terminal(io.StringIO):
    def isatty(self):
      return True

  terminal = Terminal()
  monkeypatch.setattr(sys, "stderr", terminal)
  fit("terminal")
  bars = terminal.getvalue()
  assert "\r" in bars and re.search(r"epochs: 100%.*\| 3/3 \[\d\d:\d\d<00:00", bars), bars[-300:]
  assert "test_acc=" in bars and re.search(r"steps: .*\d+/20", bars)


# --- divergence ---------------------------------------------------------------------------------


def test_divergence_stops_cleanly_with_the_step(small_synthetic, tmp_path):
  # The lab's sigmoid / N(0, 1) network with an absurd learning rate overflows within a few steps.
  c = C.with_preset(None, dataset="synthetic", activation="sigmoid", init="normal", bias_init="normal",
                    optimizer="adam", lr=1e38, epochs=3, batch_size=50, workdir=str(tmp_path))
  with pytest.raises(divergence.Diverged) as err:
    train.fit(c, small_synthetic, verbose=False)
  assert err.value.epoch == 1 and 1 <= err.value.step <= 40
  records = runs.read_jsonl(tmp_path / "metrics.jsonl")  # every line parses
  assert len(records) == 1 and records[0]["train_loss"] is None


def _poisoned(n_train=2001, batch=50, seed=0):
  """Synthetic data with one NaN image that the 2001 % 50 = 1 skipped example of epoch 1 is, but
  epoch 2's is not: a run that is healthy in epoch 1 and diverges in epoch 2 at a known step."""
  ds = data.synthetic(sizes=(n_train, 200))
  data_key = train.setup(C.with_preset(None, seed=seed), ds.input_shape, ds.num_classes).data_key
  order = [np.asarray(jax.random.permutation(jax.random.fold_in(data_key, e), n_train)) for e in (1, 2)]
  bad = int(order[0][-1])
  assert order[1][-1] != bad
  x = ds.train_x.copy()
  x[bad] = np.nan
  step_number = n_train // batch + int(np.flatnonzero(order[1] == bad)[0]) // batch + 1
  return dataclasses.replace(ds, train_x=x), step_number


def test_divergence_in_epoch_2_keeps_metrics_and_the_checkpoint_of_epoch_1(tmp_path):
  ds, expected_step = _poisoned()
  c = C.with_preset(None, dataset="synthetic", depth=2, width=(32,), epochs=3, batch_size=50, seed=0,
                    workdir=str(tmp_path))
  with pytest.raises(divergence.Diverged) as err:
    train.fit(c, ds, verbose=False)
  assert (err.value.epoch, err.value.step, err.value.layer) == (2, expected_step, "dense_0")
  assert str(err.value) == (f"training diverged in epoch 2 at step {expected_step}: dense_0 went non-finite first "
                            "(activations in the forward pass); metrics.jsonl keeps epochs 1-2, the newest "
                            "checkpoint is epoch 1")
  records = runs.read_jsonl(tmp_path / "metrics.jsonl")
  assert [r["epoch"] for r in records] == [1, 2] and records[1]["train_loss"] is None
  assert workdir.checkpoint_epochs(tmp_path) == [1] and not (tmp_path / "summary.json").exists()
  with checkpoints_lib.Checkpoints(tmp_path / workdir.CHECKPOINTS, 3) as checkpoints:
    saved = checkpoints.restore(1)
  assert int(saved["epoch"]) == 1 and int(saved["state"]["step"]) == 40
  assert all(np.isfinite(a).all() for a in jax.tree.leaves(saved["state"]))


# --- resume -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
  return data.synthetic(sizes=(2000, 500))


def _config(path, **overrides):
  # Every kind of state: batch-norm statistics, momentum, dropout keys.
  values = dict(dataset="synthetic", depth=2, width=(32,), epochs=3, batch_size=50, dropout=0.2, batchnorm=True,
                optimizer="momentum", lr=0.01, seed=1, workdir=str(path), keep_checkpoints=2)
  return C.with_preset(None, **{**values, **overrides})


def _summary(path):
  return json.loads((path / "summary.json").read_text())


@pytest.fixture(scope="module")
def whole(small, tmp_path_factory):
  """An uninterrupted 3-epoch run of ``_config``."""
  return train.fit(_config(tmp_path_factory.mktemp("whole")), small, verbose=False).workdir


def test_resume_after_a_crash_equals_an_uninterrupted_run(small, whole, tmp_path):
  assert workdir.checkpoint_epochs(whole) == [2, 3]  # --keep_checkpoints 2
  # A crash while epoch 3 was being written: its checkpoint and summary lost, a half line in the log.
  run = train.fit(_config(tmp_path / "run"), small, verbose=False).workdir
  shutil.rmtree(run / "checkpoints" / "3")
  (run / "summary.json").unlink()
  with open(run / "metrics.jsonl", "a") as f:
    f.write('{"epoch": 4, "train')
  with pytest.raises(C.ConfigError, match=r"unfinished run with this config \(checkpoint of epoch 2 of 3\)"):
    train.fit(_config(run), small, verbose=False)
  resumed = train.fit(_config(run, resume=True), small, verbose=False)
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  assert resumed.records == runs.read_jsonl(whole / "metrics.jsonl")
  assert _summary(run)["params_sha256"] == _summary(whole)["params_sha256"]
  assert _summary(run)["resumed_from_epoch"] == 2
  assert json.loads((run / "config.json").read_text())["resumed"][0]["from_epoch"] == 2


def test_checkpoint_every_saves_those_epochs_and_the_last_and_resumes_from_the_newest(small, whole, tmp_path):
  run = train.fit(_config(tmp_path / "run", checkpoint_every=2, keep_checkpoints=3), small, verbose=False).workdir
  assert workdir.checkpoint_epochs(run) == [2, 3]  # epoch 2 (every 2nd) and the last; not 1
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  # Killed while epoch 3 was being checkpointed: epoch 3's records are cut back, the run goes on from epoch 2.
  shutil.rmtree(run / "checkpoints" / "3")
  (run / "summary.json").unlink()
  train.fit(_config(run, checkpoint_every=2, resume=True), small, verbose=False)
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  assert _summary(run)["params_sha256"] == _summary(whole)["params_sha256"]
  assert _summary(run)["resumed_from_epoch"] == 2
  # Killed before its first checkpoint: the run starts again from its initialization.
  shutil.rmtree(run / "checkpoints")
  (run / "summary.json").unlink()
  train.fit(_config(run, checkpoint_every=2, resume=True), small, verbose=False)
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  assert _summary(run)["params_sha256"] == _summary(whole)["params_sha256"]
  assert _summary(run)["resumed_from_epoch"] == 0


def test_resume_with_more_epochs_extends_the_run_exactly(small, whole, tmp_path):
  run = train.fit(_config(tmp_path / "run", epochs=1), small, verbose=False).workdir
  train.fit(_config(run, epochs=3, resume=True), small, verbose=False)
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  assert _summary(run)["params_sha256"] == _summary(whole)["params_sha256"]


def _largest_file(folder):
  return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _flip_middle_bit(path):
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 1
  path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["bit flip", "truncated", "other model"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_and_resumes_exactly(damage, small, whole, tmp_path,
                                                                                      capsys):
  # A crash after epoch 3's checkpoint but before summary.json; then checkpoint 3 is damaged.
  run = train.fit(_config(tmp_path / "run"), small, verbose=False).workdir
  (run / "summary.json").unlink()
  newest = run / "checkpoints" / "3"
  if damage == "bit flip":
    _flip_middle_bit(_largest_file(newest))
  elif damage == "truncated":
    (f := _largest_file(newest)).write_bytes(f.read_bytes()[: f.stat().st_size // 2])
  else:  # checkpoint 3 of a run of wider layers copied in, with its digest
    other = train.fit(_config(tmp_path / "other", width=(48,)), small, verbose=False).workdir
    shutil.rmtree(newest)
    shutil.copytree(other / "checkpoints" / "3", newest)
    shutil.copy(other / "checkpoints" / "3.sha256.json", run / "checkpoints" / "3.sha256.json")
  capsys.readouterr()
  resumed = train.fit(_config(run, resume=True), small, verbose=False)
  warning = capsys.readouterr().err.strip().splitlines()
  assert len(warning) == 1 and warning[0].startswith(f"warning: {newest}") and warning[0].endswith(
      f"resuming from the checkpoint of epoch 2 instead (1 damaged moved to {run / 'checkpoints.damaged'})")
  assert sorted(p.name for p in (run / "checkpoints.damaged").iterdir()) == ["3", "3.sha256.json"]
  assert (run / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()
  assert resumed.records == runs.read_jsonl(whole / "metrics.jsonl")
  assert _summary(run)["params_sha256"] == _summary(whole)["params_sha256"]


def test_no_intact_checkpoint_is_refused_naming_the_newest_and_changes_nothing(small, tmp_path):
  run = train.fit(_config(tmp_path / "run"), small, verbose=False).workdir
  (run / "summary.json").unlink()
  for epoch in (2, 3):
    _flip_middle_bit(_largest_file(run / "checkpoints" / str(epoch)))
  before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "lock"}
  with pytest.raises(runs.RunError, match=rf"^{run / 'checkpoints' / '3'}(:| ).*; no intact checkpoint to resume "
                                          r"from: pass --overwrite to start the run again$"):
    train.fit(_config(run, resume=True), small, verbose=False)
  assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "lock"}


FAKE_WANDB = '''
import json
_current = -1
class Histogram:
  def __init__(self, np_histogram):
    counts, edges = np_histogram
    assert len(edges) == len(counts) + 1
    self.num = int(sum(counts))
def init(**kwargs):
  pass
def log(data, step):
  global _current
  if step < _current:
    raise ValueError(f"Tried to log to step {step} that is less than the current step {_current}")
  _current = step
  with open("wandb.jsonl", "a") as f:
    f.write(json.dumps({"step": step, "values": {k: v if not isinstance(v, Histogram) else {"num": v.num}
                                                  for k, v in data.items()}}) + "\\n")
'''


def test_the_readme_wandb_example_logs_every_statistic_and_histogram_in_step_order(tmp_path):
  """The README's W&B example, on a small network, against a fake wandb that refuses steps out of order."""
  readme = (ROOT / "README.md").read_text()
  code = readme.split("**Other loggers**")[1].split("```python\n")[1].split("```")[0]
  small = 'config.with_preset(None, dataset="synthetic", depth=2, width=(16,), epochs=2, workdir="run", '
  assert code.count('config.with_preset("lab10-4-deep", ') == 1
  (tmp_path / "wandb.py").write_text(FAKE_WANDB)
  done = subprocess.run([sys.executable, "-c", code.replace('config.with_preset("lab10-4-deep", ', small)],
                        cwd=tmp_path, capture_output=True, text=True, timeout=300,
                        env={**os.environ, "PYTHONPATH": str(tmp_path)})
  assert done.returncode == 0, done.stderr[-2000:]
  logged = [json.loads(line) for line in (tmp_path / "wandb.jsonl").read_text().splitlines()]
  stats = runs.read_jsonl(tmp_path / "run" / "stats.jsonl")
  records = runs.read_jsonl(tmp_path / "run" / "metrics.jsonl")
  steps = [entry["step"] for entry in logged]
  assert steps == sorted(steps) and len(logged) == len(stats) + len(records) == 2 + 2  # 2 epochs of 100 steps
  for line in stats:
    entry = next(e for e in logged if e["step"] == line["step"] and "loss" in e["values"])
    assert {k: v for k, v in entry["values"].items() if not isinstance(v, dict)} == line
    hists = {k: v for k, v in entry["values"].items() if isinstance(v, dict)}
    assert hists["activations/dense_1"]["num"] == 100 * 16 and hists["weights/head"]["num"] == 16 * 10
    assert set(hists) == {f"activations/dense_{i}" for i in (0, 1)} | {
        f"{kind}/{layer}" for kind in ("weights", "grads") for layer in ("dense_0", "dense_1", "head")}
  for record in records:
    assert {"step": record["step"], "values": record} in logged
