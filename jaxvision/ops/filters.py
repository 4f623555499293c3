"""The classic hand-designed filters that first-layer CNN kernels come to resemble, and
:func:`apply_filter` to run any of them over an image.

Each filter is a function returning a fresh float32 ``(k, k)`` array (no shared mutable
constants). Orientation names follow the derivative they take: ``sobel_x`` differentiates along
x (columns), so it responds to *vertical* edges; it is the course's "vertical edge detection"
kernel. ``sobel_y`` is its "horizontal edge detection" kernel. All filters are applied as
cross-correlation, like every conv layer (the course's convolution formula, and XLA's).
"""

from __future__ import annotations

import math
from typing import Callable

import jax.numpy as jnp

from jaxvision.ops.conv import IntPair, Padding, conv2d


def edge_kernel(*, diagonals: bool = True) -> jnp.ndarray:
    """The course's edge detector: the negative discrete Laplacian, sum 0.

    ``diagonals=True`` is the 8-neighbour form ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]]``;
    ``False`` the 4-neighbour form ``[[0,-1,0],[-1,4,-1],[0,-1,0]]``.
    """
    if diagonals:
        return jnp.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], jnp.float32)
    return jnp.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], jnp.float32)


def sobel_x() -> jnp.ndarray:
    """d/dx with [1, 2, 1] smoothing: responds to vertical edges (dark left, bright right > 0)."""
    return jnp.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], jnp.float32)


def sobel_y() -> jnp.ndarray:
    """d/dy with [1, 2, 1] smoothing: responds to horizontal edges (dark top, bright bottom > 0)."""
    return jnp.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], jnp.float32)


def prewitt_x() -> jnp.ndarray:
    """d/dx with uniform smoothing (the course's "learned vertical" filter)."""
    return jnp.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], jnp.float32)


def prewitt_y() -> jnp.ndarray:
    """d/dy with uniform smoothing (the course's "learned horizontal" filter)."""
    return jnp.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], jnp.float32)


def diagonal_edge_kernel() -> jnp.ndarray:
    """Responds to edges along the anti-diagonal, bright bottom-right."""
    return jnp.array([[-1, -1, 0], [-1, 0, 1], [0, 1, 1]], jnp.float32)


def sharpen_kernel() -> jnp.ndarray:
    """Identity plus the 4-neighbour edge kernel; sums to 1, keeps brightness."""
    return jnp.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], jnp.float32)


def box_kernel(size: int = 3) -> jnp.ndarray:
    """Uniform mean filter of ``size x size``."""
    _check_size(size)
    return jnp.full((size, size), 1.0 / size**2, jnp.float32)


def binomial_kernel(size: int = 3) -> jnp.ndarray:
    """Outer product of binomial coefficients, normalised: the course's 3x3 "Gaussian blur"
    ``[[1,2,1],[2,4,2],[1,2,1]] / 16`` at ``size=3``."""
    _check_size(size)
    row = jnp.array([math.comb(size - 1, i) for i in range(size)], jnp.float32)
    return jnp.outer(row, row) / row.sum() ** 2


def gaussian_kernel(*, size: int, sigma: float) -> jnp.ndarray:
    """Sampled 2-D Gaussian ``exp(-(x^2 + y^2) / (2 sigma^2))`` on a centred grid, sum 1."""
    _check_size(size)
    if sigma <= 0:
        raise ValueError(f"sigma={sigma} must be positive")
    offsets = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    row = jnp.exp(-(offsets**2) / (2 * sigma**2))
    return jnp.outer(row, row) / row.sum() ** 2


