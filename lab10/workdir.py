"""A run directory: what it holds and every rule about it — new, resume or refuse, the lock, log truncation.

Layout::

  lock                        who trains here now: held (flock) by the one process of the run while it runs
  config.json                 the resolved Config and its config_sha256, dataset sizes, environment (written
                              first, atomically, once every input is checked; an edited one is refused)
  metrics.jsonl               one line per epoch                         ┐ cut back to the checkpoint's
  stats.jsonl                 per-layer statistics of the logged steps   ┘ epoch on resume
  stats_histograms.npz        histograms of activations, weights, weight gradients per logged step (--log_histograms)
  checkpoints/<epoch>/        orbax checkpoints of the newest --keep_checkpoints epochs, each with its digest
  checkpoints/<epoch>.sha256.json   (arrays and config hash); resume verifies it and the model's shapes
  checkpoints.damaged/        checkpoints that failed verification, moved aside when a resume fell back
  tensorboard/                TensorBoard event files of the above (--tensorboard; lab10.tensorboard)
  summary.json                written last: its presence means the run finished

What ``fit`` writes there while it trains is ``lab10.runlog``'s. ``step`` in metrics.jsonl and stats.jsonl is global: the number of training steps taken before (stats) or
after (metrics) the record, counted from the start of the run.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import math
import os
import shutil
import socket
from pathlib import Path

import jax

from lab10 import config as config_lib
from lab10 import data, runs
from lab10.names import CONFIG, HISTOGRAMS, METRICS, STATS, SUMMARY, SWEEP_MODELS  # noqa: F401  (lab10.workdir.X)

CHECKPOINTS, TENSORBOARD, LOCK = "checkpoints", "tensorboard", "lock"
LOGS = (METRICS, STATS)
RUN_FILES = (CONFIG, *LOGS, HISTOGRAMS, CHECKPOINTS, TENSORBOARD, SUMMARY)


def default(name: str) -> Path:
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  return Path("runs") / f"{name}-{stamp}"


def path_for(config: config_lib.Config) -> Path:
  return Path(config.workdir) if config.workdir else default(config.preset or config.model)


def _writable(path: Path) -> bool:
  """Whether ``path`` is, or could be created as, a folder we may write in."""
  path = path.absolute()
  while not path.exists():
    path = path.parent
  return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _lock_directory(workdir: Path, shared: bool = False) -> int | None:
  """An open descriptor of ``workdir`` holding its ``flock`` (None where the file system cannot lock a folder);
  BlockingIOError if another process holds it. The folder itself is locked, so deleting the lock file (which
  only names the holder) cannot let a second process in."""
  try:
    fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
  except OSError:
    return None
  try:
    fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    raise
  except OSError:  # e.g. a network file system without folder locks: the lock file alone holds
    os.close(fd)
    return None
  return fd


def _in_use(workdir: Path) -> config_lib.ConfigError:
  """The refusal of a run directory another process holds, naming the holder its lock file names."""
  try:
    holder = (workdir / LOCK).read_text(errors="replace").strip()[:500] or "another process"
  except OSError:
    holder = "another process"
  return config_lib.ConfigError(f"--workdir {workdir} is in use by {holder}; wait for it to end or stop it, or "
                                "choose another --workdir")


class Lock:
  """Exclusive ``flock`` of the run directory and of ``<workdir>/lock`` while the ``with`` block runs: one
  process per run directory. The kernel releases both when the process ends, however it ends, so a kill never
  leaves a stale lock; the file names the holder (pid, host, start) for the refusal of a second process."""

  def __init__(self, workdir: Path):
    self.workdir, self.fd, self.dir_fd = workdir, None, None

  def __enter__(self):
    try:
      self.workdir.mkdir(parents=True, exist_ok=True)
      fd = os.open(self.workdir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise config_lib.ConfigError(f"--workdir {self.workdir} cannot be created ({e.strerror})") from None
    try:
      self.dir_fd = _lock_directory(self.workdir)
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      if self.dir_fd is not None:
        os.close(self.dir_fd)
      raise _in_use(self.workdir) from None
    since = datetime.datetime.now().isoformat(timespec="seconds")
    with contextlib.suppress(OSError):  # the holder's name is for a second process's message; the lock holds without it
      os.ftruncate(fd, 0)
      os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode())
    self.fd = fd
    return self

  def __exit__(self, *exc):
    os.close(self.fd)  # releases the locks; the file stays, naming the last holder
    if self.dir_fd is not None:
      os.close(self.dir_fd)


def _check_not_in_use(workdir: Path) -> None:
  """ConfigError naming the holder if another process holds ``workdir``'s lock (a probe: the file is not written)."""
  try:
    probe = _lock_directory(workdir, shared=True) if workdir.is_dir() else None
  except BlockingIOError:
    raise _in_use(workdir) from None
  if probe is not None:
    os.close(probe)
  try:
    fd = os.open(workdir / LOCK, os.O_RDONLY)
  except OSError:
    return  # no lock file: no run has started here
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
  except BlockingIOError:
    raise _in_use(workdir) from None
  finally:
    os.close(fd)


