"""Glorot & Bengio 2010, Table 1, MNIST column: test error of 5×1000 sigmoid, tanh and softsign nets, standard vs
normalized init, each trained with plain SGD until its validation error stops improving.

Per configuration, seed 0 is trained at every rate of the grid; the rate with the lowest best validation error
is chosen, and the other seeds are trained at it. Every run is ``resumable.train_run``'s: early stopping, resumable
from its checkpoint, and a committed record per run (``<out>/glorot_table1_mnist_runs/``), so the table is
completed over several sittings; ``make_figures.py --time_limit M`` stops starting work after M minutes and draws
what is finished, the rest marked. Two processes (one per core) share the runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import matplotlib.ticker
import numpy as np

from lab10 import data, plotting
from lab10.experiments import resumable
from lab10.experiments.common import mlp_config, paired_difference
from lab10.experiments.figure import Check, Figure, Result

PAPER = {"sigmoid": 2.21, "tanh": 1.76, "tanh_n": 1.64, "softsign": 1.64, "softsign_n": 1.72}  # test error (%)
CONFIGURATIONS = {  # id: (label, activation, initializer); standard U[±1/√n_in], normalized U[±√6/√(n_in+n_out)]
    "sigmoid": ("Sigmoid", "sigmoid", "glorot_standard"),
    "tanh": ("Tanh", "tanh", "glorot_standard"),
    "tanh_n": ("Tanh N", "tanh", "glorot_uniform"),
    "softsign": ("Softsign", "softsign", "glorot_standard"),
    "softsign_n": ("Softsign N", "softsign", "glorot_uniform"),
}
VAL_SIZE = 10_000                   # the paper's 50k / 10k / 10k split of MNIST
LRS = (0.01, 0.03, 0.1, 0.3, 1.0)   # up to 1, where lab10's Glorot Fig. 2 sigmoid net leaves its plateau
SEEDS = (0, 1, 2)
CHANCE_ERROR = 80.0                 # %: a run whose best validation error stays above this never left chance (90 %)
PATIENCE = 5                        # epochs without a lower validation error before a run stops
MAX_EPOCHS = 40
PAIRS = (("tanh_n", "tanh"), ("softsign_n", "softsign"), ("sigmoid", "tanh"), ("sigmoid", "softsign"))


RECORDS = "glorot_table1_mnist_runs"  # the runs' records, in the figure's folder


def _name(key: str, lr: float, seed: int) -> str:
  return f"{key}_lr{lr:g}_seed{seed}"


def _setting(width: int = 1000, depth: int = 5, batch_size: int = 10, train_images: int = 60_000 - VAL_SIZE,
             patience: int = PATIENCE, max_epochs: int = MAX_EPOCHS) -> dict:
  """What a run's record must have been made with to be reused (the full-scale table's by default)."""
  return dict(width=width, depth=depth, batch_size=batch_size, train_images=train_images, val_images=VAL_SIZE,
              patience=patience, max_epochs=max_epochs)


def _read(records: Path, setting: dict, lrs=LRS, seeds=SEEDS) -> dict:
  names = [_name(k, lr, s) for k in CONFIGURATIONS for lr in lrs for s in seeds]
  return {n: r for n in names if (r := resumable.read(records, n, setting)) is not None}


def chosen_rate(key: str, out: str = "figures") -> float | None:
  """Configuration ``key``'s learning rate as the full-scale table chose it from its records in ``out``; None until
  seed 0 has finished every rate of the grid, or if no rate left chance."""
  lr, learned = _selection(key, _read(Path(out) / RECORDS, _setting()), LRS, SEEDS[0])
  return lr if learned else None


def _selection(key: str, found: dict, lrs, seed: int) -> tuple[float | None, bool]:
  """Once all of seed ``seed``'s rates are finished: the rate of its lowest best validation error, and whether that
  run left chance (best validation error below CHANCE_ERROR). ``(None, False)`` before; a diverged run is never
  chosen; ``(NaN, False)`` if every rate diverged."""
  recs = [found.get(_name(key, lr, seed)) for lr in lrs]
  if any(r is None or r["stop"] not in resumable.FINISHED for r in recs):
    return None, False
  val = [math.nan if r["stop"] == "diverged" else resumable.best_epoch(r["epochs"])["val_error"] for r in recs]
  if np.isnan(val).all():
    return math.nan, False
  best = int(np.nanargmin(val))
  return lrs[best], val[best] < CHANCE_ERROR


def _todo(found: dict, lrs, seeds) -> list[tuple[str, float, int]]:
  """Runs to train next, configuration by configuration: seed 0 at every rate, then the other seeds at its rate."""
  todo = []
  for key in CONFIGURATIONS:
    lr, learned = _selection(key, found, lrs, seeds[0])
    if lr is None:
      jobs = [(key, r, seeds[0]) for r in lrs]
    else:  # none if no rate left chance (or every rate diverged): there is no rate to compare seeds at
      jobs = [(key, lr, s) for s in seeds[1:]] if learned else []
    todo += [j for j in jobs if (found.get(_name(*j)) or {}).get("stop") not in resumable.FINISHED]
  return todo


def run(data_dir=None, out: str = "figures", workroot: str = "runs/glorot_table1_mnist", width: int = 1000,
        depth: int = 5, batch_size: int = 10, n_train: int | None = None, lrs=LRS, seeds=SEEDS,
        patience: int = PATIENCE, max_epochs: int = MAX_EPOCHS, time_limit_s: float | None = None) -> Result:
  """Train what is left of the table (until ``time_limit_s``, if given; 0: train nothing), then tabulate the
  finished runs."""
  ds = data.load("mnist", data_dir, val_size=VAL_SIZE)
  ds = dataclasses.replace(ds, train_x=ds.train_x[:n_train], train_y=ds.train_y[:n_train])
  stopping = resumable.Stopping(patience, max_epochs)
  setting = _setting(width, depth, batch_size, len(ds.train_y), patience, max_epochs)
  records = Path(out) / RECORDS
  read = lambda: _read(records, setting, lrs, seeds)
  deadline = math.inf if time_limit_s is None else time.monotonic() + time_limit_s
  while time.monotonic() < deadline and (todo := _todo(read(), lrs, seeds)):
    for key, lr, seed in todo:  # the first run no other process is training; then plan again
      label, activation, init = CONFIGURATIONS[key]
      c = mlp_config(depth=depth, width=(width,), activation=activation, init=init, optimizer="sgd", lr=lr,
                     batch_size=batch_size, val_size=VAL_SIZE, seed=seed, keep_checkpoints=1,
                     workdir=str(Path(workroot) / _name(key, lr, seed)))
      record = resumable.train_run(c, ds, _name(key, lr, seed), records, setting, stopping, deadline)
      if record is not None:
        best = resumable.best_epoch(record["epochs"]) or {}
        print(f"glorot_table1_mnist: {label}, lr {lr:g}, seed {seed}: {record['stop'] or 'unfinished'} after "
              f"{len(record['epochs'])} epochs, best validation error {best.get('val_error', math.nan):.2f}% "
              f"({record['wall_time_s']:.0f}s)", flush=True)
        break
    else:
      break  # every run left is another process's
  return _tabulate(read(), lrs, seeds, setting)


def _tabulate(found: dict, lrs, seeds, setting: dict) -> Result:
  claims, table, ours, val_curves, planned, left_chance = {}, [], {}, {}, 0, {}
  for key, (label, _, _) in CONFIGURATIONS.items():
    lr, learned = _selection(key, found, lrs, seeds[0])
    planned += len(lrs) + (len(seeds) - 1 if lr is None or learned else 0)  # the other seeds, where they are trained
    val_curves[label] = [_best(found.get(_name(key, r, seeds[0])), "val_error") for r in lrs]
    chosen = lr is not None and not math.isnan(lr)  # (a net that never left chance: its seed-0 run alone)
    at_rate = lambda field: [_best(found.get(_name(key, lr, s)), field) if chosen and (learned or s == seeds[0])
                             else math.nan for s in seeds]
    per_seed = at_rate("test_error")
    ours[label] = per_seed
    fitted = [v for v in at_rate("train_error") if v == v]
    left_chance[label] = bool(learned) if chosen else None
    done = np.array([v for v in per_seed if v == v])
    mean = float(done.mean()) if len(done) else math.nan
    std = float(done.std(ddof=1)) if len(done) > 1 else math.nan
    n_finished = sum((found.get(_name(key, r, s)) or {}).get("stop") in resumable.FINISHED for r in lrs for s in seeds)
    claims |= {
        f"{key}_test_error_mean": (mean, f"{label}: test error (%) at the best-validation epoch, mean over the finished "
                                         f"seeds at the chosen rate (NaN: none yet)"),
        f"{key}_test_error_std": (std, f"{label}: the same, std over seeds (ddof 1; NaN: fewer than 2)"),
        f"{key}_minus_paper": (mean - PAPER[key] if len(done) else math.nan,
                               f"{label}: that mean minus the paper's {PAPER[key]:g} % (points)"),
        f"{key}_train_error_max": (max(fitted, default=math.nan),
                                   f"{label}: error (%) on the 10,000 scored training images at the best-validation "
                                   "epoch, the largest over the finished seeds (0: the training set fitted)"),
        f"{key}_seeds": (float(len(done)), f"{label}: seeds finished at the chosen rate (of {len(seeds)})"),
        f"{key}_lr": (float(lr) if learned else math.nan,
                      f"{label}: rate chosen on seed {seeds[0]}'s validation error (NaN: not all its rates finished, or "
                      f"none left chance)"),
        f"{key}_left_chance": (float(learned) if chosen else math.nan,
                               f"{label}: 1 if seed {seeds[0]}'s best rate left chance (best validation error below "
                               f"{CHANCE_ERROR:g} %), 0 if no rate did (NaN: not all finished)")}
    table.append({"configuration": label, "paper test error (%)": PAPER[key], "test error (%) mean": round(mean, 3),
                  "test error (%) std": round(std, 3), "seeds": len(done), "chosen lr": lr if learned else None,
                  "left chance": float(learned) if chosen else None,
                  **{f"best val error (%), lr {r:g}, seed {seeds[0]}": round(v, 3)
                     for r, v in zip(lrs, val_curves[label])},
                  "finished runs": n_finished})
  for a, b in PAIRS:
    claims |= _paired(a, b, ours[CONFIGURATIONS[a][0]], ours[CONFIGURATIONS[b][0]])
  finished = sum(r["stop"] in resumable.FINISHED for r in found.values())
  claims["finished_runs"] = (float(finished), "runs finished (early stopping, epoch cap or divergence)")
  claims["runs_at_epoch_cap"] = (float(sum(r["stop"] == "epoch cap" for r in found.values())),
                                 f"finished runs stopped by the epoch cap ({setting['max_epochs']}), not by early stopping")
  machines = sorted({r["machine"]["cpu"] for r in found.values()})
  hours = sum(r["wall_time_s"] for r in found.values()) / 3600
  return Result.of(
      data=dict(names=[v[0] for v in CONFIGURATIONS.values()], paper=[PAPER[k] for k in CONFIGURATIONS], ours=ours,
                lrs=list(lrs), val_by_lr=val_curves, seeds=list(seeds), left_chance=left_chance,
                title=f"Glorot & Bengio Table 1 (MNIST): {setting['depth']}×{setting['width']} nets, SGD batch "
                      f"{setting['batch_size']}, early stopping; {finished} of {planned} runs finished"),
      claims=claims, table=table,
      setting=f"MLPs {setting['depth']}×{setting['width']}, zero biases; standard init U[±1/√n_in] or normalized "
              f"U[±√6/√(n_in+n_out)]; plain SGD, batch {setting['batch_size']}; {setting['train_images']} training "
              f"images, {VAL_SIZE} for validation (the paper's split), the 10k test set. Each run stops after "
              f"{setting['patience']} epochs without a lower validation error (at most {setting['max_epochs']}); "
              f"test error at its best-validation epoch. Rate chosen from {', '.join(f'{r:g}' for r in lrs)} on "
              f"seed {seeds[0]}; seeds {', '.join(map(str, seeds))} at that rate. {finished} of "
              f"{planned} runs finished, {hours:.1f} h of training in "
              f"all (one core per run), on: {'; '.join(machines) or 'none yet'}.")


def _best(record: dict | None, field: str) -> float:
  """``field`` at the finished run's best-validation epoch; NaN if unfinished, absent or diverged."""
  if record is None or record["stop"] not in resumable.FINISHED or record["stop"] == "diverged":
    return math.nan
  return resumable.best_epoch(record["epochs"])[field]


