"""Object detection (RetinaNet-style dense heads): targets made on device inside the step,
focal + box loss, detections scored by the project's COCO evaluator over the whole eval set.

The model returns per-level ``class_logits``, ``box_deltas`` and ``anchors`` and the
``image_size`` (:class:`jaxvision.models.retinanet.RetinaNet`). In the step every image's
anchors are matched to its boxes (``ops.matcher.anchor_targets``, 0.5 / 0.4 with low-quality
matches, under ``vmap``) and :func:`jaxvision.losses.detection.retinanet_loss` sums the sigmoid
focal loss over non-ignored anchors and the box loss over positives, both divided by the
batch's positive anchors (at least 1, so an image or a batch without objects trains on its
negatives alone). ``predict`` is :func:`jaxvision.ops.postprocess.retinanet_postprocess`
(jitted, static shapes); :class:`COCODetectionEvaluator` turns the padded detections and the
batch's ground truth into COCO AP/AR on the host.

Bad targets (checked on the host for every batch the engine feeds): a class id outside
``[0, num_classes)``, a box with ``x2 < x1`` or ``y2 < y1``, or a non-finite coordinate is a
``ValueError``. Boxes that reach outside the image are clipped to it inside the step, and the
train metric ``boxes_clipped`` counts them per batch.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.losses.detection import retinanet_loss
from jaxvision.metrics.coco import STAT_NAMES, evaluate_arrays
from jaxvision.ops.matcher import IGNORE, anchor_targets
from jaxvision.ops.postprocess import retinanet_postprocess
from jaxvision.tasks.base import Batch, Task


def check_boxes(batch, *, num_classes: int) -> None:
    """Host check of ``boxes``/``box_classes``/``boxes_valid``; raises ``ValueError``."""
    if "boxes" not in batch or "box_classes" not in batch:
        raise ValueError(f"a detection batch needs 'boxes' and 'box_classes' (got "
                         f"{sorted(batch)}); use a data set with objects and set "
                         f"config.max_boxes")
    boxes = np.asarray(batch["boxes"], np.float64)
    classes = np.asarray(batch["box_classes"])
    valid = np.asarray(batch.get("boxes_valid", np.ones(classes.shape, bool)), bool)
    if "valid" in batch:
        valid = valid & np.asarray(batch["valid"], bool).reshape(-1, 1)
    real_boxes, real_classes = boxes[valid], classes[valid]
    bad = (real_classes < 0) | (real_classes >= num_classes)
    if bad.any():
        raise ValueError(f"box class ids {sorted(set(real_classes[bad].tolist()))[:10]} are "
                         f"outside [0, {num_classes}): set config.num_classes to the number of "
                         f"object classes (no background class in a sigmoid detector)")
    if not np.isfinite(real_boxes).all():
        raise ValueError("boxes hold NaN or infinite coordinates")
    inverted = (real_boxes[:, 2] < real_boxes[:, 0]) | (real_boxes[:, 3] < real_boxes[:, 1])
    if inverted.any():
        raise ValueError(f"{int(inverted.sum())} boxes have x2 < x1 or y2 < y1, e.g. "
                         f"{real_boxes[inverted][0].tolist()}: boxes are absolute xyxy pixels")


def _concat(levels, axis):
    return jnp.concatenate(list(levels), axis=axis)


@dataclasses.dataclass(frozen=True)
class DetectionTask(Task):
    num_classes: int
    alpha: float | None = 0.25  # focal loss; None: no alpha weighting
    gamma: float = 2.0  # 0: plain binary cross-entropy
    box_loss: str = "l1"  # torchvision's; "smooth_l1" or "giou"
    box_weight: float = 1.0
    positive_threshold: float = 0.5
    negative_threshold: float = 0.4
    allow_low_quality_matches: bool = True
    score_threshold: float = 0.05
    topk_candidates: int = 1000
    iou_threshold: float = 0.5
    max_detections: int = 100  # COCO scores at most 100 per image
    metric_names = ("loss", *STAT_NAMES)

    def __post_init__(self):
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.box_loss not in ("l1", "smooth_l1", "giou"):
            raise ValueError(f"box_loss must be 'l1', 'smooth_l1' or 'giou', got "
                             f"{self.box_loss!r}")

    def check_batch(self, batch) -> None:
        check_boxes(batch, num_classes=self.num_classes)

    def targets(self, outputs, batch: Batch):
        """Matcher targets ``[B, A, ...]`` for the concatenated anchors, and the number of
        valid boxes that were clipped to the image."""
        anchors = _concat(outputs["anchors"], 0)
        height, width = batch["image"].shape[1:3]
        boxes = batch["boxes"].astype(jnp.float32)
        clipped = jnp.stack([jnp.clip(boxes[..., 0], 0, width), jnp.clip(boxes[..., 1], 0, height),
                             jnp.clip(boxes[..., 2], 0, width), jnp.clip(boxes[..., 3], 0, height)],
                            -1)
        valid = batch.get("boxes_valid", jnp.ones(boxes.shape[:2], bool))
        if "valid" in batch:
            valid = valid & batch["valid"].reshape(-1, 1)
        num_clipped = jnp.sum(jnp.any(clipped != boxes, axis=-1) & valid)
        targets = jax.vmap(lambda b, c, v: anchor_targets(
            anchors, b, c, v, num_classes=self.num_classes,
            positive_threshold=self.positive_threshold,
            negative_threshold=self.negative_threshold,
            allow_low_quality_matches=self.allow_low_quality_matches))(
                clipped, batch["box_classes"], valid)
        if "valid" in batch:  # eval padding examples count for nothing, not even negatives
            targets["labels"] = jnp.where(batch["valid"].reshape(-1, 1), targets["labels"],
                                          IGNORE)
        return anchors, targets, num_clipped

    def _loss_terms(self, outputs, batch: Batch):
        anchors, targets, num_clipped = self.targets(outputs, batch)
        terms = retinanet_loss(_concat(outputs["class_logits"], 1),
                               _concat(outputs["box_deltas"], 1), targets, anchors=anchors,
                               alpha=-1.0 if self.alpha is None else self.alpha,
                               gamma=self.gamma, box_loss=self.box_loss,
                               box_weight=self.box_weight)
        return terms, num_clipped

    def loss(self, outputs, batch: Batch, *, train: bool):
        terms, num_clipped = self._loss_terms(outputs, batch)
        return terms["loss"], {"classification": terms["classification"], "box": terms["box"],
                               "num_positives": terms["num_positives"],
                               "boxes_clipped": num_clipped.astype(jnp.float32)}

    def batch_metrics(self, outputs, batch: Batch):
        terms, _ = self._loss_terms(outputs, batch)
        positives = jnp.maximum(terms["num_positives"], 1.0)
        # Summed (focal + box) over the set, divided by the set's positive anchors.
        return {"loss": (terms["loss"] * positives, positives)}

    def predict(self, outputs):
        """Padded detections in the schema's words: ``boxes [B, D, 4]`` (xyxy pixels),
        ``scores [B, D]``, ``box_classes [B, D]`` (-1 for padding), ``boxes_valid [B, D]``."""
        out = retinanet_postprocess(outputs["class_logits"], outputs["box_deltas"],
                                    outputs["anchors"], outputs["image_size"],
                                    score_threshold=self.score_threshold,
                                    topk_candidates=self.topk_candidates,
                                    iou_threshold=self.iou_threshold,
                                    max_detections=self.max_detections)
        return {"boxes": out["boxes"], "scores": out["scores"], "box_classes": out["classes"],
                "boxes_valid": out["valid"]}

    def evaluators(self):
        return [COCODetectionEvaluator(self.num_classes)]


class COCODetectionEvaluator:
    """Collects padded detections and ground truth batch by batch; ``result()`` is COCO box
    AP/AR (the 12 numbers of :data:`jaxvision.metrics.coco.STAT_NAMES`) over all of them,
    ground-truth areas being box areas. Eval padding examples (``valid`` false) are skipped."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.num_images = 0
        self.gt: list[tuple] = []
        self.dt: list[tuple] = []

    def update(self, predictions, batch) -> None:
        keep = np.asarray(batch.get("valid", np.ones(len(batch["image"]), bool)), bool)
        boxes_valid = np.asarray(batch.get("boxes_valid",
                                           np.ones(np.shape(batch["box_classes"]), bool)), bool)
        for i in np.nonzero(keep)[0]:
            image = self.num_images
            self.num_images += 1
            gt = np.asarray(batch["boxes"][i], np.float64)[boxes_valid[i]]
            self.gt.append((np.full(len(gt), image), np.asarray(batch["box_classes"][i])
                            [boxes_valid[i]], gt))
            ok = np.asarray(predictions["boxes_valid"][i], bool)
            self.dt.append((np.full(ok.sum(), image),
                            np.asarray(predictions["box_classes"][i])[ok],
                            np.asarray(predictions["boxes"][i], np.float64)[ok],
                            np.asarray(predictions["scores"][i], np.float64)[ok]))

    @staticmethod
    def _xywh(boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)

    def result(self) -> dict[str, float]:
        cat = lambda parts, j: (np.concatenate([p[j] for p in parts]) if parts  # noqa: E731
                                else np.zeros((0,)))
        gt_boxes = self._xywh(cat(self.gt, 2))
        evaluation = evaluate_arrays(
            num_images=max(self.num_images, 1), num_categories=self.num_classes,
            gt_image=cat(self.gt, 0), gt_category=cat(self.gt, 1), gt_boxes=gt_boxes,
            gt_area=gt_boxes[:, 2] * gt_boxes[:, 3], gt_crowd=np.zeros(len(gt_boxes), bool),
            dt_image=cat(self.dt, 0), dt_category=cat(self.dt, 1),
            dt_boxes=self._xywh(cat(self.dt, 2)), dt_scores=cat(self.dt, 3))
        return {name: float(value) for name, value in evaluation.stats.items()}
