"""COCO AP/AR that reproduces pycocotools' ``COCOeval`` number for number, for boxes ('bbox')
and instance masks ('segm', with the mask IoU of ``coco_masks``).

The algorithm is pycocotools' (cocoapi ``8c9bcc3``), vectorized with numpy on the host:

* per (image, category), detections sorted by score with a stable sort (ties keep their order
  in the results list) and cut to ``max(max_detections)``;
* IoU on xywh boxes without ``+1``; for crowd ground truth, intersection over detection area;
* greedy matching in score order at each IoU threshold (a match needs IoU >= t), preferring
  ground truth that is not ignored, the best IoU winning and ties going to the later box;
  crowd boxes can absorb any number of detections; matches to ignored boxes (crowd, or area
  outside the range; both area bounds inclusive) are ignored, as are unmatched detections
  whose own area (``w * h``) is outside the range;
* per category, detections of all images concatenated in image-id order and stably re-sorted
  by score; 101-point interpolated precision (``searchsorted`` left, 0 beyond the last
  recall, and from the first recall threshold not reached on); precision and recall stay -1
  for a category without (non-ignored) ground truth and such entries are left out of the means.

Only the Python loops are replaced: the matching runs one detection *rank* at a time for all
(image, category, IoU threshold, area range) at once, over the (detection, box) pairs whose
IoU reaches the lowest threshold; the accumulation handles all categories, thresholds and
area ranges at once (see ``_accumulate``).

Deliberate differences from pycocotools: a ground-truth annotation without ``area`` uses its
box's ``w * h``; an empty results list scores 0 instead of raising; the "100" in the summary is
``max_detections[-1]`` rather than a hard-coded 100 (pycocotools prints -1 for AP when 100 is
not among ``maxDets``); and an annotation id of 0, which pycocotools mistakes for "unmatched",
is not special.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
from typing import Any, Callable, Sequence

import numpy as np

from jaxvision.metrics import coco_masks

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
              "ARl")


def default_iou_thresholds() -> np.ndarray:
    """``[0.5, 0.55, ..., 0.95]``, built exactly as pycocotools builds it."""
    return np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)


def default_recall_thresholds() -> np.ndarray:
    """101 points ``[0, 0.01, ..., 1]``, built exactly as pycocotools builds it."""
    return np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)


DEFAULT_AREA_RANGES = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2),
                       (96 ** 2, 1e5 ** 2))
AREA_LABELS = ("all", "small", "medium", "large")


@dataclasses.dataclass(frozen=True)
class COCOEvaluation:
    """Full results: ``precision [T, R, K, A, M]``, ``recall [T, K, A, M]`` (-1 = no GT) and
    ``scores [T, R, K, A, M]``, the detection score at each recall point (pycocotools'
    ``eval['scores']``)."""

    stats: dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    area_ranges: tuple[tuple[float, float], ...]
    max_detections: tuple[int, ...]

    def per_category_ap(self, *, iou_threshold: float | None = None) -> dict[Any, float]:
        """AP of each category (area 'all', most detections); -1 where it has no GT."""
        precision = self.precision[..., 0, -1]  # [T, R, K]
        if iou_threshold is not None:
            precision = precision[np.where(np.isclose(self.iou_thresholds, iou_threshold))[0]]
        result = {}
        for k, category in enumerate(self.category_ids.tolist()):
            values = precision[:, :, k]
            values = values[values > -1]
            result[category] = float(np.mean(values)) if values.size else -1.0
        return result

    def per_category_thresholds(self, *, iou_threshold: float = 0.5) -> dict[Any, dict]:
        """Each category's score threshold with the best F1 on its precision/recall curve
        (area 'all', most detections, at ``iou_threshold``): ``{"threshold", "f1",
        "precision", "recall"}``; categories without ground truth or detections are left out.
        Use the thresholds to turn ranked detections into per-class decisions."""
        t = int(np.flatnonzero(np.isclose(self.iou_thresholds, iou_threshold))[0])
        result = {}
        for k, category in enumerate(self.category_ids.tolist()):
            precision = self.precision[t, :, k, 0, -1]
            reached = precision > 0  # recall points that some detection reaches
            if not reached.any():
                continue
            recall = self.recall_thresholds[reached]
            precision, scores = precision[reached], self.scores[t, reached, k, 0, -1]
            f1 = 2 * precision * recall / np.maximum(precision + recall, np.spacing(1))
            best = int(np.argmax(f1))
            result[category] = {"threshold": float(scores[best]), "f1": float(f1[best]),
                                "precision": float(precision[best]),
                                "recall": float(recall[best])}
        return result


def bbox_iou_xywh(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """Elementwise IoU of xywh boxes with pycocotools' exact arithmetic (``bbIou`` in C)."""
    w = np.minimum(dt[:, 2] + dt[:, 0], gt[:, 2] + gt[:, 0]) - np.maximum(dt[:, 0], gt[:, 0])
    h = np.minimum(dt[:, 3] + dt[:, 1], gt[:, 3] + gt[:, 1]) - np.maximum(dt[:, 1], gt[:, 1])
    overlap = (w > 0) & (h > 0)
    inter = w * h
    dt_area = dt[:, 2] * dt[:, 3]
    gt_area = gt[:, 2] * gt[:, 3]
    union = np.where(crowd, dt_area, dt_area + gt_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, inter / np.where(overlap, union, 1.0), 0.0)


