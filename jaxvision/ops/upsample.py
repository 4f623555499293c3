"""Upsampling for decoders, NHWC and jit-safe, with PyTorch's conventions.

* :func:`nearest_upsample`: ``out[k i + a, k j + b] = in[i, j]`` for ``0 <= a, b < k``.
* :func:`bed_of_nails`: ``out[k i, k j] = in[i, j]``, every other pixel 0.
* :func:`resize_bilinear` / :func:`resize_bicubic`: ``torch.nn.functional.interpolate`` with
  ``mode="bilinear"`` / ``"bicubic"`` (Keys' cubic with ``a = -0.75``), both conventions:
  half-pixel centres (``align_corners=False``: source ``(d + 0.5) in/out - 0.5``; bilinear
  clamps negative sources to 0, bicubic does not) and ``align_corners=True`` (source
  ``d (in - 1)/(out - 1)``: the corner pixels map onto each other). No antialiasing.
* :func:`pixel_shuffle` / :func:`pixel_unshuffle`: depth-to-space in ``torch.nn.PixelShuffle``'s
  CRD order, ``out[r h + i, r w + j, c] = in[h, w, c r^2 + i r + j]`` (not TF's
  ``depth_to_space``, whose DCR order puts the channel index last).
* :func:`transposed_conv_padding`: the ``(padding, output_padding)`` a transposed convolution
  needs to reach a given output size, or an error that says what would.

Resizing is one matrix per axis built on the host from the static sizes (the separable
interpolation weights), applied with an einsum: exact, and the same arithmetic as PyTorch.
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from jaxvision.ops.geometry import conv_transpose_output_size


def _check_images(images, name: str = "images"):
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{name} must be NHWC (4 dims), got shape {images.shape}")
    return images


def _factor(factor: int) -> int:
    if int(factor) != factor or factor < 1:
        raise ValueError(f"upsampling factor must be a positive integer, got {factor}")
    return int(factor)


def nearest_upsample(images, factor: int = 2) -> jnp.ndarray:
    """Nearest-neighbour x``factor``: each pixel becomes a ``factor x factor`` block."""
    images, k = _check_images(images), _factor(factor)
    return jnp.repeat(jnp.repeat(images, k, axis=1), k, axis=2)


def bed_of_nails(images, factor: int = 2) -> jnp.ndarray:
    """Bed of nails x``factor``: each pixel at the top-left of a block of zeros."""
    images, k = _check_images(images), _factor(factor)
    n, h, w, c = images.shape
    out = jnp.zeros((n, h, k, w, k, c), images.dtype).at[:, :, 0, :, 0, :].set(images)
    return out.reshape(n, h * k, w * k, c)


def _source(out_size: int, in_size: int, align_corners: bool) -> np.ndarray:
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        return dst * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
    return (dst + 0.5) * (in_size / out_size) - 0.5


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def interpolation_matrix(in_size: int, out_size: int, *, mode: str,
                         align_corners: bool = False, cubic_a: float = -0.75) -> np.ndarray:
    """The ``(out_size, in_size)`` weights of a 1-D resize; rows sum to 1. Out-of-range taps
    are clamped to the border pixel (PyTorch's rule)."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got in={in_size}, out={out_size}")
    src = _source(out_size, in_size, align_corners)
    matrix = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    if mode == "bilinear":
        if not align_corners:
            src = np.maximum(src, 0.0)
        lo = np.floor(src).astype(int)
        frac = src - lo
        for offset, weight in ((0, 1 - frac), (1, frac)):
            np.add.at(matrix, (rows, np.clip(lo + offset, 0, in_size - 1)), weight)
    elif mode == "bicubic":
        lo = np.floor(src).astype(int)
        frac = src - lo
        for offset in (-1, 0, 1, 2):
            np.add.at(matrix, (rows, np.clip(lo + offset, 0, in_size - 1)),
                      _cubic(frac - offset, cubic_a))
    else:
        raise ValueError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}")
    return matrix


