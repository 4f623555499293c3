"""Pooling as pure functions on NHWC arrays (jit- and vmap-safe, static output shapes).

Window pools (``max_pool``, ``avg_pool``, ``mixed_pool``, ``lp_pool``, ``stochastic_pool``) take
``window``, ``stride`` (defaults to ``window``, i.e. non-overlapping) and ``padding`` (int,
``(p_h, p_w)`` or pairs) and follow PyTorch's output-size rule, see
:func:`jaxvision.ops.geometry.pool_output_size`. ``max_pool`` and ``avg_pool`` lower to the
``reduce_window`` primitive, which the receptive-field tracer recognises.

Adaptive pools reduce any input to a fixed ``output_size`` with PyTorch's bins: output cell
``i`` of ``out`` covers input rows ``floor(i H / out)`` to ``ceil((i + 1) H / out)`` (exclusive).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxvision.ops.conv import IntPair, as_pair
from jaxvision.ops.geometry import pool_output_size
from jaxvision.ops.padding import pad_images, padding_pairs


def _check_nhwc(x: jnp.ndarray) -> jnp.ndarray:
    x = jnp.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"input of shape {x.shape} must be NHWC (rank 4); add a batch axis "
                         "with x[None]")
    return x


def _window_geometry(x, window, stride, padding, ceil_mode):
    """Window, stride and (before, after) padding per spatial axis, after includes ceil_mode."""
    window = as_pair(window, "window")
    stride = window if stride is None else as_pair(stride, "stride")
    pairs = padding_pairs(padding)
    full_pairs = []
    for axis in range(2):
        n, k, s = x.shape[1 + axis], window[axis], stride[axis]
        lo, hi = pairs[axis]
        if lo != hi:  # PyTorch pads symmetrically; allow asymmetric through the generic formula
            out = (n + lo + hi - k) // s + 1
        else:
            out = pool_output_size(n, window=k, stride=s, padding=lo, ceil_mode=ceil_mode)
        # Extra padding after the input so that `out` windows fit (only non-zero in ceil_mode).
        extra = max(0, (out - 1) * s + k - (n + lo + hi))
        full_pairs.append((lo, hi + extra, hi))
    return window, stride, full_pairs


def _reduce(x, init, op, window, stride, pairs):
    return lax.reduce_window(x, init, op, (1, *window, 1), (1, *stride, 1),
                             ((0, 0), *pairs, (0, 0)))


def max_pool(x: jnp.ndarray, *, window: IntPair, stride: IntPair | None = None,
             padding: IntPair = 0, ceil_mode: bool = False) -> jnp.ndarray:
    """Maximum over each window; padding never wins (it is ``-inf``)."""
    x = _check_nhwc(x)
    window, stride, geometry = _window_geometry(x, window, stride, padding, ceil_mode)
    pairs = [(lo, hi) for lo, hi, _ in geometry]
    # A Python-scalar identity lets JAX pick the differentiable reduce_window_max primitive.
    lowest = -jnp.inf if jnp.issubdtype(x.dtype, jnp.inexact) else int(jnp.iinfo(x.dtype).min)
    return _reduce(x, lowest, lax.max, window, stride, pairs)


def avg_pool(x: jnp.ndarray, *, window: IntPair, stride: IntPair | None = None,
             padding: IntPair = 0, ceil_mode: bool = False,
             count_include_pad: bool = True) -> jnp.ndarray:
    """Mean over each window, with PyTorch's divisor: explicit padding counts unless
    ``count_include_pad=False``; the extra cells that ``ceil_mode`` adds never count."""
    x = _check_nhwc(x)
    window, stride, geometry = _window_geometry(x, window, stride, padding, ceil_mode)
    pairs = [(lo, hi) for lo, hi, _ in geometry]
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    zero = 0.0  # a Python scalar: the differentiable reduce_window_sum primitive
    total = _reduce(x, zero, lax.add, window, stride, pairs)
    ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
    if count_include_pad:
        ones = jnp.pad(ones, ((0, 0), geometry[0][::2], geometry[1][::2], (0, 0)),
                       constant_values=1)
        count_pairs = [(0, hi - declared) for (lo, hi, declared) in geometry]
    else:
        count_pairs = pairs
    count = _reduce(ones, zero, lax.add, window, stride, count_pairs)
    return total / count


def global_max_pool(x: jnp.ndarray, *, keepdims: bool = False) -> jnp.ndarray:
    """Maximum over all positions: ``(N, C)`` (or ``(N, 1, 1, C)`` with ``keepdims``)."""
    return jnp.max(_check_nhwc(x), axis=(1, 2), keepdims=keepdims)


def global_avg_pool(x: jnp.ndarray, *, keepdims: bool = False) -> jnp.ndarray:
    """Global average pooling (GAP): the mean of each channel, independent of H and W."""
    return jnp.mean(_check_nhwc(x), axis=(1, 2), keepdims=keepdims)


def adaptive_bins(input_size: int, output_size: int) -> tuple[tuple[int, int], ...]:
    """PyTorch's adaptive-pooling bins ``[floor(i n / out), ceil((i + 1) n / out))`` for each ``i``.

    Bins may overlap when ``n`` is not a multiple of ``out`` (10 -> 7 gives
    ``(0,2),(1,3),(2,5),(4,6),(5,8),(7,9),(8,10)``), and repeat when ``out > n``.
    """
    if input_size < 1 or output_size < 1:
        raise ValueError(f"input_size={input_size} and output_size={output_size} must be >= 1")
    return tuple(((i * input_size) // output_size, -(-((i + 1) * input_size) // output_size))
                 for i in range(output_size))


def _adaptive(x, output_size, reduce_fn):
    x = _check_nhwc(x)
    out_h, out_w = as_pair(output_size, "output_size")
    n, height, width, channels = x.shape
    if (height, width) == (out_h, out_w):
        return x
    if height % out_h == 0 and width % out_w == 0:  # equal bins: one reshape and reduce
        cells = x.reshape(n, out_h, height // out_h, out_w, width // out_w, channels)
        return reduce_fn(cells, axis=(2, 4))
    rows = jnp.stack([reduce_fn(x[:, s:e], axis=1) for s, e in adaptive_bins(x.shape[1], out_h)],
                     axis=1)
    # Rectangular bins make max and mean separable: rows first, then columns.
    return jnp.stack([reduce_fn(rows[:, :, s:e], axis=2)
                      for s, e in adaptive_bins(x.shape[2], out_w)], axis=2)


def adaptive_avg_pool(x: jnp.ndarray, output_size: IntPair) -> jnp.ndarray:
    """Mean over PyTorch's adaptive bins: ``(N, H, W, C) -> (N, out_h, out_w, C)`` for any H, W."""
    return _adaptive(x, output_size, jnp.mean)


