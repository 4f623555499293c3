"""Single-object localization: class of the image and one box, from a
:class:`~jaxvision.models.localizer.Localizer`.

Targets: ``batch["label"]`` and the first object row (``boxes[:, 0]``, absolute pixels,
normalized here by the image size); ``has_box`` is ``boxes_valid[:, 0]`` so images without an
object train the class head only. Metrics: accuracy, mean IoU of the predicted box with the
true one, and ``iou50``, the fraction of images whose box has IoU >= 0.5 (over images with a
box).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxvision.losses.localization import BOX_LOSSES, localization_loss
from jaxvision.ops.iou import box_iou
from jaxvision.tasks.base import Batch, Task, valid_weights


@dataclasses.dataclass(frozen=True)
class LocalizationTask(Task):
    num_classes: int
    box_loss: str = "smooth_l1"
    box_weight: float = 5.0  # λ, the box loss's weight against cross-entropy; 1-10 is usual
    metric_names = ("loss", "accuracy", "mean_iou", "iou50")

    def __post_init__(self):
        if self.box_loss not in BOX_LOSSES:
            raise ValueError(f"box_loss must be one of {sorted(BOX_LOSSES)}, got "
                             f"{self.box_loss!r}")

    def _targets(self, batch: Batch):
        if "boxes" not in batch:
            raise ValueError("a localization batch needs 'boxes' (set config.max_boxes >= 1)")
        height, width = batch["image"].shape[1:3]
        scale = jnp.asarray([width, height, width, height], jnp.float32)
        boxes = batch["boxes"][:, 0].astype(jnp.float32) / scale
        has_box = batch.get("boxes_valid", jnp.ones(batch["boxes"].shape[:2], bool))[:, 0]
        return boxes, has_box

    def loss(self, outputs, batch: Batch, *, train: bool):
        boxes, has_box = self._targets(batch)
        terms = localization_loss(outputs.class_logits, outputs.boxes, batch["label"], boxes,
                                  has_box, box_weight=self.box_weight, kind=self.box_loss)
        return terms["loss"], {"classification": terms["classification"], "box": terms["box"]}

    def batch_metrics(self, outputs, batch: Batch):
        boxes, has_box = self._targets(batch)
        weights = valid_weights(batch)
        terms_weights = weights * has_box
        iou = box_iou(outputs.boxes, boxes, aligned=True)
        hits = (jnp.argmax(outputs.class_logits, -1) == batch["label"]).astype(jnp.float32)
        terms = localization_loss(outputs.class_logits, outputs.boxes, batch["label"], boxes,
                                  has_box, box_weight=self.box_weight, kind=self.box_loss,
                                  weights=weights)
        count = weights.sum()
        boxed = terms_weights.sum()
        return {"loss": (terms["loss"] * count, count), "accuracy": ((hits * weights).sum(), count),
                "mean_iou": ((iou * terms_weights).sum(), boxed),
                "iou50": (((iou >= 0.5) * terms_weights).sum(), boxed)}

    def predict(self, outputs):
        # Normalized xyxy in [0, 1] (not pixels, so not "boxes" of the schema).
        return {"class_logits": outputs.class_logits, "normalized_boxes": outputs.boxes}
