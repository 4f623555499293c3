"""A drop-in ``conv_general_dilated`` whose weight gradient is one im2col matmul.

XLA:CPU lowers the weight gradient of a convolution to another convolution whose "kernel" is
the whole output-gradient map (e.g. 32x32), which Eigen runs far below matmul speed. Computing
it as ``patches^T @ dy`` (patches: the kh*kw shifted views of the padded input) turns it into a
single large GEMM. The forward pass and the input gradient stay XLA's own convolutions.

Pass it to Flax as ``nn.Conv(..., conv_general_dilated=conv_general_dilated_matmul_dw)``;
jaxvision's ResNets take it through their ``conv_general_dilated`` field. Numerically it is the
same convolution (float32 results agree to rounding; tests compare gradients with XLA's).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")


def _plain_conv(x, w, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


def _patches(x, kernel_hw, strides, padding, out_hw):
    """``(N*Ho*Wo, kh*kw*C)`` matrix of the input pixels each output pixel sees (HWIO order)."""
    (pad_h, pad_w), (sh, sw) = padding, strides
    x = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    kh, kw = kernel_hw
    ho, wo = out_hw
    views = [x[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :]
             for i in range(kh) for j in range(kw)]
    patches = views[0] if len(views) == 1 else jnp.concatenate(views, axis=-1)
    return patches.reshape(-1, patches.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_matmul_dw(x, w, strides, padding):
    return _plain_conv(x, w, strides, padding)


def _fwd(x, w, strides, padding):
    return _plain_conv(x, w, strides, padding), (x, w)


def _bwd(strides, padding, residuals, dy):
    x, w = residuals
    _, input_vjp = jax.vjp(lambda x: _plain_conv(x, w, strides, padding), x)
    (dx,) = input_vjp(dy)
    kh, kw, cin, cout = w.shape
    patches = _patches(x, (kh, kw), strides, padding, dy.shape[1:3])
    dw = lax.dot_general(patches, dy.reshape(-1, cout), (((0,), (0,)), ((), ())),
                         preferred_element_type=jnp.float32)
    return dx, dw.reshape(kh, kw, cin, cout).astype(w.dtype)


_conv_matmul_dw.defvjp(_fwd, _bwd)


def conv_general_dilated_matmul_dw(lhs, rhs, window_strides: Sequence[int], padding,
                                   lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                                   feature_group_count: int = 1, precision=None, **kwargs):
    """``lax.conv_general_dilated`` with a matmul weight gradient for plain NHWC/HWIO convs.

    Dilated, grouped, string-padded or differently laid-out convolutions fall back to
    ``lax.conv_general_dilated`` unchanged.
    """
    plain = (
        lhs.ndim == 4 and feature_group_count == 1 and not kwargs
        and all(d in (None, 1) for d in (lhs_dilation or (1,)) + (rhs_dilation or (1,)))
        and not isinstance(padding, str)
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    )
    if not plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, feature_group_count,
                                        precision=precision, **kwargs)
    padding = tuple(tuple(int(p) for p in pair) for pair in padding)
    return _conv_matmul_dw(lhs, rhs, tuple(int(s) for s in window_strides), padding)
