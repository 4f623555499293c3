"""Output-size, padding, parameter-count and multiply-add formulas for conv and pooling layers.

Sizes follow the course's formula ``floor((n + 2p - k) / s) + 1`` (input ``n``, padding ``p``,
kernel ``k``, stride ``s``), generalised with dilation ``d`` (effective kernel ``d (k - 1) + 1``) and asymmetric
padding. Every size function accepts one int (one spatial axis) or a sequence of ints (one per
axis, e.g. ``(H, W)``) and answers in the same form; per-axis options may then be an int (all
axes) or a sequence.

Parameter counts are the sizes of the arrays the layer holds (weights + bias); BatchNorm is
``2 C`` trainable parameters plus ``2 C`` running statistics, which Flax keeps in
``batch_stats`` and which :func:`param_count` therefore does not see in ``params``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence, Union

import jax
import numpy as np

Size = Union[int, Sequence[int]]
Pad = Union[int, Sequence[int], Sequence[Sequence[int]], str]


def _as_tuple(value, num_axes: int, name: str) -> tuple:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * num_axes
    items = tuple(value)
    if len(items) != num_axes:
        raise ValueError(f"{name}={value!r} has {len(items)} entries; expected {num_axes} "
                         "(one per spatial axis) or a single int")
    return items


def _pad_pairs(padding, num_axes: int) -> tuple[tuple[int, int], ...]:
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * num_axes
    items = _as_tuple(padding, num_axes, "padding")
    return tuple((int(p), int(p)) if isinstance(p, (int, np.integer)) else
                 (int(p[0]), int(p[1])) for p in items)


def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``d (k - 1) + 1`` (a 3x3 kernel at dilation 2 covers 5x5)."""
    if kernel_size < 1 or dilation < 1:
        raise ValueError(f"kernel_size={kernel_size} and dilation={dilation} must both be >= 1")
    return dilation * (kernel_size - 1) + 1


def same_padding(kernel_size: Size, *, dilation: Size = 1) -> tuple[tuple[int, int], ...]:
    """Stride-1 'same' padding per axis: ``(k_eff - 1) / 2`` each side, the extra pixel after.

    For odd kernels this is the course's ``p = (k - 1) / 2`` on both sides (PyTorch's
    ``padding='same'``). At stride > 1 there is no single 'same'; pass explicit pairs.
    """
    scalar = isinstance(kernel_size, (int, np.integer))
    kernels = _as_tuple(kernel_size, 1 if scalar else len(tuple(kernel_size)), "kernel_size")
    dilations = _as_tuple(dilation, len(kernels), "dilation")
    pairs = []
    for k, d in zip(kernels, dilations):
        total = effective_kernel_size(k, d) - 1
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def _resolve_padding(padding: Pad, kernels, dilations, num_axes):
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return ((0, 0),) * num_axes
        if padding.upper() == "SAME":
            return same_padding(tuple(kernels), dilation=tuple(dilations))
        raise ValueError(f"padding={padding!r}; use 'valid', 'same', an int or "
                         "(before, after) pairs")
    return _pad_pairs(padding, num_axes)


def _per_axis(input_size: Size, fn, **per_axis_options):
    scalar = isinstance(input_size, (int, np.integer))
    sizes = (int(input_size),) if scalar else tuple(int(s) for s in input_size)
    num_axes = len(sizes)
    options = {}
    for name, value in per_axis_options.items():
        options[name] = _as_tuple(value, num_axes, name)
    results = tuple(fn(n, **{k: v[i] for k, v in options.items()}) for i, n in enumerate(sizes))
    return results[0] if scalar else results


def conv_output_size(input_size: Size, *, kernel_size: Size, stride: Size = 1, padding: Pad = 0,
                     dilation: Size = 1) -> Size:
    """``floor((n + p_before + p_after - d (k - 1) - 1) / s) + 1`` per spatial axis.

    ``padding`` is an int, per-axis ints or ``(before, after)`` pairs, or ``'valid'``/``'same'``
    (stride-1 'same'). Raises if the (dilated) kernel does not fit in the padded input.
    """
    scalar = isinstance(input_size, (int, np.integer))
    num_axes = 1 if scalar else len(tuple(input_size))
    kernels = _as_tuple(kernel_size, num_axes, "kernel_size")
    dilations = _as_tuple(dilation, num_axes, "dilation")
    pairs = _resolve_padding(padding, kernels, dilations, num_axes)

    def one(n, k, s, d, pad_index):
        lo, hi = pairs[pad_index]
        span = effective_kernel_size(k, d)
        if s < 1:
            raise ValueError(f"stride={s} must be >= 1")
        if n + lo + hi < span:
            raise ValueError(
                f"kernel of span {span} (k={k}, dilation={d}) does not fit in an input of size {n} "
                f"padded by ({lo}, {hi}); use a smaller kernel or more padding"
            )
        return (n + lo + hi - span) // s + 1

    return _per_axis(input_size, one, k=kernels, s=stride, d=dilations,
                     pad_index=tuple(range(num_axes)))


