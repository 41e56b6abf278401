"""The names the command line and ``Config`` accept, importable without JAX: the scripts parse and check their
flags (``--help`` included) before they load it. ``activations`` and ``initializers`` map each name to its
callable and refuse, at import, a table that differs from these names.
"""

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softsign", "identity")
DEFAULT_LEAKY_SLOPE = 0.01  # PyTorch's and JAX's default
# Bounded activations' ranges (lo, hi): the probes count units near a bound as saturated.
RANGES: dict[str, tuple[float, float]] = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0)}

KERNEL_INITIALIZERS = ("normal", "glorot_uniform", "glorot_normal", "glorot_truncated_normal", "glorot_standard",
                       "fan_avg_x2_normal", "he_normal", "he_truncated_normal", "he_uniform", "lecun_normal",
                       "lecun_truncated_normal", "lecun_uniform", "orthogonal")
BIAS_INITIALIZERS = ("zeros", "normal")

# A run directory's files (``lab10.workdir`` owns their rules; ``lab10.loaders`` reads them without JAX).
CONFIG, METRICS, STATS, HISTOGRAMS, SUMMARY = (
    "config.json", "metrics.jsonl", "stats.jsonl", "stats_histograms.npz", "summary.json")
SWEEP_MODELS = "sweep.json"  # a sweep folder's list of its model folders


def check_table(what: str, table: dict, names: tuple[str, ...]) -> None:
  """RuntimeError unless ``table`` has exactly ``names``, in order (a table edited without this module)."""
  if tuple(table) != names:
    raise RuntimeError(f"lab10's {what} table {tuple(table)} differs from lab10.names {names}; keep them equal")
