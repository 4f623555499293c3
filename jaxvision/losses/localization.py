"""Single-object localization losses: ``L = CE + λ · box_loss``, the box term masked by
``has_box`` (images without an object teach only the class), and a λ schedule.

Box losses on normalized xyxy boxes: ``"mse"`` (mean over the 4 coordinates, the course's
formula), ``"smooth_l1"`` (summed over the 4, β = 1), and the IoU family ``"iou"``,
``"giou"``, ``"diou"``, ``"ciou"`` (``1 - IoU`` variants, :mod:`jaxvision.losses.detection`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxvision.losses.detection import ciou_loss, diou_loss, giou_loss, iou_loss, smooth_l1_loss

BOX_LOSSES = {
    "mse": lambda p, t: jnp.mean((p - t) ** 2, axis=-1),
    "smooth_l1": lambda p, t: smooth_l1_loss(p, t, beta=1.0).sum(-1),
    "iou": iou_loss, "giou": giou_loss, "diou": diou_loss, "ciou": ciou_loss,
}


def box_loss(predictions: jax.Array, targets: jax.Array, *, kind: str = "smooth_l1") -> jax.Array:
    """Per-box loss ``[...]`` of xyxy boxes ``[..., 4]``."""
    if kind not in BOX_LOSSES:
        raise ValueError(f"box loss must be one of {sorted(BOX_LOSSES)}, got {kind!r}")
    return BOX_LOSSES[kind](jnp.asarray(predictions), jnp.asarray(targets))


def localization_loss(class_logits, pred_boxes, labels, gt_boxes, has_box=None, *,
                      box_weight: float | jax.Array = 1.0, kind: str = "smooth_l1",
                      weights=None) -> dict[str, jax.Array]:
    """``{"loss", "classification", "box"}``: mean cross-entropy over the (weighted) examples
    plus ``box_weight`` (λ) times the mean box loss over those with ``has_box``."""
    weights = jnp.ones(labels.shape, jnp.float32) if weights is None else weights
    has_box = jnp.ones(labels.shape, bool) if has_box is None else has_box
    ce = optax.softmax_cross_entropy_with_integer_labels(class_logits, labels)
    classification = (ce * weights).sum() / jnp.maximum(weights.sum(), 1.0)
    box_weights = weights * has_box
    # Images without a box get their own prediction as target: zero loss, finite gradient.
    safe = jnp.where(has_box[:, None], gt_boxes, jax.lax.stop_gradient(pred_boxes))
    per_box = box_loss(pred_boxes, safe, kind=kind)
    box = (per_box * box_weights).sum() / jnp.maximum(box_weights.sum(), 1.0)
    return {"loss": classification + box_weight * box, "classification": classification,
            "box": box}


def box_weight_schedule(step, *, start: float = 1.0, end: float = 10.0,
                        ramp_steps: int = 1000) -> jax.Array:
    """λ rising linearly from ``start`` to ``end`` over ``ramp_steps``: classification first,
    then localization (a dynamic λ); ``ramp_steps=0`` is a constant ``end``."""
    if ramp_steps <= 0:
        return jnp.asarray(end, jnp.float32)
    frac = jnp.clip(jnp.asarray(step, jnp.float32) / ramp_steps, 0.0, 1.0)
    return start + (end - start) * frac
