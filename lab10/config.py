"""The typed run configuration, the seed labs' presets, validation, and name → callable resolution.

This is the only module that looks names up: everything below it receives callables
(activations, initializers, optax transformations, model constructors).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lab10 import data, names

# JAX, Flax and optax are imported where a model or optimizer is made: the scripts parse and check their flags,
# which this module defines, before they load JAX.
if TYPE_CHECKING:
  import optax
  from flax import nnx


class ConfigError(ValueError):
  """A bad setting; the message is one line naming the setting, the value and the valid choices."""


MODELS = ("mlp", "cnn")
OPTIMIZERS = ("adam", "sgd", "momentum")
INIT_MODES = ("fan_in", "fan_out", "fan_avg")
MATMUL_PRECISIONS = ("highest", "high", "default")  # jax.default_matmul_precision's names


def _field(default, help: str):
  """A Config field whose help text is also its --flag's help."""
  return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Config:
  # data
  dataset: str = _field("mnist", f"one of {', '.join(data.DATASETS)}")
  data_dir: str | None = _field(None, "folder with the raw files (IDX .gz, or cifar-10-batches-bin/); "
                                f"default ${data.DATA_DIR_ENV}, else MNIST's bundled copy, others download into "
                                "~/.cache/lab10")
  val_size: int = _field(0, "first N training examples held out for validation (TF1 labs: 5000)")
  # model
  model: str = _field("mlp", "mlp | cnn (VGG-style 3x3 convs, no residuals)")
  depth: int = _field(2, "hidden layers (mlp; 0 = softmax regression) or conv layers (cnn)")
  width: tuple[int, ...] = _field((256,), "hidden width, or comma-separated widths per layer (cnn: base channels)")
  activation: str = _field("relu", ", ".join(names.ACTIVATIONS))
  leaky_slope: float = _field(names.DEFAULT_LEAKY_SLOPE, "leaky_relu's negative slope a (PyTorch/JAX default)")
  init: str = _field("glorot_uniform", ", ".join(names.KERNEL_INITIALIZERS))
  init_std: float = _field(1.0, "sigma of --init normal (TF1 labs: 1, TF2 RandomNormal: 0.05)")
  init_gain: float = _field(1.0, "std multiplier g of every other kernel init: Var[W] x g^2")
  init_mode: str = _field("fan_in", "fan of he_*: fan_in (He Eq. 10) | fan_out (He Eq. 14) | fan_avg")
  bias_init: str = _field("zeros", ", ".join(names.BIAS_INITIALIZERS))
  bias_std: float = _field(1.0, "sigma of --bias_init normal (TF1 labs: 1)")
  dropout: float = _field(0.0, "drop probability after each hidden activation, in [0, 1)")
  batchnorm: bool = _field(False, "affine -> batch norm -> activation in every hidden layer")
  # optimisation
  optimizer: str = _field("adam", "adam | sgd | momentum (heavy ball)")
  lr: float = _field(1e-3, "learning rate")
  momentum: float = _field(0.9, "momentum of --optimizer momentum")
  weight_decay: float = _field(0.0, "L2 coefficient on kernels, added to the gradient before the optimizer")
  batch_size: int = _field(100, "examples per step; the remainder of each epoch's permutation is skipped")
  epochs: int = _field(15, "passes over the training set")
  seed: int = _field(0, "the one seed: init, data order and dropout keys derive from it")
  # Exact by default: JAX's own default is TF32 on NVIDIA GPUs and one bfloat16 pass on TPUs (~1e-3 relative).
  matmul_precision: str = _field("highest", "float32 matmuls and convolutions: highest (exact float32) | high "
                                 "(TF32 on NVIDIA GPUs, 3 bfloat16 passes on TPUs) | default (the backend's "
                                 "fastest: TF32 on NVIDIA GPUs, 1 bfloat16 pass on TPUs); CPUs are exact in all")
  # bookkeeping
  log_stats_every: int = _field(0, "append per-layer statistics of steps 0, N, 2N, ... of every epoch to stats.jsonl "
                                "(0: off); each record's step is global, counted from the start of the run")
  log_histograms: bool = _field(False, "with --log_stats_every, also histograms of activations, weights and "
                                "weight gradients (50 bins from each one's min to max) to stats_histograms.npz")
  tensorboard: bool = _field(False, "also write the metrics, statistics and histograms as TensorBoard events into "
                             "<workdir>/tensorboard (needs tensorboardX: pip install 'lab10[tensorboard]')")
  workdir: str | None = _field(None, "run directory; default runs/<preset or model>-<timestamp>")
  preset: str | None = _field(None, "a seed lab's settings; explicit flags override them")
  resume: bool = _field(False, "continue the run in --workdir from its newest checkpoint, with that run's config")
  overwrite: bool = _field(False, "replace the run in --workdir: its config, logs and checkpoints are deleted")
  keep_checkpoints: int = _field(3, "newest checkpoints kept in <workdir>/checkpoints")
  checkpoint_every: int = _field(1, "checkpoint after every N-th epoch and after the last; a resumed run restarts "
                                 "from the newest checkpoint")

  @property
  def hidden_widths(self) -> tuple[int, ...]:
    if self.model == "mlp" and len(self.width) > 1:
      return tuple(self.width)
    return tuple(self.width[:1]) * self.depth

  def checkpoints_after(self, epoch: int) -> bool:
    """Whether epoch ``epoch`` (1-based) ends with a checkpoint: every ``checkpoint_every``-th and the last."""
    return epoch % self.checkpoint_every == 0 or epoch == self.epochs

  def to_json(self) -> dict:
    """Every setting but the one-off actions --resume and --overwrite."""
    return {k: v for k, v in dataclasses.asdict(self).items() if k not in ACTIONS}


