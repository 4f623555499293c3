"""Regression losses, elementwise then reduced (``'mean'`` over every element, like PyTorch)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision.losses.classification import _reduce


def mse(predictions: jax.Array, targets: jax.Array, *, reduction: str = "mean") -> jax.Array:
    """Mean squared error ``(p - t)**2`` (no 1/2 factor, unlike ``optax.l2_loss``)."""
    diff = predictions.astype(jnp.float32) - jnp.asarray(targets, jnp.float32)
    return _reduce(diff * diff, reduction)


def mae(predictions: jax.Array, targets: jax.Array, *, reduction: str = "mean") -> jax.Array:
    """Mean absolute error ``|p - t|`` (L1 loss)."""
    diff = predictions.astype(jnp.float32) - jnp.asarray(targets, jnp.float32)
    return _reduce(jnp.abs(diff), reduction)


def huber(predictions: jax.Array, targets: jax.Array, *, delta: float = 1.0,
          reduction: str = "mean") -> jax.Array:
    """Huber loss: ``0.5 d**2`` for ``|d| < delta`` else ``delta (|d| - 0.5 delta)``.

    Matches ``torch.nn.HuberLoss(delta=...)``: quadratic near zero, linear (robust) far away.
    """
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    abs_diff = jnp.abs(predictions.astype(jnp.float32) - jnp.asarray(targets, jnp.float32))
    quadratic = jnp.minimum(abs_diff, delta)
    return _reduce(0.5 * quadratic**2 + delta * (abs_diff - quadratic), reduction)


def smooth_l1(predictions: jax.Array, targets: jax.Array, *, beta: float = 1.0,
              reduction: str = "mean") -> jax.Array:
    """Smooth L1 (Fast R-CNN): ``huber / beta``; ``0.5 d**2 / beta`` below ``beta``, ``|d| - beta/2`` above.

    Matches ``torch.nn.SmoothL1Loss(beta=...)``; ``beta=0`` is plain L1.
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta == 0:
        return mae(predictions, targets, reduction=reduction)
    per_element = huber(predictions, targets, delta=beta, reduction="none") / beta
    return _reduce(per_element, reduction)
