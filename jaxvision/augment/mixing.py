"""Occlusion and mixing: cutout, random erasing, mixup and cutmix, and the losses they need.

Cutout and random erasing are per-sample ops. Mixup and cutmix pair each example with another
of the same batch (a random permutation, as in the course), so they act on whole batches and
return either soft targets ``[B, K]`` or the ``(labels_a, labels_b, lam)`` form; both feed the
same loss (``mixed_cross_entropy`` equals the cross-entropy with ``mix_targets``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxvision.augment.core import check_probability, image_op, uniform

# --------------------------------------------------------------------------------------------
# Occlusion
# --------------------------------------------------------------------------------------------


def cutout_mask(center_y, center_x, *, height: int, width: int, length: int) -> jax.Array:
    """Boolean ``[H, W]`` hole ``[clip(y - L//2, 0, H), clip(y + L//2, 0, H))`` x same in x.

    ``center_*`` may be arrays of shape ``[n]`` for ``n`` holes (their union is returned).
    """
    cy, cx = jnp.atleast_1d(center_y), jnp.atleast_1d(center_x)
    y1 = jnp.clip(cy - length // 2, 0, height)[:, None]
    y2 = jnp.clip(cy + length // 2, 0, height)[:, None]
    x1 = jnp.clip(cx - length // 2, 0, width)[:, None]
    x2 = jnp.clip(cx + length // 2, 0, width)[:, None]
    rows, cols = jnp.arange(height)[None], jnp.arange(width)[None]
    in_rows = (rows >= y1) & (rows < y2)
    in_cols = (cols >= x1) & (cols < x2)
    return (in_rows[:, :, None] & in_cols[:, None, :]).any(axis=0)


@image_op
def random_cutout(key, image, *, num_holes: int = 1, length: int = 16, fill: float = 0.0):
    """Cutout (DeVries & Taylor), the course's parameters: 1 hole of side 16, centre uniform
    over the image, so holes near the border are partial."""
    height, width = image.shape[:2]
    key_y, key_x = jax.random.split(key)
    cy = jax.random.randint(key_y, (num_holes,), 0, height)
    cx = jax.random.randint(key_x, (num_holes,), 0, width)
    hole = cutout_mask(cy, cx, height=height, width=width, length=int(length))
    return jnp.where(hole[..., None], jnp.asarray(fill, image.dtype), image)


@image_op
def random_erasing(key, image, *, probability: float = 0.5, scale=(0.02, 0.33),
                   ratio=(0.3, 3.3), fill="zeros", attempts: int = 10):
    """torchvision ``RandomErasing`` (the course's p=0.5, scale, ratio, 10 attempts).

    ``fill`` is a number, ``"zeros"``, or ``"random"`` (standard-normal noise as torchvision's
    ``value='random'``). When no attempt fits, the image is left unchanged.
    """
    check_probability(probability)
    height, width = image.shape[:2]
    keys = jax.random.split(key, 6)
    area = float(height * width)
    target = area * uniform(keys[0], float(scale[0]), float(scale[1]), (attempts,))
    aspect = jnp.exp(uniform(keys[1], math.log(ratio[0]), math.log(ratio[1]), (attempts,)))
    h = jnp.round(jnp.sqrt(target * aspect)).astype(jnp.int32)
    w = jnp.round(jnp.sqrt(target / aspect)).astype(jnp.int32)
    fits = (h < height) & (w < width)
    top = jnp.floor(uniform(keys[2], 0.0, 1.0, (attempts,)) * (height - h + 1)).astype(jnp.int32)
    left = jnp.floor(uniform(keys[3], 0.0, 1.0, (attempts,)) * (width - w + 1)).astype(jnp.int32)
    first = jnp.argmax(fits)
    apply = fits.any() & jax.random.bernoulli(keys[4], probability)
    rows, cols = jnp.arange(height), jnp.arange(width)
    region = (((rows >= top[first]) & (rows < top[first] + h[first]))[:, None]
              & ((cols >= left[first]) & (cols < left[first] + w[first]))[None, :]) & apply
    if isinstance(fill, str):
        if fill == "zeros":
            values = jnp.zeros_like(image)
        elif fill == "random":
            values = jax.random.normal(keys[5], image.shape, image.dtype)
        else:
            raise ValueError(f"fill must be a number, 'zeros' or 'random'; got {fill!r}")
    else:
        values = jnp.full_like(image, fill)
    return jnp.where(region[..., None], values, image)


# --------------------------------------------------------------------------------------------
# Mixup and cutmix
# --------------------------------------------------------------------------------------------


class MixedBatch(NamedTuple):
    """Images mixed with ``images[perm]``: targets ``lam * labels_a + (1 - lam) * labels_b``."""

    images: jax.Array
    labels_a: jax.Array
    labels_b: jax.Array
    lam: jax.Array


def sample_lambda(key, alpha: float) -> jax.Array:
    """``lam ~ Beta(alpha, alpha)``, or 1 when ``alpha <= 0`` (the course's convention)."""
    if alpha <= 0:
        return jnp.float32(1.0)
    return jax.random.beta(key, alpha, alpha).astype(jnp.float32)


def _partners(key, batch: int, perm):
    """``perm`` (each example's partner) or a random permutation, which, as in the course, may
    pair an example with itself (then it is left as it was)."""
    if perm is None:
        return jax.random.permutation(key, batch)
    perm = jnp.asarray(perm, jnp.int32)
    if perm.shape != (batch,):
        raise ValueError(f"perm must hold one partner index per example, shape ({batch},); "
                         f"got {perm.shape}")
    return perm


def mixup(key, images, labels, *, alpha: float = 1.0, perm=None) -> MixedBatch:
    """Mixup (Zhang et al.): ``lam x + (1 - lam) x[perm]``, one ``lam`` per batch; ``perm``
    (default: a random permutation) gives each example's partner, e.g. the reversed batch."""
    key_lam, key_perm = jax.random.split(key)
    lam = sample_lambda(key_lam, alpha)
    perm = _partners(key_perm, images.shape[0], perm)
    mixed = lam * images + (1.0 - lam) * images[perm]
    return MixedBatch(mixed.astype(images.dtype), labels, labels[perm], lam)


def cutmix_box(lam, center_y, center_x, *, height: int, width: int):
    """The course's cutmix box: side ``int(size * sqrt(1 - lam))``, centred and clipped.

    Returns ``(y1, y2, x1, x2, lam_adjusted)`` with ``lam_adjusted = 1 - box_area / (H W)``.
    """
    cut_ratio = jnp.sqrt(1.0 - jnp.asarray(lam, jnp.float32))
    cut_h = jnp.floor(height * cut_ratio).astype(jnp.int32)
    cut_w = jnp.floor(width * cut_ratio).astype(jnp.int32)
    y1 = jnp.clip(center_y - cut_h // 2, 0, height)
    y2 = jnp.clip(center_y + cut_h // 2, 0, height)
    x1 = jnp.clip(center_x - cut_w // 2, 0, width)
    x2 = jnp.clip(center_x + cut_w // 2, 0, width)
    lam_adjusted = 1.0 - ((y2 - y1) * (x2 - x1)).astype(jnp.float32) / (height * width)
    return y1, y2, x1, x2, lam_adjusted


def _box_region(y1, y2, x1, x2, height, width):
    rows, cols = jnp.arange(height), jnp.arange(width)
    return ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]


def cutmix(key, images, labels, *, alpha: float = 1.0, masks=None, perm=None):
    """CutMix (Yun et al.) as in the course: one box per batch pasted from ``images[perm]``
    (``perm``: each example's partner; default a random permutation).

    Returns a ``MixedBatch`` whose ``lam`` is the area-adjusted one; with ``masks [B, H, W]``
    also returns the equally pasted masks as a second value.
    """
    batch, height, width = images.shape[:3]
    key_lam, key_perm, key_y, key_x = jax.random.split(key, 4)
    lam = sample_lambda(key_lam, alpha)
    perm = _partners(key_perm, batch, perm)
    cy = jax.random.randint(key_y, (), 0, height)
    cx = jax.random.randint(key_x, (), 0, width)
    y1, y2, x1, x2, lam_adjusted = cutmix_box(lam, cy, cx, height=height, width=width)
    region = _box_region(y1, y2, x1, x2, height, width)
    mixed = jnp.where(region[None, :, :, None], images[perm], images)
    result = MixedBatch(mixed, labels, labels[perm], lam_adjusted)
    if masks is None:
        return result
    return result, jnp.where(region[None], masks[perm], masks)


def mix_targets(labels_a, labels_b, lam, *, num_classes: int) -> jax.Array:
    """Soft targets ``lam * onehot(a) + (1 - lam) * onehot(b)``; soft inputs are mixed as is."""

    def dense(labels):
        if labels.ndim == 1:
            return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
        if labels.shape[-1] != num_classes:
            raise ValueError(f"soft labels have {labels.shape[-1]} classes, expected {num_classes}")
        return labels.astype(jnp.float32)

    lam = jnp.asarray(lam, jnp.float32)
    lam = lam[:, None] if lam.ndim == 1 else lam
    return lam * dense(labels_a) + (1.0 - lam) * dense(labels_b)


def mixed_cross_entropy(logits, labels_a, labels_b, lam, *, reduction: str = "mean"):
    """The course's ``lam * CE(pred, y_a) + (1 - lam) * CE(pred, y_b)``."""
    from jaxvision.losses import cross_entropy

    lam = jnp.asarray(lam, jnp.float32)
    loss_a = cross_entropy(logits, labels_a, reduction="none")
    loss_b = cross_entropy(logits, labels_b, reduction="none")
    per_example = lam * loss_a + (1.0 - lam) * loss_b
    if reduction == "none":
        return per_example
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none'; got {reduction!r}")


def _check_mixable(batch, name):
    if "boxes" in batch or "instance_masks" in batch:
        raise ValueError(f"{name} mixes whole images and cannot merge box lists; drop {name} "
                         "from the ops of a detection pipeline")


def mixup_batch(key, batch: dict, *, num_classes: int, alpha: float = 1.0) -> dict:
    """Batch-dict mixup: mixes ``"image"`` and replaces ``"label"`` by soft targets ``[B, K]``."""
    _check_mixable(batch, "mixup")
    if "mask" in batch:
        raise ValueError("mixup cannot blend integer segmentation masks; use cutmix instead")
    mixed = mixup(key, batch["image"], batch["label"], alpha=alpha)
    out = dict(batch, image=mixed.images)
    out["label"] = mix_targets(mixed.labels_a, mixed.labels_b, mixed.lam, num_classes=num_classes)
    return out


def cutmix_batch(key, batch: dict, *, num_classes: int, alpha: float = 1.0) -> dict:
    """Batch-dict cutmix: pastes a box (and the mask under it) and sets soft ``"label"``."""
    _check_mixable(batch, "cutmix")
    out = dict(batch)
    if "mask" in batch:
        mixed, out["mask"] = cutmix(key, batch["image"], batch["label"], alpha=alpha,
                                    masks=batch["mask"])
    else:
        mixed = cutmix(key, batch["image"], batch["label"], alpha=alpha)
    out["image"] = mixed.images
    out["label"] = mix_targets(mixed.labels_a, mixed.labels_b, mixed.lam, num_classes=num_classes)
    return out


def mixup_or_cutmix_batch(key, batch: dict, *, num_classes: int, mixup_alpha: float = 1.0,
                          cutmix_alpha: float = 1.0, cutmix_probability: float = 0.5) -> dict:
    """Either cutmix (with ``cutmix_probability``) or mixup, chosen once per batch (timm)."""
    check_probability(cutmix_probability, "cutmix_probability")
    key_choice, key_mix = jax.random.split(key)
    return jax.lax.cond(
        jax.random.bernoulli(key_choice, cutmix_probability),
        lambda b: cutmix_batch(key_mix, b, num_classes=num_classes, alpha=cutmix_alpha),
        lambda b: mixup_batch(key_mix, b, num_classes=num_classes, alpha=mixup_alpha),
        batch)