def conv_transpose_output_size(input_size: Size, *, kernel_size: Size, stride: Size = 1,
                               padding: Size = 0, output_padding: Size = 0,
                               dilation: Size = 1) -> Size:
    """PyTorch ``ConvTranspose2d`` size: ``(n - 1) s - 2 p + d (k - 1) + output_padding + 1``.

    It inverts :func:`conv_output_size` (the course's ``(W - 1) S - 2P + K`` at d=1); the
    ``output_padding < stride`` picks among the input sizes that map to the same output size.
    """

    def one(n, k, s, p, op, d):
        if op >= max(s, d):
            raise ValueError(f"output_padding={op} must be smaller than stride={s} or dilation={d}")
        out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        if out < 1:
            raise ValueError(f"transposed conv gives size {out} for input {n}; reduce padding={p}")
        return out

    return _per_axis(input_size, one, k=kernel_size, s=stride, p=padding, op=output_padding,
                     d=dilation)


def pool_output_size(input_size: Size, *, window: Size, stride: Size | None = None,
                     padding: Size = 0, dilation: Size = 1, ceil_mode: bool = False) -> Size:
    """Pooling size with PyTorch's rules (``stride`` defaults to ``window``).

    ``ceil_mode`` rounds up, but (as in PyTorch) a last window that would start inside the
    right padding is dropped.
    """
    stride = window if stride is None else stride

    def one(n, k, s, p, d):
        if 2 * p > effective_kernel_size(k, d):
            raise ValueError(f"padding={p} must be at most half the window {k} (PyTorch's rule)")
        span = effective_kernel_size(k, d)
        if n + 2 * p < span:
            raise ValueError(f"window of span {span} does not fit in input {n} padded by {p}")
        numerator = n + 2 * p - span
        out = (-(-numerator // s) if ceil_mode else numerator // s) + 1
        if ceil_mode and (out - 1) * s >= n + p:
            out -= 1
        return out

    return _per_axis(input_size, one, k=window, s=stride, p=padding, d=dilation)


def conv_param_count(*, in_channels: int, out_channels: int, kernel_size: Size,
                     groups: int = 1, bias: bool = True) -> int:
    """``out (k_h k_w in / groups) + out`` (bias).

    At groups=1 this is the course's ``n (k_h k_w c + 1)``: one bias per filter.
    """
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and "
                         f"out_channels={out_channels}")
    kh, kw = _as_tuple(kernel_size, 2, "kernel_size")
    return out_channels * kh * kw * (in_channels // groups) + (out_channels if bias else 0)


def depthwise_separable_param_count(*, in_channels: int, out_channels: int, kernel_size: Size,
                                    bias: bool = False) -> int:
    """Depthwise ``k x k`` conv (groups = in_channels) followed by a pointwise 1x1 conv."""
    return (conv_param_count(in_channels=in_channels, out_channels=in_channels,
                             kernel_size=kernel_size, groups=in_channels, bias=bias)
            + conv_param_count(in_channels=in_channels, out_channels=out_channels,
                               kernel_size=1, bias=bias))


def dense_param_count(*, in_features: int, out_features: int, bias: bool = True) -> int:
    """A fully connected layer: ``n m`` weights plus ``m`` biases."""
    return in_features * out_features + (out_features if bias else 0)


def batch_norm_param_count(channels: int) -> int:
    """Trainable BatchNorm parameters (scale and offset); running statistics are extra ``2 C``."""
    return 2 * channels


def conv_mac_count(*, output_size: Size, in_channels: int, out_channels: int, kernel_size: Size,
                   groups: int = 1) -> int:
    """Multiply-accumulates of one conv on one image: ``H' W' out (k_h k_w in / groups)``.

    Halving ``H'`` and ``W'`` divides this by 4, the course's "75% less compute".
    """
    out_h, out_w = _as_tuple(output_size, 2, "output_size")
    weights = conv_param_count(in_channels=in_channels, out_channels=out_channels,
                               kernel_size=kernel_size, groups=groups, bias=False)
    return out_h * out_w * weights


def param_count(params: Any) -> int:
    """Total number of array elements in a parameter pytree (e.g. ``variables['params']``)."""
    return int(sum(math.prod(np.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)))
