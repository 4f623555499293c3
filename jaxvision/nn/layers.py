"""Layer constructors injected into blocks and models: ``conv``, ``norm`` and ``act``.

Flax's ImageNet example passes layers into its ResNet as ``ModuleDef`` s (``functools.partial``
of a module class) instead of threading every option through every block; timm accepts the
same by name (``norm_layer="groupnorm"``). jaxvision does both, so that switching BatchNorm for
synced, frozen, Group- or LayerNorm, or the fast convolution for XLA's, is one argument, from
Python or from a config:

    models.create("resnet18", norm="group_norm", conv="xla")
    models.create("resnet18", norm=functools.partial(nn.GroupNorm, num_groups=8))

A model calls :func:`resolve_layers` once with its ``dtype`` and the mode (``train``) and hands
the result to its blocks, which resolve again (a no-op on resolved constructors) so that they
also work on their own. Defaults a model adds (its ``dtype``, its kernel initialiser) never
override what the caller set on the constructor.

Names:

* ``conv``: ``"auto"`` (:func:`jaxvision.nn.conv.fast_conv_general_dilated`: Winograd and im2col
  GEMMs on CPU, XLA's convolution on every other platform) or ``"xla"`` (XLA's convolution
  everywhere: bit-exact against other XLA programs; what an exported model must use, since the
  fast path is specific to CPU). The same choice picks the max pool
  (:func:`resolve_max_pool`).
* ``norm``: ``"batch_norm"`` (PyTorch's defaults: momentum 0.1 there, 0.9 here, epsilon 1e-5),
  ``"frozen_batch_norm"`` (always the running statistics, never updated: torchvision's
  ``FrozenBatchNorm2d``), ``"group_norm"`` (32 groups), ``"layer_norm"`` (over channels),
  ``"instance_norm"`` (per sample and channel over H, W: PyTorch's ``InstanceNorm2d(affine=True)``),
  or ``None``/``"none"`` for no normalisation (convolutions then get a bias). The short names
  ``"batch"``, ``"group"``, ``"layer"`` and ``"instance"`` are the same layers.
* ``act``: ``"relu"``, ``"relu6"``, ``"gelu"``, ``"silu"``, ``"tanh"``, ``"sigmoid"``,
  ``"leaky_relu"``, or any ``jax.Array -> jax.Array`` function.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax

from jaxvision.nn.conv import fast_conv_general_dilated
from jaxvision.nn.pool import fast_max_pool

ModuleDef = Any  # a module class or a functools.partial of one
Activation = Callable[[jax.Array], jax.Array]

CONVS: dict[str, ModuleDef] = {
    "auto": functools.partial(nn.Conv, conv_general_dilated=fast_conv_general_dilated),
    "xla": nn.Conv,
}
_BATCH_NORM = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)
NORMS: dict[str, ModuleDef] = {
    "batch_norm": _BATCH_NORM,
    "frozen_batch_norm": functools.partial(_BATCH_NORM, use_running_average=True),
    "group_norm": functools.partial(nn.GroupNorm, num_groups=32, epsilon=1e-5),
    "layer_norm": functools.partial(nn.LayerNorm, epsilon=1e-5),
    "instance_norm": functools.partial(nn.InstanceNorm, epsilon=1e-5),
}
NORMS.update({short: NORMS[f"{short}_norm"] for short in ("batch", "group", "layer", "instance")})
ACTS: dict[str, Activation] = {
    "relu": nn.relu, "relu6": nn.relu6, "gelu": functools.partial(nn.gelu, approximate=False),
    "silu": nn.silu, "tanh": nn.tanh, "sigmoid": nn.sigmoid, "leaky_relu": nn.leaky_relu,
}


class Layers(NamedTuple):
    conv: ModuleDef
    norm: ModuleDef | None
    act: Activation | None


def with_defaults(layer: ModuleDef, **defaults) -> ModuleDef:
    """``layer`` with ``defaults`` for the keywords it does not set already."""
    already = layer.keywords if isinstance(layer, functools.partial) else {}
    missing = {k: v for k, v in defaults.items() if k not in already}
    return functools.partial(layer, **missing) if missing else layer


def _lookup(table: dict, spec, kind: str):
    if isinstance(spec, str):
        if spec not in table:
            raise ValueError(f"unknown {kind} {spec!r}; use one of {sorted(table)} or a "
                             f"{'function' if kind == 'act' else 'module constructor'}")
        return table[spec]
    if not callable(spec):
        raise TypeError(f"{kind} must be a name or a callable, got {spec!r}")
    return spec


def is_batch_norm(norm: ModuleDef | None) -> bool:
    """Whether ``norm`` builds a BatchNorm (the only norm with running statistics to sync)."""
    base = norm.func if isinstance(norm, functools.partial) else norm
    return isinstance(base, type) and issubclass(base, nn.BatchNorm)


def resolve_conv(conv: str | ModuleDef, **defaults) -> ModuleDef:
    return with_defaults(_lookup(CONVS, conv, "conv"), **defaults)


def resolve_max_pool(conv: str | ModuleDef) -> Callable:
    """The max pool that goes with ``conv``: :func:`jaxvision.nn.pool.fast_max_pool` on the fast
    path (``"auto"``), else Flax's, which the exporters turn into a MaxPool node."""
    return fast_max_pool if conv == "auto" else nn.max_pool


def resolve_norm(norm: str | ModuleDef | None, *, train: bool, **defaults) -> ModuleDef | None:
    """The norm constructor; a BatchNorm whose mode is unset uses batch statistics iff ``train``."""
    if norm is None or norm == "none":
        return None
    norm = with_defaults(_lookup(NORMS, norm, "norm"), **defaults)
    return with_defaults(norm, use_running_average=not train) if is_batch_norm(norm) else norm


def resolve_act(act: str | Activation | None) -> Activation | None:
    """The activation function; None stays None (a linear output)."""
    return None if act is None else _lookup(ACTS, act, "act")


def resolve_layers(conv: str | ModuleDef, norm: str | ModuleDef | None,
                   act: str | Activation | None,
                   *, train: bool, dtype=None, **conv_defaults) -> Layers:
    """Constructors for a module's ``conv``/``norm``/``act`` fields (names or constructors),
    with ``dtype`` and ``conv_defaults`` (e.g. ``kernel_init``) filled in where unset."""
    return Layers(resolve_conv(conv, dtype=dtype, **conv_defaults),
                  resolve_norm(norm, train=train, dtype=dtype), resolve_act(act))


def sync_batch_norm(norm: str | ModuleDef | None, axis_name: str) -> ModuleDef | None:
    """``norm`` with its batch statistics averaged over ``axis_name``, or None if it is not a
    BatchNorm that computes batch statistics (nothing to sync)."""
    if norm is None or norm == "none":
        return None
    norm = _lookup(NORMS, norm, "norm")
    if not is_batch_norm(norm) or (isinstance(norm, functools.partial)
                                   and norm.keywords.get("use_running_average") is True):
        return None
    return functools.partial(norm, axis_name=axis_name)
