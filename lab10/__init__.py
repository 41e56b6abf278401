"""lab10: gradient flow in deep nets — activations, initializers, training and per-layer probes in JAX."""

__version__ = "0.1.0"


def __getattr__(name: str):
  """``lab10.load_run`` and ``lab10.load_sweep`` (``lab10.loaders``), imported on first use: ``import lab10``
  stays free of pandas and JAX."""
  if name in ("load_run", "load_sweep"):
    from lab10 import loaders
    return getattr(loaders, name)
  raise AttributeError(f"module 'lab10' has no attribute {name!r}")
