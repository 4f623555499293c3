"""Exponential moving average of the weights (Polyak averaging), as pure functions.

``ema <- decay * ema + (1 - decay) * params`` after each optimizer step; evaluate with the EMA
weights (and the current BatchNorm statistics). ``warmup=True`` uses timm's
``min(decay, (1 + t) / (10 + t))`` so the average is not dominated by the random init early on.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class EmaState(NamedTuple):
    """Averaged parameters and the number of updates folded in."""

    params: Any
    count: jax.Array


def ema_init(params: Any) -> EmaState:
    """Starts the average at the current parameters (a copy, so donation cannot alias it)."""
    return EmaState(jax.tree.map(jnp.array, params), jnp.zeros((), jnp.int32))


def ema_decay(count: jax.Array, *, decay: float, warmup: bool = False) -> jax.Array:
    """The decay used for update number ``count`` (0-based)."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
    if not warmup:
        return jnp.asarray(decay, jnp.float32)
    t = count.astype(jnp.float32)
    return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def ema_update(state: EmaState, params: Any, *, decay: float = 0.999, warmup: bool = False) -> EmaState:
    """Folds ``params`` into the average (jit-safe; ``decay`` static or traced)."""
    d = ema_decay(state.count, decay=decay, warmup=warmup)
    new = jax.tree.map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), state.params, params)
    return EmaState(new, state.count + 1)
