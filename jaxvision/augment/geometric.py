"""Geometric ops: flips, crops, affine warps, elastic deformation.

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
    as_pair, check_probability, clip_boxes, from_dict, maybe, move, output_grid, sample_nearest,
    sample_op, sample_bilinear, to_dict, uniform, warp_affine)

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
