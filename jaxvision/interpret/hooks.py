"""Reach any layer of any Flax model by name: read its output, or add to it and differentiate.

Attribution methods need a layer's activation and the gradient of a class score with respect
to it (Grad-CAM), or the activation alone (feature maps, SE gates). PyTorch does this with
forward hooks; here ``flax.linen.intercept_methods`` wraps every submodule's ``__call__``
while the unchanged model runs, so every zoo model works without a line of model code.

A layer's name is its module path joined by ``/`` (``"layer4_1"``, ``"layer4_1/conv2"``,
``"encoder_layer_11"``): the names of its parameters' subtree. :func:`layer_names` lists them
in call order. Everything here is a pure function of ``(variables, x)``: jit- and vmap-safe.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Target = int | Sequence[int] | jax.Array | None


def _path(context) -> str:
    return "/".join(context.module.path)


def _apply(model: nn.Module, variables, x, *, train: bool = False):
    return model.apply(variables, x, train=train)


def layer_names(model: nn.Module, variables, x) -> list[str]:
    """Every submodule's name, in the order their ``__call__`` starts (traced, not run)."""
    names: list[str] = []

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.path:
            name = _path(context)
            if name not in names:
                names.append(name)
        return next_fun(*args, **kwargs)

    def run(x):
        with nn.intercept_methods(record):
            return _apply(model, variables, x)

    jax.eval_shape(run, x)
    return names


def check_layers(model: nn.Module, variables, x, layers: Sequence[str]) -> None:
    """A ValueError naming the available layers when one of ``layers`` is not in the model."""
    names = layer_names(model, variables, x)
    missing = [layer for layer in layers if layer not in names]
    if missing:
        raise ValueError(f"{type(model).__name__} has no layer(s) {missing}; its layers are: "
                         + ", ".join(names))


def capture(model: nn.Module, variables, x, layers: Sequence[str], *,
            edit: Callable[[str, Any], Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """``(outputs, {layer: its output})`` of one inference pass. ``edit(layer, output)``, if
    given, replaces each captured output in the forward pass (what :func:`layer_gradients`
    uses to add a zero it can differentiate)."""
    check_layers(model, variables, x, layers)
    wanted = set(layers)
    captured: dict[str, Any] = {}

    def hook(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and _path(context) in wanted:
            name = _path(context)
            if edit is not None:
                out = edit(name, out)
            captured[name] = out
        return out

    with nn.intercept_methods(hook):
        outputs = _apply(model, variables, x)
    return outputs, {layer: captured[layer] for layer in layers}


def class_scores(logits: jax.Array, target: Target) -> jax.Array:
    """``[N]`` scores of the target classes: ``None`` = each example's predicted class, an int
    = that class for all, or one class per example. Out-of-range classes are an error."""
    num_classes = logits.shape[-1]
    if target is None:
        target = jnp.argmax(logits, axis=-1)
    elif isinstance(target, int):
        if not 0 <= target < num_classes:
            raise ValueError(f"target class {target} is out of range for {num_classes} classes")
        target = jnp.full(logits.shape[:1], target)
    else:
        if np.shape(target) != logits.shape[:1]:
            raise ValueError(f"target has shape {np.shape(target)}; give one class per "
                             f"example ({logits.shape[0]}), one int, or None")
        if not isinstance(target, jax.core.Tracer):  # checkable: a concrete value
            values = np.asarray(target)
            if (values < 0).any() or (values >= num_classes).any():
                raise ValueError(f"target classes {values.tolist()} out of range for "
                                 f"{num_classes} classes")
        target = jnp.asarray(target)
    return jnp.take_along_axis(logits, target[:, None].astype(jnp.int32), axis=-1)[:, 0]


def layer_gradients(model: nn.Module, variables, x, layer: str, target: Target = None, *,
                    score: Callable[[Any, Target], jax.Array] = class_scores
                    ) -> tuple[jax.Array, jax.Array, Any]:
    """``(activation, d sum(score) / d activation, outputs)`` for one named layer.

    The score of each example depends only on its own activation (inference mode), so the
    gradient of the summed score is every example's own gradient, in one backward pass."""
    shape = jax.eval_shape(lambda x: capture(model, variables, x, [layer])[1][layer], x)
    zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape)

    def scored(delta):
        outputs, acts = capture(model, variables, x, [layer],
                                edit=lambda _, out: jax.tree.map(jnp.add, out, delta))
        return jnp.sum(score(outputs, target)), (acts[layer], outputs)

    grads, (activation, outputs) = jax.grad(scored, has_aux=True)(zero)
    return activation, grads, outputs
