"""Non-maximum suppression: hard, soft (linear/Gaussian), per-class, fixed-size and jit-able.

Conventions (the choices torchvision leaves open, made explicit):

* Order is a stable sort on ``(-score, index)``: among equal scores the lower index wins, on
  every backend.
* A box is suppressed by a kept box when their IoU is *strictly* greater than ``iou_threshold``
  (torchvision's ``>``), so IoU exactly at the threshold survives.
* Candidates need ``score > score_threshold`` (strict, as RetinaNet's 0.05 filter).
* Outputs have a fixed size ``max_output_size``: kept indices in decreasing score order,
  padded with -1, plus a ``valid`` mask. Everything runs under ``jit`` and ``vmap``; the
  functions are jitted themselves (sizes and ``method`` static, thresholds traced), so eager
  calls compile once per input shape.
* Per-class NMS only lets boxes of the same class suppress each other (a class mask on the IoU
  matrix; exact, unlike the coordinate-offset trick).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.ops.iou import box_iou

_SOFT_METHODS = ("linear", "gaussian")


def _sorted_candidates(scores: jax.Array, top_k: int) -> jax.Array:
    return jnp.argsort(-scores, stable=True)[:top_k]


@functools.partial(jax.jit, static_argnames=("max_output_size", "pre_nms_top_k"))
def nms_padded(boxes: jax.Array, scores: jax.Array, *, iou_threshold: float,
               max_output_size: int, score_threshold: float = -jnp.inf,
               pre_nms_top_k: int | None = None,
               class_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Greedy NMS with static shapes; returns ``(indices [max_output_size], valid)``.

    ``boxes [N, 4]`` xyxy, ``scores [N]``. Only the ``pre_nms_top_k`` best-scoring boxes are
    considered (all if None). ``class_ids [N]`` makes it per-class (batched) NMS. Padded inputs
    can be excluded by giving them a score of ``-inf``.
    """
    boxes = jnp.asarray(boxes)
    scores = jnp.asarray(scores)
    num_boxes = scores.shape[0]
    top_k = num_boxes if pre_nms_top_k is None else min(pre_nms_top_k, num_boxes)
    if top_k == 0:  # nothing to keep: all padding
        return (jnp.full((max_output_size,), -1, jnp.int32),
                jnp.zeros((max_output_size,), bool))
    order = _sorted_candidates(scores, top_k)
    cand_boxes = boxes[order]
    candidate_ok = scores[order] > score_threshold
    suppresses = box_iou(cand_boxes, cand_boxes) > iou_threshold  # [K, K]
    if class_ids is not None:
        cand_classes = jnp.asarray(class_ids)[order]
        suppresses &= cand_classes[:, None] == cand_classes[None, :]

    def body(i, keep):
        suppressed = jnp.any(keep & suppresses[:, i])
        return keep.at[i].set(candidate_ok[i] & ~suppressed)

    keep = jax.lax.fori_loop(0, top_k, body, jnp.zeros((top_k,), bool))
    (positions,) = jnp.nonzero(keep, size=max_output_size, fill_value=-1)
    valid = positions >= 0
    indices = jnp.where(valid, order[jnp.maximum(positions, 0)], -1).astype(jnp.int32)
    return indices, valid


def nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """``torchvision.ops.nms``: the indices (int64) of the kept ``boxes [N, 4]`` (xyxy),
    by decreasing ``scores [N]``; a box goes when its IoU with a kept, higher-scoring box is
    greater than ``iou_threshold``. Eager, with a data-dependent output size; under ``jit``
    use :func:`nms_padded`."""
    indices, valid = nms_padded(boxes, scores, iou_threshold=iou_threshold,
                                max_output_size=int(np.shape(scores)[0]))
    return np.asarray(indices)[np.asarray(valid)].astype(np.int64)


def batched_nms(boxes, scores, idxs, iou_threshold: float) -> np.ndarray:
    """``torchvision.ops.batched_nms``: NMS within each category ``idxs [N]`` (boxes of
    different categories never suppress each other); kept indices (int64) by decreasing
    score."""
    indices, valid = nms_padded(boxes, scores, iou_threshold=iou_threshold,
                                max_output_size=int(np.shape(scores)[0]), class_ids=idxs)
    return np.asarray(indices)[np.asarray(valid)].astype(np.int64)


