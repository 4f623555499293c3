"""Classification losses. Each returns the mean over the batch unless ``reduction='none'``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _reduce(per_example: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":
        return per_example
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(logits: jax.Array, targets: jax.Array, *, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> jax.Array:
    """Softmax cross-entropy against integer labels ``[B]`` or (soft) one-hot targets ``[B, K]``.

    Label smoothing follows PyTorch: the target becomes ``(1 - s) * onehot + s / K``.
    """
    num_classes = logits.shape[-1]
    if targets.ndim == logits.ndim - 1:
        targets = jax.nn.one_hot(targets, num_classes, dtype=jnp.float32)
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    per_example = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)
    return _reduce(per_example, reduction)