# numpy's (private) switch of its huge-page advice; None where this numpy has none.
HUGEPAGE_SWITCH = getattr(getattr(getattr(np, "_core", None), "multiarray", None),
                          "_set_madvise_hugepage", None)
_advice_lock = threading.Lock()
_advice = {"depth": 0, "saved": True}


@contextlib.contextmanager
def _without_hugepage_advice():
    """numpy asks the kernel for huge pages for arrays of 4 MB or more; with transparent huge
    pages on 'madvise' (a common default), a fragmented memory is then compacted on the spot:
    at 5000 images that system time was larger than the whole 'segm' evaluation. The
    evaluation's large arrays live for milliseconds, so none are asked for while it runs."""
    switch = HUGEPAGE_SWITCH
    if switch is None:
        yield
        return
    with _advice_lock:
        if _advice["depth"] == 0:
            _advice["saved"] = switch(False)
        _advice["depth"] += 1
    try:
        yield
    finally:
        with _advice_lock:
            _advice["depth"] -= 1
            if _advice["depth"] == 0:
                switch(_advice["saved"])


def _segments(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start of each run of equal keys, and the run index of every element."""
    change = np.ones(len(sorted_keys), bool)
    change[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.flatnonzero(change), np.cumsum(change) - 1


@_without_hugepage_advice()
def evaluate_arrays(*, num_images: int, num_categories: int,
                    gt_image: np.ndarray, gt_category: np.ndarray, gt_boxes: np.ndarray,
                    gt_area: np.ndarray, gt_crowd: np.ndarray,
                    dt_image: np.ndarray, dt_category: np.ndarray, dt_boxes: np.ndarray,
                    dt_scores: np.ndarray, category_ids: Sequence[Any] | None = None,
                    dt_area: np.ndarray | None = None,
                    pair_iou: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
                    | None = None,
                    iou_thresholds: np.ndarray | None = None,
                    recall_thresholds: np.ndarray | None = None,
                    area_ranges: Sequence[tuple[float, float]] = DEFAULT_AREA_RANGES,
                    max_detections: Sequence[int] = (1, 10, 100)) -> COCOEvaluation:
    """The engine, on flat arrays. Images and categories are indices ``0..I-1`` / ``0..K-1``
    in sorted-id order; boxes are xywh; arrays are in annotation / results-list order.

    For other IoU types (masks): ``dt_area`` replaces the boxes' ``w * h`` as the detections'
    areas, and ``pair_iou(dt_index, gt_index, gt_crowd)`` gives the IoU of pairs named by their
    positions in the input arrays.
    """
    iou_thr = (default_iou_thresholds() if iou_thresholds is None
               else np.asarray(iou_thresholds, float))
    rec_thr = (default_recall_thresholds() if recall_thresholds is None
               else np.asarray(recall_thresholds, float))
    max_detections = tuple(sorted(int(m) for m in max_detections))
    area_ranges = tuple((float(lo), float(hi)) for lo, hi in area_ranges)
    T, K, A = len(iou_thr), num_categories, len(area_ranges)
    max_det = max_detections[-1]

    gt_image = np.asarray(gt_image, np.int64)
    gt_category = np.asarray(gt_category, np.int64)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gt_area = np.asarray(gt_area, np.float64)
    gt_crowd = np.asarray(gt_crowd, bool)
    dt_image = np.asarray(dt_image, np.int64)
    dt_category = np.asarray(dt_category, np.int64)
    dt_boxes = np.asarray(dt_boxes, np.float64).reshape(-1, 4)
    dt_scores = np.asarray(dt_scores, np.float64)
    dt_area = (dt_boxes[:, 2] * dt_boxes[:, 3] if dt_area is None
               else np.asarray(dt_area, np.float64))
    gt_source = np.arange(len(gt_image))
    dt_source = np.arange(len(dt_image))

    # Ground truth sorted by (image, category), keeping annotation order inside a group.
    gt_group = gt_image * K + gt_category
    gt_order = np.argsort(gt_group, kind="stable")
    gt_group, gt_boxes, gt_area, gt_crowd, gt_category, gt_source = (
        gt_group[gt_order], gt_boxes[gt_order], gt_area[gt_order], gt_crowd[gt_order],
        gt_category[gt_order], gt_source[gt_order])
    num_gt = len(gt_group)
    num_groups = num_images * K
    gt_count = np.bincount(gt_group, minlength=num_groups)
    gt_start = np.concatenate([[0], np.cumsum(gt_count)[:-1]])

    # Detections sorted by (image, category, -score) stably; rank inside the group; cut.
    dt_group = dt_image * K + dt_category
    dt_order = np.lexsort((-dt_scores, dt_group))
    dt_group, dt_boxes, dt_scores, dt_category, dt_image, dt_area, dt_source = (
        dt_group[dt_order], dt_boxes[dt_order], dt_scores[dt_order], dt_category[dt_order],
        dt_image[dt_order], dt_area[dt_order], dt_source[dt_order])
    dt_count = np.bincount(dt_group, minlength=num_groups)
    dt_start = np.concatenate([[0], np.cumsum(dt_count)[:-1]])
    dt_rank = np.arange(len(dt_group)) - dt_start[dt_group]
    keep = dt_rank < max_det
    dt_group, dt_boxes, dt_scores, dt_category, dt_image, dt_rank, dt_area, dt_source = (
        dt_group[keep], dt_boxes[keep], dt_scores[keep], dt_category[keep], dt_image[keep],
        dt_rank[keep], dt_area[keep], dt_source[keep])
    num_dt = len(dt_group)

    # Ignore flags and the scan order of pycocotools' matching loop, per area range.
    gt_ignore = np.empty((A, num_gt), bool)
    scan_position = np.empty((A, num_gt), np.int64)
    for a, (lo, hi) in enumerate(area_ranges):
        gt_ignore[a] = gt_crowd | (gt_area < lo) | (gt_area > hi)
        order = np.lexsort((gt_ignore[a], gt_group))  # stable within group: not ignored first
        scan_position[a, order] = np.arange(num_gt) - gt_start[gt_group[order]]
    dt_out_of_range = np.stack([(dt_area < lo) | (dt_area > hi) for lo, hi in area_ranges])

    # Candidate (detection, ground truth) pairs in the same group with IoU >= lowest threshold.
    pairs_per_dt = gt_count[dt_group]
    pair_dt = np.repeat(np.arange(num_dt), pairs_per_dt)
    pair_offset = np.arange(len(pair_dt)) - np.repeat(np.cumsum(pairs_per_dt) - pairs_per_dt,
                                                      pairs_per_dt)
    pair_gt = gt_start[dt_group[pair_dt]] + pair_offset
    if pair_iou is None:
        pair_ious = bbox_iou_xywh(dt_boxes[pair_dt], gt_boxes[pair_gt], gt_crowd[pair_gt])
    else:
        pair_ious = pair_iou(dt_source[pair_dt], gt_source[pair_gt], gt_crowd[pair_gt])
    effective_thr = np.minimum(iou_thr, 1 - 1e-10)
    candidate = pair_ious >= effective_thr.min()
    pair_dt, pair_gt, pair_ious = pair_dt[candidate], pair_gt[candidate], pair_ious[candidate]
    by_rank = np.lexsort((pair_dt, dt_rank[pair_dt]))
    pair_dt, pair_gt, pair_ious = pair_dt[by_rank], pair_gt[by_rank], pair_ious[by_rank]
    pair_rank = dt_rank[pair_dt]

    dt_matched = np.zeros((T, A, num_dt), bool)
    dt_ignored_match = np.zeros((T, A, num_dt), bool)
    gt_matched = np.zeros((T, A, num_gt), bool)
    thr = effective_thr[:, None, None]
    rank_bounds = np.searchsorted(pair_rank, np.arange(max_det + 1), side="left")
    for rank in range(max_det):
        lo_i, hi_i = rank_bounds[rank], rank_bounds[rank + 1]
        if lo_i == hi_i:
            continue
        p_dt, p_gt, p_iou = pair_dt[lo_i:hi_i], pair_gt[lo_i:hi_i], pair_ious[lo_i:hi_i]
        starts, segment = _segments(p_dt)
        ignored = gt_ignore[:, p_gt][None]  # [1, A, P]
        available = (~gt_matched[:, :, p_gt]) | gt_crowd[p_gt]
        eligible = available & (p_iou >= thr)  # [T, A, P]
        preferred = eligible & ~ignored
        has_preferred = np.logical_or.reduceat(preferred, starts, axis=2)[..., segment]
        selectable = np.where(has_preferred, preferred, eligible & ignored)
        best_iou = np.maximum.reduceat(np.where(selectable, p_iou, -1.0), starts, axis=2)
        tied = selectable & (p_iou == best_iou[..., segment])
        position = np.where(tied, scan_position[:, p_gt][None], -1)
        last = np.maximum.reduceat(position, starts, axis=2)[..., segment]
        chosen = tied & (position == last)
        t_i, a_i, p_i = np.nonzero(chosen)
        gt_matched[t_i, a_i, p_gt[p_i]] = True
        dt_matched[t_i, a_i, p_dt[p_i]] = True
        dt_ignored_match[t_i, a_i, p_dt[p_i]] = gt_ignore[a_i, p_gt[p_i]]
    dt_ignored = np.where(dt_matched, dt_ignored_match, dt_out_of_range[None])
    true_pos = dt_matched & ~dt_ignored
    false_pos = ~dt_matched & ~dt_ignored

    npig = np.stack([np.bincount(gt_category[~gt_ignore[a]], minlength=K) for a in range(A)],
                    axis=1)  # [K, A] ground truth that is not ignored
    precision, recall, scores = _accumulate(
        true_pos, false_pos, dt_scores=dt_scores, dt_category=dt_category, dt_rank=dt_rank,
        dt_image=dt_image, npig=npig, recall_thresholds=rec_thr, max_detections=max_detections)
    stats = summarize(precision, recall, iou_thresholds=iou_thr, max_detections=max_detections)
    ids = np.arange(K) if category_ids is None else np.asarray(category_ids)
    return COCOEvaluation(stats=stats, precision=precision, recall=recall, scores=scores,
                          category_ids=ids,
                          iou_thresholds=iou_thr, recall_thresholds=rec_thr,
                          area_ranges=area_ranges, max_detections=max_detections)


def _accumulate(true_pos: np.ndarray, false_pos: np.ndarray, *, dt_scores: np.ndarray,
                dt_category: np.ndarray, dt_rank: np.ndarray, dt_image: np.ndarray,
                npig: np.ndarray, recall_thresholds: np.ndarray, max_detections: Sequence[int]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pycocotools' ``accumulate`` for all categories, IoU thresholds and area ranges at once:
    ``precision, recall, scores`` from ``true_pos`` / ``false_pos`` ``[T, A, detections]``.

    Per category, all images' detections in image order, stably re-sorted by score. Instead of
    a ``searchsorted`` of each recall threshold in each recall curve ``tp / npig``: the smallest
    true-positive count whose recall (the same float division) reaches the threshold, and the
    position of that true positive, read off the list of all true positives.
    """
    T, A = true_pos.shape[:2]
    K, R, M = len(npig), len(recall_thresholds), len(max_detections)
    # Filled as [M, T, A, K, R] (what the gathers below produce), returned as views.
    precision, scores = np.zeros((M, T, A, K, R)), np.zeros((M, T, A, K, R))
    recall = np.zeros((M, T, A, K))
    npig_ak = npig.T[..., None]  # [A, K, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.maximum(np.ceil(recall_thresholds * npig_ak) - 2, 0)  # [A, K, R]
        for _ in range(4):  # ceil() of the rounded product is at most one off either way
            need += need / npig_ak < recall_thresholds
    need = need.astype(np.int64)
    order = np.lexsort((dt_rank, dt_image, -dt_scores, dt_category))
    true_pos, false_pos = true_pos[..., order], false_pos[..., order]
    dt_scores, dt_category, dt_rank = dt_scores[order], dt_category[order], dt_rank[order]
    kept = None
    for m in reversed(range(M)):
        keep = dt_rank < max_detections[m]
        if kept is not None and np.count_nonzero(keep) == kept:  # the same detections
            precision[m], recall[m], scores[m] = precision[m + 1], recall[m + 1], scores[m + 1]
            continue
        kept = np.count_nonzero(keep)
        if kept == len(keep):
            curves = _curves(true_pos, false_pos, dt_category, dt_scores, need, npig)
        else:
            curves = _curves(true_pos[..., keep], false_pos[..., keep], dt_category[keep],
                             dt_scores[keep], need, npig)
        precision[m], recall[m], scores[m] = curves
    no_gt = npig.T == 0  # [A, K]
    precision[:, :, no_gt] = scores[:, :, no_gt] = recall[:, :, no_gt] = -1
    return (precision.transpose(1, 4, 3, 2, 0), recall.transpose(1, 3, 2, 0),
            scores.transpose(1, 4, 3, 2, 0))


def _curves(tp: np.ndarray, fp: np.ndarray, category: np.ndarray, dt_scores: np.ndarray,
            need: np.ndarray, npig: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision ``[T, A, K, R]``, recall ``[T, A, K]`` and scores ``[T, A, K, R]`` of
    detections sorted by category; ``need`` ``[A, K, R]``: the true positives each recall
    point needs."""
    (T, A, n), K = tp.shape, len(npig)
    bounds = np.searchsorted(category, np.arange(K + 1))
    # Cumulative counts along each (t, a) row, restarted at each category.
    tp_sum = np.cumsum(tp.view(np.int8), axis=2, dtype=np.int32)  # [T, A, n]
    counted = np.cumsum(fp.view(np.int8), axis=2, dtype=np.int32)
    counted += tp_sum  # detections that are not ignored
    tp_before, counted_before = _before(tp_sum, bounds), _before(counted, bounds)
    tp_sum -= tp_before[..., category]
    counted -= counted_before[..., category]
    tp_count = np.diff(tp_before, axis=2)  # [T, A, K]
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_count / npig.T
    # Interpolated precision: the best precision from each detection on, in its category.
    envelope = counted.astype(np.float64)
    envelope += np.spacing(1)
    np.divide(tp_sum, envelope, out=envelope)
    for k in np.flatnonzero(bounds[1:] > bounds[:-1]):
        part = envelope[..., bounds[k]:bounds[k + 1]][..., ::-1]
        np.maximum.accumulate(part, axis=2, out=part)
    # Where (in the flat [T, A, n] arrays) the recall reaches each threshold: [T, A, K, R].
    tps = np.flatnonzero(tp)
    tps_before = (np.cumsum(tp_before[..., -1]).reshape(T, A, 1) - tp_before[..., -1:]
                  + tp_before[..., :-1] - 1)[..., None]  # [T, A, K, 1]
    row_start = np.arange(T * A).reshape(T, A, 1, 1) * n
    at = np.where(need == 0, row_start + bounds[:-1, None],
                  np.take(tps, tps_before + need, mode="clip") if len(tps) else 0)
    reached = np.where(need == 0, (bounds[1:] > bounds[:-1])[:, None],
                       need <= tp_count[..., None])
    # pycocotools stops at the first threshold (in the order given) that is never reached.
    np.logical_and.accumulate(reached, axis=3, out=reached)
    if n == 0:
        return np.zeros(reached.shape), recall, np.zeros(reached.shape)
    precision = np.where(reached, np.take(envelope, at, mode="clip"), 0.0)
    scores = np.where(reached, np.take(dt_scores, at - row_start, mode="clip"), 0.0)
    return precision, recall, scores


def _before(sums: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The running totals ``sums[..., bounds - 1]`` just before each bound (0 before 0)."""
    if sums.shape[-1] == 0:
        return np.zeros(sums.shape[:-1] + bounds.shape, sums.dtype)
    return np.where(bounds > 0, sums[..., np.maximum(bounds - 1, 0)], 0)


def summarize(precision: np.ndarray, recall: np.ndarray, *, iou_thresholds: np.ndarray,
              max_detections: Sequence[int]) -> dict[str, float]:
    """The 12 standard numbers, with pycocotools' ``mean(s[s > -1])`` (-1 when all are -1).

    Area indices 0..3 are all/small/medium/large; "100" is ``max_detections[-1]``.
    """
    max_detections = tuple(max_detections)

    def one(ap: bool, iou=None, area=0, max_det=max_detections[-1]):
        m = max_detections.index(max_det)
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == iou_thresholds)[0]]
        s = s[..., [area], [m]]
        valid = s[s > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    last = max_detections[-1]
    few = max_detections[0]
    mid = max_detections[1] if len(max_detections) > 1 else last
    values = [one(True), one(True, iou=.5), one(True, iou=.75), one(True, area=1),
              one(True, area=2), one(True, area=3), one(False, max_det=few),
              one(False, max_det=mid), one(False), one(False, area=1), one(False, area=2),
              one(False, area=3)]
    return dict(zip(STAT_NAMES, values))


def _bbox_array(annotations, key="bbox") -> np.ndarray:
    if not annotations:
        return np.zeros((0, 4))
    boxes = [a[key] for a in annotations]
    with contextlib.suppress(TypeError):  # much faster than asarray on a list of lists
        if set(map(len, boxes)) == {4}:
            return np.fromiter(itertools.chain.from_iterable(boxes), np.float64,
                               4 * len(boxes)).reshape(-1, 4)
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError("every annotation/detection needs a 'bbox' of 4 numbers [x, y, w, h], "
                         f"got an array of shape {boxes.shape}")
    return boxes


def _known(index: np.ndarray, raw_ids: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Whether each searchsorted ``index`` really points at its id (not just an insertion)."""
    if len(index) == 0 or len(sorted_ids) == 0:
        return np.zeros(len(index), bool)
    return (index < len(sorted_ids)) & (sorted_ids[np.minimum(index, len(sorted_ids) - 1)]
                                        == raw_ids)


@_without_hugepage_advice()
def coco_evaluate_detailed(ground_truth: dict, detections: Sequence[dict], *,
                           iou_type: str = "bbox", **options) -> COCOEvaluation:
    """Like :func:`coco_evaluate` but returns the full :class:`COCOEvaluation`."""
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    for key in ("images", "annotations", "categories"):
        if key not in ground_truth:
            raise ValueError(f"ground_truth must be a COCO annotation dict with '{key}' "
                             f"(the content of an instances_*.json file)")
    image_ids = np.unique(np.asarray([img["id"] for img in ground_truth["images"]]))
    category_ids = np.unique(np.asarray([c["id"] for c in ground_truth["categories"]]))
    anns = ground_truth["annotations"]
    gt_crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in anns], bool)
    gt_img = np.searchsorted(image_ids, np.asarray([a["image_id"] for a in anns]))
    gt_cat_raw = np.asarray([a["category_id"] for a in anns])
    gt_cat = np.searchsorted(category_ids, gt_cat_raw)
    gt_known = _known(gt_cat, gt_cat_raw, category_ids) & _known(
        gt_img, np.asarray([a["image_id"] for a in anns]), image_ids)

    dt_img_raw = np.asarray([d["image_id"] for d in detections])
    dt_img = np.searchsorted(image_ids, dt_img_raw)
    if len(detections):
        known = _known(dt_img, dt_img_raw, image_ids)
        if not known.all():
            raise ValueError(f"detections refer to image ids not in ground_truth['images'], "
                             f"e.g. {dt_img_raw[~known][:5].tolist()}")
    dt_cat_raw = np.asarray([d["category_id"] for d in detections])
    dt_cat = np.searchsorted(category_ids, dt_cat_raw)
    dt_known = _known(dt_cat, dt_cat_raw, category_ids)
    dt_scores = np.asarray([d["score"] for d in detections], np.float64)

    if iou_type == "bbox":
        gt_boxes, dt_boxes = _bbox_array(anns), _bbox_array(detections)
        own_area, dt_area, pair_iou = gt_boxes[:, 2] * gt_boxes[:, 3], None, None
    else:
        gt_segmentations = _segmentations(anns, "annotation")
        dt_segmentations = _segmentations(detections, "detection")
        gt_boxes, dt_boxes = np.zeros((len(anns), 4)), np.zeros((len(detections), 4))
        # pycocotools' loadRes: when the results carry boxes (the first one has a 'bbox'),
        # each result's area, which decides its area range, is its box's, not its mask's.
        boxed = len(detections) > 0 and len(detections[0].get("bbox", [])) > 0
        dt_masks = (dt_segmentations if boxed  # then decoded only where compared
                    else coco_masks.MaskSet.from_segmentations(dt_segmentations))
        dt_area = (_bbox_array(_with_key(detections, "bbox", "detection when the first has "
                                         "one")) [:, 2:].prod(axis=1)
                   if boxed else dt_masks.areas.astype(np.float64))
        no_area = [i for i, a in enumerate(anns) if "area" not in a]
        own_area = np.zeros(len(anns))
        if no_area:
            own_area[no_area] = coco_masks.MaskSet.from_segmentations(
                [gt_segmentations[i] for i in no_area], no_area).areas
        gt_index, dt_index = np.flatnonzero(gt_known), np.flatnonzero(dt_known)

        def pair_iou(dt_i, gt_i, crowd):
            return coco_masks.segmentation_iou(dt_masks, gt_segmentations, dt_index[dt_i],
                                               gt_index[gt_i], crowd)

        dt_area = dt_area[dt_known]
    gt_area = np.asarray([a.get("area", own) for a, own in zip(anns, own_area.tolist())],
                         np.float64)
    return evaluate_arrays(
        num_images=len(image_ids), num_categories=len(category_ids),
        gt_image=gt_img[gt_known], gt_category=gt_cat[gt_known], gt_boxes=gt_boxes[gt_known],
        gt_area=gt_area[gt_known], gt_crowd=gt_crowd[gt_known],
        dt_image=dt_img[dt_known], dt_category=dt_cat[dt_known], dt_boxes=dt_boxes[dt_known],
        dt_scores=dt_scores[dt_known], dt_area=dt_area, pair_iou=pair_iou,
        category_ids=category_ids, **options)


def _segmentations(records: Sequence[dict], what: str) -> list:
    """Each record's ``segmentation``; polygons are refused here, as masks that are never
    compared are never decoded."""
    try:
        segmentations = [record["segmentation"] for record in records]
    except KeyError:
        _with_key(records, "segmentation", f"{what} (an RLE dict or a dense [H, W] mask)")
        raise
    if list in set(map(type, segmentations)):
        polygon = next(i for i, s in enumerate(segmentations) if isinstance(s, list))
        raise ValueError(f"{what} {polygon}: its segmentation is a polygon list; convert polygons "
                         f"to RLE first (pycocotools.mask.frPyObjects(polygons, H, W)): jaxvision "
                         f"does not rasterize them")
    return segmentations


def _with_key(records: Sequence[dict], key: str, what: str) -> Sequence[dict]:
    missing = [i for i, record in enumerate(records) if key not in record]
    if missing:
        raise ValueError(f"iou_type='segm' needs a '{key}' in every {what}; {len(missing)} "
                         f"lack one, e.g. index {missing[0]}")
    return records


def coco_evaluate(ground_truth: dict, detections: Sequence[dict], **options) -> dict[str, float]:
    """COCO box AP/AR of a results list against a COCO annotation dict.

    ``ground_truth``: the content of an ``instances_*.json`` (``images``, ``annotations`` with
    ``bbox`` [x, y, w, h], ``area``, ``iscrowd``, and ``categories``). ``detections``: a results
    list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``. Returns the 12
    standard numbers by name (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl),
    -1 where no category has ground truth. Options: ``iou_thresholds``, ``recall_thresholds``,
    ``area_ranges`` (4 pairs: all/small/medium/large) and ``max_detections`` (3 values).

    ``iou_type="segm"`` scores instance masks instead (pycocotools' 'segm'): every annotation
    and detection carries a ``segmentation`` (an RLE dict, compressed or not, or a dense
    ``[H, W]`` mask) and IoU is mask IoU. Areas follow pycocotools: a ground truth ``area`` is
    used as given (its mask's area when absent); a detection's area is its mask's, or its
    ``bbox``'s ``w * h`` when the results carry boxes (the first has one: ``loadRes``' rule).
    """
    return coco_evaluate_detailed(ground_truth, detections, **options).stats