def adaptive_max_pool(x: jnp.ndarray, output_size: IntPair) -> jnp.ndarray:
    """Maximum over PyTorch's adaptive bins (``nn.AdaptiveMaxPool2d``)."""
    return _adaptive(x, output_size, jnp.max)


def mixed_pool(x: jnp.ndarray, *, alpha: float | jnp.ndarray, window: IntPair,
               stride: IntPair | None = None, padding: IntPair = 0) -> jnp.ndarray:
    """``alpha * max_pool + (1 - alpha) * avg_pool``.

    ``alpha`` may be a traced scalar, e.g. ``jax.nn.sigmoid`` of a learned parameter.
    """
    options = dict(window=window, stride=stride, padding=padding)
    return alpha * max_pool(x, **options) + (1 - alpha) * avg_pool(x, **options)


def lp_pool(x: jnp.ndarray, *, p: float, window: IntPair, stride: IntPair | None = None,
            padding: IntPair = 0) -> jnp.ndarray:
    """``(sum |x_i|^p)^(1/p)`` over each window: p=1 is the sum, p=2 the
    Euclidean norm, large p approaches max of ``|x|``. (PyTorch's ``lp_pool2d`` agrees on
    non-negative inputs.) Each window is scaled by its maximum first, so large ``p`` neither
    overflows nor underflows; zero padding adds nothing.
    """
    if p <= 0:
        raise ValueError(f"p={p} must be positive")
    x = _check_nhwc(x)
    window = as_pair(window, "window")
    stride = window if stride is None else as_pair(stride, "stride")
    values = jnp.abs(_window_values(pad_images(x, padding), window, stride))
    peak = values.max(axis=-1, keepdims=True)
    safe_peak = jnp.where(peak > 0, peak, 1)
    norm = ((values / safe_peak) ** p).sum(axis=-1) ** (1.0 / p)
    return jnp.where(peak[..., 0] > 0, peak[..., 0] * norm, 0)


def _window_values(x, window, stride):
    """``(N, H', W', C, k_h * k_w)``: the values of every valid window."""
    (kh, kw), (sh, sw) = window, stride
    out_h = (x.shape[1] - kh) // sh + 1
    out_w = (x.shape[2] - kw) // sw + 1
    views = [x[:, m: m + (out_h - 1) * sh + 1: sh, l: l + (out_w - 1) * sw + 1: sw]
             for m in range(kh) for l in range(kw)]
    return jnp.stack(views, axis=-1)