# How and where a run is carried out, not what it computes: these may differ between a run
# and its resumption, and are ignored when deciding whether a workdir holds "the same run".
ACTIONS = ("resume", "overwrite")
RUN_CONTROL = ("workdir", "data_dir", "keep_checkpoints", "checkpoint_every", "tensorboard", *ACTIONS)


# The seed labs ("Deep Learning Zero To All" Lab 10, cited in lab10/labs.py) at the TF1 budget: 15 epochs,
# batch 100, Adam 1e-3, 55k/5k/10k split. TF1 drew biases from N(0, 1), even in the Xavier labs.
_TF1 = dict(epochs=15, batch_size=100, optimizer="adam", lr=1e-3, val_size=5000, activation="relu")
_TF1_WIDE = dict(_TF1, width=(256,), depth=2)
_TF1_DEEP = dict(_TF1, width=(512,), depth=4, init="glorot_uniform", bias_init="normal", bias_std=1.0)
PRESETS: dict[str, dict] = {
    "lab10-1-softmax": dict(_TF1, depth=0, init="normal", init_std=1.0, bias_init="normal", bias_std=1.0),
    # TF2's RandomNormal() (σ = 0.05, zero biases): the TF1-style N(0, 1) sigmoid net barely trains.
    "lab10-1-sigmoid": dict(_TF1_WIDE, activation="sigmoid", init="normal", init_std=0.05, bias_init="zeros"),
    "lab10-2-relu": dict(_TF1_WIDE, init="normal", init_std=1.0, bias_init="normal", bias_std=1.0),
    "lab10-3-xavier": dict(_TF1_WIDE, init="glorot_uniform", bias_init="normal", bias_std=1.0),
    "lab10-4-deep": dict(_TF1_DEEP),
    "lab10-5-dropout": dict(_TF1_DEEP, dropout=0.3),
    # TF2's Dense → BN → ReLU with zero biases, at the TF1 budget.
    "lab10-6-batchnorm": dict(_TF1_DEEP, bias_init="zeros", batchnorm=True),
}


def _choice(flag: str, value, valid: Sequence[str]) -> None:
  if value not in valid:
    raise ConfigError(f"--{flag} {value!r} is not valid; choose from: {', '.join(valid)}")


def _check(flag: str, value, ok: bool, expected: str) -> None:
  if not ok:
    raise ConfigError(f"--{flag} {value} is out of range; expected {expected}")