def _paired(a: str, b: str, errors_a: list[float], errors_b: list[float]) -> dict:
  """``a`` − ``b`` test error, paired by seed over the seeds both finished (``paired_difference``)."""
  d = paired_difference(errors_a, errors_b)
  what = f"{CONFIGURATIONS[a][0]} − {CONFIGURATIONS[b][0]} test error (points), paired by seed"
  return {f"{a}_minus_{b}_mean": (d["mean"], f"{what}: mean (NaN: no seed both finished)"),
          f"{a}_minus_{b}_std": (d["std"], f"{what}: std (ddof 1)"),
          f"{a}_minus_{b}_pairs": (float(d["n"]), f"{what}: seeds paired"),
          f"{a}_minus_{b}_resolved": (float(d["resolved"]), f"{what}: 1 if every pair has the same sign and |mean| > std")}


def draw(names, paper, ours, lrs, val_by_lr, seeds, left_chance=None, title: str = ""):
  """Left: test error per configuration on a log axis, the paper's beside ours (each seed a dot, mean ± std);
  right: seed 0's best validation error at each learning rate (the choice of rate). A configuration's colour is
  the same in both panels; one with fewer seeds than planned is marked, as is one no rate took off chance
  (``left_chance[name]`` False)."""
  fig, (ax, ax_lr) = plotting.figure(2, width=4.6, height=3.4)
  color_of = plotting.color_map(names)
  x = np.arange(len(names))
  # The axis spans the paper's numbers and the nets that learned; a net at chance is marked at its top with its value.
  learned = [v for v in (*paper, *np.concatenate([plotting.floats(ours[n]) for n in names])) if v < CHANCE_ERROR]
  bottom, top = min(learned) / 1.15, max(max(learned) * 1.7, min(learned) * 2.5)
  ax.vlines(x - 0.15, np.subtract(paper, 0.5), np.add(paper, 0.5), color="0.85", lw=6, zorder=0,
            label="paper ± 0.5 points")
  ax.plot(x - 0.15, paper, "kD", markerfacecolor="none", label="Glorot & Bengio 2010")
  for i, name in enumerate(names):
    v = plotting.floats(ours[name])
    done = v[np.isfinite(v)]
    ax.plot(np.full(len(done), i + 0.15), np.minimum(done, top), "o", color=color_of[name], alpha=0.6, markersize=3,
            clip_on=False)
    if len(done) and done.mean() < top:
      ax.errorbar(i + 0.15, done.mean(), yerr=done.std(ddof=1) if len(done) > 1 else 0, fmt="_", color="k",
                  markersize=10, capsize=3, label="lab10: seeds (dots), mean ± std")
    at_chance = (left_chance or {}).get(name) is False
    marks = (["no rate\nleft chance"] if at_chance else []) + \
        ([f"{len(done)}/{len(seeds)}\nseeds"] if len(done) < len(seeds) and not at_chance else []) + \
        ([f"{done.mean():.1f} % ↑"] if len(done) and done.mean() >= top else [])
    if marks:
      ax.annotate("\n".join(marks), (i, 0.97), xycoords=("data", "axes fraction"), ha="center", va="top",
                  fontsize=6.5, color="0.4")
  ax.set_yscale("log")
  ax.set_ylim(bottom, top)
  ax.set_xticks(x, names, rotation=20, ha="right")
  ax.set_ylabel("test error (%, log scale)")
  ax.set_title("test error at the best-validation epoch")
  for k, (name, values) in enumerate(val_by_lr.items()):
    ax_lr.plot(lrs, plotting.floats(values), plotting.MARKERS[k % len(plotting.MARKERS)] + "-", color=color_of[name],
               label=name)
  ax_lr.set_xscale("log")
  ax_lr.set_yscale("log")
  ax_lr.set_xticks(lrs, [f"{r:g}" for r in lrs])
  ax_lr.minorticks_off()
  ax_lr.set_xlabel("learning rate")
  ax_lr.set_ylabel(f"best validation error (%), seed {seeds[0]}")
  ax_lr.set_title("choice of the rate (gaps: unfinished or diverged)")
  fine = top / bottom < 4  # a narrow span (the nets near the paper's 1.6–2.2 %) gets ticks between 1, 2 and 5
  ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([1, 1.25, 1.5, 1.75, 2, 2.5, 3, 4]) if fine
                             else matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
  ax_lr.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
  for axis in (ax.yaxis, ax_lr.yaxis):
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  plotting.legend_below(fig, (ax, ax_lr), ncol=4)
  plotting.suptitle(fig, title)
  return fig