def stochastic_pool(x: jnp.ndarray, *, window: IntPair, stride: IntPair | None = None,
                    train: bool, key: jax.Array | None = None) -> jnp.ndarray:
    """Stochastic pooling (Zeiler & Fergus 2013) for non-negative inputs.

    Training picks one value per window with probability ``x_i / sum_j x_j`` (an all-zero
    window gives 0) and needs ``key``; evaluation returns the expectation ``sum_i p_i x_i``.
    """
    x = _check_nhwc(x)
    window = as_pair(window, "window")
    stride = window if stride is None else as_pair(stride, "stride")
    values = _window_values(x, window, stride)
    total = values.sum(axis=-1, keepdims=True)
    probs = jnp.where(total > 0, values / jnp.where(total > 0, total, 1), 0)
    if not train:
        return (probs * values).sum(axis=-1)
    if key is None:
        raise ValueError("stochastic_pool(train=True) samples a value per window: pass key=")
    logits = jnp.where(values > 0, jnp.log(jnp.where(values > 0, values, 1)), -jnp.inf)
    logits = jnp.where(total > 0, logits, 0.0)  # all-zero window: any pick is 0
    choice = jax.random.categorical(key, logits, axis=-1)
    return jnp.take_along_axis(values, choice[..., None], axis=-1)[..., 0]


def spatial_pyramid_pool(x: jnp.ndarray, *, levels: Sequence[int] = (1, 2, 4),
                         pool_fn: Callable[[jnp.ndarray, IntPair], jnp.ndarray] = adaptive_max_pool
                         ) -> jnp.ndarray:
    """Spatial pyramid pooling (He et al. 2014): a fixed-length vector per image.

    Pools to a ``level x level`` grid for each level, flattens each grid (row, column, channel)
    and concatenates: ``(N, C * sum(level^2))`` whatever H and W are (21 C for levels 1, 2, 4).
    """
    x = _check_nhwc(x)
    parts = [pool_fn(x, (level, level)).reshape(x.shape[0], -1) for level in levels]
    return jnp.concatenate(parts, axis=-1)


def fractional_starts(sample: jnp.ndarray, *, input_size: int, output_size: int,
                      window: int) -> jnp.ndarray:
    """Window starts of fractional max pooling (Graham 2014) for a sample ``u`` in [0, 1).

    ``alpha = (n - window) / (out - 1)``; start ``i = floor((i + u) alpha) - floor(u alpha)``,
    and the last window ends at the input's end. Consecutive starts differ by floor(alpha) or
    ceil(alpha), so the reduction factor need not be an integer. Matches PyTorch.
    """
    if output_size < 1 or input_size < window or output_size > input_size - window + 1:
        raise ValueError(f"fractional max pool cannot map {input_size} to {output_size} with "
                         f"window {window}; need 1 <= output_size <= input_size - window + 1")
    if output_size == 1:
        return jnp.array([input_size - window], jnp.int32)
    sample = jnp.asarray(sample, jnp.float32)
    alpha = jnp.float32(input_size - window) / jnp.float32(output_size - 1)
    index = jnp.arange(output_size - 1, dtype=jnp.float32)
    starts = (jnp.floor((index + sample) * alpha) - jnp.floor(sample * alpha)).astype(jnp.int32)
    return jnp.concatenate([starts, jnp.array([input_size - window], jnp.int32)])


def fractional_max_pool(x: jnp.ndarray, *, output_size: IntPair, window: IntPair = 2,
                        key: jax.Array | None = None,
                        samples: jnp.ndarray | None = None) -> jnp.ndarray:
    """Fractional max pooling to ``output_size`` (e.g. 1.5x reduction: 12 -> 8).

    Each image and channel draws its own window positions from ``samples`` of shape
    ``(N, C, 2)`` holding ``(u_h, u_w)`` in [0, 1), or from ``key`` if ``samples`` is None.
    (PyTorch's ``_random_samples`` holds ``(u_w, u_h)``: use ``samples[..., ::-1]``.)
    """
    x = _check_nhwc(x)
    (out_h, out_w), (kh, kw) = as_pair(output_size, "output_size"), as_pair(window, "window")
    batch, height, width, channels = x.shape
    if samples is None:
        if key is None:
            raise ValueError("fractional_max_pool needs key= (or explicit samples=)")
        samples = jax.random.uniform(key, (batch, channels, 2))
    samples = jnp.asarray(samples)
    if samples.shape != (batch, channels, 2):
        raise ValueError(f"samples of shape {samples.shape} must be (N, C, 2) = "
                         f"{(batch, channels, 2)}")

    def plane(values, sample):  # values (H, W), sample (2,)
        starts_h = fractional_starts(sample[0], input_size=height, output_size=out_h, window=kh)
        starts_w = fractional_starts(sample[1], input_size=width, output_size=out_w, window=kw)
        rows = values[starts_h[:, None] + jnp.arange(kh)].max(axis=1)  # (out_h, W)
        return rows[:, starts_w[:, None] + jnp.arange(kw)].max(axis=2)  # (out_h, out_w)

    planes = jnp.moveaxis(x, -1, 1)  # (N, C, H, W)
    pooled = jax.vmap(jax.vmap(plane))(planes, samples)
    return jnp.moveaxis(pooled, 1, -1)
