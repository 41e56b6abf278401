"""lab10: gradient flow in deep nets — activations, initializers, training and per-layer probes in JAX."""

__version__ = "0.1.0"