CHECKS = (
    Check(f"the 5×1000 sigmoid net with standard init leaves chance at none of the rates "
          f"{', '.join(f'{r:g}' for r in LRS)} while early stopping follows it: seed 0's best validation error stays "
          f"above {CHANCE_ERROR:g} % at every rate (the paper: 2.21 % test error; lab10's 4-layer Glorot Fig. 2 net "
          "leaves its plateau at lr 1)",
          lambda c: c["sigmoid_left_chance"] == 0),
    Check("every finished run stopped by early stopping or divergence, none at the epoch cap (each was trained until "
          "its validation error stopped improving)",
          lambda c: c["runs_at_epoch_cap"] == 0),
    Check("Tanh, Tanh N and Softsign N end within 0.5 points of the paper's test error (mean of 3 seeds), Tanh N and "
          "Softsign N within 0.3",
          lambda c: all(c[f"{k}_seeds"] == 3 and abs(c[f"{k}_minus_paper"]) <= (0.5 if k == "tanh" else 0.3)
                        for k in ("tanh", "tanh_n", "softsign_n"))),
    Check("normalized init lowers tanh's test error on every seed, by more than the seed spread (Tanh N − Tanh, paired "
          "by seed over 3 seeds; the paper: −0.12 points)",
          lambda c: c["tanh_n_minus_tanh_pairs"] == 3 and c["tanh_n_minus_tanh_resolved"] == 1
          and c["tanh_n_minus_tanh_mean"] < 0),
    Check("normalized init lowers softsign's test error on every seed too, by more than the seed spread (Softsign N − "
          "Softsign, paired by seed over 3 seeds): the opposite sign to the paper's single runs (1.72 vs 1.64, +0.08 "
          "points)",
          lambda c: c["softsign_n_minus_softsign_pairs"] == 3 and c["softsign_n_minus_softsign_resolved"] == 1
          and c["softsign_n_minus_softsign_mean"] < 0),
    Check("Softsign with standard init ends more than 0.5 points above the paper's 1.64 (mean of 3 seeds; outside the "
          "±0.5 target). At their best-validation epochs the standard-init tanh and softsign nets still err on some "
          "of the 10,000 scored training images, the normalized-init nets on none",
          lambda c: c["softsign_seeds"] == 3 and c["softsign_minus_paper"] > 0.5
          and c["tanh_train_error_max"] > 0 and c["softsign_train_error_max"] > 0
          and c["tanh_n_train_error_max"] == 0 and c["softsign_n_train_error_max"] == 0),
)

FIGURES = (Figure(
    name="glorot_table1_mnist",
    mirrors="Glorot & Bengio 2010, Table 1, MNIST column: test error (%) of 5×1000 nets, Sigmoid 2.21, Tanh 1.76, "
            "Tanh N 1.64, Softsign 1.64, Softsign N 1.72 (N: normalized init) — sigmoid worst, normalized init "
            "helping tanh.",
    differences=("The paper does not give its number of updates, its stopping rule or its rate grid: here each run "
                 f"stops after {PATIENCE} epochs without a lower validation error (at most {MAX_EPOCHS}), test error "
                 "read at its best-validation epoch; rates from "
                 f"{', '.join(f'{r:g}' for r in LRS)}, chosen on seed 0.",
                 f"{len(SEEDS)} seeds per configuration (the paper reports one number).",),
    rejected=("2 epochs on 20,000 images, rates 0.03–0.3, 2 seeds (the earlier version of this figure): far from "
              "convergence (6.8–9.2 % test error, still falling by over a point per epoch), every net at the lowest "
              "rate of its grid, and sigmoid at chance at all three rates — its plateau, not its final error.",),
    caveats=("A long experiment: about a minute per epoch per run on one CPU core; it is completed over several "
             "sittings, and the figure states how many runs are finished.",
             f"A run on a plateau (validation error at chance) stops after {PATIENCE} epochs without improvement like "
             "any other: a sigmoid net that would leave its plateau later at a low rate is not followed there "
             "(lab10's Glorot Fig. 2 net, at lr 1, leaves it after about 4,500 updates).",
             "Softsign's gap to the paper (+0.51 points) is only partly explained here: each of its seeds (1.95, 2.33, "
             "2.18 %) is above the paper's single run; the rate does not account for it (at 0.1, which tied 0.01 on "
             "seed 0's validation error, seed 0 ends at 2.24 %); its runs stopped before fitting the 10,000 scored "
             "training images (0.09–0.63 % error on them at the best epoch). Tried: the same three runs trained again "
             f"to the {MAX_EPOCHS}-epoch cap (scripts/train.py, same config and seed; identical through the "
             "early-stopped epochs) reach 0 % training error and 2.09, 1.90, 2.08 % test error at their best validation epoch (mean 2.02, +0.38), "
             "seed 1's at the cap itself: the stopping rule accounts for part of the gap; the table keeps the rule "
             "every configuration shares.",
             "Sigmoid's seeds 1 and 2 are not trained (no rate left chance, so there is no rate to train them at): its "
             "differences from tanh and softsign rest on seed 0 alone (about +87 points each) and are not resolved at "
             "1 seed.",
             "The paper reports one run per configuration: its differences between inits (−0.12 points for tanh, "
             "+0.08 for softsign) are smaller than the spread of the same differences over seeds here (std 0.15 and "
             "0.21 points), so one run cannot resolve them.",),
    run=run, draw=draw, checks=CHECKS,
    quick=dict(width=64, n_train=2000, lrs=(0.03, 0.3), seeds=(0, 1), max_epochs=4, patience=2,
               workroot="runs/glorot_table1_mnist-quick")),)