def _check_finished(workdir: Path, epochs: int) -> None:
  """ConfigError unless a finished run's metrics.jsonl holds every epoch, whole (else it would be reported
  finished with records missing)."""
  path = workdir / METRICS
  try:  # read_records keeps whole lines only
    found = [record.get("epoch") for record in read_records(workdir)]
  except (OSError, ValueError, AttributeError):
    found = None
  if found != list(range(1, epochs + 1)):
    raise config_lib.ConfigError(f"--resume: the finished run in {workdir} has lost records: {path} does not hold "
                                 f"epochs 1-{epochs} whole; restore it, or pass --overwrite to train the run again")


def checkpoint_epochs(workdir: Path) -> list[int]:
  """Epochs of the complete checkpoints in ``workdir`` (orbax names unfinished ones ``<epoch>.orbax-…-tmp-…``)."""
  folder = workdir / CHECKPOINTS
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def plan(config: config_lib.Config, workdir: Path, locked: bool = False) -> str:
  """What ``fit`` will do in ``workdir`` — ``"new"``, ``"resume"``, or ``"done"`` (--resume of a run that
  has finished) — decided before any work; ConfigError where the workdir must not be touched:

  * no run there (no run files): a new run (also with --resume: there is nothing to continue);
  * run files (checkpoints, logs) but no config.json: refused — whose run they are cannot be told;
  * --overwrite: a new run; the old run's files are deleted once every input has been checked;
  * --resume: continue from the newest checkpoint; the config must be the run's, but --epochs may grow;
  * neither: refused, whether the config differs or is the same (finished or not).
  """
  try:
    if workdir.exists() and not workdir.is_dir():
      raise config_lib.ConfigError(f"--workdir {workdir} exists and is not a folder")
    if not _writable(workdir):
      raise config_lib.ConfigError(f"--workdir {workdir} cannot be created or written")
  except OSError as e:  # a name too long for the file system, a loop of links
    raise config_lib.ConfigError(f"--workdir {workdir} is not a usable path ({e.strerror})") from None
  if not locked:  # (this process's own lock would refuse it)
    _check_not_in_use(workdir)
  if config.overwrite:
    return "new"
  if not (workdir / CONFIG).exists():
    left = [name for name in (*LOGS, HISTOGRAMS, SUMMARY) if (workdir / name).exists()]
    left = ([f"{CHECKPOINTS}/"] if any((workdir / CHECKPOINTS).glob("*")) else []) + left
    if left:
      raise config_lib.ConfigError(f"--workdir {workdir} holds {', '.join(left)} but no {CONFIG}: whose run they are "
                                   "cannot be told; pass --overwrite to replace them, or choose another --workdir")
    return "new"
  run = config_lib.load_json(workdir / CONFIG)
  summary = runs.read_json(workdir / SUMMARY)
  finished = summary is not None and summary.get("epoch") == run.epochs
  trained = max(checkpoint_epochs(workdir), default=0)
  if config.resume:
    clash = config_lib.differences(config, run, ignore=(*config_lib.RUN_CONTROL, "epochs"))
    if clash:
      raise config_lib.ConfigError(f"--resume: the run in {workdir} has another config: {'; '.join(clash)}; "
                                   "pass --overwrite to replace it, or choose another --workdir")
    if config.epochs < trained:
      raise config_lib.ConfigError(f"--epochs {config.epochs} is fewer than the {trained} epochs the run in "
                                   f"{workdir} has already trained; expected {trained} or more")
    if finished and config.epochs == run.epochs:
      _check_finished(workdir, run.epochs)
      return "done"
    return "resume"
  clash = config_lib.differences(config, run)
  if clash:
    shown = "; ".join(clash[:3]) + ("; …" if len(clash) > 3 else "")
    raise config_lib.ConfigError(f"--workdir {workdir} holds a run with another config ({shown}); pass --resume "
                                 "to continue it with its own config, --overwrite to replace it, or choose "
                                 "another --workdir")
  if finished:
    raise config_lib.ConfigError(f"--workdir {workdir} holds a finished run with this config ({run.epochs} "
                                 "epochs); pass --overwrite to train it again, or choose another --workdir")
  progress = f"checkpoint of epoch {trained} of {run.epochs}" if trained else "no checkpoint yet"
  raise config_lib.ConfigError(f"--workdir {workdir} holds an unfinished run with this config ({progress}); "
                               "pass --resume to continue it, or --overwrite to start it again")


