"""Gradient norms per parameter group: which part of a network learns, vanishes or explodes.

A group is a prefix of the parameter path (``"layer1"``, ``"layer1/0"``) at ``depth`` levels,
or the first of ``patterns`` (regexes searched in the ``/``-joined path) a parameter matches.
The groups' norms combine to the global norm: ``sqrt(sum(n_g ** 2)) == optax.global_norm``.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp


def _path(keys) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in keys)


def grad_norms(grads, *, depth: int = 1, patterns: Sequence[str] | Mapping[str, str] | None = None,
               ) -> dict[str, jax.Array]:
    """L2 norm of each group of ``grads`` (see module doc); jit-safe.

    ``patterns`` (a list of regexes, or ``{group name: regex}``) overrides ``depth``; a
    parameter matching none goes to ``"other"``.
    """
    if patterns is not None and not isinstance(patterns, Mapping):
        patterns = {p: p for p in patterns}
    squares: dict[str, jax.Array] = {}
    for keys, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]:
        path = _path(keys)
        if patterns is None:
            group = "/".join(path.split("/")[:depth])
        else:
            group = next((name for name, regex in patterns.items() if re.search(regex, path)),
                         "other")
        square = jnp.sum(jnp.square(leaf.astype(jnp.float32)))
        squares[group] = squares[group] + square if group in squares else square
    return {group: jnp.sqrt(value) for group, value in squares.items()}
