"""What differs between the JAX and Flax versions lab10 allows (pyproject.toml's lower bounds to the newest): one
name per difference, so that the rest of lab10 reads as the newest API.
"""

import jax
from flax import nnx

# ``with enable_x64(True):`` float64 inside the block: ``jax.enable_x64`` from JAX 0.7, ``jax.experimental``'s before.
enable_x64 = getattr(jax, "enable_x64", None)
if enable_x64 is None:
  from jax.experimental import enable_x64

# A list of submodules Flax NNX sees as one (``blocks.3``): ``nnx.List`` from Flax 0.12; a plain list before.
List = getattr(nnx, "List", list)
