"""L1 and L2 weight penalties added to a loss, with the factor of 2 made explicit.

The L2 penalty is usually written ``lambda * sum(w**2)``, whose gradient is
``2 * lambda * w``. PyTorch's ``weight_decay=wd`` and ``optax.add_decayed_weights(wd)`` add
``wd * w`` to the gradient, i.e. they equal the penalty ``(wd / 2) * sum(w**2)``. So
``l2_penalty(params, coefficient=lam)`` == ``weight_decay = 2 * lam``; use
``l2_penalty_for_weight_decay(params, weight_decay=wd)`` to get the penalty that matches a
given ``weight_decay`` exactly. For Adam, penalty (coupled L2) and ``optax.adamw``
(decoupled) differ: see ``jaxvision.optim.factory``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp




def _masked_leaves(params: Any, mask: Any | Callable[[Any], Any] | None) -> list[jax.Array]:
    if mask is None:
        return jax.tree.leaves(params)
    if callable(mask):
        mask = mask(params)
    return [p for p, keep in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if keep]


def l2_penalty(params: Any, *, coefficient: float, mask: Any = None) -> jax.Array:
    """``coefficient * sum(w**2)`` over the (masked) leaves: the course's L2 term (gradient ``2 c w``).

    ``mask`` is a pytree of bools like ``params`` or a function of params (e.g.
    ``jaxvision.optim.partition.decay_mask`` to skip biases and norm scales); None = all leaves.
    """
    leaves = _masked_leaves(params, mask)
    total = sum((jnp.sum(jnp.square(p.astype(jnp.float32))) for p in leaves), jnp.float32(0))
    return coefficient * total


def l2_penalty_for_weight_decay(params: Any, *, weight_decay: float, mask: Any = None) -> jax.Array:
    """``(weight_decay / 2) * sum(w**2)``: the penalty whose gradient equals PyTorch/optax weight decay."""
    return l2_penalty(params, coefficient=0.5 * weight_decay, mask=mask)


def l1_penalty(params: Any, *, coefficient: float, mask: Any = None) -> jax.Array:
    """``coefficient * sum(|w|)`` over the (masked) leaves: promotes sparse weights (its
    gradient does not shrink with the weight, so small weights are driven to 0)."""
    leaves = _masked_leaves(params, mask)
    total = sum((jnp.sum(jnp.abs(p.astype(jnp.float32))) for p in leaves), jnp.float32(0))
    return coefficient * total



