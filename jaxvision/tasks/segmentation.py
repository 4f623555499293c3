"""Semantic segmentation: per-pixel cross-entropy, optionally mixed with soft Dice
(``α Dice + (1 - α) CE``), on ``batch["mask"]`` (integer class per pixel); pixel accuracy per
batch and mIoU / mean Dice from a confusion matrix over the whole eval set; optionally
foreground and per-class Dice/IoU (``per_class_metrics``) and the boundary F-score
(``boundary_tolerance``, in pixels) of the whole set.

Pixels labelled ``ignore_index`` (e.g. VOC's 255 borders) count for nothing; padded eval
examples (``valid`` false) neither. Dice does not add up over devices: under
``parallel="pmap"`` the Dice term is each device's (averaged, like per-device BatchNorm),
under ``"jit"`` the global batch's; the cross-entropy is the same in every mode.

Networks with unpadded convolutions (the original UNet) return a centre crop of their input:
``crop_labels=True`` crops the masks to the output, as the paper's overlap-tile training does.
Otherwise a mask whose size differs from the output or the image is an error, and so is a
class id outside ``[0, num_classes)`` (checked on the host for every batch the engine feeds).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import optax

from jaxvision.losses.segmentation import dice_ce_loss, pixel_cross_entropy
from jaxvision.metrics import segmentation as seg_metrics
from jaxvision.tasks.base import Batch, Task, valid_weights


def _crop(labels, height: int, width: int):
    top, left = (labels.shape[1] - height) // 2, (labels.shape[2] - width) // 2
    return labels[:, top:top + height, left:left + width]


def check_masks(batch, *, num_classes: int, ignore_index: int | None = None) -> None:
    """Host-side check of a batch's ``mask``: the image's height and width, class ids in
    ``[0, num_classes)`` (or ``ignore_index``). Raises ``ValueError`` naming what is wrong."""
    masks = np.asarray(batch["mask"])
    image = np.shape(batch["image"])
    if masks.shape[:3] != tuple(image[:3]) or masks.ndim != 3:
        raise ValueError(f"masks of shape {masks.shape} do not match images of shape {image}: "
                         f"each mask must be [H, W] at its image's size (resize image and mask "
                         f"together)")
    bad = (masks < 0) | (masks >= num_classes)
    if ignore_index is not None:
        bad &= masks != ignore_index
    if bad.any():
        raise ValueError(f"masks hold class ids {sorted(set(np.unique(masks[bad]).tolist()))[:10]}"
                         f" outside [0, {num_classes}) (num_classes={num_classes}"
                         + (f", ignore_index={ignore_index}" if ignore_index is not None else "")
                         + "); set config.num_classes to the number of classes including "
                         "background, or map those ids to ignore_index")


@dataclasses.dataclass(frozen=True)
class SegmentationTask(Task):
    num_classes: int
    dice_weight: float = 0.0  # 0: cross-entropy only
    ignore_index: int | None = None
    include_background: bool = True  # in the Dice term's class mean
    crop_labels: bool = False  # centre-crop masks to a smaller output (valid convolutions)
    per_class_metrics: bool = False  # foreground_dice, iou_<c>, dice_<c> from the evaluator
    boundary_tolerance: int | None = None  # pixels; an int adds the set's boundary_f
    metric_names = ("loss", "pixel_accuracy", "miou", "mean_dice")

    def __post_init__(self):
        if not 0.0 <= self.dice_weight <= 1.0:
            raise ValueError(f"dice_weight must lie in [0, 1], got {self.dice_weight}")
        if self.boundary_tolerance is not None and self.boundary_tolerance < 0:
            raise ValueError(f"boundary_tolerance must be >= 0 pixels, got "
                             f"{self.boundary_tolerance}")

    def check_batch(self, batch) -> None:
        """Called by the engine on the host for each batch before it goes to the devices."""
        check_masks(batch, num_classes=self.num_classes, ignore_index=self.ignore_index)

    def labels_for(self, outputs, batch: Batch):
        """The masks at the outputs' size (cropped with ``crop_labels``); shapes are static, so
        a mismatch is an error at trace time."""
        labels = batch["mask"]
        image = batch["image"].shape
        if labels.shape[:3] != image[:3]:
            raise ValueError(f"masks of shape {labels.shape} do not match images of shape "
                             f"{image}")
        height, width = outputs.shape[1:3]
        if labels.shape[1:3] != (height, width):
            smaller = height <= labels.shape[1] and width <= labels.shape[2]
            if not (self.crop_labels and smaller):
                raise ValueError(
                    f"the model returns {height}x{width} maps for {labels.shape[1]}x"
                    f"{labels.shape[2]} masks; a network with unpadded convolutions needs "
                    f"SegmentationTask(crop_labels=True) (the centre of each mask is scored)")
            labels = _crop(labels, height, width)
        return labels

    def loss(self, outputs, batch: Batch, *, train: bool):
        labels = self.labels_for(outputs, batch)
        if self.dice_weight:
            loss = dice_ce_loss(outputs, labels, dice_weight=self.dice_weight,
                                ignore_index=self.ignore_index,
                                include_background=self.include_background)
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
        labels = self.labels_for(outputs, batch)
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
        evaluators = [ConfusionMatrixEvaluator(self.num_classes, ignore_index=self.ignore_index,
                                               per_class=self.per_class_metrics)]
        if self.boundary_tolerance is not None:
            evaluators.append(BoundaryFEvaluator(self.num_classes,
                                                 tolerance=self.boundary_tolerance,
                                                 ignore_index=self.ignore_index))
        return evaluators


def _labels_and_predictions(predictions, batch, num_classes, ignore_index):
    """Host arrays: labels cropped to the predictions, and the kept-pixel mask; raises on class
    ids outside ``[0, num_classes)``."""
    predictions = np.asarray(predictions).astype(np.int64)
    labels = np.asarray(batch["mask"]).astype(np.int64)
    if labels.shape[1:3] != predictions.shape[1:3]:
        labels = _crop(labels, *predictions.shape[1:3])
    keep = np.ones(labels.shape, bool)
    if "valid" in batch:
        keep &= np.asarray(batch["valid"], bool).reshape((-1,) + (1,) * (labels.ndim - 1))
    if ignore_index is not None:
        keep &= labels != ignore_index
    bad = keep & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        raise ValueError(f"masks hold class ids {np.unique(labels[bad])[:10].tolist()} outside "
                         f"[0, {num_classes}); set num_classes to the number of classes "
                         f"including background, or map them to ignore_index")
    return labels, predictions, keep


class ConfusionMatrixEvaluator:
    """mIoU and mean Dice of the whole set from one confusion matrix (rows: true class)."""

    def __init__(self, num_classes: int, *, ignore_index: int | None = None,
                 per_class: bool = False):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.per_class = per_class
        self.confusion = np.zeros((num_classes, num_classes), np.int64)

    def update(self, predictions, batch) -> None:
        labels, predictions, keep = _labels_and_predictions(predictions, batch,
                                                            self.num_classes, self.ignore_index)
        pairs = labels[keep] * self.num_classes + predictions[keep]
        self.confusion += np.bincount(pairs, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)

    def result(self) -> dict[str, float]:
        confusion = jnp.asarray(self.confusion)
        result = {"miou": float(seg_metrics.mean_iou(confusion)),
                  "mean_dice": float(seg_metrics.mean_dice(confusion))}
        if self.per_class:
            result["foreground_dice"] = float(seg_metrics.foreground_dice(confusion))
            for name, values in (("iou", seg_metrics.per_class_iou(confusion)),
                                 ("dice", seg_metrics.per_class_dice(confusion))):
                result.update({f"{name}_{c}": float(v) for c, v in enumerate(values)})
        return result


class BoundaryFEvaluator:
    """Boundary F-score of the whole set: per class, boundary-pixel precision and recall within
    ``tolerance`` pixels summed over all images, then F; ``boundary_f`` is the mean over the
    object classes that occur (background's boundary is the union of theirs)."""

    def __init__(self, num_classes: int, *, tolerance: int = 2, ignore_index: int | None = None,
                 background_index: int | None = 0):
        self.num_classes, self.tolerance, self.ignore_index = num_classes, tolerance, ignore_index
        self.background_index = background_index
        self.counts = np.zeros((num_classes, 4), np.int64)

    def update(self, predictions, batch) -> None:
        labels, predictions, keep = _labels_and_predictions(predictions, batch,
                                                            self.num_classes, self.ignore_index)
        # Ignored and padded pixels take the true class, so they add no predicted boundary.
        predictions = np.where(keep, predictions, labels)
        self.counts += np.asarray(seg_metrics.per_class_boundary_counts(
            labels, predictions, num_classes=self.num_classes, tolerance=self.tolerance))

    def result(self) -> dict[str, float]:
        scores = np.asarray(seg_metrics.boundary_f_from_counts(self.counts))
        present = (self.counts[:, 1] + self.counts[:, 3]) > 0
        if self.background_index is not None:
            present[self.background_index] = False
        return {"boundary_f": float(scores[present].mean()) if present.any() else float("nan")}
