"""2-D convolution, written out so that it explains itself, next to the fast XLA call.

"Convolution" in deep learning is cross-correlation (the course's formula, and XLA's):

    out[n, i, j, o] = bias[o]
        + sum_{m, l, c} x_pad[n, i*s_h + m*d_h, j*s_w + l*d_w, c] * K[m, l, c, o]

with ``x_pad`` the padded input, ``s`` the stride, ``d`` the dilation and ``K`` an HWIO kernel.
With ``groups = g`` the input and output channels are split into ``g`` blocks and block ``b`` of
the output only sees block ``b`` of the input (``K`` then has ``C_in / g`` input channels);
``groups = C_in`` is the depthwise convolution.

* :func:`conv2d_reference` loops over the kernel taps: each tap ``(m, l)`` multiplies a strided,
  shifted view of the input by a ``C_in x C_out`` matrix, and the views are summed.
* :func:`extract_patches` + a matrix product is the same thing as "im2col".
* :func:`conv2d` calls ``lax.conv_general_dilated`` with the same arguments (the fast path).
* :func:`convolve2d` flips the kernel first: the textbook (signal-processing) convolution.
* :func:`conv_transpose2d` is PyTorch's ``conv_transpose2d`` (the gradient of a strided conv).

Images are NHWC, kernels HWIO. ``padding`` is ``'valid'``, ``'same'`` (stride-1 same), an int,
``(p_h, p_w)`` or ``((top, bottom), (left, right))``; ``padding_mode`` is any mode of
:mod:`jaxvision.ops.padding` (zeros, reflect, symmetric, replicate, circular).
"""

from __future__ import annotations

from typing import Sequence, Union

import jax.numpy as jnp
from jax import lax

from jaxvision.ops.geometry import conv_output_size, same_padding
from jaxvision.ops.padding import numpy_pad_mode, pad_images, padding_pairs

IntPair = Union[int, Sequence[int]]
Padding = Union[str, int, Sequence[int], Sequence[Sequence[int]]]


def as_pair(value: IntPair, name: str) -> tuple[int, int]:
    """``(h, w)`` from an int or a pair; ``name`` goes into the error."""
    if isinstance(value, int):
        return (value, value)
    items = tuple(int(v) for v in value)
    if len(items) != 2:
        raise ValueError(f"{name}={value!r}: give an int or an (h, w) pair")
    return items  # type: ignore[return-value]