@functools.partial(jax.jit, static_argnames=("max_output_size", "method"))
def soft_nms(boxes: jax.Array, scores: jax.Array, *, max_output_size: int,
             method: str = "gaussian", sigma: float = 0.5, iou_threshold: float = 0.3,
             score_threshold: float = 0.001,
             class_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Soft-NMS (Bodla et al. 2017): decays overlapping scores instead of deleting boxes.

    Repeatedly takes the highest remaining score (ties: lowest index), then rescales the others
    by ``exp(-IoU² / sigma)`` (``"gaussian"``) or by ``1 - IoU`` where ``IoU > iou_threshold``
    (``"linear"``). Boxes whose score falls to ``score_threshold`` or below are dropped.
    Returns ``(indices, decayed_scores, valid)``, each ``[max_output_size]``, in selection order.
    """
    if method not in _SOFT_METHODS:
        raise ValueError(f"method must be one of {_SOFT_METHODS}, got {method!r}")
    boxes = jnp.asarray(boxes)
    scores = jnp.asarray(scores)
    if scores.shape[0] == 0:
        return (jnp.full((max_output_size,), -1, jnp.int32),
                jnp.zeros((max_output_size,), scores.dtype), jnp.zeros((max_output_size,), bool))
    same_class = None if class_ids is None else jnp.asarray(class_ids)

    def body(step, state):
        current, alive, indices, kept_scores, valid = state
        masked = jnp.where(alive, current, -jnp.inf)
        best = jnp.argmax(masked)
        ok = masked[best] > score_threshold
        overlap = box_iou(boxes[best], boxes, aligned=True)
        if method == "gaussian":
            decay = jnp.exp(-(overlap ** 2) / sigma)
        else:
            decay = jnp.where(overlap > iou_threshold, 1.0 - overlap, 1.0)
        if same_class is not None:
            decay = jnp.where(same_class == same_class[best], decay, 1.0)
        new_scores = jnp.where(ok, current * decay, current)
        new_alive = alive & (new_scores > score_threshold)
        new_alive = new_alive.at[best].set(False)
        return (new_scores, jnp.where(ok, new_alive, alive),
                indices.at[step].set(jnp.where(ok, best, -1).astype(jnp.int32)),
                kept_scores.at[step].set(jnp.where(ok, current[best], 0.0)),
                valid.at[step].set(ok))

    state = (scores, scores > score_threshold, jnp.full((max_output_size,), -1, jnp.int32),
             jnp.zeros((max_output_size,), scores.dtype), jnp.zeros((max_output_size,), bool))
    _, _, indices, kept_scores, valid = jax.lax.fori_loop(0, max_output_size, body, state)
    return indices.astype(jnp.int32), kept_scores, valid


@functools.partial(jax.jit, static_argnames=("pre_nms_top_k", "max_detections"))
def multiclass_nms(boxes: jax.Array, class_scores: jax.Array, *, iou_threshold: float = 0.5,
                   score_threshold: float = 0.05, pre_nms_top_k: int = 1000,
                   max_detections: int = 100) -> dict[str, jax.Array]:
    """RetinaNet-style post-processing of one image with static shapes.

    ``boxes [N, 4]`` (decoded, class-agnostic) and ``class_scores [N, C]`` (sigmoid
    probabilities). Every (box, class) pair is a candidate; the ``pre_nms_top_k`` best with
    ``score > score_threshold`` go through per-class NMS; the best ``max_detections`` are kept.
    Returns ``boxes [D, 4]``, ``scores [D]``, ``classes [D]`` (int32), ``valid [D]``; padded
    entries are zero (class -1).
    """
    boxes = jnp.asarray(boxes)
    class_scores = jnp.asarray(class_scores)
    num_classes = class_scores.shape[-1]
    flat_scores = class_scores.reshape(-1)
    if flat_scores.shape[0] == 0:
        return {"boxes": jnp.zeros((max_detections, 4), boxes.dtype),
                "scores": jnp.zeros((max_detections,), class_scores.dtype),
                "classes": jnp.full((max_detections,), -1, jnp.int32),
                "valid": jnp.zeros((max_detections,), bool)}
    order = _sorted_candidates(flat_scores, min(pre_nms_top_k, flat_scores.shape[0]))
    cand_boxes = boxes[order // num_classes]
    cand_scores = flat_scores[order]
    cand_classes = (order % num_classes).astype(jnp.int32)
    indices, valid = nms_padded(cand_boxes, cand_scores, iou_threshold=iou_threshold,
                                max_output_size=max_detections, score_threshold=score_threshold,
                                class_ids=cand_classes)
    safe = jnp.maximum(indices, 0)
    return {
        "boxes": jnp.where(valid[:, None], cand_boxes[safe], 0.0),
        "scores": jnp.where(valid, cand_scores[safe], 0.0),
        "classes": jnp.where(valid, cand_classes[safe], -1),
        "valid": valid,
    }
