"""Detection evaluation: COCO AP/AR, VOC AP, precision/recall curves, F1 and PR plots.

The engines live in :mod:`jaxvision.metrics.coco` (pycocotools-exact COCO evaluation) and
:mod:`jaxvision.metrics.voc` (VOC matching and the 11-point / all-point / 101-point
interpolations); this module re-exports them and adds the adapter for jaxvision detectors'
padded outputs, curve helpers and plotting. Evaluation runs with numpy on the host.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jaxvision.metrics.coco import (AREA_LABELS, DEFAULT_AREA_RANGES, STAT_NAMES, COCOEvaluation,
                                    coco_evaluate, coco_evaluate_detailed, evaluate_arrays,
                                    summarize)
from jaxvision.metrics.voc import (INTERPOLATIONS, ap_all_point, ap_coco101, ap_eleven_point,
                                   average_precision, interpolated_precision,
                                   match_voc_class, precision_recall_from_ranked, voc_evaluate)
from jaxvision.metrics.voc import _coco_arrays, _voc_iou
from jaxvision.ops.boxes import BOX_FORMATS

__all__ = [
    "AREA_LABELS", "DEFAULT_AREA_RANGES", "STAT_NAMES", "COCOEvaluation", "coco_evaluate",
    "coco_evaluate_detailed", "coco_evaluate_padded", "evaluate_arrays", "summarize",
    "INTERPOLATIONS", "ap_all_point", "ap_coco101", "ap_eleven_point", "average_precision",
    "interpolated_precision", "match_voc_class", "precision_recall_from_ranked", "voc_evaluate",
    "f1_scores",
    "best_f1", "precision_recall_curve", "plot_precision_recall", "padded_to_coco",
    "error_breakdown",
]


def _to_xywh(boxes: np.ndarray, box_format: str) -> np.ndarray:
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format={box_format!r}; use one of {BOX_FORMATS}")
    a, b, c, d = np.moveaxis(boxes, -1, 0)
    if box_format == "xywh":
        return boxes
    if box_format == "xyxy":
        return np.stack([a, b, c - a, d - b], -1)
    if box_format == "cxcywh":
        return np.stack([a - c / 2, b - d / 2, c, d], -1)
    return np.stack([b, a, d - b, c - a], -1)  # yxyx


def _padded_boxes(gt_boxes, det_boxes, gt_valid, gt_crowd, gt_area, box_format):
    """xywh float64 boxes, crowd flags and areas (default: box areas) of padded batches."""
    gt_boxes = _to_xywh(np.asarray(gt_boxes, np.float64), box_format)
    det_boxes = _to_xywh(np.asarray(det_boxes, np.float64), box_format)
    crowd = np.zeros(np.shape(gt_valid), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    area = gt_boxes[..., 2] * gt_boxes[..., 3] if gt_area is None else np.asarray(gt_area, float)
    return gt_boxes, det_boxes, crowd, area


def padded_to_coco(*, gt_boxes, gt_classes, gt_valid, det_boxes, det_scores, det_classes,
                   det_valid, num_classes: int, box_format: str = "xyxy", gt_crowd=None,
                   gt_area=None) -> tuple[dict, list[dict]]:
    """COCO-format dicts from padded batches (images are 0..N-1, categories 0..C-1).

    ``gt_*``: ``[N, G, ...]``; ``det_*``: ``[N, D, ...]``; padded entries have ``valid=False``.
    ``gt_area`` defaults to the box area (COCO uses the mask area when it has masks).
    """
    gt_boxes, det_boxes, crowd, area = _padded_boxes(gt_boxes, det_boxes, gt_valid, gt_crowd,
                                                     gt_area, box_format)
    gt_valid, det_valid = np.asarray(gt_valid, bool), np.asarray(det_valid, bool)
    gt_classes, det_classes = np.asarray(gt_classes), np.asarray(det_classes)
    det_scores = np.asarray(det_scores, np.float64)
    n_img, n_gt = np.nonzero(gt_valid)
    annotations = [{"id": i + 1, "image_id": int(n), "category_id": int(gt_classes[n, g]),
                    "bbox": gt_boxes[n, g].tolist(), "area": float(area[n, g]),
                    "iscrowd": int(crowd[n, g])} for i, (n, g) in enumerate(zip(n_img, n_gt))]
    d_img, d_idx = np.nonzero(det_valid)
    results = [{"image_id": int(n), "category_id": int(det_classes[n, d]),
                "bbox": det_boxes[n, d].tolist(), "score": float(det_scores[n, d])}
               for n, d in zip(d_img, d_idx)]
    ground_truth = {"images": [{"id": i} for i in range(gt_valid.shape[0])],
                    "annotations": annotations,
                    "categories": [{"id": c} for c in range(num_classes)]}
    return ground_truth, results


def coco_evaluate_padded(*, num_classes: int, gt_boxes, gt_classes, gt_valid, det_boxes,
                         det_scores, det_classes, det_valid, box_format: str = "xyxy",
                         gt_crowd=None, gt_area=None, detailed: bool = False,
                         evaluation_options=None):
    """COCO AP/AR of a jaxvision detector's padded outputs, without building dicts.

    Same inputs and numbers as ``coco_evaluate(*padded_to_coco(...))``: images are 0..N-1 and
    categories 0..C-1 (classes outside that range are dropped). Returns the 12 numbers, or a
    :class:`COCOEvaluation` if ``detailed``.
    """
    gt_xywh, det_xywh, crowd, area = _padded_boxes(gt_boxes, det_boxes, gt_valid, gt_crowd,
                                                   gt_area, box_format)
    gt_classes = np.asarray(gt_classes).astype(np.int64)
    det_classes = np.asarray(det_classes).astype(np.int64)
    gt_keep = np.asarray(gt_valid, bool) & (gt_classes >= 0) & (gt_classes < num_classes)
    det_keep = np.asarray(det_valid, bool) & (det_classes >= 0) & (det_classes < num_classes)
    gt_n, _ = np.nonzero(gt_keep)
    det_n, _ = np.nonzero(det_keep)
    evaluation = evaluate_arrays(
        num_images=gt_keep.shape[0], num_categories=num_classes, gt_image=gt_n,
        gt_category=gt_classes[gt_keep], gt_boxes=gt_xywh[gt_keep], gt_area=area[gt_keep],
        gt_crowd=crowd[gt_keep], dt_image=det_n, dt_category=det_classes[det_keep],
        dt_boxes=det_xywh[det_keep], dt_scores=np.asarray(det_scores, np.float64)[det_keep],
        category_ids=np.arange(num_classes), **(evaluation_options or {}))
    return evaluation if detailed else evaluation.stats


def precision_recall_curve(scores, true_positive, *, num_ground_truth: int):
    """``(recall, precision, thresholds)`` of scored detections, ranked by a stable sort."""
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="stable")
    recall, precision = precision_recall_from_ranked(np.asarray(true_positive, bool)[order],
                                                     num_ground_truth=num_ground_truth)
    return recall, precision, scores[order]


def f1_scores(precision, recall) -> np.ndarray:
    """``2PR / (P + R)`` elementwise, 0 where both are 0."""
    precision, recall = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
    total = precision + recall
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)


def best_f1(precision, recall, thresholds) -> tuple[float, float]:
    """The highest F1 along a curve and the score threshold that reaches it."""
    f1 = f1_scores(precision, recall)
    if f1.size == 0:
        return 0.0, float("nan")
    best = int(np.argmax(f1))
    return float(f1[best]), float(np.asarray(thresholds)[best])


def plot_precision_recall(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                          path: str, title: str = "Precision-recall",
                          interpolated: bool = True) -> None:
    """Saves a PNG of ``{label: (recall, precision)}`` curves (dashed: raw, solid: envelope)."""
    from jaxvision import plots

    figure, axis = plots.figure((5.5, 4.5))
    for label, (recall, precision) in curves.items():
        recall, precision = np.asarray(recall), np.asarray(precision)
        line = axis.plot(recall, precision, "--", alpha=0.5)[0] if not interpolated else None
        color = line.get_color() if line is not None else None
        steps = interpolated_precision(precision) if interpolated else precision
        axis.step(recall, steps, where="post", label=label, color=color)
    axis.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    plots.save(figure, path, dpi=110)


def error_breakdown(ground_truth: dict, detections: Sequence[dict], *, iou_threshold: float = 0.5,
                    background_threshold: float = 0.1) -> dict[str, int]:
    """Counts of true positives, each kind of false positive, and missed objects.

    Detections are matched per class as in :func:`voc_evaluate` (IoU > ``iou_threshold``).
    Each false positive gets the first kind that applies, judged by its best IoU with the
    image's ground truth: ``duplicate`` (same class, above the threshold, box already taken),
    ``localization`` (same class, between ``background_threshold`` and the threshold),
    ``classification`` (another class, at least ``background_threshold``), else
    ``background``. ``missed`` counts non-difficult boxes no detection matched. A simplified
    TIDE-style tally: it counts errors and does not weigh them by their effect on AP.
    """
    gt, dt = _coco_arrays(ground_truth, detections)
    gt_img, gt_cat, gt_box, gt_diff = gt["image"], gt["category"], gt["box"], gt["difficult"]
    dt_img, dt_cat, dt_box, dt_score = dt["image"], dt["category"], dt["box"], dt["score"]
    true_positive = np.zeros(len(detections), bool)
    false_positive = np.zeros(len(detections), bool)
    for category in np.unique(np.concatenate([gt_cat, dt_cat])):
        d = np.flatnonzero(dt_cat == category)
        g = gt_cat == category
        tp, fp, order = match_voc_class(dt_img[d], dt_box[d], dt_score[d], gt_img[g],
                                        gt_box[g], gt_diff[g], iou_threshold=iou_threshold)
        true_positive[d[order]], false_positive[d[order]] = tp, fp
    same_best = np.zeros(len(detections))
    other_best = np.zeros(len(detections))
    matched_gt = np.zeros(len(gt_cat), bool)
    for image in np.unique(dt_img):
        d = np.flatnonzero(dt_img == image)
        g = np.flatnonzero(gt_img == image)
        if not len(g):
            continue
        dd, gg = np.repeat(d, len(g)), np.tile(g, len(d))
        overlaps = _voc_iou(dt_box[dd], gt_box[gg], False).reshape(len(d), len(g))
        same = dt_cat[d][:, None] == gt_cat[g][None, :]
        same_best[d] = np.where(same, overlaps, 0.0).max(axis=1)
        other_best[d] = np.where(~same, overlaps, 0.0).max(axis=1)
        taken = np.argmax(np.where(same, overlaps, -1.0), axis=1)  # VOC: first best box
        matched_gt[g[taken[true_positive[d]]]] = True
    duplicate = false_positive & (same_best > iou_threshold)
    localization = false_positive & ~duplicate & (same_best >= background_threshold)
    classification = (false_positive & ~duplicate & ~localization
                      & (other_best >= background_threshold))
    background = false_positive & ~duplicate & ~localization & ~classification
    return {"true_positive": int(true_positive.sum()), "duplicate": int(duplicate.sum()),
            "localization": int(localization.sum()), "classification": int(classification.sum()),
            "background": int(background.sum()), "missed": int((~matched_gt & ~gt_diff).sum())}