SWEEP_TABLES = ("summary.csv", "summary.md")
# A sweep writes this first: the model folders it lists are the sweep's own, the only ones --overwrite deletes.


def plan_sweep(configs: list[config_lib.Config], folder: Path, locked: bool = False) -> str:
  """What ``sweep.run`` will do in ``folder`` (``configs``' workdirs are its subfolders): ``"new"`` or
  ``"done"`` (--resume of the same finished sweep); ConfigError where the folder must not be touched. A sweep's
  models train as one program from one start, so an unfinished sweep cannot be resumed."""
  if folder.exists() and not folder.is_dir():
    raise config_lib.ConfigError(f"--workdir {folder} exists and is not a folder")
  if not _writable(folder):
    raise config_lib.ConfigError(f"--workdir {folder} cannot be created or written")
  if not locked:
    _check_not_in_use(folder)
  if (folder / CONFIG).exists():
    raise config_lib.ConfigError(f"--workdir {folder} is the run directory of one model (train.py); a sweep needs a "
                                 "folder of its own: choose another --workdir")
  base = configs[0]
  held = [p.name for p in sorted(folder.iterdir()) if (p / CONFIG).exists()] if folder.is_dir() else []
  others = [name for name in held if name not in _sweep_models(folder)]
  if others:  # never replaced, not even with --overwrite: they are not this sweep's to delete
    raise config_lib.ConfigError(f"--workdir {folder} holds runs no sweep there wrote ({', '.join(others[:3])}"
                                 f"{', …' if len(others) > 3 else ''}); a sweep replaces only its own models: choose "
                                 "another --workdir")
  finished = all((folder / name).exists() for name in SWEEP_TABLES)
  if base.overwrite or not (held or finished):
    return "new"
  if not base.resume:
    raise config_lib.ConfigError(f"--workdir {folder} holds a{' finished' if finished else 'n unfinished'} sweep "
                                 f"({len(held)} models); pass --overwrite to train it again, or choose another --workdir")
  same = sorted(Path(c.workdir).name for c in configs) == held and not any(
      config_lib.differences(c, config_lib.load_json(Path(c.workdir) / CONFIG), ignore=(*config_lib.RUN_CONTROL,))
      for c in configs)
  if not finished:
    raise config_lib.ConfigError(f"--resume: the sweep in {folder} did not finish, and a sweep cannot be resumed (its "
                                 "models train together from one start); pass --overwrite to train it again")
  if not same:
    raise config_lib.ConfigError(f"--resume: the sweep in {folder} has other models or settings; pass --overwrite to "
                                 "replace it, or choose another --workdir")
  return "done"


