"""Parameter partitions: which leaves get weight decay, which are frozen, which get a scaled LR.

Leaves are addressed by their '/'-joined path (``"stage1/block0/conv1/kernel"``). Rules are
regular expressions matched with ``re.search`` against that path, first match wins.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

NO_DECAY_NAMES = ("bias", "scale", "embedding", "pos_embedding", "cls_token")


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_names(params: Any) -> Any:
    """Pytree like ``params`` whose leaves are the '/'-joined key paths of the leaves."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "/".join(_key_name(k) for k in path), params)


def decay_mask(params: Any) -> Any:
    """True for leaves that should get weight decay: kernels, not biases or norm scales.

    A leaf is excluded when its name is one of ``NO_DECAY_NAMES`` or it has fewer than two
    dimensions (biases, BatchNorm/LayerNorm scale and offset). Use as
    ``optax.add_decayed_weights(wd, mask=decay_mask)`` or ``optax.adamw(..., mask=decay_mask)``.
    """
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: bool(jnp.ndim(leaf) > 1 and _key_name(path[-1]) not in NO_DECAY_NAMES),
        params)


def label_params(params: Any, rules: Sequence[tuple[str, str]], *, default: str) -> Any:
    """Pytree of labels: the label of the first ``(regex, label)`` rule whose regex matches the path."""
    compiled = [(re.compile(pattern), label) for pattern, label in rules]

    def label(path: str) -> str:
        for pattern, name in compiled:
            if pattern.search(path):
                return name
        return default

    return jax.tree.map(label, path_names(params))


def freeze(tx: optax.GradientTransformation, *, frozen: Sequence[str]) -> optax.GradientTransformation:
    """Wraps ``tx`` so that leaves whose path matches any regex in ``frozen`` never change.

    Frozen leaves get zero updates and no optimizer state (``optax.multi_transform`` with
    ``optax.set_to_zero``): the JAX form of ``requires_grad=False`` for transfer learning.
    """
    if isinstance(frozen, str):
        raise TypeError(f"frozen must be a sequence of regexes, got the string {frozen!r}; "
                        f"write frozen=[{frozen!r}]")
    rules = [(pattern, "frozen") for pattern in frozen]
    return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()},
                                 lambda params: label_params(params, rules, default="trainable"))


def scale_by_path(multipliers: Mapping[str, float], *, default: float = 1.0) -> optax.GradientTransformation:
    """Multiplies each leaf's update by the multiplier of the first regex that matches its path.

    Chained after an optimizer it gives discriminative (layer-wise) learning rates, e.g.
    ``{"backbone": 0.1}`` trains the backbone at a tenth of the head's LR.
    Exact for SGD, momentum and Adam(W), whose updates are linear in the learning rate.
    """
    rules = list(multipliers.items())

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        names = path_names(updates)

        def scale(name, update):
            for pattern, factor in rules:
                if re.search(pattern, name):
                    return update * factor
            return update * default

        return jax.tree.map(scale, names, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def discriminative_lr(tx: optax.GradientTransformation, *,
                      multipliers: Mapping[str, float]) -> optax.GradientTransformation:
    """``tx`` followed by ``scale_by_path(multipliers)``."""
    return optax.chain(tx, scale_by_path(multipliers))