def resolve_padding(padding: Padding, *, kernel_size: IntPair,
                    dilation: IntPair = 1) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit ``((top, bottom), (left, right))`` for any accepted ``padding`` spelling."""
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return ((0, 0), (0, 0))
        if padding.upper() == "SAME":
            return same_padding(as_pair(kernel_size, "kernel_size"),  # type: ignore[return-value]
                                dilation=as_pair(dilation, "dilation"))
        raise ValueError(f"padding={padding!r}; use 'valid', 'same', an int or "
                         "(before, after) pairs")
    return padding_pairs(padding)  # type: ignore[return-value]


def _check(images, kernel, groups):
    if images.ndim != 4:
        raise ValueError(f"images of shape {images.shape} must be NHWC (rank 4); add a batch "
                         "axis with images[None] or a channel axis with images[..., None]")
    if kernel.ndim != 4:
        raise ValueError(f"kernel of shape {kernel.shape} must be HWIO (rank 4); a 2-D filter "
                         "goes through jaxvision.ops.filters.apply_filter")
    in_channels, out_channels = images.shape[-1], kernel.shape[-1]
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({in_channels}) and "
                         f"the output channels ({out_channels})")
    if kernel.shape[2] * groups != in_channels:
        raise ValueError(f"kernel of shape {kernel.shape} has {kernel.shape[2]} input channels; "
                         f"with groups={groups} and {in_channels} image channels it needs "
                         f"{in_channels // groups}")


def _pad_for_conv(images, padding, kernel_shape, dilation, padding_mode):
    pairs = resolve_padding(padding, kernel_size=kernel_shape, dilation=dilation)
    return pad_images(images, pairs, mode=padding_mode), pairs


def conv2d_reference(images: jnp.ndarray, kernel: jnp.ndarray, *, stride: IntPair = 1,
                     padding: Padding = 0, dilation: IntPair = 1, groups: int = 1,
                     bias: jnp.ndarray | None = None, padding_mode: str = "zeros") -> jnp.ndarray:
    """The convolution as a sum over kernel taps (slow for big kernels, but transparent).

    Agrees with ``lax.conv_general_dilated`` (see :func:`conv2d`) for every stride, dilation,
    padding and group setting; jit- and vmap-safe (the loop over taps is static).
    """
    images, kernel = jnp.asarray(images), jnp.asarray(kernel)
    _check(images, kernel, groups)
    kh, kw = kernel.shape[:2]
    (sh, sw), (dh, dw) = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    padded, _ = _pad_for_conv(images, padding, (kh, kw), (dh, dw), padding_mode)
    out_h = conv_output_size(padded.shape[1], kernel_size=kh, stride=sh, dilation=dh)
    out_w = conv_output_size(padded.shape[2], kernel_size=kw, stride=sw, dilation=dw)
    batch, in_channels, out_channels = images.shape[0], images.shape[-1], kernel.shape[-1]
    per_group_in, per_group_out = in_channels // groups, out_channels // groups

    out = jnp.zeros((batch, out_h, out_w, groups, per_group_out), jnp.result_type(images, kernel))
    for m in range(kh):
        for l in range(kw):
            # Input pixels that tap (m, l) touches for every output position (i, j).
            view = padded[:, m * dh: m * dh + (out_h - 1) * sh + 1: sh,
                          l * dw: l * dw + (out_w - 1) * sw + 1: sw, :]
            view = view.reshape(batch, out_h, out_w, groups, per_group_in)
            tap = kernel[m, l].reshape(per_group_in, groups, per_group_out)
            out = out + jnp.einsum("nhwgi,igo->nhwgo", view, tap,
                                   precision=lax.Precision.HIGHEST)
    out = out.reshape(batch, out_h, out_w, out_channels)
    return out if bias is None else out + jnp.asarray(bias)


def conv2d(images: jnp.ndarray, kernel: jnp.ndarray, *, stride: IntPair = 1,
           padding: Padding = 0, dilation: IntPair = 1, groups: int = 1,
           bias: jnp.ndarray | None = None, padding_mode: str = "zeros",
           precision: lax.Precision | None = lax.Precision.HIGHEST) -> jnp.ndarray:
    """Same arguments as :func:`conv2d_reference`, computed by ``lax.conv_general_dilated``."""
    images, kernel = jnp.asarray(images), jnp.asarray(kernel)
    _check(images, kernel, groups)
    dilation = as_pair(dilation, "dilation")
    pairs = resolve_padding(padding, kernel_size=kernel.shape[:2], dilation=dilation)
    if numpy_pad_mode(padding_mode) != "constant":
        images, pairs = pad_images(images, pairs, mode=padding_mode), ((0, 0), (0, 0))
    out = lax.conv_general_dilated(
        images, kernel, window_strides=as_pair(stride, "stride"), padding=pairs,
        rhs_dilation=dilation, feature_group_count=groups,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision)
    return out if bias is None else out + jnp.asarray(bias)


def convolve2d(images: jnp.ndarray, kernel: jnp.ndarray, **options) -> jnp.ndarray:
    """True (flipped-kernel) convolution, as in ``scipy.signal.convolve2d``.

    Equal to :func:`conv2d` with the kernel rotated by 180 degrees. For a symmetric kernel
    (the course's 152 example) the two agree; for Sobel kernels the sign flips.
    """
    return conv2d(images, jnp.asarray(kernel)[::-1, ::-1], **options)


def extract_patches(images: jnp.ndarray, *, kernel_size: IntPair, stride: IntPair = 1,
                    padding: Padding = 0, dilation: IntPair = 1,
                    padding_mode: str = "zeros") -> jnp.ndarray:
    """im2col: ``(N, H', W', k_h * k_w * C)`` patches ordered (row, column, channel).

    ``extract_patches(x, ...) @ K.reshape(-1, C_out)`` equals ``conv2d(x, K, ...)``.
    """
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images of shape {images.shape} must be NHWC (rank 4)")
    (kh, kw), (sh, sw) = as_pair(kernel_size, "kernel_size"), as_pair(stride, "stride")
    dh, dw = as_pair(dilation, "dilation")
    padded, _ = _pad_for_conv(images, padding, (kh, kw), (dh, dw), padding_mode)
    out_h = conv_output_size(padded.shape[1], kernel_size=kh, stride=sh, dilation=dh)
    out_w = conv_output_size(padded.shape[2], kernel_size=kw, stride=sw, dilation=dw)
    views = [padded[:, m * dh: m * dh + (out_h - 1) * sh + 1: sh,
                    l * dw: l * dw + (out_w - 1) * sw + 1: sw, :]
             for m in range(kh) for l in range(kw)]
    # Taps concatenated along channels: the (row, column, channel) order in one copy.
    return views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)


def conv_transpose2d(images: jnp.ndarray, kernel: jnp.ndarray, *, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, dilation: IntPair = 1,
                     bias: jnp.ndarray | None = None) -> jnp.ndarray:
    """PyTorch's ``conv_transpose2d`` for NHWC images and an HWIO kernel ``K[m, l, c_in, c_out]``.

    Each input pixel ``x[i, j]`` adds ``x[i, j] * K[m, l]`` to output pixel
    ``(i s_h + m d_h - p_h, j s_w + l d_w - p_w)``; the output size is
    :func:`jaxvision.ops.geometry.conv_transpose_output_size`. (A PyTorch weight of shape
    ``(C_in, C_out, k_h, k_w)`` becomes ``K`` with ``w.transpose(2, 3, 0, 1)``.) Computed as a
    stride-1 correlation of the zero-dilated input with the flipped kernel.
    """
    images, kernel = jnp.asarray(images), jnp.asarray(kernel)
    if images.ndim != 4 or kernel.ndim != 4 or kernel.shape[2] != images.shape[-1]:
        raise ValueError(f"images {images.shape} must be NHWC and kernel {kernel.shape} HWIO with "
                         f"{images.shape[-1] if images.ndim == 4 else '?'} input channels")
    strides, pads = as_pair(stride, "stride"), as_pair(padding, "padding")
    extra, dilations = as_pair(output_padding, "output_padding"), as_pair(dilation, "dilation")
    pairs = []
    for k, s, p, op, d in zip(kernel.shape[:2], strides, pads, extra, dilations):
        if op >= max(s, d):
            raise ValueError(f"output_padding={op} must be smaller than stride={s} or dilation={d}")
        pairs.append((d * (k - 1) - p, d * (k - 1) - p + op))
    out = lax.conv_general_dilated(
        images, kernel[::-1, ::-1], window_strides=(1, 1), padding=pairs,
        lhs_dilation=strides, rhs_dilation=dilations,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=lax.Precision.HIGHEST)
    return out if bias is None else out + jnp.asarray(bias)
