"""RetinaNet post-processing with static shapes, torchvision's ``postprocess_detections`` rules.

Per image and per pyramid level: sigmoid scores of every (anchor, class) pair; pairs with
``score > score_threshold`` (0.05); the ``topk_candidates`` (1000) best of the level; their
anchors' deltas decoded (``BoxCoder(1, 1, 1, 1)``, width/height deltas clamped at
``log(1000/16)``) and clipped to the image. All levels' candidates then go through class-wise
NMS at ``iou_threshold`` (0.5) and the best ``max_detections`` (300) are kept. Where torchvision
returns a variable number, this returns ``max_detections`` rows with a ``valid`` mask (padding:
zero boxes and scores, class -1), so the whole thing is one jitted function of fixed shapes.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp

from jaxvision.ops.box_coder import decode_boxes
from jaxvision.ops.suppression import nms_padded


def _level_candidates(logits, deltas, anchors, image_size, score_threshold, topk):
    num_classes = logits.shape[-1]
    scores = jax.nn.sigmoid(logits).reshape(-1)
    k = min(topk, scores.shape[0])
    masked = jnp.where(scores > score_threshold, scores, -jnp.inf)
    top_scores, index = jax.lax.top_k(masked, k)
    anchor_index, classes = index // num_classes, (index % num_classes).astype(jnp.int32)
    boxes = decode_boxes(deltas[anchor_index], anchors[anchor_index])
    height, width = image_size[0], image_size[1]
    boxes = jnp.stack([jnp.clip(boxes[:, 0], 0, width), jnp.clip(boxes[:, 1], 0, height),
                       jnp.clip(boxes[:, 2], 0, width), jnp.clip(boxes[:, 3], 0, height)], -1)
    return boxes, top_scores, classes


@functools.partial(jax.jit, static_argnames=("topk_candidates", "max_detections"))
def retinanet_postprocess(class_logits: Sequence[jax.Array], box_deltas: Sequence[jax.Array],
                          anchors: Sequence[jax.Array], image_size: jax.Array, *,
                          score_threshold: float = 0.05, topk_candidates: int = 1000,
                          iou_threshold: float = 0.5,
                          max_detections: int = 300) -> dict[str, jax.Array]:
    """Detections of a batch from per-level ``class_logits [B, n_l, K]``, ``box_deltas
    [B, n_l, 4]``, ``anchors [n_l, 4]`` and ``image_size`` ``(H, W)``.

    Returns ``boxes [B, D, 4]`` (xyxy pixels), ``scores [B, D]``, ``classes [B, D]`` int32 and
    ``valid [B, D]``, each image's detections in decreasing score order.
    """
    if not (len(class_logits) == len(box_deltas) == len(anchors)):
        raise ValueError(f"need the same number of levels of logits, deltas and anchors, got "
                         f"{len(class_logits)}, {len(box_deltas)}, {len(anchors)}")
    image_size = jnp.asarray(image_size, jnp.float32)

    def one_image(logits_levels, deltas_levels):
        parts = [_level_candidates(l, d, a, image_size, score_threshold, topk_candidates)
                 for l, d, a in zip(logits_levels, deltas_levels, anchors)]
        boxes, scores, classes = (jnp.concatenate(x) for x in zip(*parts))
        keep, valid = nms_padded(boxes, scores, iou_threshold=iou_threshold,
                                 max_output_size=max_detections, score_threshold=score_threshold,
                                 class_ids=classes)
        safe = jnp.maximum(keep, 0)
        return {"boxes": jnp.where(valid[:, None], boxes[safe], 0.0),
                "scores": jnp.where(valid, scores[safe], 0.0),
                "classes": jnp.where(valid, classes[safe], -1),
                "valid": valid}

    return jax.vmap(one_image)(tuple(class_logits), tuple(box_deltas))
