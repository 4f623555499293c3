"""Learned and fixed upsampling layers for decoders.

* :class:`ConvTranspose`: ``torch.nn.ConvTranspose2d`` (padding, output padding, dilation),
  or, with ``output_size``, the padding solved for by
  :func:`jaxvision.ops.upsample.transposed_conv_padding` (an unreachable size is an error).
* :class:`FastConvTranspose`: ``flax.linen.ConvTranspose`` (same parameters and results) that
  computes kernel == stride layers by :func:`jaxvision.nn.conv.fast_conv_transpose` (one GEMM
  on CPU instead of XLA's slow input-dilated convolution).
* :class:`Upsample`: a fixed upsampling (nearest, bed of nails, bilinear, bicubic) by a factor.
* :class:`ResizeConv`: upsample then a stride-1 convolution, the text's remedy for the
  checkerboard artifacts of transposed convolutions whose kernel is not a multiple of the
  stride (Odena et al., 2016).
* :class:`PixelShuffleUpsample`: convolution to ``C r^2`` channels then depth-to-space (ESPCN).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.nn.conv import fast_conv_transpose
from jaxvision.ops import upsample as up
from jaxvision.ops.conv import as_pair, conv_transpose2d


class ConvTranspose(nn.Module):
    """Transposed convolution with PyTorch's padding semantics; kernel HWIO
    (``torch_weight.transpose(2, 3, 0, 1)``)."""

    features: int
    kernel_size: int = 2
    stride: int = 2
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1
    output_size: tuple[int, int] | None = None  # solve padding/output_padding for this size
    use_bias: bool = True
    dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        kh, kw = as_pair(self.kernel_size, "kernel_size")
        in_ch = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (kh, kw, in_ch, self.features))
        pads, extras = self.paddings(x.shape[1:3])
        bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        return conv_transpose2d(x.astype(self.dtype), kernel.astype(self.dtype),
                                stride=self.stride, padding=pads, output_padding=extras,
                                dilation=self.dilation,
                                bias=None if bias is None else bias.astype(self.dtype))

    def paddings(self, input_hw) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((p_h, p_w), (op_h, op_w))`` for an input of spatial size ``input_hw``."""
        if self.output_size is None:
            return as_pair(self.padding, "padding"), as_pair(self.output_padding, "output_padding")
        kernels, strides = as_pair(self.kernel_size, "kernel_size"), as_pair(self.stride, "stride")
        solved = [up.transposed_conv_padding(n, target, kernel_size=k, stride=s,
                                             padding=self.padding, dilation=self.dilation)
                  for n, target, k, s in zip(input_hw, self.output_size, kernels, strides)]
        return tuple(p for p, _ in solved), tuple(op for _, op in solved)


class FastConvTranspose(nn.ConvTranspose):
    """``flax.linen.ConvTranspose`` whose 2-D, kernel == stride, ``"VALID"``/``"SAME"`` case
    (no mask, dilation or ``transpose_kernel``) runs :func:`fast_conv_transpose`; the same
    parameters (a subclass, so BatchNorm folding and checkpoints see a ``ConvTranspose``) and
    the same outputs to float32 rounding. Every other configuration is Flax's own."""

    @nn.compact
    def __call__(self, inputs):
        size = ((self.kernel_size,) if isinstance(self.kernel_size, int)
                else tuple(self.kernel_size))  # an int is Flax's 1-D kernel

        def per_axis(value):
            return (value,) * len(size) if isinstance(value, int) else tuple(value)

        strides = per_axis(self.strides or 1)
        fast = (inputs.ndim == 4 and len(size) == 2 and strides == size and self.mask is None
                and per_axis(self.kernel_dilation or 1) == (1, 1)
                and not self.transpose_kernel and self.preferred_element_type is None
                and isinstance(self.padding, str) and self.padding in ("VALID", "SAME"))
        if not fast:
            return super().__call__(inputs)
        kernel = self.param("kernel", self.kernel_init, size + (inputs.shape[-1], self.features),
                            self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = fast_conv_transpose(inputs, kernel, strides, self.padding, precision=self.precision)
        return y if bias is None else y + bias


class Upsample(nn.Module):
    """A parameter-free upsampling by ``factor``: ``mode`` is ``'nearest'``, ``'bed_of_nails'``,
    ``'bilinear'`` or ``'bicubic'`` (half-pixel, or ``align_corners``)."""

    factor: int = 2
    mode: str = "nearest"
    align_corners: bool = False

    def __call__(self, x):
        if self.mode == "nearest":
            return up.nearest_upsample(x, self.factor)
        if self.mode == "bed_of_nails":
            return up.bed_of_nails(x, self.factor)
        if self.mode in ("bilinear", "bicubic"):
            size = (x.shape[1] * self.factor, x.shape[2] * self.factor)
            return up.resize(x, size, mode=self.mode, align_corners=self.align_corners)
        raise ValueError(f"mode must be nearest, bed_of_nails, bilinear or bicubic, got {self.mode!r}")


class ResizeConv(nn.Module):
    """:class:`Upsample` then a ``kernel_size`` stride-1 convolution with symmetric padding."""

    features: int
    factor: int = 2
    mode: str = "nearest"
    kernel_size: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = Upsample(self.factor, self.mode)(x)
        pad = (self.kernel_size - 1) // 2
        return nn.Conv(self.features, (self.kernel_size,) * 2,
                       padding=((pad, self.kernel_size - 1 - pad),) * 2, dtype=self.dtype)(x)


class PixelShuffleUpsample(nn.Module):
    """A ``kernel_size`` convolution to ``features * factor^2`` channels, then
    :func:`jaxvision.ops.upsample.pixel_shuffle`."""

    features: int
    factor: int = 2
    kernel_size: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        pad = (self.kernel_size - 1) // 2
        x = nn.Conv(self.features * self.factor ** 2, (self.kernel_size,) * 2,
                    padding=((pad, self.kernel_size - 1 - pad),) * 2, dtype=self.dtype)(x)
        return up.pixel_shuffle(x, self.factor)