def validate(c: Config) -> Config:
  """Raise ConfigError on the first bad setting; return ``c`` unchanged otherwise."""
  if c.preset is not None:
    _choice("preset", c.preset, list(PRESETS))
  _choice("dataset", c.dataset, data.DATASETS)
  _choice("model", c.model, MODELS)
  _choice("activation", c.activation, names.ACTIVATIONS)
  _choice("init", c.init, names.KERNEL_INITIALIZERS)
  _choice("init_mode", c.init_mode, INIT_MODES)
  _choice("bias_init", c.bias_init, names.BIAS_INITIALIZERS)
  _choice("optimizer", c.optimizer, OPTIMIZERS)
  _choice("matmul_precision", c.matmul_precision, MATMUL_PRECISIONS)
  _check("depth", c.depth, c.depth >= (1 if c.model == "cnn" else 0), ">= 0 (mlp) or >= 1 (cnn)")
  _check("width", ",".join(map(str, c.width)), len(c.width) > 0 and all(w > 0 for w in c.width),
         "positive integers")
  if c.model == "cnn" and len(c.width) > 1:
    raise ConfigError(f"--width {','.join(map(str, c.width))} gives several widths but --model cnn takes one "
                      "(the channels of its first stage)")
  if c.model == "mlp" and len(c.width) > 1 and len(c.width) != c.depth:
    raise ConfigError(f"--width {','.join(map(str, c.width))} gives {len(c.width)} widths but --depth is "
                      f"{c.depth}; give one width, or one per hidden layer")
  _check("dropout", c.dropout, 0.0 <= c.dropout < 1.0, "a probability in [0, 1)")
  for flag in ("lr", "init_std", "bias_std"):
    value = getattr(c, flag)
    _check(flag, value, math.isfinite(value) and value > 0, "a finite number > 0")
  _check("init_gain", c.init_gain, math.isfinite(c.init_gain) and c.init_gain > 0, "a finite number > 0")
  _check("leaky_slope", c.leaky_slope, math.isfinite(c.leaky_slope) and 0 <= c.leaky_slope < 1, "in [0, 1)")
  _check("momentum", c.momentum, 0.0 <= c.momentum < 1.0, "in [0, 1)")
  _check("weight_decay", c.weight_decay, math.isfinite(c.weight_decay) and c.weight_decay >= 0, ">= 0")
  _check("batch_size", c.batch_size, c.batch_size > 0, "an integer > 0")
  _check("epochs", c.epochs, c.epochs > 0, "an integer > 0")
  _check("val_size", c.val_size, c.val_size >= 0, "an integer >= 0")
  _check("log_stats_every", c.log_stats_every, c.log_stats_every >= 0, "an integer >= 0 (0: off)")
  if c.log_histograms and not c.log_stats_every:
    raise ConfigError("--log_histograms needs --log_stats_every N > 0")
  if c.tensorboard and importlib.util.find_spec("tensorboardX") is None:
    raise ConfigError("--tensorboard needs tensorboardX, which is not installed; pip install 'lab10[tensorboard]' "
                      "(or tensorboardX), or drop --tensorboard")
  _check("seed", c.seed, 0 <= c.seed < 2**32, "an integer in [0, 2^32)")
  _check("keep_checkpoints", c.keep_checkpoints, c.keep_checkpoints >= 1, "an integer >= 1")
  _check("checkpoint_every", c.checkpoint_every, c.checkpoint_every >= 1, "an integer >= 1")
  if c.resume and c.overwrite:
    raise ConfigError("--resume and --overwrite exclude each other; choose one")
  if c.resume and not c.workdir:
    raise ConfigError("--resume needs --workdir, the run directory to continue")
  if c.workdir is not None and not c.workdir.strip():
    raise ConfigError(f"--workdir {c.workdir!r} is empty; give a folder or leave the flag out")
  return c


MEMORY_SHARE = 0.5  # of a device's memory that parameters, gradients and Adam's two moments may take


