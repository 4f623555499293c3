"""Anchor boxes for feature pyramids, and an anchor-coverage diagnostic.

Anchors depend only on static shapes, so they are built once with numpy on the host and enter
jitted code as constants. Conventions (RetinaNet, Lin et al. 2017, and torchvision):

* A level with stride ``s`` on an ``H x W`` image has a ``ceil(H/s) x ceil(W/s)`` grid, the
  shape a stack of stride-2 convolutions with SAME padding produces (each halves the size,
  rounding up).
* Anchor size on a level is ``base_size * octave_scale``; an aspect ratio ``r`` is
  *height / width* (the course's convention): ``w = size / sqrt(r)``, ``h = size * sqrt(r)``, so
  the area ``size²`` is kept.
* Order: level, then grid row (y), then column (x), then ratio, then scale (torchvision's order).
* Anchor centres sit at ``(index + offset) * stride``; ``offset=0.5`` (default) centres them on
  the cells as the course describes, ``offset=0.0`` reproduces torchvision's grid.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.ops.iou import box_iou

RETINANET_STRIDES = (8, 16, 32, 64, 128)
RETINANET_SIZES = (32.0, 64.0, 128.0, 256.0, 512.0)
RETINANET_ASPECT_RATIOS = (0.5, 1.0, 2.0)
RETINANET_OCTAVE_SCALES = (1.0, 2.0 ** (1.0 / 3.0), 2.0 ** (2.0 / 3.0))


def cell_anchors(base_size: float, *, aspect_ratios: Sequence[float] = RETINANET_ASPECT_RATIOS,
                 octave_scales: Sequence[float] = RETINANET_OCTAVE_SCALES,
                 round_to_integer: bool = False) -> np.ndarray:
    """The ``A = len(ratios) * len(scales)`` xyxy anchors of one cell, centred on (0, 0).

    ``round_to_integer=True`` rounds the corners as torchvision's ``AnchorGenerator`` does.
    """
    ratios = np.asarray(aspect_ratios, np.float64)
    if np.any(ratios <= 0):
        raise ValueError(f"aspect ratios (height/width) must be positive, got {aspect_ratios}")
    sizes = base_size * np.asarray(octave_scales, np.float64)
    height_factor = np.sqrt(ratios)
    widths = (sizes[None, :] / height_factor[:, None]).reshape(-1)
    heights = (sizes[None, :] * height_factor[:, None]).reshape(-1)
    anchors = np.stack([-widths, -heights, widths, heights], axis=1) / 2.0
    if round_to_integer:
        anchors = np.round(anchors)
    return anchors


def feature_map_shapes(image_size: tuple[int, int],
                       strides: Sequence[int] = RETINANET_STRIDES) -> list[tuple[int, int]]:
    """``(ceil(H/s), ceil(W/s))`` for each stride."""
    height, width = image_size
    return [(math.ceil(height / s), math.ceil(width / s)) for s in strides]


def grid_anchors(feature_shape: tuple[int, int], *, stride: float, cell: np.ndarray,
                 offset: float = 0.5) -> np.ndarray:
    """Tiles the cell anchors ``[A, 4]`` over a ``[h, w]`` grid -> ``[h * w * A, 4]``."""
    grid_h, grid_w = feature_shape
    shift_x = (np.arange(grid_w, dtype=np.float64) + offset) * stride
    shift_y = (np.arange(grid_h, dtype=np.float64) + offset) * stride
    yy, xx = np.meshgrid(shift_y, shift_x, indexing="ij")
    shifts = np.stack([xx, yy, xx, yy], axis=-1).reshape(-1, 1, 4)
    return (shifts + cell[None]).reshape(-1, 4)


def pyramid_anchors(image_size: tuple[int, int], *, strides: Sequence[int] = RETINANET_STRIDES,
                    sizes: Sequence[float] = RETINANET_SIZES,
                    aspect_ratios: Sequence[float] = RETINANET_ASPECT_RATIOS,
                    octave_scales: Sequence[float] = RETINANET_OCTAVE_SCALES,
                    offset: float = 0.5, round_to_integer: bool = False) -> list[np.ndarray]:
    """Anchors of each pyramid level, a list of float32 ``[h_l * w_l * A, 4]`` xyxy arrays."""
    if len(strides) != len(sizes):
        raise ValueError(f"need one base size per stride, got strides={tuple(strides)} and "
                         f"sizes={tuple(sizes)}")
    levels = []
    for stride, size, shape in zip(strides, sizes, feature_map_shapes(image_size, strides)):
        cell = cell_anchors(size, aspect_ratios=aspect_ratios, octave_scales=octave_scales,
                            round_to_integer=round_to_integer)
        levels.append(grid_anchors(shape, stride=stride, cell=cell, offset=offset)
                      .astype(np.float32))
    return levels


def generate_anchors(image_size: tuple[int, int], **kwargs) -> np.ndarray:
    """All pyramid anchors concatenated, ``[N, 4]`` float32 xyxy (RetinaNet P3-P7 defaults).

    512x512 with the defaults gives 49,104 anchors; see :func:`pyramid_anchors` for options.
    """
    return np.concatenate(pyramid_anchors(image_size, **kwargs), axis=0)


def anchor_coverage(anchors: jax.Array, gt_boxes: jax.Array,
                    gt_valid: jax.Array | None = None) -> jax.Array:
    """Best IoU of each ground-truth box with any anchor, ``[..., G]`` (0 for padded boxes).

    A box whose best IoU is below the matcher's positive threshold can only be learned through
    low-quality matches; many such boxes mean the anchor sizes or ratios do not fit the data.
    """
    best = box_iou(gt_boxes, anchors).max(axis=-1)
    if gt_valid is not None:
        best = jnp.where(gt_valid, best, 0.0)
    return best
