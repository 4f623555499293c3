"""int8 weight-only quantisation for in-process serving: a quarter of the weights' bytes.

Each kernel (any parameter with two or more axes) is stored as int8 with one float32 scale per
output channel (the last axis): ``q = round(w / s)``, ``s = max|w| / 127`` (symmetric, as
PyTorch's per-channel weight observers do). Biases, norms and embeddings of one axis stay
float32. Activations stay float32: :func:`dequantize` runs inside the jitted function, so the
stored and transferred weights are int8 and XLA fuses the multiply into their use.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Int8Weight(NamedTuple):
    """``values * scale`` approximates the float kernel (scale broadcasts on the last axis)."""

    values: Any  # int8, the kernel's shape
    scale: Any  # float32, [out_channels]


def quantize_int8(variables: Any) -> Any:
    """``variables`` with every kernel of >= 2 axes as an ``Int8Weight``."""
    def quantize(leaf):
        leaf = np.asarray(leaf)
        if leaf.ndim < 2 or not np.issubdtype(leaf.dtype, np.floating):
            return leaf
        reduce = tuple(range(leaf.ndim - 1))
        scale = np.abs(leaf).max(axis=reduce) / 127.0
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        values = np.clip(np.round(leaf / scale), -127, 127).astype(np.int8)
        return Int8Weight(values, scale)

    return jax.tree.map(quantize, jax.device_get(variables))


def dequantize(variables: Any) -> Any:
    """The float32 variables back (traced into the caller's jit)."""
    return jax.tree.map(
        lambda leaf: (leaf.values.astype(jnp.float32) * leaf.scale
                      if isinstance(leaf, Int8Weight) else leaf),
        variables, is_leaf=lambda leaf: isinstance(leaf, Int8Weight))


def nbytes(variables: Any) -> int:
    """Bytes of every array in ``variables`` (int8 values and their scales included)."""
    return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(variables)))


__all__ = ["Int8Weight", "dequantize", "nbytes", "quantize_int8"]
