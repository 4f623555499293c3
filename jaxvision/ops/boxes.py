"""Bounding-box formats and elementary box operations.

Formats (last axis of size 4):

* ``"xyxy"``: ``[x_min, y_min, x_max, y_max]``, the corner format of the course text and of
  torchvision. Every other op in :mod:`jaxvision.ops` takes this format.
* ``"xywh"``: ``[x_min, y_min, width, height]``, the COCO annotation format.
* ``"cxcywh"``: ``[x_center, y_center, width, height]``, the centre format used for regression.
* ``"yxyx"``: ``[y_min, x_min, y_max, x_max]``; TFDS's ``BBoxFeature`` stores this format with
  coordinates normalized to [0, 1] (use :func:`normalize_boxes` / :func:`denormalize_boxes`).

Coordinates are continuous (no ``+1`` pixel convention): area is ``(x2 - x1) * (y2 - y1)``.
All functions are pure ``jax.numpy`` and work under ``jit`` and ``vmap`` on any leading shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BOX_FORMATS = ("xyxy", "xywh", "cxcywh", "yxyx")


def _check_format(name: str, value: str) -> None:
    if value not in BOX_FORMATS:
        raise ValueError(f"{name}={value!r} is not a box format; use one of {BOX_FORMATS}")


def _to_xyxy(boxes: jax.Array, source: str) -> jax.Array:
    a, b, c, d = jnp.moveaxis(boxes, -1, 0)
    if source == "xyxy":
        return boxes
    if source == "xywh":
        return jnp.stack([a, b, a + c, b + d], axis=-1)
    if source == "cxcywh":
        return jnp.stack([a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d], axis=-1)
    return jnp.stack([b, a, d, c], axis=-1)  # yxyx


def _from_xyxy(boxes: jax.Array, target: str) -> jax.Array:
    x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
    if target == "xyxy":
        return boxes
    if target == "xywh":
        return jnp.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    if target == "cxcywh":
        return jnp.stack([0.5 * (x1 + x2), 0.5 * (y1 + y2), x2 - x1, y2 - y1], axis=-1)
    return jnp.stack([y1, x1, y2, x2], axis=-1)  # yxyx


def convert_boxes(boxes: jax.Array, *, source: str, target: str) -> jax.Array:
    """Converts boxes ``[..., 4]`` between ``"xyxy"``, ``"xywh"``, ``"cxcywh"`` and ``"yxyx"``."""
    _check_format("source", source)
    _check_format("target", target)
    boxes = jnp.asarray(boxes)
    if boxes.shape[-1:] != (4,):
        raise ValueError(f"boxes must have a last axis of size 4, got shape {boxes.shape}")
    if source == target:
        return boxes
    return _from_xyxy(_to_xyxy(boxes, source), target)


def xyxy_to_cxcywh(boxes: jax.Array) -> jax.Array:
    """Corner format to centre format."""
    return convert_boxes(boxes, source="xyxy", target="cxcywh")


def cxcywh_to_xyxy(boxes: jax.Array) -> jax.Array:
    """Centre format to corner format."""
    return convert_boxes(boxes, source="cxcywh", target="xyxy")


def xyxy_to_xywh(boxes: jax.Array) -> jax.Array:
    """Corner format to COCO ``[x, y, w, h]``."""
    return convert_boxes(boxes, source="xyxy", target="xywh")


def xywh_to_xyxy(boxes: jax.Array) -> jax.Array:
    """COCO ``[x, y, w, h]`` to corner format."""
    return convert_boxes(boxes, source="xywh", target="xyxy")


def yxyx_to_xyxy(boxes: jax.Array) -> jax.Array:
    """TFDS ``[y_min, x_min, y_max, x_max]`` to corner format (the swap is its own inverse)."""
    return convert_boxes(boxes, source="yxyx", target="xyxy")


def xyxy_to_yxyx(boxes: jax.Array) -> jax.Array:
    """Corner format to TFDS ``[y_min, x_min, y_max, x_max]``."""
    return convert_boxes(boxes, source="xyxy", target="yxyx")


def _scale_vector(height, width, box_format: str, dtype) -> jax.Array:
    _check_format("box_format", box_format)
    height = jnp.asarray(height, dtype=dtype)
    width = jnp.asarray(width, dtype=dtype)
    if box_format == "yxyx":
        return jnp.stack([height, width, height, width], axis=-1)
    return jnp.stack([width, height, width, height], axis=-1)


def normalize_boxes(boxes: jax.Array, *, height, width, box_format: str = "xyxy") -> jax.Array:
    """Divides coordinates by the image (or feature-map) size so they lie in [0, 1].

    x-like coordinates and widths are divided by ``width``, y-like ones by ``height``, in any
    format. Pass the feature-map size instead of the image size for feature-map-relative boxes.
    ``height``/``width`` are scalars or arrays that broadcast against ``boxes[..., 0]``.
    """
    boxes = jnp.asarray(boxes)
    return boxes / _scale_vector(height, width, box_format, boxes.dtype)


def denormalize_boxes(boxes: jax.Array, *, height, width, box_format: str = "xyxy") -> jax.Array:
    """Inverse of :func:`normalize_boxes`: multiplies by the image (or feature-map) size."""
    boxes = jnp.asarray(boxes)
    return boxes * _scale_vector(height, width, box_format, boxes.dtype)


def box_area(boxes: jax.Array) -> jax.Array:
    """Area of xyxy boxes ``[..., 4] -> [...]``, ``(x2 - x1) * (y2 - y1)`` (no ``+1``)."""
    boxes = jnp.asarray(boxes)
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def clip_boxes(boxes: jax.Array, *, height, width) -> jax.Array:
    """Clamps xyxy boxes to the image: x to ``[0, width]`` and y to ``[0, height]``."""
    boxes = jnp.asarray(boxes)
    x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
    return jnp.stack([jnp.clip(x1, 0, width), jnp.clip(y1, 0, height),
                      jnp.clip(x2, 0, width), jnp.clip(y2, 0, height)], axis=-1)


def order_box_corners(boxes: jax.Array) -> jax.Array:
    """Swaps corners where needed so that ``x1 <= x2`` and ``y1 <= y2`` (xyxy)."""
    boxes = jnp.asarray(boxes)
    x1, y1, x2, y2 = jnp.moveaxis(boxes, -1, 0)
    return jnp.stack([jnp.minimum(x1, x2), jnp.minimum(y1, y2),
                      jnp.maximum(x1, x2), jnp.maximum(y1, y2)], axis=-1)


def remove_small_boxes(boxes: jax.Array, *, min_size: float) -> jax.Array:
    """Boolean mask ``[...]`` of xyxy boxes whose width and height are both ``>= min_size``.

    Returns a mask rather than a shorter array so that shapes stay static; combine it with the
    boxes' ``valid`` mask (as torchvision's ``remove_small_boxes`` keeps ``w >= s and h >= s``).
    """
    boxes = jnp.asarray(boxes)
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    return (widths >= min_size) & (heights >= min_size)


def masks_to_boxes(masks: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Tight xyxy boxes around binary masks ``[..., H, W]``; returns ``(boxes, valid)``.

    Follows torchvision's convention: ``[x_min, y_min, x_max, y_max]`` are the *indices* of the
    first and last foreground columns/rows (so a single pixel at (y, x) gives ``[x, y, x, y]``).
    Empty masks give a zero box and ``valid=False``.
    """
    masks = jnp.asarray(masks).astype(bool)
    height, width = masks.shape[-2:]
    rows = masks.any(axis=-1)  # [..., H]
    cols = masks.any(axis=-2)  # [..., W]
    ys = jnp.arange(height)
    xs = jnp.arange(width)
    y_min = jnp.min(jnp.where(rows, ys, height), axis=-1)
    y_max = jnp.max(jnp.where(rows, ys, -1), axis=-1)
    x_min = jnp.min(jnp.where(cols, xs, width), axis=-1)
    x_max = jnp.max(jnp.where(cols, xs, -1), axis=-1)
    valid = rows.any(axis=-1)
    boxes = jnp.stack([x_min, y_min, x_max, y_max], axis=-1).astype(jnp.float32)
    return jnp.where(valid[..., None], boxes, 0.0), valid