def gabor_kernel(*, size: int, sigma: float, theta: float, wavelength: float,
                 phase: float = 0.0, aspect_ratio: float = 1.0) -> jnp.ndarray:
    """Real Gabor filter: a Gaussian envelope times a cosine grating (the OpenCV form).

    ``g(x, y) = exp(-(x'^2 + aspect_ratio^2 y'^2) / (2 sigma^2)) cos(2 pi x' / wavelength + phase)``
    with ``x' = x cos(theta) + y sin(theta)``, ``y' = -x sin(theta) + y cos(theta)``, ``x`` the
    column offset and ``y`` the row offset (downwards) from the centre. ``theta = 0`` gives
    vertical stripes, i.e. a vertical-edge/bar detector like ``sobel_x``; the filters of
    trained first layers often look like this.
    """
    _check_size(size)
    if sigma <= 0 or wavelength <= 0:
        raise ValueError(f"sigma={sigma} and wavelength={wavelength} must be positive")
    offsets = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    y, x = jnp.meshgrid(offsets, offsets, indexing="ij")
    x_rot = x * math.cos(theta) + y * math.sin(theta)
    y_rot = -x * math.sin(theta) + y * math.cos(theta)
    envelope = jnp.exp(-(x_rot**2 + aspect_ratio**2 * y_rot**2) / (2 * sigma**2))
    return (envelope * jnp.cos(2 * math.pi * x_rot / wavelength + phase)).astype(jnp.float32)


def filter_bank() -> dict[str, jnp.ndarray]:
    """The course's named 3x3 filters (edge, sharpen, blur, Sobel/Prewitt, the "learned" ones), by name."""
    factories: dict[str, Callable[[], jnp.ndarray]] = {
        "edge (Laplacian)": edge_kernel,
        "sobel_x (vertical edges)": sobel_x,
        "sobel_y (horizontal edges)": sobel_y,
        "prewitt_x": prewitt_x,
        "prewitt_y": prewitt_y,
        "diagonal": diagonal_edge_kernel,
        "gaussian blur (binomial)": binomial_kernel,
        "sharpen": sharpen_kernel,
    }
    return {name: make() for name, make in factories.items()}


def _check_size(size: int) -> None:
    if size < 1:
        raise ValueError(f"size={size} must be a positive int")


def apply_filter(image: jnp.ndarray, kernel: jnp.ndarray, *, padding: Padding = "same",
                 padding_mode: str = "zeros", stride: IntPair = 1,
                 dilation: IntPair = 1) -> jnp.ndarray:
    """Correlates an image with a filter; the output keeps the image's rank.

    ``image`` is ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``. The kernel decides how channels
    mix:

    * ``(k_h, k_w)``: the same 2-D filter on every channel separately (``C`` outputs);
    * ``(k_h, k_w, C)``: one 3-D filter summed over channels, the course's colour
      convolution; one output channel;
    * ``(k_h, k_w, C, C_out)``: a full conv layer's HWIO kernel.

    ``padding`` defaults to ``'same'`` (output the size of the input at stride 1); pass
    ``'valid'``, an int or pairs otherwise, and ``padding_mode`` to pick the border rule.
    """
    image, kernel = jnp.asarray(image), jnp.asarray(kernel)
    if image.ndim not in (2, 3, 4):
        raise ValueError(f"image of shape {image.shape} must be (H, W), (H, W, C) or (N, H, W, C)")
    if image.ndim == 4:
        batched = image
    else:
        batched = image[None] if image.ndim == 3 else image[None, ..., None]
    channels = batched.shape[-1]
    dtype = jnp.promote_types(jnp.result_type(image), jnp.float32)
    batched = batched.astype(dtype)
    groups = 1
    if kernel.ndim == 2:
        hwio = jnp.broadcast_to(kernel[:, :, None, None], kernel.shape + (1, channels))
        groups = channels
    elif kernel.ndim == 3:
        if kernel.shape[-1] != channels:
            raise ValueError(f"3-D kernel {kernel.shape} has {kernel.shape[-1]} channels but the "
                             f"image has {channels}")
        hwio = kernel[..., None]
    elif kernel.ndim == 4:
        hwio = kernel
    else:
        raise ValueError(f"kernel of shape {kernel.shape}: expected rank 2, 3 or 4")
    out = conv2d(batched, hwio.astype(dtype), stride=stride, padding=padding,
                 dilation=dilation, groups=groups, padding_mode=padding_mode)
    if image.ndim == 4:
        return out
    if image.ndim == 3:
        return out[0]
    return out[0, ..., 0] if out.shape[-1] == 1 else out[0]
