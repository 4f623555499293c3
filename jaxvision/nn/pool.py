"""A fast CPU max pool: a drop-in replacement for ``flax.linen.max_pool``.

XLA:CPU (jaxlib 0.10.2) runs ``reduce_window`` as a loop over each output's window, after the
pass that computed its input. In a ResNet-18 at batch 32 and 224x224, the stem's BatchNorm and
ReLU pass plus its 3x3/2 max pool took 37 ms of about 400. The maximum over the window's
strided slices is exact, so it gives the same numbers, and XLA fuses it with the BatchNorm and
ReLU into one loop that takes 8 ms. The predictor runs 6-8% faster (``benchmarks/inference.py``).
A 2x2/2 pool (VGG, UNet) gains 1.5-2x and AlexNet's 3x3/2 4x, each measured with a ReLU before it.

:func:`fast_max_pool` computes the slices when not differentiated; under differentiation it is
``reduce_window``, forward and gradient (whose ties go to one input, as in PyTorch; the slices'
gradient would split them). Every platform other than CPU gets ``reduce_window`` itself.
Models use it on the fast path (``conv="auto"``, see :func:`jaxvision.nn.layers.resolve_max_pool`);
an exported model keeps Flax's max pool, which the exporters turn into a MaxPool node.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def _reduce_window_max(x, window, strides, pads):
    return nn.max_pool(x, window, strides=strides, padding=pads)


def _tap(offset: int, size: int, pad_lo: int, stride: int, out: int):
    """Along one axis, window position ``offset``: the input slice ``(start, limit)`` its outputs
    read, and the padding ``(before, after)`` for the outputs where it overhangs the input;
    None where it reads only padding."""
    first = max(0, -(-(pad_lo - offset) // stride))
    last = min(out - 1, (size - 1 - offset + pad_lo) // stride)
    if first > last:
        return None
    start = stride * first + offset - pad_lo
    return (start, start + stride * (last - first) + 1), (first, out - 1 - last)


def _max_of_slices(x, window, strides, pads):
    """The maximum over the window's taps, each a strided slice of ``x`` padded (with the
    lowest value) only where its windows overhang, so that XLA fuses all of them, and whatever
    computed ``x``, into one loop that never writes a padded copy."""
    lowest = jnp.array(-jnp.inf if jnp.issubdtype(x.dtype, jnp.floating)
                       else jnp.iinfo(x.dtype).min, x.dtype)
    n, h, w, c = x.shape
    outs = [max(0, (size + lo + hi - k) // s + 1)
            for size, (lo, hi), k, s in zip((h, w), pads, window, strides)]
    taps = []
    for i in range(window[0]):
        for j in range(window[1]):
            axes = [_tap(k, size, lo, s, out) for k, size, (lo, _), s, out
                    in zip((i, j), (h, w), pads, strides, outs)]
            if None in axes:
                continue
            (rows, row_pad), (cols, col_pad) = axes
            tap = lax.slice(x, (0, rows[0], cols[0], 0), (n, rows[1], cols[1], c),
                            (1, *strides, 1))
            taps.append(lax.pad(tap, lowest, ((0, 0, 0), (*row_pad, 0), (*col_pad, 0),
                                              (0, 0, 0))))
    if not taps:  # every window lies in the padding
        return jnp.full((n, *outs, c), lowest)
    return functools.reduce(lax.max, taps)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _slices_unless_differentiated(x, window, strides, pads):
    return _max_of_slices(x, window, strides, pads)


@_slices_unless_differentiated.defjvp
def _reduce_window_jvp(window, strides, pads, primals, tangents):
    return jax.jvp(lambda x: _reduce_window_max(x, window, strides, pads), primals, tangents)


def fast_max_pool(inputs, window_shape: Sequence[int], strides: Sequence[int] | None = None,
                  padding: str | Sequence[tuple[int, int]] = "VALID"):
    """``flax.linen.max_pool`` (same arguments and result), by strided slices on CPU when not
    differentiated (see module doc). Inputs other than 2-D NHWC, and types without an infinity
    or an integer minimum to pad with (bool, float8), go to Flax's unchanged."""
    strides = tuple(int(s) for s in strides or (1,) * len(window_shape))
    paddable = (inputs.dtype in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)
                or jnp.issubdtype(inputs.dtype, jnp.integer))
    if inputs.ndim != 4 or len(window_shape) != 2 or not paddable:
        return nn.max_pool(inputs, window_shape, strides=strides, padding=padding)
    window = tuple(int(k) for k in window_shape)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(inputs.shape[1:3], window, strides, padding)
    pads = tuple(tuple(int(p) for p in pair) for pair in padding)
    return lax.platform_dependent(
        inputs,
        cpu=lambda x: _slices_unless_differentiated(x, window, strides, pads),
        default=lambda x: _reduce_window_max(x, window, strides, pads))
