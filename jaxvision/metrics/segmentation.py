"""Segmentation metrics from a confusion matrix: per-class IoU and Dice, mIoU, pixel accuracy.

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
