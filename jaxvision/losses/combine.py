"""Weighted sums of named loss terms that keep every term for logging."""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp


def combine_losses(terms: Mapping[str, jax.Array], *,
                   weights: Mapping[str, float] | None = None,
                   prefix: str = "loss") -> tuple[jax.Array, dict[str, jax.Array]]:
    """Returns ``(total, logs)`` where ``total = sum_k weights[k] * terms[k]``.

    ``logs`` holds ``{prefix: total, f"{prefix}/{name}": raw term}`` for each term, so a loop can
    log the parts of e.g. ``{"ce": ..., "l2": ..., "aux": ...}``. Missing weights default to 1;
    a weight for a term that does not exist is an error (a typo would silently drop a term).
    """
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(terms))
    if unknown:
        raise ValueError(f"weights given for unknown loss terms {unknown}; terms are {sorted(terms)}")
    if not terms:
        raise ValueError("combine_losses needs at least one loss term")
    total = jnp.float32(0)
    logs: dict[str, jax.Array] = {}
    for name, value in terms.items():
        value = jnp.asarray(value, jnp.float32)
        if value.ndim != 0:
            raise ValueError(f"loss term {name!r} must be a scalar, got shape {value.shape}; "
                             "reduce it (e.g. .mean()) before combining")
        total = total + weights.get(name, 1.0) * value
        logs[f"{prefix}/{name}"] = value
    logs[prefix] = total
    return total, logs