def check_model_size(c: Config, input_shape: Sequence[int], num_classes: int, models: int = 1) -> None:
  """ConfigError if ``models`` copies of the model's parameters (counted from shapes alone, nothing allocated),
  with gradients and optimizer state (×4), would take more than half the memory of the first device."""
  import jax
  from flax import nnx

  model = nnx.eval_shape(lambda: make_model(c, input_shape, num_classes, nnx.Rngs(params=0)))
  n = sum(math.prod(v.shape) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
  need = 4 * n * 4 * models  # float32: parameters, gradients, two Adam moments
  device = jax.local_devices()[0]  # another process's device has no memory stats here
  stats = device.memory_stats() or {}
  memory = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  if need > MEMORY_SHARE * memory:
    raise ConfigError(f"--width {_shown(c.width)} --depth {c.depth} gives a model of {n:,} parameters "
                      f"({need / 2**30:.1f} GiB with gradients and optimizer state"
                      f"{f' for {models} models' if models > 1 else ''}), more than half the "
                      f"{memory / 2**30:.1f} GiB of {device}; choose a smaller --width or --depth")


def check_data_dir(c: Config) -> None:
  """ConfigError unless --data_dir, if given, is a folder."""
  if c.data_dir and not Path(c.data_dir).expanduser().is_dir():
    raise ConfigError(f"--data_dir {c.data_dir} does not exist or is not a folder; expected "
                      f"the folder holding the raw {c.dataset} files")


def check_batch_size(c: Config, n_train: int, dataset: str) -> None:
  """ConfigError unless one batch fits in the ``n_train`` training examples."""
  if c.batch_size > n_train:
    raise ConfigError(f"--batch_size {c.batch_size} is larger than the {n_train} training examples of "
                      f"{dataset}; expected 1..{n_train}")


def _shown(value) -> str:
  return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def differences(new: Config, old: Config, ignore: Sequence[str] = RUN_CONTROL) -> list[str]:
  """``"--lr 0.01 (run: 0.001)"`` for every setting outside ``ignore`` where ``new`` differs from ``old``."""
  return [f"--{f.name} {_shown(getattr(new, f.name))} (run: {_shown(getattr(old, f.name))})"
          for f in dataclasses.fields(Config)
          if f.name not in ignore and getattr(new, f.name) != getattr(old, f.name)]


def with_preset(preset: str | None, **overrides) -> Config:
  """Config defaults, then the preset's values, then ``overrides`` (e.g. explicit flags)."""
  values = {}
  if preset is not None:
    _choice("preset", preset, list(PRESETS))
    values.update(PRESETS[preset])
  values.update(overrides)
  return validate(Config(preset=preset, **values))


# --- names → callables --------------------------------------------------------------------------


def make_model(c: Config, input_shape: Sequence[int], num_classes: int, rngs: nnx.Rngs):
  """The NNX model ``c`` describes, for inputs of ``input_shape`` (H, W, C)."""
  from lab10 import activations, initializers, models

  activation = activations.get(c.activation, negative_slope=c.leaky_slope)
  # He's PReLU form ½(1+a²)·n·Var[W] = 1 follows the activation's own slope.
  slope = c.leaky_slope if c.activation == "leaky_relu" else 0.0
  kernel_init = initializers.kernel(c.init, std=c.init_std, gain=c.init_gain, mode=c.init_mode,
                                    negative_slope=slope)
  bias_init = initializers.bias(c.bias_init, std=c.bias_std)
  common = dict(activation=activation, kernel_init=kernel_init, bias_init=bias_init,
                dropout_rate=c.dropout, batchnorm=c.batchnorm, rngs=rngs)
  if c.model == "mlp":
    return models.MLP(math.prod(input_shape), c.hidden_widths, num_classes, **common)
  return models.CNN(input_shape[-1], c.depth, c.width[0], num_classes, **common)


def activation_bounds(c: Config) -> tuple[float, float] | None:
  """The range of a bounded activation (for the saturation statistic), else None."""
  return names.RANGES.get(c.activation)


def make_optimizer(c: Config) -> optax.GradientTransformation:
  import jax
  import optax

  if c.optimizer == "adam":
    opt = optax.adam(c.lr)
  elif c.optimizer == "sgd":
    opt = optax.sgd(c.lr)
  else:
    opt = optax.sgd(c.lr, momentum=c.momentum)
  if c.weight_decay:
    # Classic L2 (Caffe, He et al.): wd·W joins the gradient before the update; kernels only.
    kernels_only = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
    opt = optax.chain(optax.add_decayed_weights(c.weight_decay, mask=kernels_only), opt)
  return opt


def resumed(run: Config, preset: str | None, overrides: dict) -> Config:
  """``run``'s config continued: run-control flags and a larger --epochs are taken from ``overrides``;
  any other flag given must agree with the run (a resumed run computes what it started to compute)."""
  given = dict(overrides, **({"preset": preset} if preset is not None else {}))
  clash = differences(dataclasses.replace(run, **given), run, ignore=(*RUN_CONTROL, "epochs"))
  if clash:
    raise ConfigError(f"--resume continues the run in {given.get('workdir')} with its own config, but these flags "
                      f"differ from it: {'; '.join(clash)}; drop them, or pass --overwrite, or another --workdir")
  control = {k: v for k, v in given.items() if k in (*RUN_CONTROL, "epochs")}
  return validate(dataclasses.replace(run, **control))


def sha256(c: Config, ignore: Sequence[str] = ()) -> str:
  """SHA-256 of ``c``'s settings (but ``ignore``) as canonical JSON: config.json's ``config_sha256`` (all of
  ``to_json``), a checkpoint's (what the run computes: not RUN_CONTROL, not epochs)."""
  values = {k: v for k, v in c.to_json().items() if k not in ignore}
  return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def load_json(path) -> Config:
  """The Config recorded in a run's config.json, which must match the ``config_sha256`` written beside it;
  ConfigError if it cannot be read as one or was edited."""
  try:
    with open(path) as f:
      stored = json.load(f)
    values = stored["config"]
    unverifiable = "config_sha256" not in stored  # an older lab10 wrote it
    edited = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest() != stored.get("config_sha256")
    values["width"] = tuple(values["width"])
    config = Config(**values)
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ConfigError(f"{path} cannot be read as a lab10 run config ({e.__class__.__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''}); pass --overwrite or choose another --workdir"
                      ) from None
  if unverifiable:
    raise ConfigError(f"{path} has no config_sha256 (an older lab10 wrote it), so whether it was edited cannot be "
                      "told; pass --overwrite to start the run again, or choose another --workdir")
  if edited:
    raise ConfigError(f"{path} was edited after the run wrote it (its config no longer matches its config_sha256); "
                      "undo the edit to --resume, or pass --overwrite to start a new run with flags")
  return config
