"""Semantic segmentation: per-pixel cross-entropy, optionally mixed with soft Dice (course C-5:
``α Dice + (1 - α) CE``), on ``batch["mask"]`` (integer class per pixel); pixel accuracy per
batch and mIoU / mean Dice from a confusion matrix over the whole eval set.

Pixels labelled ``ignore_index`` (e.g. VOC's 255 borders) count for nothing; padded eval
examples (``valid`` false) neither. Dice does not add up over devices: under
``parallel="pmap"`` the Dice term is each device's (averaged, like per-device BatchNorm),
under ``"jit"`` the global batch's; the cross-entropy is the same in every mode.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import optax

from jaxvision.losses.segmentation import dice_ce_loss, pixel_cross_entropy
from jaxvision.metrics import segmentation as seg_metrics
from jaxvision.tasks.base import Batch, Task, valid_weights


@dataclasses.dataclass(frozen=True)
class SegmentationTask(Task):
    num_classes: int
    dice_weight: float = 0.0  # 0: cross-entropy only
    ignore_index: int | None = None
    metric_names = ("loss", "pixel_accuracy", "miou", "mean_dice")

    def __post_init__(self):
        if not 0.0 <= self.dice_weight <= 1.0:
            raise ValueError(f"dice_weight must lie in [0, 1], got {self.dice_weight}")

    def loss(self, outputs, batch: Batch, *, train: bool):
        labels = batch["mask"]
        if self.dice_weight:
            loss = dice_ce_loss(outputs, labels, dice_weight=self.dice_weight,
                                ignore_index=self.ignore_index)
        else:
            loss = pixel_cross_entropy(outputs, labels, ignore_index=self.ignore_index)
        hits, pixels = self._hits(outputs, labels, jnp.ones(labels.shape, jnp.float32))
        return loss, {"pixel_accuracy": hits / jnp.maximum(pixels, 1.0)}

    def _labelled(self, labels):
        return (jnp.ones(labels.shape, bool) if self.ignore_index is None
                else labels != self.ignore_index)

    def _hits(self, outputs, labels, weights):
        weights = weights * self._labelled(labels)
        hits = (jnp.argmax(outputs, axis=-1) == labels) * weights
        return hits.sum(), weights.sum()

    def batch_metrics(self, outputs, batch: Batch):
        labels = batch["mask"]
        weights = valid_weights(batch, labels.shape[1:]) * self._labelled(labels)
        per_pixel = optax.softmax_cross_entropy_with_integer_labels(
            outputs.astype(jnp.float32), jnp.where(self._labelled(labels), labels, 0))
        hits, pixels = self._hits(outputs, labels, weights)
        # The eval loss is the per-pixel cross-entropy over the set, whatever dice_weight is:
        # Dice of a batch does not add up over batches.
        return {"loss": ((per_pixel * weights).sum(), pixels),
                "pixel_accuracy": (hits, pixels)}

    def predict(self, outputs):
        return jnp.argmax(outputs, axis=-1).astype(jnp.int32)

    def evaluators(self):
        return [ConfusionMatrixEvaluator(self.num_classes, ignore_index=self.ignore_index)]


class ConfusionMatrixEvaluator:
    """mIoU and mean Dice of the whole set from one confusion matrix (rows: true class)."""

    def __init__(self, num_classes: int, *, ignore_index: int | None = None):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.confusion = np.zeros((num_classes, num_classes), np.int64)

    def update(self, predictions, batch) -> None:
        labels = np.asarray(batch["mask"]).astype(np.int64)
        predictions = np.asarray(predictions).astype(np.int64)
        keep = np.ones(labels.shape, bool)
        if "valid" in batch:
            keep &= np.asarray(batch["valid"], bool).reshape((-1,) + (1,) * (labels.ndim - 1))
        if self.ignore_index is not None:
            keep &= labels != self.ignore_index
        keep &= (labels >= 0) & (labels < self.num_classes)
        pairs = labels[keep] * self.num_classes + predictions[keep]
        self.confusion += np.bincount(pairs, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)

    def result(self) -> dict[str, float]:
        confusion = jnp.asarray(self.confusion)
        return {"miou": float(seg_metrics.mean_iou(confusion)),
                "mean_dice": float(seg_metrics.mean_dice(confusion))}
