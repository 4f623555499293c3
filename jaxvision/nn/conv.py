"""Fast CPU convolutions: drop-in replacements for ``lax.conv_general_dilated``.

XLA:CPU runs convolution gradients far below its matmul speed on the shapes of small-image CNNs
(a ResNet-18 train step on 32x32 images runs at about a fifth of the machine's matmul peak, and
a convolution's weight gradient at about a tenth); its forward convolution is fast. Under
differentiation, :func:`fast_conv_general_dilated` therefore computes the convolution, its
input gradient and its weight gradient as batched matrix products instead:

* 3x3, stride 1, padding 1 (the bulk of a ResNet's work), float32, at least 8x8 pixels, 16
  channels in and out and 256 output tiles (below that, transforming the tiles costs more
  than it saves, and each transform position's GEMM has too few rows for its transformed
  kernel, 4x the kernel's size: by im2col a UNet's 16x16x1024 bottleneck trains 1.25x faster
  at batch 8, its 16x16x512 and 8x8x1024 maps 3x and 9x at batch 2): Winograd F(4x4, 3x3)
  (Lavin & Gray, 2016), which needs 36 multiplications per 16 outputs instead of 144.
  Forward, input gradient and weight gradient are each one batched matmul over the 36
  transform positions (custom VJP), between cheap linear transforms of the tiles. Accuracy:
  errors up to about 5e-6 of the largest output, against about 1e-7 for a direct float32
  convolution (tests/test_fast_conv.py bounds both); bfloat16 inputs go to im2col.
* every other ungrouped, undilated convolution (strided, 1x1, the stem): im2col, one GEMM of
  the ``(N*Ho*Wo, kh*kw*C)`` patches with the kernel (custom JVP, so forward mode works too);
  its transposes are GEMMs too.
* grouped or dilated convolutions, and every platform other than CPU (where cuDNN or the TPU
  compiler already choose well): ``lax.conv_general_dilated`` itself.

Undifferentiated calls (inference) are XLA's convolution, bit for bit: on ResNet-18's layers
at batch 32 its forward beat the GEMM forms on all but the last stage's strided and 1x1 ones
(the 7x7 stem by 3x), and the whole network ran 1.1-1.25x faster (``benchmarks/inference.py``).
One exception: a kernel with more taps than the input has pixels (3x3 on 2x2 or 1x1, as in a
ResNet's last stage at 64 px or less). XLA swaps such a convolution's operands into a layout that
its fast kernel cannot run, so it runs as im2col, forward and gradients: at batch 32, a 3x3
512-channel layer on 2x2 maps took 197 ms by XLA and 3 ms by im2col, and the ResNet-18
predictor at 64 px 630 ms before and 27 ms after.

Use it as ``nn.Conv(..., conv_general_dilated=fast_conv_general_dilated)``; jaxvision's models
use it by default (``conv="auto"``, see :mod:`jaxvision.nn.layers`; ``conv="xla"`` is XLA's
convolution everywhere). ``benchmarks/train_step.py`` measures the gain against PyTorch.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxvision.ops.conv import extract_patches

_NHWC = ("NHWC", "HWIO", "NHWC")
WINOGRAD_TILE = 4  # output tile m of F(m x m, 3 x 3); m=2 is more exact but multiplies 1.8x more


# ------------------------------------------------------------------------------- Winograd

@functools.cache
def winograd_matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact (``Fraction``) Toom-Cook matrices ``(A^T, G, B^T)`` of F(m, 3).

    For a 1-D tile ``d`` of ``m + 2`` inputs and a 3-tap filter ``g``:
    ``A^T @ ((G @ g) * (B^T @ d))`` equals the ``m`` outputs of the correlation ``d * g``.
    Interpolation points 0, 1, -1, 2, -2, 1/2, -1/2 (as many as needed) and infinity.
    """
    if not 1 <= m <= 6:
        raise ValueError(f"Winograd tile m={m} not supported; use 1..6")
    points = [Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2),
              Fraction(1, 2), Fraction(-1, 2)][:m + 1]

    def poly(roots):  # coefficients of prod(x - r), lowest degree first
        coeffs = [Fraction(1)]
        for r in roots:
            coeffs = [lower - r * same for lower, same in zip([0] + coeffs, coeffs + [0])]
        return coeffs

    n = len(points)
    at = [[p**i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = []
    for j, p in enumerate(points):
        denominator = np.prod([p - q for k, q in enumerate(points) if k != j], dtype=object)
        g.append([p**k / denominator for k in range(3)])
    g.append([Fraction(0), Fraction(0), Fraction(1)])
    bt = [poly([q for k, q in enumerate(points) if k != j]) + [Fraction(0)] for j in range(n)]
    bt.append(poly(points))
    return tuple(np.array(a, dtype=object) for a in (at, g, bt))


@functools.cache
def _float_matrices(m: int):
    return tuple(a.astype(np.float64) for a in winograd_matrices(m))


def _combine(matrix, terms, axis):
    """``stack_p(sum_k matrix[p, k] * terms[k])`` along ``axis``, skipping zero coefficients.

    Written term by term (not as a broadcast product) so that XLA emits one fusion that reads
    only the slices each row needs; the dense form is 2-3x slower on CPU.
    """
    rows = []
    for coeffs in matrix:
        row = None
        for c, term in zip(coeffs, terms):
            if c != 0:
                term = term if c == 1 else -term if c == -1 else float(c) * term
                row = term if row is None else row + term
        rows.append(jnp.zeros_like(terms[0]) if row is None else row)
    return jnp.stack(rows, axis)


def _tile_grid(shape, m):
    """``(m + 2, tile rows, tile columns)`` for an ``(N, H, W, C)`` image and output tile m."""
    return m + 2, -(-shape[1] // m), -(-shape[2] // m)


def _input_transform(x, m):
    """``B^T d B`` of every overlapping (m+2)^2 tile: ``(N,H,W,C) -> ((m+2)^2, tiles, C)``."""
    _, _, bt = _float_matrices(m)
    n, h, w, c = x.shape
    a, th, tw = _tile_grid(x.shape, m)
    x = jnp.pad(x, ((0, 0), (1, m * th + 1 - h), (1, m * tw + 1 - w), (0, 0)))
    # Columns first: measured 10-30% faster than rows first on XLA:CPU.
    cols = _combine(bt, [x[:, :, j:j + m * (tw - 1) + 1:m] for j in range(a)], 0)
    tiles = _combine(bt, [cols[:, :, i:i + m * (th - 1) + 1:m] for i in range(a)], 0)
    return tiles.reshape(a * a, n * th * tw, c)


def _overlap_add(blocks, m, axis):
    """Adjoint of taking overlapping (m+2)-tiles at stride m along ``axis`` (the tile axis;
    ``blocks[k]`` holds tile offset k): each row sums the tile offsets that saw it."""
    def shift(x, before):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (1, 0) if before else (0, 1)
        return jnp.pad(x, pad)
    rows = [shift(blocks[r], False) + shift(blocks[r + m], True) if r < 2
            else shift(blocks[r], False) for r in range(m)]
    rows = jnp.stack(rows, axis + 1)  # (..., tiles + 1, m, ...)
    shape = rows.shape[:axis] + (rows.shape[axis] * m,) + rows.shape[axis + 2:]
    return rows.reshape(shape)


def _input_transform_transpose(dtiles, m, shape):
    """The adjoint of :func:`_input_transform`: tile gradients -> the input's gradient."""
    _, _, bt = _float_matrices(m)
    n, h, w, c = shape
    a, th, tw = _tile_grid(shape, m)
    dtiles = dtiles.reshape(a, a, n, th, tw, c)
    rows = _combine(bt.T, [dtiles[p] for p in range(a)], 0)        # (a, a(q), N, th, tw, C)
    cols = _overlap_add(rows, m, 2)[:, :, 1:h + 1]                  # (a(q), N, H, tw, C)
    cols = _combine(bt.T, [cols[q] for q in range(a)], 0)           # (a, N, H, tw, C)
    return _overlap_add(cols, m, 2)[:, :, 1:w + 1]                  # (N, H, W, C)


def _output_transform(products, m, shape):
    """``A^T M A`` of every tile, reassembled into the ``(N,H,W,C)`` image."""
    at, _, _ = _float_matrices(m)
    n, h, w, c = shape
    a, th, tw = _tile_grid(shape, m)
    products = products.reshape(a, a, n, th, tw, c)
    cols = _combine(at, [products[:, q] for q in range(a)], 4)  # (a, N, th, tw, m, C)
    image = _combine(at, [cols[p] for p in range(a)], 2)        # (N, th, m, tw, m, C)
    return image.reshape(n, th * m, tw * m, c)[:, :h, :w]


def _output_transform_transpose(dy, m):
    """The adjoint of :func:`_output_transform`: image gradient -> per-position gradients."""
    at, _, _ = _float_matrices(m)
    n, h, w, c = dy.shape
    a, th, tw = _tile_grid(dy.shape, m)
    dy = jnp.pad(dy, ((0, 0), (0, m * th - h), (0, m * tw - w), (0, 0)))
    dy = dy.reshape(n, th, m, tw, m, c)
    rows = _combine(at.T, [dy[:, :, r] for r in range(m)], 0)            # (a, N, th, tw, m, C)
    tiles = _combine(at.T, [rows[..., s, :] for s in range(m)], 1)      # (a, a, N, th, tw, C)
    return tiles.reshape(a * a, n * th * tw, c)


def _kernel_transform(w, m):
    """``G g G^T``: ``(3,3,Cin,Cout) -> ((m+2)^2, Cin, Cout)``."""
    _, g, _ = _float_matrices(m)
    g = jnp.asarray(g, w.dtype)
    return jnp.einsum("pa,qb,abio->pqio", g, g, w).reshape(-1, *w.shape[2:])


def _kernel_transform_transpose(du, m):
    """The adjoint of :func:`_kernel_transform`: per-position gradients -> the kernel's."""
    _, g, _ = _float_matrices(m)
    g = jnp.asarray(g, du.dtype)
    a = m + 2
    return jnp.einsum("pa,qb,pqio->abio", g, g, du.reshape(a, a, *du.shape[1:]))


def _winograd_forward(x, w, m):
    if not 2 <= m <= 6:
        raise ValueError(f"Winograd tile m={m} not supported by the convolution; use 2..6")
    tiles = _input_transform(x, m)
    products = lax.dot_general(tiles, _kernel_transform(w, m), (((2,), (1,)), ((0,), (0,))))
    return _output_transform(products, m, x.shape[:3] + (w.shape[-1],)), tiles


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def winograd_conv3x3(x, w, m: int = WINOGRAD_TILE):
    """3x3 convolution, stride 1, padding 1, NHWC/HWIO, by Winograd F(m x m, 3 x 3)."""
    return _winograd_forward(x, w, m)[0]


def _winograd_fwd(x, w, m):
    y, tiles = _winograd_forward(x, w, m)
    return y, (tiles, w)


def _winograd_bwd(m, residuals, dy):
    tiles, w = residuals
    dproducts = _output_transform_transpose(dy, m)
    dkernel = lax.dot_general(tiles, dproducts, (((1,), (1,)), ((0,), (0,))))
    dtiles = lax.dot_general(dproducts, _kernel_transform(w, m), (((2,), (2,)), ((0,), (0,))))
    return (_input_transform_transpose(dtiles, m, dy.shape[:3] + (w.shape[2],)),
            _kernel_transform_transpose(dkernel, m))


winograd_conv3x3.defvjp(_winograd_fwd, _winograd_bwd)


# --------------------------------------------------------------------------------- im2col

def im2col_conv(x, w, strides, padding):
    """Ungrouped, undilated NHWC/HWIO convolution as one GEMM of im2col patches."""
    patches = extract_patches(x, kernel_size=w.shape[:2], stride=strides, padding=padding)
    n, ho, wo, k = patches.shape
    # A 2-D GEMM: with the 4-D product the ResNet-18 train step on XLA:CPU was 12% slower.
    return (patches.reshape(-1, k) @ w.reshape(k, -1)).reshape(n, ho, wo, -1)


# ----------------------------------------------------------------------------- dispatcher

WINOGRAD_MIN_TILES = 256  # fewer tiles: each transform position's GEMM is too short (see doc)


def winograd_tiles(shape, m: int = WINOGRAD_TILE) -> int:
    """Rows of each of Winograd's batched GEMMs: the output tiles of an ``(N, H, W, C)`` image."""
    _, th, tw = _tile_grid(shape, m)
    return shape[0] * th * tw


def _xla_conv(x, w, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _winograd_for_gradients(x, w, m):
    """XLA's 3x3 convolution; differentiated, Winograd's forward and gradients."""
    return _xla_conv(x, w, (1, 1), ((1, 1), (1, 1)))


_winograd_for_gradients.defvjp(_winograd_fwd, _winograd_bwd)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _im2col_for_gradients(x, w, strides, padding):
    """XLA's convolution; differentiated, the im2col GEMM (whose transposes are GEMMs)."""
    return _xla_conv(x, w, strides, padding)


def _im2col_jvp(strides, padding, primals, tangents):
    (x, w), (dx, dw) = primals, tangents
    conv = functools.partial(im2col_conv, strides=strides, padding=padding)
    y = conv(x, w)
    terms = [conv(dx, w)] if not isinstance(dx, SymbolicZero) else []
    terms += [conv(x, dw)] if not isinstance(dw, SymbolicZero) else []
    return y, sum(terms) if terms else jnp.zeros_like(y)


_im2col_for_gradients.defjvp(_im2col_jvp, symbolic_zeros=True)


def fast_conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding,
                              lhs_dilation=None, rhs_dilation=None, dimension_numbers=None,
                              feature_group_count: int = 1, precision=None, **kwargs):
    """``lax.conv_general_dilated`` whose gradients are Winograd or im2col GEMMs on CPU (see
    module doc).

    Same signature and result (to float32 rounding); anything it does not rewrite goes to
    ``lax.conv_general_dilated`` unchanged, as does every non-CPU platform.
    """
    def exact(lhs, rhs):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, feature_group_count,
                                        precision=precision, **kwargs)

    rewritable = (
        lhs.ndim == 4 and feature_group_count == 1 and not kwargs
        and all(d in (None, 1) for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ()))
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    )
    if not rewritable:
        return exact(lhs, rhs)
    strides = tuple(int(s) for s in window_strides)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    padding = tuple(tuple(int(p) for p in pair) for pair in padding)
    if (rhs.shape[0] * rhs.shape[1] > lhs.shape[1] * lhs.shape[2]
            and all(lo >= 0 and hi >= 0 and size + lo + hi >= k for (lo, hi), size, k
                    in zip(padding, lhs.shape[1:3], rhs.shape[:2]))):
        # XLA would swap the operands into a slow layout (module doc); the product rule
        # approximates its heuristic (checked on 13 shapes).
        def rewritten(lhs, rhs):
            return im2col_conv(lhs, rhs, strides, padding)
    elif (rhs.shape[:2] == (3, 3) and strides == (1, 1) and padding == ((1, 1), (1, 1))
            and min(lhs.shape[1:3]) >= 8 and min(rhs.shape[2:]) >= 16
            and winograd_tiles(lhs.shape) >= WINOGRAD_MIN_TILES
            and lhs.dtype in (jnp.float32, jnp.float64)):
        def rewritten(lhs, rhs):
            return _winograd_for_gradients(lhs, rhs, WINOGRAD_TILE)
    else:
        def rewritten(lhs, rhs):
            return _im2col_for_gradients(lhs, rhs, strides, padding)
    return lax.platform_dependent(lhs, rhs, cpu=rewritten, default=exact)


# ------------------------------------------------------------------ transposed convolution

def stride_conv_transpose(x, kernel, precision=None):
    """``lax.conv_transpose(x, kernel, strides=kernel.shape[:2], padding="VALID")`` (NHWC/HWIO).

    With kernel == stride the output windows do not overlap: output pixel ``(k_h i + a,
    k_w j + b)`` is ``x[i, j] @ kernel[k_h - 1 - a, k_w - 1 - b]`` (``lax.conv_transpose``
    correlates the dilated input with the unflipped kernel). So it is one GEMM
    ``(N*H*W, Cin) @ (Cin, k_h*k_w*Cout)`` and a depth-to-space; both gradients are GEMMs.
    """
    n, h, w, c = x.shape
    kh, kw, _, out = kernel.shape
    taps = jnp.transpose(kernel[::-1, ::-1], (2, 0, 1, 3)).reshape(c, kh * kw * out)
    y = lax.dot_general(x.reshape(-1, c), taps, (((1,), (0,)), ((), ())), precision=precision)
    y = y.reshape(n, h, w, kh, kw, out).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * kh, w * kw, out)