def resize(images, size: tuple[int, int], *, mode: str = "bilinear",
           align_corners: bool = False) -> jnp.ndarray:
    """``F.interpolate(x, size=size, mode=mode, align_corners=align_corners)`` on NHWC images;
    ``mode`` is ``'nearest'`` (floor of ``d in/out``, PyTorch's legacy nearest), ``'bilinear'``
    or ``'bicubic'``."""
    images = _check_images(images)
    out_h, out_w = size
    if mode == "nearest":
        if align_corners:
            raise ValueError("align_corners only applies to 'bilinear' and 'bicubic'")
        rows = np.minimum(np.floor(np.arange(out_h) * images.shape[1] / out_h).astype(int),
                          images.shape[1] - 1)
        cols = np.minimum(np.floor(np.arange(out_w) * images.shape[2] / out_w).astype(int),
                          images.shape[2] - 1)
        return images[:, rows][:, :, cols]
    dtype = images.dtype if jnp.issubdtype(images.dtype, jnp.floating) else jnp.float32
    m_h = jnp.asarray(interpolation_matrix(images.shape[1], out_h, mode=mode,
                                           align_corners=align_corners), dtype)
    m_w = jnp.asarray(interpolation_matrix(images.shape[2], out_w, mode=mode,
                                           align_corners=align_corners), dtype)
    return jnp.einsum("oh,nhwc,pw->nopc", m_h, images.astype(dtype), m_w,
                      precision="highest")


def resize_bilinear(images, size, *, align_corners: bool = False) -> jnp.ndarray:
    """Bilinear resize (see :func:`resize`)."""
    return resize(images, size, mode="bilinear", align_corners=align_corners)


def resize_bicubic(images, size, *, align_corners: bool = False) -> jnp.ndarray:
    """Bicubic resize, ``a = -0.75`` (see :func:`resize`)."""
    return resize(images, size, mode="bicubic", align_corners=align_corners)


def pixel_shuffle(images, factor: int) -> jnp.ndarray:
    """Depth to space, CRD order: ``(N, H, W, C r^2) -> (N, r H, r W, C)``."""
    images, r = _check_images(images), _factor(factor)
    n, h, w, c = images.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle by {r} needs channels divisible by {r * r}, got {c}")
    out = images.reshape(n, h, w, c // (r * r), r, r)  # (..., c, i, j)
    return out.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * r, w * r, c // (r * r))


def pixel_unshuffle(images, factor: int) -> jnp.ndarray:
    """Space to depth, the inverse of :func:`pixel_shuffle` (``torch.nn.PixelUnshuffle``)."""
    images, r = _check_images(images), _factor(factor)
    n, h, w, c = images.shape
    if h % r or w % r:
        raise ValueError(f"pixel_unshuffle by {r} needs H and W divisible by {r}, got {h}x{w}")
    out = images.reshape(n, h // r, r, w // r, r, c)  # (n, h, i, w, j, c)
    return out.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // r, w // r, c * r * r)


def transposed_conv_padding(input_size: int, output_size: int, *, kernel_size: int,
                            stride: int, padding: int | None = None,
                            dilation: int = 1) -> tuple[int, int]:
    """``(padding, output_padding)`` for which a transposed conv maps ``input_size`` to
    ``output_size`` (``(n - 1) s - 2 p + d (k - 1) + op + 1``, ``0 <= op < max(s, d)``).

    With ``padding`` given, only ``output_padding`` is solved for; a size it cannot reach is a
    ValueError naming the sizes it can reach and the padding that would reach the target.
    """
    base = (input_size - 1) * stride + dilation * (kernel_size - 1) + 1
    limit = max(stride, dilation)

    def solve(p):
        op = output_size - (base - 2 * p)
        return op if 0 <= op < limit else None

    if padding is not None:
        op = solve(padding)
        if op is not None:
            return padding, op
        reachable = [base - 2 * padding + o for o in range(limit)]
        options = [(p, solve(p)) for p in range(0, kernel_size * dilation + 1)
                   if solve(p) is not None]
        hint = (f"; padding={options[0][0]} with output_padding={options[0][1]} would"
                if options else "; no padding reaches it with this kernel and stride")
        raise ValueError(
            f"a transposed conv (kernel {kernel_size}, stride {stride}, padding {padding}) maps "
            f"{input_size} to one of {reachable}, not {output_size}{hint}")
    for p in range(0, kernel_size * dilation + 1):
        op = solve(p)
        if op is not None:
            assert conv_transpose_output_size(input_size, kernel_size=kernel_size, stride=stride,
                                              padding=p, output_padding=op,
                                              dilation=dilation) == output_size
            return p, op
    raise ValueError(f"no padding lets a transposed conv (kernel {kernel_size}, stride {stride}) "
                     f"map {input_size} to {output_size}; the largest size it reaches is "
                     f"{base + limit - 1}")
