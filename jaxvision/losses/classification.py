"""Classification losses and class-imbalance helpers.

Every loss returns the mean over the batch unless ``reduction='none'`` (per example) or
``'sum'``. Logits are promoted to float32 so that bfloat16 models get float32 losses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_example: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":
        return per_example
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _soft_targets(targets: jax.Array, num_classes: int, label_smoothing: float,
                  logits_ndim: int) -> tuple[jax.Array, bool]:
    """(Smoothed) target distribution and whether the targets were integer labels."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    is_integer = targets.ndim == logits_ndim - 1
    if is_integer:
        targets = jax.nn.one_hot(targets, num_classes, dtype=jnp.float32)
    targets = targets.astype(jnp.float32)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    return targets, is_integer


def cross_entropy(logits: jax.Array, targets: jax.Array, *, label_smoothing: float = 0.0,
                  reduction: str = "mean", class_weights: jax.Array | None = None) -> jax.Array:
    """Softmax cross-entropy against integer labels ``[B]`` or (soft) one-hot targets ``[B, K]``.

    Label smoothing follows PyTorch: the target becomes ``(1 - s) * onehot + s / K``.
    ``class_weights`` ``[K]`` follows ``torch.nn.CrossEntropyLoss(weight=...)``: each class's
    log-probability is scaled by its weight; with integer labels the ``'mean'`` divides by the
    summed weight of the true classes (``sum w_y * ce / sum w_y``), with soft targets by ``B``.
    """
    num_classes = logits.shape[-1]
    targets, is_integer = _soft_targets(targets, num_classes, label_smoothing, logits.ndim)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    if class_weights is None:
        per_example = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)
        return _reduce(per_example, reduction)
    class_weights = jnp.asarray(class_weights, jnp.float32)
    if class_weights.shape != (num_classes,):
        raise ValueError(f"class_weights must have shape ({num_classes},), "
                         f"got {class_weights.shape}")
    per_example = -(targets * class_weights * log_probs).sum(-1)
    if reduction == "mean" and is_integer:
        # PyTorch: the normaliser is the weight of each example's true class.
        true_class = jnp.argmax(targets if not label_smoothing else
                                (targets - label_smoothing / num_classes), axis=-1)
        return per_example.sum() / class_weights[true_class].sum()
    return _reduce(per_example, reduction)


def binary_cross_entropy(logits: jax.Array, targets: jax.Array, *, pos_weight: float | jax.Array | None = None,
                         label_smoothing: float = 0.0, reduction: str = "mean") -> jax.Array:
    """Sigmoid cross-entropy from logits, elementwise (binary or multi-label targets in [0, 1]).

    Matches ``torch.nn.BCEWithLogitsLoss(pos_weight=...)``; label smoothing maps targets to
    ``t * (1 - s) + s / 2``. ``'mean'`` averages over every element; ``'none'`` keeps the shape.
    """
    logits = logits.astype(jnp.float32)
    targets = jnp.asarray(targets, jnp.float32)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
    log_p = jax.nn.log_sigmoid(logits)
    log_not_p = jax.nn.log_sigmoid(-logits)
    positive = targets * log_p
    if pos_weight is not None:
        positive = positive * jnp.asarray(pos_weight, jnp.float32)
    return _reduce(-(positive + (1.0 - targets) * log_not_p), reduction)


def focal_loss(logits: jax.Array, targets: jax.Array, *, gamma: float = 2.0,
               alpha: jax.Array | None = None, reduction: str = "mean") -> jax.Array:
    """Softmax focal loss ``-alpha_y (1 - p_y)^gamma log p_y`` (Lin et al. 2017) for K classes.

    Down-weights well-classified examples. ``gamma=0`` and ``alpha=None`` give cross-entropy.
    ``targets`` are integer labels ``[B]`` or soft targets ``[B, K]`` (then summed over classes).
    ``alpha`` is an optional per-class weight ``[K]``. For sigmoid (detection) focal loss see
    ``jaxvision.losses.detection``.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    num_classes = logits.shape[-1]
    targets, _ = _soft_targets(targets, num_classes, 0.0, logits.ndim)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    modulating = (1.0 - jnp.exp(log_probs)) ** gamma
    per_class = -targets * modulating * log_probs
    if alpha is not None:
        per_class = per_class * jnp.asarray(alpha, jnp.float32)
    return _reduce(per_class.sum(-1), reduction)


# --- class imbalance ---------------------------------------------------------------------------

def class_weights_from_counts(counts, *, power: float = 1.0) -> np.ndarray:
    """Inverse-frequency class weights ``counts**-power`` normalised to sum to ``K``.

    Worked example: counts ``[10, 20, 70]`` give
    ``[1.826, 0.913, 0.261]``. ``power=0.5`` gives the softer inverse-square-root weighting.
    """
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or np.any(counts <= 0):
        raise ValueError(f"counts must be a 1-D array of positive class counts, got {counts}; "
                         "drop empty classes or add one to each count")
    inverse = counts ** -power
    return (inverse * len(counts) / inverse.sum()).astype(np.float32)


def class_counts(labels, *, num_classes: int) -> np.ndarray:
    """Number of examples of each class in integer ``labels``."""
    return np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)


def oversampling_weights(labels, *, num_classes: int) -> np.ndarray:
    """Per-example sampling probabilities that make every class equally likely.

    The JAX analogue of ``torch.utils.data.WeightedRandomSampler(1 / count[label])``; the
    probabilities sum to one (``np.random.Generator.choice(p=...)`` or ``oversample_indices``).
    """
    labels = np.asarray(labels).reshape(-1)
    counts = class_counts(labels, num_classes=num_classes).astype(np.float64)
    weights = 1.0 / counts[labels]
    return weights / weights.sum()


def oversample_indices(key: jax.Array, labels: jax.Array, *, num_classes: int,
                       num_samples: int) -> jax.Array:
    """Draws ``num_samples`` example indices with replacement so that classes are balanced.

    jit-safe (static ``num_classes`` and ``num_samples``): class-balanced sampling of an
    imbalanced index set, e.g. to build an epoch of a long-tailed data set.
    """
    labels = jnp.asarray(labels).reshape(-1)
    counts = jnp.bincount(labels, length=num_classes).astype(jnp.float32)
    logits = -jnp.log(counts[labels])
    return jax.random.categorical(key, logits, shape=(num_samples,))