def fast_conv_transpose(lhs, rhs, strides: Sequence[int], padding, rhs_dilation=None,
                        dimension_numbers=None, transpose_kernel: bool = False, precision=None,
                        preferred_element_type=None):
    """``lax.conv_transpose``, by :func:`stride_conv_transpose` on CPU where kernel == stride.

    Rewritten: NHWC/HWIO, no dilation, no ``transpose_kernel``, padding ``"VALID"`` or
    ``"SAME"`` (the same thing when kernel == stride). Everything else, and every platform
    other than CPU, is ``lax.conv_transpose`` unchanged.
    """
    def exact(lhs, rhs):
        return lax.conv_transpose(lhs, rhs, strides, padding, rhs_dilation, dimension_numbers,
                                  transpose_kernel, precision, preferred_element_type)

    rewritable = (
        lhs.ndim == 4 and not transpose_kernel and preferred_element_type is None
        and tuple(int(s) for s in strides) == tuple(rhs.shape[:2])
        and all(d in (None, 1) for d in tuple(rhs_dilation or ()))
        and isinstance(padding, str) and padding.upper() in ("VALID", "SAME")
        # conv_transpose's default layout is NHWC/HWIO, unlike conv_general_dilated's
        and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers or _NHWC)
        == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    )
    if not rewritable:
        return exact(lhs, rhs)
    return lax.platform_dependent(
        lhs, rhs, cpu=lambda lhs, rhs: stride_conv_transpose(lhs, rhs, precision), default=exact)
