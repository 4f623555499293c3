"""BatchNorm folded into the convolution (or Dense) that feeds it, for export and int8.

In inference a BatchNorm is the affine map ``y = s (x - mean) + beta`` with
``s = scale / sqrt(var + eps)`` per channel. When ``x`` is a convolution's output
``conv(z, W) + b`` the two collapse into ``conv(z, W s) + (s (b - mean) + beta)``: one
convolution and a bias, with no statistics left to carry. Exporters want this (fewer ops, and
int8 quantisation then sees the weights the network really uses).

The pairs are found by tracing, not by naming rules: a BatchNorm whose input is exactly the
output of a ``nn.Conv`` or ``nn.Dense`` call is folded into it. The folded BatchNorm keeps only
a ``bias`` parameter and loses its ``batch_stats``; :func:`apply_folded` runs the unchanged
model with an interceptor that turns such a BatchNorm into ``x + bias``. BatchNorms without a
linear producer (pre-activation blocks) stay as they are.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

_LINEAR = (nn.Conv, nn.Dense, nn.ConvTranspose)


def batch_norm_producers(model: nn.Module, variables, x) -> dict[tuple, tuple[tuple, float]]:
    """``{BatchNorm path: (path of the Conv/Dense whose output it normalises, its epsilon)}``,
    found by tracing one inference call."""
    produced_by: dict[int, tuple[str, ...]] = {}
    pairs: dict[tuple, tuple[tuple, float]] = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__":
            return out
        if isinstance(module, _LINEAR):
            produced_by[id(out)] = tuple(module.path)
        elif (isinstance(module, nn.BatchNorm) and args and id(args[0]) in produced_by
              and module.axis in (-1, args[0].ndim - 1)):
            pairs[tuple(module.path)] = (produced_by[id(args[0])], float(module.epsilon))
        return out

    def run(x):
        with nn.intercept_methods(record):
            return model.apply(variables, x, train=False)

    jax.eval_shape(run, x)
    return pairs


def fold_batch_norm(model: nn.Module, variables: dict, x) -> dict:
    """``variables`` with every foldable BatchNorm folded into its producer (see module doc).

    ``x``: an example input (only its shape and dtype are used). Run the result with
    :func:`apply_folded`; the outputs equal the original inference outputs to float32
    rounding. A Conv/Dense feeding two BatchNorms is refused."""
    pairs = batch_norm_producers(model, variables, x)
    producers = [producer for producer, _ in pairs.values()]
    if len(set(producers)) != len(producers):
        raise ValueError("a Conv/Dense feeds more than one BatchNorm; cannot fold")
    params = {k: np.asarray(v) for k, v in
              flatten_dict(jax.device_get(variables["params"])).items()}
    stats = {k: np.asarray(v) for k, v in
             flatten_dict(jax.device_get(variables.get("batch_stats", {}))).items()}
    for bn, (producer, epsilon) in pairs.items():
        mean = stats.pop(bn + ("mean",))
        var = stats.pop(bn + ("var",)).astype(np.float64)
        scale = params.pop(bn + ("scale",), np.ones_like(mean)).astype(np.float64)
        beta = params.pop(bn + ("bias",), np.zeros_like(mean)).astype(np.float64)
        factor = scale / np.sqrt(var + epsilon)
        # f (conv(z, W) + b - mean) + beta = conv(z, W f) + b f + (beta - mean f)
        for name in ("kernel", "bias"):
            if producer + (name,) in params:
                value = params[producer + (name,)]
                params[producer + (name,)] = (value * factor).astype(value.dtype)
        params[bn + ("bias",)] = (beta - mean.astype(np.float64) * factor).astype(mean.dtype)
    folded = {name: tree for name, tree in variables.items()
              if name not in ("params", "batch_stats")}
    folded["params"] = unflatten_dict(params)
    if stats:
        folded["batch_stats"] = unflatten_dict(stats)
    return folded


def _folded_norm(next_fun, args, kwargs, context):
    """BatchNorms that lost their statistics to folding are ``x + bias``."""
    module = context.module
    if (isinstance(module, nn.BatchNorm) and context.method_name == "__call__"
            and not module.has_variable("batch_stats", "mean")
            and module.has_variable("params", "bias")):
        x = args[0]
        return x + module.get_variable("params", "bias").astype(x.dtype)
    return next_fun(*args, **kwargs)


def apply_folded(model: nn.Module, variables: dict, x) -> Any:
    """``model.apply(variables, x, train=False)`` for folded (or unfolded) variables."""
    with nn.intercept_methods(_folded_norm):
        return model.apply(variables, x, train=False)


__all__ = ["apply_folded", "batch_norm_producers", "fold_batch_norm"]