def _sweep_models(folder: Path) -> list[str]:
  """The model folders the sweep in ``folder`` wrote (its SWEEP_MODELS list; none if there is no sweep)."""
  try:
    return list(runs.read_json(folder / SWEEP_MODELS)["models"])
  except (OSError, ValueError, KeyError, TypeError, runs.RunError):
    return []


def prepare_sweep(folder: Path, models: list[str]) -> None:
  """Delete an earlier sweep's tables and the model runs it listed in ``folder`` (--overwrite; nothing else is
  touched), then list ``models`` as this sweep's."""
  for name in SWEEP_TABLES:
    (folder / name).unlink(missing_ok=True)
  for name in _sweep_models(folder):
    model = folder / name
    if (model / CONFIG).exists() and not model.is_symlink():
      prepare(model, "new")
      if not any(model.iterdir()):
        model.rmdir()
  folder.mkdir(parents=True, exist_ok=True)
  runs.write_json(folder / SWEEP_MODELS, {"models": list(models)})


def prepare(workdir: Path, plan: str, run_info: dict | None = None) -> None:
  """Create ``workdir``; for a new run (``plan`` says when: --overwrite, or no run there), delete the files an
  earlier run there wrote (nothing else), then write ``run_info`` as config.json: the run exists from here on."""
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise config_lib.ConfigError(f"--workdir {workdir} cannot be created ({e.strerror})") from None
  if plan == "new":
    for name in (*RUN_FILES, f"{CHECKPOINTS}.damaged"):
      for path in (workdir / name, workdir / f"{name}.tmp"):
        if path.is_dir() and not path.is_symlink():
          shutil.rmtree(path)
        else:  # a file, or a symbolic link: the link goes, never what it points to
          path.unlink(missing_ok=True)
    if run_info is not None:
      runs.write_json(workdir / CONFIG, run_info)


def truncate_logs(workdir: Path, epoch: int) -> None:
  """Cut every JSONL log back to records of epochs <= ``epoch``: drop later epochs and a partial last
  line, so that a run resumed from the checkpoint of ``epoch`` neither loses nor repeats a record.
  Records without an ``epoch`` key count as epoch 0. ``epoch`` 0 deletes the logs."""
  for name in LOGS:
    path = workdir / name
    if not path.exists():
      continue
    if epoch == 0:
      path.unlink()
      continue
    kept = []
    for line in path.read_bytes().splitlines(keepends=True):
      if not line.endswith(b"\n"):
        break  # a partial last line: the process died inside its write
      try:
        record_epoch = json.loads(line).get("epoch", 0)
      except ValueError:
        raise runs.RunError(f"{path}: line {len(kept) + 1} is not JSON; cannot resume from it") from None
      if record_epoch > epoch:
        break
      kept.append(line)
    with runs.atomic(path) as tmp:
      tmp.write_bytes(b"".join(kept))


def read_records(workdir: Path) -> list[dict]:
  path = workdir / METRICS
  return runs.read_jsonl(path) if path.exists() else []


def info(config: config_lib.Config, ds: data.Dataset, params=None) -> dict:
  """config.json's contents: every resolved setting and their hash, the parameter count (given ``params``),
  the data and the environment."""
  counted = {} if params is None else {"num_params": sum(math.prod(p.shape) for p in jax.tree.leaves(params))}
  return {"config": config.to_json(), "config_sha256": config_lib.sha256(config),
          "hidden_widths": list(config.hidden_widths), **counted,
          "dataset": {"name": ds.name, "train": len(ds.train_y), "test": len(ds.test_y),
                      "val": 0 if ds.val_y is None else len(ds.val_y), "input_shape": list(ds.input_shape)},
          "environment": runs.environment()}
