"""Initializers by name, and re-initialisation of any model's parameters.

Names: ``he_normal`` / ``kaiming_normal`` (fan_in, gain 2, untruncated normal, as PyTorch's
``kaiming_normal_``), ``he_normal_fan_out`` (ResNet/WRN convs), ``he_uniform``,
``xavier_normal`` / ``glorot_normal``, ``xavier_uniform`` / ``glorot_uniform`` (Flax's Dense
default is ``lecun_normal``), ``lecun_normal``, ``lecun_uniform``, ``orthogonal``,
``normal`` (``stddev``), ``truncated_normal``, ``zeros``, ``ones``. Fans follow Flax's kernel
layouts (conv HWIO: fan_in = H*W*I, fan_out = H*W*O; dense IO).

``reinitialize(params, key, kernel_init=...)`` redraws every ``kernel`` leaf of an already
initialised model, so the initialisation is selectable for any registered model without the
model exposing an option.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.nn import initializers as init

Initializer = Callable[..., jax.Array]


def _factories() -> dict[str, Callable[..., Initializer]]:
    return {
        "he_normal": lambda: init.variance_scaling(2.0, "fan_in", "normal"),
        "kaiming_normal": lambda: init.variance_scaling(2.0, "fan_in", "normal"),
        "he_normal_fan_out": lambda: init.variance_scaling(2.0, "fan_out", "normal"),
        "he_uniform": lambda: init.variance_scaling(2.0, "fan_in", "uniform"),
        "kaiming_uniform": lambda: init.variance_scaling(2.0, "fan_in", "uniform"),
        "xavier_normal": lambda: init.variance_scaling(1.0, "fan_avg", "normal"),
        "glorot_normal": lambda: init.variance_scaling(1.0, "fan_avg", "normal"),
        "xavier_uniform": lambda: init.variance_scaling(1.0, "fan_avg", "uniform"),
        "glorot_uniform": lambda: init.variance_scaling(1.0, "fan_avg", "uniform"),
        "lecun_normal": lambda: init.variance_scaling(1.0, "fan_in", "normal"),
        "lecun_uniform": lambda: init.variance_scaling(1.0, "fan_in", "uniform"),
        "orthogonal": lambda scale=1.0: init.orthogonal(scale),
        "normal": lambda stddev=0.01: init.normal(stddev),
        "truncated_normal": lambda stddev=0.01: init.truncated_normal(stddev),
        "zeros": lambda: init.zeros,
        "ones": lambda: init.ones,
    }


INITIALIZERS = tuple(_factories())


def get_initializer(name: str, **options) -> Initializer:
    """The initializer called ``name`` (``options`` e.g. ``stddev`` for ``normal``)."""
    factories = _factories()
    if name not in factories:
        close = difflib.get_close_matches(name, factories, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown initializer {name!r}.{hint} Available: {', '.join(sorted(factories))}")
    return factories[name](**options)


def reinitialize(params: Any, key: jax.Array, *, kernel_init: str | Initializer = "he_normal",
                 bias_init: str | Initializer | None = "zeros", **options) -> Any:
    """Redraws every ``kernel`` (and, unless ``bias_init=None``, every Dense/Conv ``bias``).

    Norm-layer ``scale``/``bias`` are left as they are. Each leaf gets its own key.
    """
    kernel_fn = get_initializer(kernel_init, **options) if isinstance(kernel_init, str) else kernel_init
    bias_fn = get_initializer(bias_init) if isinstance(bias_init, str) else bias_init
    paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(paths_and_leaves))
    kernel_parents = {tuple(str(k) for k in path[:-1]) for path, _ in paths_and_leaves
                      if str(getattr(path[-1], "key", path[-1])) == "kernel"}
    out = []
    for (path, leaf), leaf_key in zip(paths_and_leaves, keys):
        name = str(getattr(path[-1], "key", path[-1]))
        parent = tuple(str(k) for k in path[:-1])
        if name == "kernel":
            leaf = kernel_fn(leaf_key, leaf.shape, leaf.dtype)
        elif name == "bias" and bias_fn is not None and parent in kernel_parents:
            leaf = bias_fn(leaf_key, leaf.shape, leaf.dtype)
        out.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, out)


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a Flax kernel shape (``[..., in, out]``)."""
    receptive = int(jnp.prod(jnp.array(shape[:-2]))) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive
