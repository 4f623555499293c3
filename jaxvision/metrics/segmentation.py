"""Segmentation metrics from a confusion matrix: per-class IoU and Dice, mIoU, pixel accuracy,
foreground Dice; and the boundary F-score with a pixel tolerance.

The confusion matrix is accumulated on device (jit-safe, static shape ``[C, C]``, rows = true
class, columns = predicted class), so it can be summed over batches and devices before the
ratios are taken. Pixels labelled ``ignore_index``, and labels outside ``[0, C)``, count for
nothing. A class that appears neither in the labels nor in the predictions has an undefined
IoU/Dice: it is NaN per class and left out of the means (``nanmean``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def confusion_matrix(labels: jax.Array, predictions: jax.Array, *, num_classes: int,
                     ignore_index: int | None = None) -> jax.Array:
    """``[C, C]`` int32 counts of (true class, predicted class) over all pixels.

    Same argument order and layout as :func:`jaxvision.metrics.classification.confusion_matrix`
    (and sklearn), plus ``ignore_index`` and range masking.
    """
    predictions = jnp.asarray(predictions).astype(jnp.int32).reshape(-1)
    labels = jnp.asarray(labels).astype(jnp.int32).reshape(-1)
    valid = ((labels >= 0) & (labels < num_classes)
             & (predictions >= 0) & (predictions < num_classes))
    if ignore_index is not None:
        valid &= labels != ignore_index
    flat = jnp.where(valid, labels * num_classes + predictions, 0)
    counts = jnp.zeros((num_classes * num_classes,), jnp.int32)
    counts = counts.at[flat].add(valid.astype(jnp.int32))
    return counts.reshape(num_classes, num_classes)


def _ratio(numerator, denominator):
    numerator = numerator.astype(jnp.float32)
    denominator = denominator.astype(jnp.float32)
    return jnp.where(denominator > 0, numerator / jnp.where(denominator > 0, denominator, 1),
                     jnp.nan)


def per_class_iou(confusion: jax.Array) -> jax.Array:
    """``TP / (TP + FP + FN)`` per class; NaN for classes absent from labels and predictions."""
    tp = jnp.diagonal(confusion)
    return _ratio(tp, confusion.sum(0) + confusion.sum(1) - tp)


def per_class_dice(confusion: jax.Array) -> jax.Array:
    """``2 TP / (2 TP + FP + FN)`` per class (= F1); NaN where undefined."""
    tp = jnp.diagonal(confusion)
    return _ratio(2 * tp, confusion.sum(0) + confusion.sum(1))


def mean_iou(confusion: jax.Array, *, include_background: bool = True,
             background_index: int = 0) -> jax.Array:
    """Mean of the defined per-class IoUs (optionally without the background class)."""
    return _masked_nanmean(per_class_iou(confusion), include_background, background_index)


def mean_dice(confusion: jax.Array, *, include_background: bool = True,
              background_index: int = 0) -> jax.Array:
    """Mean of the defined per-class Dice scores (optionally without the background class)."""
    return _masked_nanmean(per_class_dice(confusion), include_background, background_index)


def _masked_nanmean(values, include_background, background_index):
    if not include_background:
        values = values.at[background_index].set(jnp.nan)
    return jnp.nanmean(values)


def pixel_accuracy(confusion: jax.Array) -> jax.Array:
    """Fraction of labelled pixels predicted correctly (misleading for tiny objects)."""
    return _ratio(jnp.trace(confusion), confusion.sum())


def segmentation_metrics(labels: jax.Array, predictions: jax.Array, *, num_classes: int,
                         ignore_index: int | None = None) -> dict[str, jax.Array]:
    """All of the above from true and predicted label maps, as a dict of arrays."""
    confusion = confusion_matrix(labels, predictions, num_classes=num_classes,
                                 ignore_index=ignore_index)
    return {"confusion": confusion, "per_class_iou": per_class_iou(confusion),
            "per_class_dice": per_class_dice(confusion), "mean_iou": mean_iou(confusion),
            "mean_dice": mean_dice(confusion), "pixel_accuracy": pixel_accuracy(confusion)}


def foreground_dice(confusion: jax.Array, *, background_index: int = 0) -> jax.Array:
    """Dice of "any object" vs background: every non-background class counts as foreground
    (a confusion between two object classes is still a foreground hit). For two classes it is
    the object class's Dice."""
    confusion = jnp.asarray(confusion)
    foreground = jnp.arange(confusion.shape[0]) != background_index
    hits = jnp.sum(confusion * (foreground[:, None] & foreground[None, :]))
    predicted = jnp.sum(confusion * foreground[None, :])
    actual = jnp.sum(confusion * foreground[:, None])
    return _ratio(2 * hits, predicted + actual)


