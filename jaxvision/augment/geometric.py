"""Geometric ops: flips, crops, affine and perspective warps, elastic deformation.

Each op takes ``(key, sample, **options)`` where ``sample`` is an image ``[H, W, C]`` or a dict
of schema keys (see ``core``); every op moves all keys through ``core.move`` and its rule table,
so the image, boxes, semantic mask and instance masks always move together. Boxes are clipped to
the output image and marked invalid when narrower or shorter than ``min_box_size`` pixels;
masks are resampled by nearest neighbour and filled with ``mask_fill`` (instance masks: 0)
where the warp leaves the image.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.augment.core import (
    as_pair, check_interpolation, check_probability, clip_boxes, from_dict, maybe, move,
    output_grid, sample_image, sample_nearest, sample_op, sample_bilinear, to_dict, uniform,
    warp_affine)

# --------------------------------------------------------------------------------------------
# Flips
# --------------------------------------------------------------------------------------------


def flip_left_right(sample):
    """Mirrors a sample horizontally: ``x -> W - x`` for boxes."""
    d, was_array = to_dict(sample)
    width = d["image"].shape[1]

    def boxes(b, valid):
        flipped = jnp.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], axis=-1)
        return jnp.where(valid[:, None], flipped, b), valid

    out = move(d, image=lambda a: a[:, ::-1], nearest=lambda a, fill: a[:, ::-1], boxes=boxes)
    return from_dict(out, was_array)


def flip_up_down(sample):
    """Mirrors a sample vertically: ``y -> H - y`` for boxes."""
    d, was_array = to_dict(sample)
    height = d["image"].shape[0]

    def boxes(b, valid):
        flipped = jnp.stack([b[:, 0], height - b[:, 3], b[:, 2], height - b[:, 1]], axis=-1)
        return jnp.where(valid[:, None], flipped, b), valid

    out = move(d, image=lambda a: a[::-1], nearest=lambda a, fill: a[::-1], boxes=boxes)
    return from_dict(out, was_array)


@sample_op
def random_flip_left_right(key, sample, *, probability: float = 0.5):
    """Horizontal flip with ``probability`` (torchvision ``RandomHorizontalFlip``, p=0.5)."""
    check_probability(probability)
    return maybe(key, probability, flip_left_right, sample)


@sample_op
def random_flip_up_down(key, sample, *, probability: float = 0.5):
    """Vertical flip with ``probability``; avoid it for faces, text and natural scenes."""
    check_probability(probability)
    return maybe(key, probability, flip_up_down, sample)


# --------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------


def _pad_mode(mode: str) -> str:
    modes = {"reflect": "reflect", "symmetric": "symmetric", "edge": "edge", "constant": "constant"}
    if mode not in modes:
        raise ValueError(f"padding mode must be one of {sorted(modes)}; got {mode!r}")
    return modes[mode]


@sample_op
def random_pad_crop(key, sample, *, padding: int = 4, mode: str = "reflect", fill: float = 0.0,
                    mask_fill: int = 0, min_box_size: float = 1.0):
    """CIFAR-style translation: pad by ``padding`` pixels, then crop back to the input size.

    ``mode='reflect'`` mirrors the border without repeating it (``jnp.pad``'s reflect); the
    semantic mask is padded like the image. A box-aware sample (one with ``boxes`` or
    ``instance_masks``) is always padded with constants (``fill`` for the image, ``mask_fill``
    for the mask, 0 for instance masks): a reflected or replicated border would show mirrored
    copies of objects that no box and no instance mask labels.
    """
    mode = _pad_mode(mode)
    if isinstance(sample, dict) and ("boxes" in sample or "instance_masks" in sample):
        mode = "constant"
    if int(padding) < 0:
        raise ValueError(f"padding must be >= 0; got {padding!r}")
    padding = int(padding)
    image = sample["image"]
    height, width = image.shape[:2]
    if mode == "reflect" and padding >= min(height, width):
        raise ValueError(f"reflect padding {padding} needs an image larger than {padding}; "
                         f"got {height}x{width}. Use a smaller padding or mode='constant'.")
    key_y, key_x = jax.random.split(key)
    top = jax.random.randint(key_y, (), 0, 2 * padding + 1)
    left = jax.random.randint(key_x, (), 0, 2 * padding + 1)
    pads = ((padding, padding), (padding, padding))

    def crop(array, value, pad_mode=mode):
        widths = pads + ((0, 0),) * (array.ndim - 2)
        if pad_mode == "constant":
            padded = jnp.pad(array, widths, mode="constant", constant_values=value)
        else:
            padded = jnp.pad(array, widths, mode=pad_mode)
        start = (top, left) + (0,) * (array.ndim - 2)
        return jax.lax.dynamic_slice(padded, start, (height, width) + array.shape[2:])

    def boxes(b, valid):
        shift = jnp.stack([padding - left, padding - top] * 2).astype(jnp.float32)
        return clip_boxes(b + shift, valid, height=height, width=width,
                          min_box_size=min_box_size)

    return move(sample, image=lambda a: crop(a, fill), nearest=crop, boxes=boxes,
                mask_fill=mask_fill, instances=lambda a: crop(a, 0, "constant"))


def _size(size, image) -> tuple[int, int]:
    if size is None:
        return int(image.shape[0]), int(image.shape[1])
    if isinstance(size, int):
        return size, size
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be None, an int or (height, width); got {size!r}") from None
    return height, width


def crop_and_resize(sample, *, top, left, crop_height, crop_width, size=None,
                    antialias: bool = True, min_box_size: float = 1.0):
    """Crops ``[top:top+crop_height, left:left+crop_width]`` and resizes it to ``size``.

    The crop corners may be traced values: the image is resampled with
    ``jax.image.scale_and_translate`` (bilinear, antialiased when shrinking, like torchvision's
    tensor path), the mask by nearest neighbour, and the boxes by the same scale and shift.
    """
    d, was_array = to_dict(sample)
    image = d["image"]
    out_h, out_w = _size(size, image)
    top, left = jnp.asarray(top, jnp.float32), jnp.asarray(left, jnp.float32)
    scale_y = out_h / jnp.asarray(crop_height, jnp.float32)
    scale_x = out_w / jnp.asarray(crop_width, jnp.float32)

    def resample(im):
        return jax.image.scale_and_translate(
            im, (out_h, out_w, im.shape[2]), (0, 1), jnp.stack([scale_y, scale_x]),
            jnp.stack([-top * scale_y, -left * scale_x]), method="linear",
            antialias=antialias).astype(im.dtype)

    grid = output_grid(out_h, out_w)
    x = left + grid[..., 0] / scale_x
    y = top + grid[..., 1] / scale_y

    def boxes(b, valid):
        moved = jnp.stack([b[:, 0] * scale_x - left * scale_x, b[:, 1] * scale_y - top * scale_y,
                           b[:, 2] * scale_x - left * scale_x, b[:, 3] * scale_y - top * scale_y],
                          axis=-1)
        return clip_boxes(moved, valid, height=out_h, width=out_w, min_box_size=min_box_size)

    out = move(d, image=resample, nearest=lambda m, fill: sample_nearest(m, x, y, fill=fill),
               boxes=boxes)
    return from_dict(out, was_array)


def sample_crop_box(key, *, height: int, width: int, scale=(0.08, 1.0),
                    ratio=(3.0 / 4.0, 4.0 / 3.0), attempts: int = 10):
    """torchvision's ``RandomResizedCrop.get_params`` as a static-shape function.

    Draws ``attempts`` candidate boxes at once and keeps the first that fits; when none fits it
    falls back to the central crop with the aspect ratio clamped to ``ratio``. Returns
    ``(top, left, crop_height, crop_width)`` as int32 scalars.
    """
    lo_s, hi_s = (float(v) for v in scale)
    lo_r, hi_r = (float(v) for v in ratio)
    if not 0 < lo_s <= hi_s or not 0 < lo_r <= hi_r:
        raise ValueError(f"scale and ratio must be increasing positive pairs; got scale={scale!r}, "
                         f"ratio={ratio!r}")
    area = float(height * width)
    k_area, k_ratio, k_top, k_left = jax.random.split(key, 4)
    target = area * uniform(k_area, lo_s, hi_s, (attempts,))
    aspect = jnp.exp(uniform(k_ratio, math.log(lo_r), math.log(hi_r), (attempts,)))
    w = jnp.round(jnp.sqrt(target * aspect)).astype(jnp.int32)
    h = jnp.round(jnp.sqrt(target / aspect)).astype(jnp.int32)
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    top = jnp.floor(uniform(k_top, 0.0, 1.0, (attempts,)) * (height - h + 1)).astype(jnp.int32)
    left = jnp.floor(uniform(k_left, 0.0, 1.0, (attempts,)) * (width - w + 1)).astype(jnp.int32)
    # Fallback: the whole image, or the central crop with the ratio clamped (torchvision).
    in_ratio = width / height
    if in_ratio < lo_r:
        fb_w, fb_h = width, int(round(width / lo_r))
    elif in_ratio > hi_r:
        fb_h, fb_w = height, int(round(height * hi_r))
    else:
        fb_w, fb_h = width, height
    first = jnp.argmax(fits)
    any_fits = fits.any()
    pick = lambda values, fallback: jnp.where(any_fits, values[first], fallback)  # noqa: E731
    return (pick(top, (height - fb_h) // 2), pick(left, (width - fb_w) // 2),
            pick(h, fb_h), pick(w, fb_w))


@sample_op
def random_resized_crop(key, sample, *, size=None, scale=(0.08, 1.0),
                        ratio=(3.0 / 4.0, 4.0 / 3.0), antialias: bool = True,
                        min_box_size: float = 1.0):
    """Random area/aspect crop resized to ``size`` (torchvision ``RandomResizedCrop``).

    ``size=None`` keeps the input size (the host has already resized to a fixed size).
    """
    height, width = sample["image"].shape[:2]
    top, left, crop_h, crop_w = sample_crop_box(key, height=height, width=width, scale=scale,
                                                ratio=ratio)
    return crop_and_resize(sample, top=top, left=left, crop_height=crop_h, crop_width=crop_w,
                           size=size, antialias=antialias, min_box_size=min_box_size)


@sample_op
def center_crop_resize(key, sample, *, crop_fraction: float = 224 / 256, size=None,
                       antialias: bool = True, min_box_size: float = 1.0):
    """Eval transform: the central ``crop_fraction`` of the image, resized to ``size``.

    The course's ``Resize(256) -> CenterCrop(224)`` is ``crop_fraction=224/256, size=224``.
    ``key`` is unused (the op is deterministic) and kept for a uniform signature.
    """
    del key
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must lie in (0, 1]; got {crop_fraction!r}")
    height, width = sample["image"].shape[:2]
    crop_h = max(1, int(round(height * crop_fraction)))
    crop_w = max(1, int(round(width * crop_fraction)))
    return crop_and_resize(sample, top=(height - crop_h) // 2, left=(width - crop_w) // 2,
                           crop_height=crop_h, crop_width=crop_w, size=size, antialias=antialias,
                           min_box_size=min_box_size)


# --------------------------------------------------------------------------------------------
# Affine family
# --------------------------------------------------------------------------------------------


def affine_matrix(*, height: int, width: int, angle_degrees=0.0, translate_x=0.0,
                  translate_y=0.0, scale=1.0, shear_x=0.0, shear_y=0.0) -> jax.Array:
    """Forward 3x3 map (input -> output coordinates) about the image centre.

    Positive ``angle_degrees`` rotates counter-clockwise on screen (torchvision); ``shear_x``
    is the factor in ``x' = x + shear_x * y``; ``scale > 1`` zooms in; translations in pixels.
    """
    cx, cy = width / 2.0, height / 2.0
    theta = jnp.deg2rad(jnp.asarray(angle_degrees, jnp.float32))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    zero, one = jnp.zeros_like(cos), jnp.ones_like(cos)
    rotation = jnp.array([[cos, sin, zero], [-sin, cos, zero], [zero, zero, one]])
    shear = jnp.array([[one, jnp.asarray(shear_x, jnp.float32), zero],
                       [jnp.asarray(shear_y, jnp.float32), one, zero], [zero, zero, one]])
    s = jnp.asarray(scale, jnp.float32)
    zoom = jnp.array([[s, zero, zero], [zero, s, zero], [zero, zero, one]])
    to_origin = jnp.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = jnp.stack([jnp.stack([one, zero, cx + jnp.asarray(translate_x, jnp.float32)]),
                      jnp.stack([zero, one, cy + jnp.asarray(translate_y, jnp.float32)]),
                      jnp.stack([zero, zero, one])])
    return back @ rotation @ shear @ zoom @ to_origin


def affine(sample, *, angle_degrees=0.0, translate_x=0.0, translate_y=0.0, scale=1.0,
           shear_x=0.0, shear_y=0.0, fill: float = 0.0, mask_fill: int = 0,
           min_box_size: float = 1.0):
    """Deterministic affine warp about the centre (see ``affine_matrix``); output size = input."""
    d, was_array = to_dict(sample)
    height, width = d["image"].shape[:2]
    forward = affine_matrix(height=height, width=width, angle_degrees=angle_degrees,
                            translate_x=translate_x, translate_y=translate_y, scale=scale,
                            shear_x=shear_x, shear_y=shear_y)
    out = warp_affine(d, jnp.linalg.inv(forward), out_height=height, out_width=width, fill=fill,
                      mask_fill=mask_fill, min_box_size=min_box_size)
    return out["image"] if was_array else out


@sample_op
def random_affine(key, sample, *, degrees=0.0, translate=(0.0, 0.0), scale=(1.0, 1.0),
                  shear_x=0.0, shear_y=0.0, fill: float = 0.0, mask_fill: int = 0,
                  min_box_size: float = 1.0):
    """torchvision-style ``RandomAffine``: all parameters drawn independently and uniformly.

    ``degrees`` and ``shear_*`` take ``v`` (meaning ``(-v, v)``) or ``(lo, hi)``; ``translate``
    is the largest shift as a fraction of (width, height), rounded to whole pixels; ``scale``
    is a ``(lo, hi)`` zoom range.
    """
    height, width = sample["image"].shape[:2]
    deg_lo, deg_hi = as_pair(degrees, "degrees")
    shx_lo, shx_hi = as_pair(shear_x, "shear_x")
    shy_lo, shy_hi = as_pair(shear_y, "shear_y")
    sc_lo, sc_hi = (float(v) for v in scale)
    if not 0 < sc_lo <= sc_hi:
        raise ValueError(f"scale must be an increasing positive pair; got {scale!r}")
    fx, fy = (float(v) for v in translate)
    if fx < 0 or fy < 0:
        raise ValueError(f"translate fractions must be >= 0; got {translate!r}")
    keys = jax.random.split(key, 6)
    max_dx, max_dy = fx * width, fy * height
    return affine(
        sample, angle_degrees=uniform(keys[0], deg_lo, deg_hi),
        translate_x=jnp.round(uniform(keys[1], -max_dx, max_dx)),
        translate_y=jnp.round(uniform(keys[2], -max_dy, max_dy)),
        scale=uniform(keys[3], sc_lo, sc_hi), shear_x=uniform(keys[4], shx_lo, shx_hi),
        shear_y=uniform(keys[5], shy_lo, shy_hi), fill=fill, mask_fill=mask_fill,
        min_box_size=min_box_size)


@sample_op
def random_rotate(key, sample, *, degrees=15.0, fill: float = 0.0, mask_fill: int = 0,
                  min_box_size: float = 1.0):
    """Rotation by an angle uniform in ``(-degrees, degrees)`` (course: 15 for digits, 30
    general, 180 for satellite images); boxes become the extent of the rotated box."""
    lo, hi = as_pair(degrees, "degrees")
    return affine(sample, angle_degrees=uniform(key, lo, hi), fill=fill, mask_fill=mask_fill,
                  min_box_size=min_box_size)


@sample_op
def random_translate(key, sample, *, fraction=(0.1, 0.1), fill: float = 0.0,
                     mask_fill: int = 0, min_box_size: float = 1.0):
    """Shift by whole pixels, up to ``fraction`` of (width, height) each way."""
    return random_affine(key, sample, translate=fraction, fill=fill, mask_fill=mask_fill,
                         min_box_size=min_box_size)


@sample_op
def random_shear(key, sample, *, shear_x=0.3, shear_y=0.0, fill: float = 0.0,
                 mask_fill: int = 0, min_box_size: float = 1.0):
    """Shear by factors uniform in ``shear_x`` / ``shear_y`` (``x' = x + shear_x * y``)."""
    return random_affine(key, sample, shear_x=shear_x, shear_y=shear_y, fill=fill,
                         mask_fill=mask_fill, min_box_size=min_box_size)


@sample_op
def random_zoom(key, sample, *, scale=(0.8, 1.2), fill: float = 0.0, mask_fill: int = 0,
                min_box_size: float = 1.0):
    """Zoom about the centre by a factor uniform in ``scale`` (> 1 magnifies)."""
    return random_affine(key, sample, scale=scale, fill=fill, mask_fill=mask_fill,
                         min_box_size=min_box_size)


# --------------------------------------------------------------------------------------------
# Elastic deformation
# --------------------------------------------------------------------------------------------


def _gaussian_kernel_1d(sigma: float, radius: int) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _smooth_field(field: jax.Array, sigma: float) -> jax.Array:
    """Separable Gaussian smoothing of ``[H, W]`` with zero padding (Simard et al.)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    kernel = jnp.asarray(_gaussian_kernel_1d(sigma, radius))
    x = field[None, :, :, None]
    dims = ("NHWC", "HWIO", "NHWC")
    x = jax.lax.conv_general_dilated(x, kernel.reshape(-1, 1, 1, 1), (1, 1), "SAME",
                                     dimension_numbers=dims)
    x = jax.lax.conv_general_dilated(x, kernel.reshape(1, -1, 1, 1), (1, 1), "SAME",
                                     dimension_numbers=dims)
    return x[0, :, :, 0]


@sample_op
def random_elastic(key, sample, *, alpha: float = 34.0, sigma: float = 4.0, fill: float = 0.0,
                   mask_fill: int = 0, min_box_size: float = 1.0):
    """Elastic deformation (Simard et al. 2003): a smoothed random displacement field.

    Output pixel ``p`` reads the input at ``p + alpha * G_sigma * U(-1, 1)``. Each box becomes
    the extent of the output pixels whose source lies inside it (exact for this warp).
    """
    if float(sigma) <= 0:
        raise ValueError(f"sigma must be > 0; got {sigma!r}")
    image = sample["image"]
    height, width = image.shape[:2]
    key_x, key_y = jax.random.split(key)
    dx = alpha * _smooth_field(uniform(key_x, -1.0, 1.0, (height, width)), float(sigma))
    dy = alpha * _smooth_field(uniform(key_y, -1.0, 1.0, (height, width)), float(sigma))
    grid = output_grid(height, width)
    x, y = grid[..., 0] + dx, grid[..., 1] + dy

    def boxes(b, valid):
        b = b[:, None, None, :]
        inside = (x >= b[..., 0]) & (x < b[..., 2]) & (y >= b[..., 1]) & (y < b[..., 3])  # [N,H,W]
        cols = jnp.arange(width, dtype=jnp.float32)
        rows = jnp.arange(height, dtype=jnp.float32)
        any_col, any_row = inside.any(axis=1), inside.any(axis=2)  # [N, W], [N, H]
        big = jnp.float32(1e9)
        moved = jnp.stack([
            jnp.where(any_col, cols, big).min(-1), jnp.where(any_row, rows, big).min(-1),
            jnp.where(any_col, cols + 1, -big).max(-1), jnp.where(any_row, rows + 1, -big).max(-1),
        ], axis=-1)
        return clip_boxes(moved, valid & inside.any(axis=(1, 2)), height=height, width=width,
                          min_box_size=min_box_size)

    return move(sample, image=lambda im: sample_bilinear(im, x, y, fill=fill),
                nearest=lambda m, f: sample_nearest(m, x, y, fill=f), boxes=boxes,
                mask_fill=mask_fill)


# --------------------------------------------------------------------------------------------
# Perspective
# --------------------------------------------------------------------------------------------


def _normalizer(points: jax.Array) -> jax.Array:
    """The 3x3 similarity that moves ``points [4, 2]`` to their centroid and scales their mean
    distance from it to sqrt(2) (Hartley's normalisation: keeps the float32 solve well posed)."""
    centre = points.mean(axis=0)
    spread = jnp.sqrt(((points - centre) ** 2).sum(-1)).mean()
    s = jnp.sqrt(2.0) / jnp.maximum(spread, 1e-6)
    zero, one = jnp.zeros_like(s), jnp.ones_like(s)
    return jnp.stack([jnp.stack([s, zero, -s * centre[0]]),
                      jnp.stack([zero, s, -s * centre[1]]),
                      jnp.stack([zero, zero, one])])


def perspective_coeffs(startpoints, endpoints) -> jax.Array:
    """The homography of torchvision's ``_get_perspective_coeffs``, as 8 coefficients.

    ``(a, b, c, d, e, f, g, h)`` map each of the 4 ``endpoints`` (output) to its ``startpoint``
    (input): ``x_in = (a x + b y + c) / (g x + h y + 1)``, ``y_in = (d x + e y + f) / (g x + h y
    + 1)``. torchvision solves the raw 8x8 system by least squares in float64; here it is solved
    exactly in float32 on normalised points and mapped back, which traces, jits and vmaps.
    """
    start = jnp.asarray(startpoints, jnp.float32).reshape(4, 2)
    end = jnp.asarray(endpoints, jnp.float32).reshape(4, 2)
    norm_start, norm_end = _normalizer(start), _normalizer(end)
    s = start @ norm_start[:2, :2].T + norm_start[:2, 2]
    e = end @ norm_end[:2, :2].T + norm_end[:2, 2]
    zeros, ones = jnp.zeros(4), jnp.ones(4)
    ex, ey, sx, sy = e[:, 0], e[:, 1], s[:, 0], s[:, 1]
    rows_x = jnp.stack([ex, ey, ones, zeros, zeros, zeros, -sx * ex, -sx * ey], -1)
    rows_y = jnp.stack([zeros, zeros, zeros, ex, ey, ones, -sy * ex, -sy * ey], -1)
    a = jnp.stack([rows_x, rows_y], 1).reshape(8, 8)
    b = jnp.stack([sx, sy], 1).reshape(8)
    h = jnp.append(jnp.linalg.solve(a, b), 1.0).reshape(3, 3)
    full = jnp.linalg.inv(norm_start) @ h @ norm_end
    return (full / full[2, 2]).reshape(-1)[:8]


def perspective_matrix(coeffs) -> jax.Array:
    """The 3x3 matrix of 8 perspective coefficients (output -> input, like the coefficients)."""
    return jnp.append(jnp.asarray(coeffs, jnp.float32), 1.0).reshape(3, 3)


def _project(points: jax.Array, matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(x, y)`` of ``matrix @ (x, y, 1)`` after the perspective division."""
    mapped = points @ matrix.T
    return mapped[..., 0] / mapped[..., 2], mapped[..., 1] / mapped[..., 2]


def perspective(sample, *, startpoints, endpoints, fill: float = 0.0, mask_fill: int = 0,
                min_box_size: float = 1.0, interpolation: str = "bilinear"):
    """torchvision's ``perspective(startpoints, endpoints)``: the image is warped so that each
    start point lands on its end point (corners as ``[[x, y], ...]``, torchvision's pixel
    indices); output size = input size.

    Output pixel centres go through ``perspective_coeffs`` to the input and are sampled there
    (bilinear by default, as ``RandomPerspective``), masks by nearest neighbour (``mask_fill``,
    instance masks 0). Taps outside the image read ``fill``, as in the affine ops; this equals
    torchvision wherever all four taps lie inside, while in the one-pixel seam at the warped
    border torchvision blends ``mask * sampled + (1 - mask) * fill`` and so weights the image
    part twice. Each box's 4 corners are mapped by the
    forward homography; the box becomes their extent, clipped to the image and marked invalid
    when thinner than ``min_box_size`` (as the affine ops; with instance masks, the moved masks'
    own boxes).
    """
    check_interpolation(interpolation)
    d, was_array = to_dict(sample)
    height, width = d["image"].shape[:2]
    inverse = perspective_matrix(perspective_coeffs(startpoints, endpoints))
    x, y = _project(output_grid(height, width), inverse)
    # Points on the line that the map sends to infinity (a zero denominator) are outside.
    finite = jnp.isfinite(x) & jnp.isfinite(y)
    x = jnp.clip(jnp.where(finite, x, -1.0), -1.0, width + 1.0)
    y = jnp.clip(jnp.where(finite, y, -1.0), -1.0, height + 1.0)
    forward = jnp.linalg.inv(inverse)

    def boxes(b, valid):
        x1, y1, x2, y2 = (b[..., i] for i in range(4))
        corners = jnp.stack([jnp.stack([x1, y1, jnp.ones_like(x1)], -1),
                             jnp.stack([x2, y1, jnp.ones_like(x1)], -1),
                             jnp.stack([x2, y2, jnp.ones_like(x1)], -1),
                             jnp.stack([x1, y2, jnp.ones_like(x1)], -1)], axis=-2)  # [N, 4, 3]
        cx, cy = _project(corners, forward)
        moved = jnp.stack([cx.min(-1), cy.min(-1), cx.max(-1), cy.max(-1)], axis=-1)
        moved = jnp.where(jnp.isfinite(moved), moved, 0.0)
        return clip_boxes(moved, valid, height=height, width=width, min_box_size=min_box_size)

    out = move(d, image=lambda im: sample_image(im, x, y, fill=fill, interpolation=interpolation),
               nearest=lambda m, f: sample_nearest(m, x, y, fill=f), boxes=boxes,
               mask_fill=mask_fill)
    return from_dict(out, was_array)


def sample_perspective_points(key, *, height: int, width: int, distortion_scale: float = 0.5):
    """torchvision ``RandomPerspective``'s corners: ``(startpoints, endpoints)`` as ``[4, 2]``.

    Start points are the corner pixels ``(0, 0), (W-1, 0), (W-1, H-1), (0, H-1)``; each end
    point moves its corner inwards by a whole number of pixels drawn uniformly below
    ``int(distortion_scale * (W // 2)) + 1`` horizontally (likewise vertically).
    """
    check_probability(distortion_scale, "distortion_scale")
    bound_h = int(distortion_scale * (height // 2)) + 1
    bound_w = int(distortion_scale * (width // 2)) + 1
    low = np.array([[0, 0], [width - bound_w, 0], [width - bound_w, height - bound_h],
                    [0, height - bound_h]], np.int32)
    high = np.array([[bound_w, bound_h], [width, bound_h], [width, height],
                     [bound_w, height]], np.int32)
    end = jax.random.randint(key, (4, 2), low, high)
    start = jnp.asarray([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    return start, end


@sample_op
def random_perspective(key, sample, *, distortion_scale: float = 0.5, probability: float = 0.5,
                       fill: float = 0.0, mask_fill: int = 0, min_box_size: float = 1.0,
                       interpolation: str = "bilinear"):
    """torchvision ``RandomPerspective(distortion_scale, p)``: with ``probability``, each image
    corner moves inwards by up to ``distortion_scale`` times half the image size (see
    ``sample_perspective_points``) and the image, masks and boxes follow the homography
    (``perspective``). ``distortion_scale=0`` is the identity."""
    check_probability(probability)
    check_interpolation(interpolation)
    height, width = sample["image"].shape[:2]
    key_coin, key_points = jax.random.split(key)
    start, end = sample_perspective_points(key_points, height=height, width=width,
                                           distortion_scale=distortion_scale)
    return maybe(key_coin, probability, lambda s: perspective(
        s, startpoints=start, endpoints=end, fill=fill, mask_fill=mask_fill,
        min_box_size=min_box_size, interpolation=interpolation), sample)
