"""Anchor-to-ground-truth assignment by IoU, with static shapes.

Each anchor takes the ground-truth box it overlaps most (ties: the lowest box index) and a
label from that best IoU, with the thresholds inclusive as in torchvision's ``Matcher``::

    IoU >= positive_threshold                      -> POSITIVE (1)
    negative_threshold <= IoU < positive_threshold -> IGNORE   (-1): no loss at all
    IoU <  negative_threshold                      -> NEGATIVE (0)

RetinaNet uses 0.5 / 0.4 (the defaults); Faster R-CNN's RPN uses 0.7 / 0.3 (the course's
numbers). With ``allow_low_quality_matches`` every ground-truth box also makes positive the
anchor(s) with its highest IoU (ties included), so no object is left without an anchor; those
anchors keep their own best box as target, as torchvision does. Unlike torchvision, a box that
overlaps no anchor at all (best IoU 0) forces nothing. Padded boxes (``gt_valid=False``) never
match.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.ops.box_coder import encode_boxes
from jaxvision.ops.iou import box_iou

POSITIVE = 1
NEGATIVE = 0
IGNORE = -1


def match_anchors(anchors: jax.Array, gt_boxes: jax.Array, gt_valid: jax.Array | None = None, *,
                  positive_threshold: float = 0.5, negative_threshold: float = 0.4,
                  allow_low_quality_matches: bool = True) -> tuple[jax.Array, jax.Array]:
    """Returns ``(matched_gt_index [A] int32, labels [A] int32)`` for anchors ``[A, 4]``.

    ``gt_boxes [G, 4]`` (xyxy) with ``gt_valid [G]``; use ``jax.vmap`` over a batch. With no
    valid box (or G = 0) every anchor is NEGATIVE and points at index 0.
    """
    if negative_threshold > positive_threshold:
        raise ValueError(f"negative_threshold ({negative_threshold}) must not exceed "
                         f"positive_threshold ({positive_threshold})")
    anchors = jnp.asarray(anchors)
    gt_boxes = jnp.asarray(gt_boxes, dtype=anchors.dtype)
    if gt_boxes.shape[0] == 0:  # no boxes at all (prefer padding to a fixed count)
        zeros = jnp.zeros(anchors.shape[:1], jnp.int32)
        return zeros, zeros + NEGATIVE
    if gt_valid is None:
        gt_valid = jnp.ones(gt_boxes.shape[:-1], bool)
    quality = box_iou(gt_boxes, anchors)  # [G, A]
    quality = jnp.where(gt_valid[:, None], quality, -1.0)
    best_iou = quality.max(axis=0)
    matched = jnp.argmax(quality, axis=0).astype(jnp.int32)
    labels = jnp.where(best_iou >= positive_threshold, POSITIVE,
                       jnp.where(best_iou < negative_threshold, NEGATIVE, IGNORE))
    if allow_low_quality_matches:
        best_per_gt = quality.max(axis=1)  # [G]
        is_best = (quality == best_per_gt[:, None]) & (best_per_gt[:, None] > 0) & gt_valid[:, None]
        labels = jnp.where(is_best.any(axis=0), POSITIVE, labels)
    return matched, labels.astype(jnp.int32)


def anchor_targets(anchors: jax.Array, gt_boxes: jax.Array, gt_classes: jax.Array,
                   gt_valid: jax.Array | None = None, *, num_classes: int,
                   positive_threshold: float = 0.5, negative_threshold: float = 0.4,
                   allow_low_quality_matches: bool = True,
                   weights=(1.0, 1.0, 1.0, 1.0)) -> dict[str, jax.Array]:
    """Training targets of one image for a RetinaNet-style head (sigmoid over K classes).

    Returns ``labels [A]`` (POSITIVE/NEGATIVE/IGNORE), ``matched_index [A]``,
    ``class_targets [A, K]`` (one-hot for positives, all zero for background and ignored),
    ``box_targets [A, 4]`` (encoded deltas for positives, 0 elsewhere), ``matched_boxes
    [A, 4]`` (xyxy, for IoU losses) and ``num_positives``. ``jax.vmap`` it over a batch.
    """
    anchors = jnp.asarray(anchors)
    gt_boxes = jnp.asarray(gt_boxes, anchors.dtype)
    matched, labels = match_anchors(anchors, gt_boxes, gt_valid,
                                    positive_threshold=positive_threshold,
                                    negative_threshold=negative_threshold,
                                    allow_low_quality_matches=allow_low_quality_matches)
    positive = labels == POSITIVE
    if gt_boxes.shape[0] == 0:
        matched_boxes = jnp.zeros_like(anchors)
        matched_classes = jnp.zeros(anchors.shape[:1], jnp.int32)
    else:
        matched_boxes = gt_boxes[matched]
        matched_classes = jnp.asarray(gt_classes)[matched]
    class_targets = jax.nn.one_hot(matched_classes, num_classes, dtype=anchors.dtype)
    class_targets = class_targets * positive[:, None]
    deltas = encode_boxes(jnp.where(positive[:, None], matched_boxes, anchors), anchors,
                          weights=weights)
    return {"labels": labels, "matched_index": matched, "class_targets": class_targets,
            "box_targets": jnp.where(positive[:, None], deltas, 0.0),
            "matched_boxes": matched_boxes, "num_positives": positive.sum()}
