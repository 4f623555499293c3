"""Detection losses: box regression (L1, smooth L1, IoU family) and sigmoid focal loss.

Box losses return one value per element (per coordinate for L1/smooth L1, per box for the IoU
family) so that callers can mask them with the matcher's positive mask and normalize as they
need. :func:`sigmoid_focal_loss` can normalize by the number of positive anchors itself, as
RetinaNet does (the course text leaves this out).
"""

from __future__ import annotations

import math
import jax
import jax.numpy as jnp
import optax

from jaxvision.ops.box_coder import decode_boxes
from jaxvision.ops.iou import box_iou, complete_box_iou, distance_box_iou, generalized_box_iou

_REDUCTIONS = ("none", "sum", "mean", "num_positives")


def l1_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Elementwise ``|p - t|`` (torchvision RetinaNet's box loss)."""
    return jnp.abs(jnp.asarray(predictions) - jnp.asarray(targets))


def smooth_l1_loss(predictions: jax.Array, targets: jax.Array, *, beta: float = 1.0) -> jax.Array:
    """Elementwise smooth L1: ``0.5 x²/β`` if ``|x| < β`` else ``|x| - 0.5 β``.

    ``β = 1`` is the course's Huber form (``optax.huber_loss(delta=1)``); ``β = 0`` is L1 (as in
    detectron2), so the quadratic zone can be switched off without dividing by zero.
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    diff = jnp.abs(jnp.asarray(predictions) - jnp.asarray(targets))
    if beta == 0:
        return diff
    return jnp.where(diff < beta, 0.5 * diff ** 2 / beta, diff - 0.5 * beta)


def iou_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """``1 - IoU`` per box pair (xyxy, aligned). Has zero gradient when the boxes are disjoint."""
    return 1.0 - box_iou(predictions, targets, aligned=True)


def giou_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """``1 - GIoU`` per box pair, in [0, 2]; still pulls disjoint boxes together."""
    return 1.0 - generalized_box_iou(predictions, targets, aligned=True)


def diou_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """``1 - DIoU`` per box pair: penalizes the centre distance directly."""
    return 1.0 - distance_box_iou(predictions, targets, aligned=True)


def ciou_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """``1 - CIoU`` per box pair: DIoU plus an aspect-ratio term."""
    return 1.0 - complete_box_iou(predictions, targets, aligned=True)


def sigmoid_focal_loss(logits: jax.Array, targets: jax.Array, *, alpha: float | None = 0.25,
                       gamma: float = 2.0, weights: jax.Array | None = None,
                       reduction: str = "none",
                       num_positives: jax.Array | float | None = None) -> jax.Array:
    """Focal loss ``-α_t (1 - p_t)^γ log p_t`` on independent sigmoid outputs (Lin et al. 2017).

    ``targets`` are 0/1 (or soft) with the shape of ``logits``; background anchors have all-zero
    targets, and ignored anchors should get ``weights = 0``. ``α_t = α`` for positives and
    ``1 - α`` for negatives, so with the default α = 0.25 *negatives* get 3x the weight (the
    course text states the opposite). ``alpha=None`` (or negative) disables the α weighting;
    ``gamma=0`` gives plain binary cross-entropy.

    ``reduction``: ``"none"`` (elementwise), ``"sum"``, ``"mean"``, or ``"num_positives"``: the
    sum divided by ``max(num_positives, 1)``, RetinaNet's normalization.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    logits = jnp.asarray(logits)
    targets = jnp.asarray(targets, dtype=logits.dtype)
    cross_entropy = optax.sigmoid_binary_cross_entropy(logits, targets)
    loss = cross_entropy
    if gamma != 0:
        probs = jax.nn.sigmoid(logits)
        p_t = probs * targets + (1.0 - probs) * (1.0 - targets)
        loss = loss * (1.0 - p_t) ** gamma
    if alpha is not None and alpha >= 0:
        loss = loss * (alpha * targets + (1.0 - alpha) * (1.0 - targets))
    if weights is not None:
        loss = loss * weights
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if num_positives is None:
        raise ValueError("reduction='num_positives' needs num_positives= (the number of "
                         "anchors matched to an object)")
    return loss.sum() / jnp.maximum(jnp.asarray(num_positives, loss.dtype), 1.0)


def prior_probability_bias(probability: float = 0.01) -> float:
    """Bias ``b = -log((1 - π) / π)`` so that ``sigmoid(b) = π`` (−4.595… for π = 0.01).

    RetinaNet initializes its final classification conv with this bias so that every anchor
    starts as background with probability ``1 - π``, which keeps the first focal-loss steps
    from being swamped by easy negatives.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    return -math.log((1.0 - probability) / probability)


def prior_bias_init(probability: float = 0.01):
    """Flax initializer filling a bias with :func:`prior_probability_bias` (cls head only)."""
    value = prior_probability_bias(probability)

    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.full(shape, value, dtype)

    return init


_BOX_LOSSES = ("l1", "smooth_l1", "giou")


def retinanet_loss(class_logits: jax.Array, box_deltas: jax.Array, targets: dict, *,
                   anchors: jax.Array | None = None, alpha: float = 0.25, gamma: float = 2.0,
                   box_loss: str = "smooth_l1", smooth_l1_beta: float = 1.0 / 9.0,
                   box_weight: float = 1.0, box_coder_weights=(1.0, 1.0, 1.0, 1.0)) -> dict:
    """RetinaNet loss from :func:`jaxvision.ops.matcher.anchor_targets` targets.

    ``class_logits [..., A, K]`` and ``box_deltas [..., A, 4]`` (leading batch axes allowed,
    with targets stacked the same way, e.g. by ``jax.vmap(anchor_targets)``). Focal loss over
    every non-ignored anchor and box loss over the positives, both summed and divided by the
    total number of positive anchors in the batch (at least 1). ``box_loss``: ``"smooth_l1"``
    or ``"l1"`` on the encoded deltas, or ``"giou"`` on decoded boxes (needs ``anchors``).
    Returns ``{"loss", "classification", "box", "num_positives"}``.
    """
    if box_loss not in _BOX_LOSSES:
        raise ValueError(f"box_loss must be one of {_BOX_LOSSES}, got {box_loss!r}")
    labels = targets["labels"]
    positive = (labels == 1).astype(class_logits.dtype)
    not_ignored = (labels != -1).astype(class_logits.dtype)
    num_positives = positive.sum()
    classification = sigmoid_focal_loss(class_logits, targets["class_targets"], alpha=alpha,
                                         gamma=gamma, weights=not_ignored[..., None],
                                         reduction="num_positives", num_positives=num_positives)
    if box_loss == "giou":
        if anchors is None:
            raise ValueError("box_loss='giou' decodes the deltas and needs anchors=")
        decoded = decode_boxes(box_deltas, anchors, weights=box_coder_weights)
        safe_targets = jnp.where(positive[..., None] > 0, targets["matched_boxes"], decoded)
        per_anchor = giou_loss(decoded, safe_targets)
    elif box_loss == "l1":
        per_anchor = l1_loss(box_deltas, targets["box_targets"]).sum(-1)
    else:
        per_anchor = smooth_l1_loss(box_deltas, targets["box_targets"],
                                    beta=smooth_l1_beta).sum(-1)
    box = jnp.sum(per_anchor * positive) / jnp.maximum(num_positives, 1.0)
    return {"loss": classification + box_weight * box, "classification": classification,
            "box": box, "num_positives": num_positives}
