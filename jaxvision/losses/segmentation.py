"""Segmentation losses: soft Dice (linear/squared denominator), Jaccard, Tversky, Dice + CE,
pixel focal loss and the course's smoothed binary IoU.

Images are NHWC: logits or probabilities ``[B, H, W, C]`` with integer labels ``[B, H, W]`` for
the multi-class losses; the binary losses take probabilities and 0/1 targets of the same shape.
Sums run over the whole batch by default (one Dice per class over all pixels, the stable
choice when a class is absent from some images); ``per_image=True`` computes one value per
image and averages them.

Smoothing: ``Dice = (2 Σ p g + ε) / (Σ p + Σ g + ε)``; with ``squared=True`` the
denominator is ``Σ p² + Σ g² + ε``. With ε > 0, two empty masks give Dice 1 (loss 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _reduce_axes(ndim: int, per_image: bool, has_class_axis: bool) -> tuple[int, ...]:
    last = ndim - 1 if has_class_axis else ndim
    return tuple(range(1 if per_image else 0, last))


def _overlap_sums(probs, targets, mask, axes):
    if mask is not None:
        probs = probs * mask
        targets = targets * mask
    intersection = jnp.sum(probs * targets, axis=axes)
    return intersection, probs, targets


def soft_dice(probs: jax.Array, targets: jax.Array, *, squared: bool = False,
              epsilon: float = 1e-5, per_image: bool = False) -> jax.Array:
    """Soft Dice coefficient of binary probabilities and 0/1 targets (same shape).

    Returns a scalar, or ``[B]`` with ``per_image=True``.
    """
    probs = jnp.asarray(probs, jnp.result_type(probs, jnp.float32))
    targets = jnp.asarray(targets, probs.dtype)
    axes = _reduce_axes(probs.ndim, per_image, has_class_axis=False)
    return _dice_from(probs, targets, None, axes, squared, epsilon)


def _dice_from(probs, targets, mask, axes, squared, epsilon):
    intersection, probs, targets = _overlap_sums(probs, targets, mask, axes)
    if squared:
        denominator = jnp.sum(probs ** 2, axis=axes) + jnp.sum(targets ** 2, axis=axes)
    else:
        denominator = jnp.sum(probs, axis=axes) + jnp.sum(targets, axis=axes)
    return (2.0 * intersection + epsilon) / (denominator + epsilon)


def dice_loss(probs: jax.Array, targets: jax.Array, *, squared: bool = False,
              epsilon: float = 1e-5, per_image: bool = False) -> jax.Array:
    """Binary soft Dice loss ``1 - Dice`` (mean over images when ``per_image``)."""
    return jnp.mean(1.0 - soft_dice(probs, targets, squared=squared, epsilon=epsilon,
                                    per_image=per_image))


def _probs_and_onehot(logits_or_probs, labels, from_logits, ignore_index):
    values = jnp.asarray(logits_or_probs)
    num_classes = values.shape[-1]
    probs = jax.nn.softmax(values, axis=-1) if from_logits else values
    labels = jnp.asarray(labels)
    if labels.shape != values.shape[:-1]:
        raise ValueError(f"labels must have shape {values.shape[:-1]} (the logits without the "
                         f"class axis), got {labels.shape}")
    valid = jnp.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    onehot = jax.nn.one_hot(jnp.where(valid, labels, 0), num_classes, dtype=probs.dtype)
    return probs, onehot, valid[..., None].astype(probs.dtype)


def _class_mean(per_class, *, include_background, background_index, class_weights):
    num_classes = per_class.shape[-1]
    weights = (jnp.ones((num_classes,), per_class.dtype) if class_weights is None
               else jnp.asarray(class_weights, per_class.dtype))
    if weights.shape != (num_classes,):
        raise ValueError(f"class_weights needs one weight per class ({num_classes}), got shape "
                         f"{weights.shape}")
    if not include_background:
        weights = weights.at[background_index].set(0.0)
    return jnp.sum(per_class * weights, axis=-1) / jnp.sum(weights)


def multiclass_dice(logits_or_probs: jax.Array, labels: jax.Array, *, from_logits: bool = True,
                    squared: bool = False, epsilon: float = 1e-5, per_image: bool = False,
                    ignore_index: int | None = None) -> jax.Array:
    """Per-class soft Dice ``[C]`` (or ``[B, C]``) of softmax probabilities vs integer labels."""
    probs, onehot, mask = _probs_and_onehot(logits_or_probs, labels, from_logits, ignore_index)
    axes = _reduce_axes(probs.ndim, per_image, has_class_axis=True)
    return _dice_from(probs, onehot, mask, axes, squared, epsilon)


def multiclass_dice_loss(logits_or_probs: jax.Array, labels: jax.Array, *,
                         from_logits: bool = True, include_background: bool = True,
                         background_index: int = 0, class_weights=None, squared: bool = False,
                         epsilon: float = 1e-5, per_image: bool = False,
                         ignore_index: int | None = None) -> jax.Array:
    """``1 - weighted mean of per-class Dice``; background can be left out of the mean.

    Excluding background keeps a large, easy background class from dominating the mean;
    ``class_weights [C]`` reweights the classes (for example by inverse prevalence).
    Pixels labelled ``ignore_index`` count for nothing.
    """
    per_class = multiclass_dice(logits_or_probs, labels, from_logits=from_logits,
                                squared=squared, epsilon=epsilon, per_image=per_image,
                                ignore_index=ignore_index)
    return jnp.mean(1.0 - _class_mean(per_class, include_background=include_background,
                                      background_index=background_index,
                                      class_weights=class_weights))


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array, *,
                        ignore_index: int | None = None) -> jax.Array:
    """Mean softmax cross-entropy over the labelled pixels (``ignore_index`` left out)."""
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    valid = jnp.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    per_pixel = optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.result_type(logits, jnp.float32)), jnp.where(valid, labels, 0))
    return jnp.sum(per_pixel * valid) / jnp.maximum(jnp.sum(valid), 1)


def dice_ce_loss(logits: jax.Array, labels: jax.Array, *, dice_weight: float = 0.5,
                 ignore_index: int | None = None, **dice_options) -> jax.Array:
    """``α Dice + (1 - α) CE`` (course: α in [0.5, 0.8]); Dice options pass through."""
    if not 0.0 <= dice_weight <= 1.0:
        raise ValueError(f"dice_weight must be in [0, 1], got {dice_weight}")
    dice = multiclass_dice_loss(logits, labels, from_logits=True, ignore_index=ignore_index,
                                **dice_options)
    return dice_weight * dice + (1.0 - dice_weight) * pixel_cross_entropy(
        logits, labels, ignore_index=ignore_index)


def _tp_fp_fn(logits_or_probs, labels, from_logits, ignore_index, per_image):
    probs, onehot, mask = _probs_and_onehot(logits_or_probs, labels, from_logits, ignore_index)
    axes = _reduce_axes(probs.ndim, per_image, has_class_axis=True)
    probs, onehot = probs * mask, onehot * mask
    true_pos = jnp.sum(probs * onehot, axis=axes)
    false_pos = jnp.sum(probs * (1.0 - onehot) * mask, axis=axes)
    false_neg = jnp.sum((1.0 - probs) * onehot, axis=axes)
    return true_pos, false_pos, false_neg


def tversky_loss(logits_or_probs: jax.Array, labels: jax.Array, *, alpha: float = 0.5,
                 beta: float = 0.5, from_logits: bool = True, epsilon: float = 1e-5,
                 include_background: bool = True, background_index: int = 0,
                 class_weights=None, per_image: bool = False,
                 ignore_index: int | None = None) -> jax.Array:
    """``1 - (TP + ε) / (TP + α FP + β FN + ε)`` per class, averaged like the Dice loss.

    α = β = 0.5 is the (linear) Dice loss; β > α penalizes missed pixels more (small lesions).
    """
    tp, fp, fn = _tp_fp_fn(logits_or_probs, labels, from_logits, ignore_index, per_image)
    index = (tp + epsilon) / (tp + alpha * fp + beta * fn + epsilon)
    return jnp.mean(1.0 - _class_mean(index, include_background=include_background,
                                      background_index=background_index,
                                      class_weights=class_weights))


def jaccard_loss(logits_or_probs: jax.Array, labels: jax.Array, *, from_logits: bool = True,
                 epsilon: float = 1e-5, include_background: bool = True,
                 background_index: int = 0, class_weights=None, per_image: bool = False,
                 ignore_index: int | None = None) -> jax.Array:
    """Soft IoU loss ``1 - (Σpg + ε) / (Σp + Σg - Σpg + ε)`` per class (Tversky α=β=1)."""
    return tversky_loss(logits_or_probs, labels, alpha=1.0, beta=1.0, from_logits=from_logits,
                        epsilon=epsilon, include_background=include_background,
                        background_index=background_index, class_weights=class_weights,
                        per_image=per_image, ignore_index=ignore_index)


def pixel_focal_loss(logits: jax.Array, labels: jax.Array, *, gamma: float = 2.0, alpha=None,
                     ignore_index: int | None = None) -> jax.Array:
    """Softmax focal loss ``-α_y (1 - p_y)^γ log p_y`` (Lin et al. 2017) per pixel, averaged over
    the labelled pixels: easy background pixels stop dominating the sum. ``γ = 0`` with no
    ``alpha`` is :func:`pixel_cross_entropy`; ``alpha`` is an optional per-class weight ``[C]``."""
    from jaxvision.losses.classification import focal_loss

    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels must have shape {logits.shape[:-1]} (the logits without the "
                         f"class axis), got {labels.shape}")
    valid = jnp.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    per_pixel = focal_loss(logits.reshape(-1, logits.shape[-1]),
                           jnp.where(valid, labels, 0).reshape(-1), gamma=gamma, alpha=alpha,
                           reduction="none")
    valid = valid.reshape(-1)
    return jnp.sum(per_pixel * valid) / jnp.maximum(jnp.sum(valid), 1)


def soft_iou(probs: jax.Array, targets: jax.Array, *, epsilon: float = 1e-6,
             per_image: bool = True) -> jax.Array:
    """The smoothed binary IoU ``(Σpg + ε) / (Σp + Σg - Σpg + ε)`` (ε = 1e-6: two empty
    masks give 1, not 0/0),
    one value per image (``[B]``) by default, or one over the whole batch. On 0/1 masks it is
    the mask IoU: [[1,1],[0,0]] vs [[1,0],[1,0]] gives 0.33333356."""
    probs = jnp.asarray(probs, jnp.result_type(probs, jnp.float32))
    targets = jnp.asarray(targets, probs.dtype)
    axes = _reduce_axes(probs.ndim, per_image, has_class_axis=False)
    intersection = jnp.sum(probs * targets, axis=axes)
    union = jnp.sum(probs, axis=axes) + jnp.sum(targets, axis=axes) - intersection
    return (intersection + epsilon) / (union + epsilon)


def iou_loss(probs: jax.Array, targets: jax.Array, *, epsilon: float = 1e-6,
             per_image: bool = True) -> jax.Array:
    """Binary soft IoU loss ``1 - soft_iou``, averaged over images (the multi-class one is
    :func:`jaccard_loss`)."""
    return jnp.mean(1.0 - soft_iou(probs, targets, epsilon=epsilon, per_image=per_image))