# --- boundaries -----------------------------------------------------------------------------

def mask_boundary(mask: jax.Array) -> jax.Array:
    """The pixels of a boolean mask ``[..., H, W]`` with a 4-neighbour outside it (the image
    border does not count as outside)."""
    mask = jnp.asarray(mask, bool)
    pad = [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)]
    p = jnp.pad(mask, pad, mode="edge")
    interior = p[..., :-2, 1:-1] & p[..., 2:, 1:-1] & p[..., 1:-1, :-2] & p[..., 1:-1, 2:]
    return mask & ~interior


def _dilate(mask: jax.Array, radius: int) -> jax.Array:
    """Pixels within Chebyshev distance ``radius`` of ``mask`` (a square structuring element)."""
    if radius == 0:
        return mask
    window = (1,) * (mask.ndim - 2) + (2 * radius + 1, 2 * radius + 1)
    return jax.lax.reduce_window(mask, False, jax.lax.bitwise_or, window, (1,) * mask.ndim,
                                 "SAME")


def boundary_counts(pred_mask: jax.Array, true_mask: jax.Array, *,
                    tolerance: int = 2) -> jax.Array:
    """``[4]`` int32 sums over all images: predicted boundary pixels within ``tolerance`` pixels
    (chessboard distance) of the true boundary, predicted boundary pixels, true boundary pixels
    within ``tolerance`` of the predicted one, true boundary pixels. They add up over batches."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
    pred_mask, true_mask = jnp.asarray(pred_mask, bool), jnp.asarray(true_mask, bool)
    if pred_mask.shape != true_mask.shape:
        raise ValueError(f"predicted and true masks differ in shape: {pred_mask.shape} vs "
                         f"{true_mask.shape}")
    pred_edge, true_edge = mask_boundary(pred_mask), mask_boundary(true_mask)
    matched_pred = pred_edge & _dilate(true_edge, tolerance)
    matched_true = true_edge & _dilate(pred_edge, tolerance)
    return jnp.stack([jnp.sum(m, dtype=jnp.int32)
                      for m in (matched_pred, pred_edge, matched_true, true_edge)])


def boundary_f_from_counts(counts: jax.Array) -> jax.Array:
    """F = 2PR / (P + R) from :func:`boundary_counts` (``[..., 4]``); 1 where both boundaries
    are empty, 0 where only one is."""
    counts = jnp.asarray(counts, jnp.float32)
    precision = jnp.where(counts[..., 1] > 0, counts[..., 0] / jnp.maximum(counts[..., 1], 1),
                          (counts[..., 3] == 0).astype(jnp.float32))
    recall = jnp.where(counts[..., 3] > 0, counts[..., 2] / jnp.maximum(counts[..., 3], 1),
                       (counts[..., 1] == 0).astype(jnp.float32))
    total = precision + recall
    return jnp.where(total > 0, 2 * precision * recall / jnp.where(total > 0, total, 1), 0.0)


def boundary_f_score(pred_mask: jax.Array, true_mask: jax.Array, *,
                     tolerance: int = 2) -> jax.Array:
    """Boundary F-score of binary masks (Csurka et al. 2013; DAVIS's F): precision and recall
    of boundary pixels, a match being within ``tolerance`` pixels. Region scores (IoU, Dice)
    hardly move when a boundary blurs by a pixel; this one does."""
    return boundary_f_from_counts(boundary_counts(pred_mask, true_mask, tolerance=tolerance))


def per_class_boundary_counts(labels: jax.Array, predictions: jax.Array, *, num_classes: int,
                              tolerance: int = 2) -> jax.Array:
    """``[C, 4]`` :func:`boundary_counts` of each class's mask in label maps ``[B, H, W]``."""
    labels, predictions = jnp.asarray(labels), jnp.asarray(predictions)
    return jnp.stack([boundary_counts(predictions == c, labels == c, tolerance=tolerance)
                      for c in range(num_classes)])
