"""Does an anchor configuration fit a data set? Coverage, k-means anchor shapes, per-level use.

* :func:`anchor_coverage_stats`: each ground-truth box's best IoU with any anchor (its
  histogram) and the fraction of boxes some anchor matches at the positive threshold; boxes
  below it are learned only through low-quality matches.
* :func:`kmeans_anchor_shapes`: YOLOv2's k-means over box ``(w, h)`` with distance
  ``1 - IoU`` of boxes sharing a centre; returns shapes sorted by area and the mean best IoU.
* :func:`level_assignment`: how many positive anchors (matcher 0.5 / 0.4, low-quality
  matches) each pyramid level receives, and which level each box's best anchor is on.
"""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from jaxvision.ops.anchors import anchor_coverage
from jaxvision.ops.matcher import POSITIVE, match_anchors


def _check_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    boxes = np.asarray(boxes, np.float32)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{what} must be [N, 4] xyxy boxes, got shape {boxes.shape}")
    if np.any(boxes[:, 2:] < boxes[:, :2]):
        raise ValueError(f"{what} has boxes with x2 < x1 or y2 < y1")
    return boxes


def anchor_coverage_stats(boxes_per_image: Sequence[np.ndarray], anchors: np.ndarray, *,
                          threshold: float = 0.5, bins: int = 20) -> dict:
    """``best_iou [G]`` over all images' boxes, ``matched_fraction`` (best IoU >= threshold),
    and ``histogram``/``bin_edges`` of the best IoUs on [0, 1]."""
    anchors = _check_boxes(anchors, "anchors")
    best = [np.asarray(anchor_coverage(anchors, _check_boxes(b, "ground-truth boxes")))
            for b in boxes_per_image if len(b)]
    best_iou = np.concatenate(best) if best else np.zeros((0,), np.float32)
    histogram, edges = np.histogram(best_iou, bins=bins, range=(0.0, 1.0))
    return {"best_iou": best_iou, "histogram": histogram, "bin_edges": edges,
            "matched_fraction": float(np.mean(best_iou >= threshold)) if len(best_iou) else 0.0}


def _wh_iou(wh: np.ndarray, centres: np.ndarray) -> np.ndarray:
    inter = (np.minimum(wh[:, None, 0], centres[None, :, 0])
             * np.minimum(wh[:, None, 1], centres[None, :, 1]))
    union = wh[:, None].prod(-1) + centres[None].prod(-1) - inter
    return inter / union


def kmeans_anchor_shapes(boxes: np.ndarray, k: int, *, iterations: int = 100,
                         seed: int = 0) -> tuple[np.ndarray, float]:
    """``(shapes [k, 2] (w, h) sorted by area, mean best IoU of the boxes with them)``."""
    boxes = _check_boxes(boxes, "boxes")
    wh = boxes[:, 2:] - boxes[:, :2]
    if np.any(wh <= 0):
        raise ValueError("k-means needs boxes of positive width and height")
    if not 1 <= k <= len(wh):
        raise ValueError(f"k must lie in [1, {len(wh)}] (the number of boxes), got {k}")
    rng = np.random.default_rng(seed)
    centres = wh[rng.choice(len(wh), k, replace=False)].astype(np.float64)
    for _ in range(iterations):
        assign = np.argmax(_wh_iou(wh, centres), axis=1)
        new = np.array([np.median(wh[assign == j], axis=0) if np.any(assign == j) else centres[j]
                        for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    centres = centres[np.argsort(centres.prod(-1))]
    return centres, float(_wh_iou(wh, centres).max(axis=1).mean())


def level_assignment(anchors_per_level: Sequence[np.ndarray],
                     boxes_per_image: Sequence[np.ndarray], *,
                     positive_threshold: float = 0.5, negative_threshold: float = 0.4) -> dict:
    """``positives_per_level [L]`` (positive anchors summed over images) and
    ``best_level_counts [L]`` (boxes whose best anchor lies on each level)."""
    sizes = [len(a) for a in anchors_per_level]
    anchors = np.concatenate(anchors_per_level)
    level_of = np.repeat(np.arange(len(sizes)), sizes)
    positives = np.zeros(len(sizes), np.int64)
    best_level = np.zeros(len(sizes), np.int64)
    match = jax.jit(lambda a, b: match_anchors(a, b, positive_threshold=positive_threshold,
                                               negative_threshold=negative_threshold))
    from jaxvision.ops.iou import box_iou

    for boxes in boxes_per_image:
        boxes = _check_boxes(boxes, "ground-truth boxes")
        if not len(boxes):
            continue
        _, labels = match(anchors, boxes)
        positives += np.bincount(level_of[np.asarray(labels) == POSITIVE], minlength=len(sizes))
        best = np.asarray(box_iou(boxes, anchors)).argmax(axis=1)
        best_level += np.bincount(level_of[best], minlength=len(sizes))
    return {"positives_per_level": positives, "best_level_counts": best_level}
