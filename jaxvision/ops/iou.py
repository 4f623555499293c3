"""IoU and its generalizations (GIoU, DIoU, CIoU) for xyxy boxes.

Each function is *pairwise* by default, like torchvision: ``boxes1 [..., N, 4]`` and
``boxes2 [..., M, 4]`` give ``[..., N, M]``. With ``aligned=True`` the two inputs are compared
element by element instead (shapes broadcast, ``[..., 4]`` -> ``[...]``), which is what the box
losses in :mod:`jaxvision.losses.detection` use.

Definitions (Rezatofighi et al. 2019; Zheng et al. 2020), with ``C`` the smallest enclosing box:

* IoU  = |A ∩ B| / |A ∪ B|
* GIoU = IoU - |C \\ (A ∪ B)| / |C|
* DIoU = IoU - ρ²(centres) / c²   (c = diagonal of C)
* CIoU = DIoU - α v, with v = 4/π² (atan(w_B/h_B) - atan(w_A/h_A))² and
  α = v / ((1 - IoU) + v).
  As in torchvision, α is treated as a constant for gradients (``stop_gradient``).

Degenerate boxes are defined rather than NaN (torchvision returns 0/0 = NaN): a zero union gives
IoU 0, a zero-area enclosing box gives a GIoU penalty of 0, a zero diagonal a DIoU penalty of 0,
and a zero-size box an aspect angle of 0. No epsilon is added anywhere else, so non-degenerate
values are exact and gradients stay finite.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _safe_divide(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """numerator / denominator where denominator > 0, else 0, with finite gradients."""
    positive = denominator > 0
    return jnp.where(positive, numerator / jnp.where(positive, denominator, 1.0), 0.0)


def _broadcast_pair(boxes1, boxes2, aligned: bool):
    boxes1 = jnp.asarray(boxes1)
    boxes2 = jnp.asarray(boxes2)
    if boxes1.shape[-1:] != (4,) or boxes2.shape[-1:] != (4,):
        raise ValueError(f"boxes must end in an axis of size 4 (xyxy), got {boxes1.shape} "
                         f"and {boxes2.shape}")
    dtype = jnp.result_type(boxes1.dtype, boxes2.dtype, jnp.float32)
    boxes1 = boxes1.astype(dtype)
    boxes2 = boxes2.astype(dtype)
    if aligned:
        return boxes1, boxes2
    return boxes1[..., :, None, :], boxes2[..., None, :, :]


def _iou_and_union(a: jax.Array, b: jax.Array):
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    lt = jnp.maximum(a[..., :2], b[..., :2])
    rb = jnp.minimum(a[..., 2:], b[..., 2:])
    wh = jnp.clip(rb - lt, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a + area_b - inter
    return _safe_divide(inter, union), union


def _enclosing_wh(a: jax.Array, b: jax.Array) -> jax.Array:
    lt = jnp.minimum(a[..., :2], b[..., :2])
    rb = jnp.maximum(a[..., 2:], b[..., 2:])
    return jnp.clip(rb - lt, 0.0)


def _diou_and_iou(a: jax.Array, b: jax.Array):
    iou, _ = _iou_and_union(a, b)
    enclosing = _enclosing_wh(a, b)
    diagonal_sq = enclosing[..., 0] ** 2 + enclosing[..., 1] ** 2
    centre_dx = (a[..., 0] + a[..., 2]) / 2 - (b[..., 0] + b[..., 2]) / 2
    centre_dy = (a[..., 1] + a[..., 3]) / 2 - (b[..., 1] + b[..., 3]) / 2
    centre_sq = centre_dx ** 2 + centre_dy ** 2
    return iou - _safe_divide(centre_sq, diagonal_sq), iou


def _aspect_angle(boxes: jax.Array) -> jax.Array:
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    empty = (width == 0) & (height == 0)
    return jnp.where(empty, 0.0, jnp.arctan2(width, jnp.where(empty, 1.0, height)))


def box_iou(boxes1: jax.Array, boxes2: jax.Array, *, aligned: bool = False) -> jax.Array:
    """Intersection over union of xyxy boxes (pairwise ``[..., N, M]``, or aligned)."""
    a, b = _broadcast_pair(boxes1, boxes2, aligned)
    return _iou_and_union(a, b)[0]


def generalized_box_iou(boxes1: jax.Array, boxes2: jax.Array, *,
                        aligned: bool = False) -> jax.Array:
    """GIoU in [-1, 1]: IoU minus the empty fraction of the enclosing box."""
    a, b = _broadcast_pair(boxes1, boxes2, aligned)
    iou, union = _iou_and_union(a, b)
    enclosing = _enclosing_wh(a, b)
    enclosing_area = enclosing[..., 0] * enclosing[..., 1]
    return iou - _safe_divide(enclosing_area - union, enclosing_area)


def distance_box_iou(boxes1: jax.Array, boxes2: jax.Array, *, aligned: bool = False) -> jax.Array:
    """DIoU in [-1, 1]: IoU minus squared centre distance over squared enclosing diagonal."""
    a, b = _broadcast_pair(boxes1, boxes2, aligned)
    return _diou_and_iou(a, b)[0]


def complete_box_iou(boxes1: jax.Array, boxes2: jax.Array, *, aligned: bool = False) -> jax.Array:
    """CIoU: DIoU minus an aspect-ratio consistency term ``α v`` (α without gradient)."""
    a, b = _broadcast_pair(boxes1, boxes2, aligned)
    diou, iou = _diou_and_iou(a, b)
    v = (4.0 / math.pi ** 2) * (_aspect_angle(a) - _aspect_angle(b)) ** 2
    alpha = jax.lax.stop_gradient(_safe_divide(v, (1.0 - iou) + v))
    return diou - alpha * v
