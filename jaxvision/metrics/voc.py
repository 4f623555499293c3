"""PASCAL VOC average precision (11-point and all-point) and the AP interpolation rules.

Interpolations of a precision/recall curve (recall ascending, in ranking order):

* :func:`ap_all_point`: VOC2010+ exact area under the interpolated curve
  ``p_interp(r) = max_{r' >= r} p(r')``, with the curve padded by (0, 0) and (1, 0).
* :func:`ap_eleven_point`: VOC2007, mean of ``p_interp`` at r = 0, 0.1, ..., 1. Thresholds are
  ``k / 10`` exactly; ``legacy_arange=True`` uses ``np.arange(0, 1.1, 0.1)`` as py-faster-rcnn
  does, whose 0.30000000000000004, 0.6000000000000001 and 0.7000000000000001 drop those points
  when the recall is exactly 0.3, 0.6 or 0.7 (a floating-point artefact, kept only to
  reproduce numbers computed with that code).
* :func:`ap_coco101`: pycocotools' 101-point rule (``searchsorted`` left, 0 past max recall).

:func:`voc_evaluate` matches detections as py-faster-rcnn's ``voc_eval``: each detection takes
the ground-truth box with the highest IoU in its image (first one on ties); it is a true
positive if that IoU is *strictly* greater than the threshold, the box is not ``difficult`` and
not already taken, a false positive otherwise, and neither when the box is ``difficult``.
Detections are ranked with a stable sort on score (py-faster-rcnn's quicksort leaves ties in an
implementation-defined order).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxvision.metrics.coco import default_recall_thresholds


def _as_curve(recall, precision):
    recall = np.asarray(recall, np.float64).reshape(-1)
    precision = np.asarray(precision, np.float64).reshape(-1)
    if recall.shape != precision.shape:
        raise ValueError(f"recall and precision must have the same length, got {recall.shape} "
                         f"and {precision.shape}")
    return recall, precision


def interpolated_precision(precision) -> np.ndarray:
    """``max`` of the precision at this and every later rank (the monotone envelope)."""
    precision = np.asarray(precision, np.float64)
    return np.maximum.accumulate(precision[::-1])[::-1] if precision.size else precision


def ap_all_point(recall, precision) -> float:
    """VOC2010+ AP: area under the interpolated PR curve, summed where recall changes."""
    recall, precision = _as_curve(recall, precision)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = interpolated_precision(np.concatenate(([0.0], precision, [0.0])))
    changes = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def ap_eleven_point(recall, precision, *, legacy_arange: bool = False) -> float:
    """VOC2007 AP: mean interpolated precision at recall 0, 0.1, ..., 1.0."""
    recall, precision = _as_curve(recall, precision)
    thresholds = np.arange(0.0, 1.1, 0.1) if legacy_arange else np.arange(11) / 10.0
    ap = 0.0
    for threshold in thresholds:
        reached = recall >= threshold
        ap += (np.max(precision[reached]) if reached.any() else 0.0) / 11.0
    return float(ap)


def ap_coco101(recall, precision, *, recall_thresholds=None) -> float:
    """COCO AP at one IoU threshold: mean of the envelope at 101 recall points."""
    recall, precision = _as_curve(recall, precision)
    thresholds = (default_recall_thresholds() if recall_thresholds is None
                  else np.asarray(recall_thresholds, np.float64))
    envelope = interpolated_precision(precision)
    inds = np.searchsorted(recall, thresholds, side="left")
    q = np.zeros(len(thresholds))
    inside = inds < len(recall)
    q[inside] = envelope[inds[inside]]
    return float(np.mean(q))


INTERPOLATIONS = ("all_point", "11_point", "coco101")


def average_precision(recall, precision, *, interpolation: str = "all_point") -> float:
    """AP under ``"all_point"`` (VOC2010+), ``"11_point"`` (VOC2007) or ``"coco101"``."""
    if interpolation == "all_point":
        return ap_all_point(recall, precision)
    if interpolation == "11_point":
        return ap_eleven_point(recall, precision)
    if interpolation == "coco101":
        return ap_coco101(recall, precision)
    raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")


def precision_recall_from_ranked(true_positive, *, num_ground_truth: int, false_positive=None):
    """Cumulative ``(recall, precision)`` of detections already sorted by decreasing score.

    ``true_positive [N]`` bool; ``false_positive`` defaults to its negation (pass both to let
    some detections count as neither, like matches to VOC 'difficult' boxes).
    """
    tp = np.asarray(true_positive, bool)
    fp = ~tp if false_positive is None else np.asarray(false_positive, bool)
    tp_sum = np.cumsum(tp).astype(np.float64)
    fp_sum = np.cumsum(fp).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_sum / float(num_ground_truth)
    precision = tp_sum / np.maximum(tp_sum + fp_sum, np.finfo(np.float64).eps)
    return recall, precision


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def _coco_arrays(ground_truth: dict, detections) -> tuple[dict, dict]:
    """Ground truth and detections of COCO dictionaries as column arrays (boxes as xyxy)."""
    anns = ground_truth["annotations"]
    gt = {"image": np.asarray([a["image_id"] for a in anns]),
          "category": np.asarray([a["category_id"] for a in anns]),
          "box": _xyxy(np.asarray([a["bbox"] for a in anns], np.float64).reshape(-1, 4)),
          "difficult": np.asarray([bool(a.get("difficult", a.get("iscrowd", 0))) for a in anns],
                                  bool)}
    dt = {"image": np.asarray([d["image_id"] for d in detections]),
          "category": np.asarray([d["category_id"] for d in detections]),
          "box": _xyxy(np.asarray([d["bbox"] for d in detections], np.float64).reshape(-1, 4)),
          "score": np.asarray([d["score"] for d in detections], np.float64)}
    return gt, dt


def _voc_iou(det: np.ndarray, gt: np.ndarray, plus_one: bool) -> np.ndarray:
    one = 1.0 if plus_one else 0.0
    iw = np.maximum(np.minimum(det[:, 2], gt[:, 2]) - np.maximum(det[:, 0], gt[:, 0]) + one, 0.0)
    ih = np.maximum(np.minimum(det[:, 3], gt[:, 3]) - np.maximum(det[:, 1], gt[:, 1]) + one, 0.0)
    inter = iw * ih
    union = ((det[:, 2] - det[:, 0] + one) * (det[:, 3] - det[:, 1] + one)
             + (gt[:, 2] - gt[:, 0] + one) * (gt[:, 3] - gt[:, 1] + one) - inter)
    return inter / union


def match_voc_class(det_image: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray,
                    gt_image: np.ndarray, gt_boxes: np.ndarray, gt_difficult: np.ndarray, *,
                    iou_threshold: float = 0.5, plus_one: bool = False):
    """VOC matching of one class, vectorized. Boxes are xyxy. Returns, in ranking order,
    ``(true_positive, false_positive, order)`` (a 'difficult' hit is neither; ``order`` indexes
    the inputs by descending score, ties in input order).
    """
    order = np.argsort(-det_scores, kind="stable")
    det_image, det_boxes = det_image[order], det_boxes[order]
    gt_order = np.argsort(gt_image, kind="stable")
    gt_image, gt_boxes = gt_image[gt_order], gt_boxes[gt_order]
    gt_difficult = gt_difficult[gt_order]
    images, gt_start, gt_count = np.unique(gt_image, return_index=True, return_counts=True)
    if len(images):
        slot = np.minimum(np.searchsorted(images, det_image), len(images) - 1)
        counts = np.where(images[slot] == det_image, gt_count[slot], 0)
    else:
        slot = np.zeros(len(det_image), np.int64)
        counts = np.zeros(len(det_image), np.int64)
    pair_det = np.repeat(np.arange(len(det_image)), counts)
    offsets = np.arange(len(pair_det)) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_gt = gt_start[slot[pair_det]] + offsets if len(pair_det) else np.zeros(0, np.int64)
    overlaps = _voc_iou(det_boxes[pair_det], gt_boxes[pair_gt], plus_one)
    best = np.full(len(det_image), -np.inf)
    best_gt = np.full(len(det_image), -1)
    if len(pair_det):
        starts = np.flatnonzero(np.r_[True, pair_det[1:] != pair_det[:-1]])
        owners = pair_det[starts]
        best[owners] = np.maximum.reduceat(overlaps, starts)
        # first gt (in annotation order) with the maximum IoU
        is_max = overlaps == best[pair_det]
        first = np.where(is_max, offsets, np.iinfo(np.int64).max)
        best_offset = np.minimum.reduceat(first, starts)
        best_gt[owners] = gt_start[slot[owners]] + best_offset
    hit = best > iou_threshold
    difficult_hit = hit & (gt_difficult[np.maximum(best_gt, 0)] if len(gt_difficult) else False)
    eligible = hit & ~difficult_hit
    first_claim = np.zeros(len(det_image), bool)
    if eligible.any():
        claims = np.flatnonzero(eligible)
        _, first_index = np.unique(best_gt[claims], return_index=True)
        first_claim[claims[first_index]] = True
    true_positive = first_claim
    false_positive = ~hit | (eligible & ~first_claim)
    return true_positive, false_positive, order


def voc_evaluate(ground_truth: dict, detections: Sequence[dict], *, iou_threshold: float = 0.5,
                 interpolation: str = "all_point", plus_one: bool = False) -> dict:
    """VOC mAP of a COCO-style results list against a COCO-style annotation dict.

    Annotations may carry ``difficult`` (VOC's flag; ``iscrowd`` is used when it is absent).
    ``plus_one=True`` uses the VOC devkit's pixel-inclusive ``+1`` widths. Returns ``{"mAP",
    "per_class_ap": {category_id: AP}, "curves": {category_id: (recall, precision)}}``; a
    class without non-difficult ground truth has AP NaN and is left out of the mean.
    """
    gt, dt = _coco_arrays(ground_truth, detections)
    gt_cat, gt_img, gt_box, gt_diff = gt["category"], gt["image"], gt["box"], gt["difficult"]
    dt_cat, dt_img, dt_box, dt_score = dt["category"], dt["image"], dt["box"], dt["score"]
    per_class, curves = {}, {}
    for category in sorted(c["id"] for c in ground_truth["categories"]):
        g = gt_cat == category
        d = dt_cat == category
        num_positive = int((~gt_diff[g]).sum())
        if num_positive == 0:
            per_class[category] = float("nan")
            continue
        tp, fp, _ = match_voc_class(dt_img[d], dt_box[d], dt_score[d], gt_img[g], gt_box[g],
                                    gt_diff[g], iou_threshold=iou_threshold, plus_one=plus_one)
        recall, precision = precision_recall_from_ranked(tp, num_ground_truth=num_positive,
                                                         false_positive=fp)
        curves[category] = (recall, precision)
        per_class[category] = average_precision(recall, precision, interpolation=interpolation)
    values = np.asarray([v for v in per_class.values() if not np.isnan(v)])
    return {"mAP": float(values.mean()) if values.size else float("nan"),
            "per_class_ap": per_class, "curves": curves}
