"""AdaBN (Li et al. 2016): BatchNorm statistics recomputed on target-domain
data, with no gradient step.

A colour or contrast shift moves each channel's activations by an affine map; BatchNorm with
the target's own mean and variance undoes it, so the source weights apply again. The other two
modes per subtree (train, frozen) are the engine's: ``config.transfer.batch_norm_train`` and
``batch_norm_frozen`` (see ``jaxvision.train.freeze.Freeze``).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util


def _images(batch) -> jax.Array:
    from jaxvision.train.step import images_to_float

    return images_to_float(jnp.asarray(batch["image"] if isinstance(batch, dict) else batch))


def adapt_batch_norm(model: nn.Module, variables: dict, batches: Iterable[Any], *,
                     modules: Sequence[str] = (), preprocess=None) -> dict:
    """``variables`` with the running statistics of the BatchNorms (all, or those whose module
    path a regex of ``modules`` matches) replaced by their statistics over ``batches``.

    ``batches``: arrays of images or dicts with an ``image`` key (uint8 [0, 255] or float, as
    the engine takes them), passed through ``preprocess`` (e.g. the evaluation's normalization)
    first. Each BatchNorm normalises with the current batch's statistics, as in training, and
    the population mean and (biased) variance over all batches are pooled exactly: the result
    does not depend on how the data is batched except through that normalisation. Nothing is
    differentiated; dropout stays off (the model runs with ``train=False``)."""
    patterns = [re.compile(p) for p in modules]
    matched: set[str] = set()

    def adapt(module) -> bool:
        name = "/".join(module.path)
        return not patterns or any(p.search(name) for p in patterns)

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, nn.BatchNorm) and context.method_name == "__call__" and adapt(module):
            # Batch statistics, and running statistics replaced by them (momentum 0).
            object.__setattr__(module, "use_running_average", False)
            object.__setattr__(module, "momentum", 0.0)
            matched.add("/".join(module.path))
        return next_fun(*args, **kwargs)

    @jax.jit
    def batch_stats(variables, images):
        with nn.intercept_methods(interceptor):
            _, updates = model.apply(variables, images, train=False, mutable=["batch_stats"])
        return updates["batch_stats"]

    sums: dict[str, np.ndarray] = {}
    total = 0
    for batch in batches:
        images = _images(batch)
        if preprocess is not None:
            images = preprocess({"image": images})["image"]
        n = images.shape[0]
        flat = traverse_util.flatten_dict(jax.device_get(batch_stats(variables, images)), sep="/")
        for path, value in flat.items():
            module, kind = path.rsplit("/", 1)
            if module not in matched:
                continue
            value = np.asarray(value, np.float64)
            mean = flat[f"{module}/mean"]
            moment = value if kind == "mean" else value + np.square(np.asarray(mean, np.float64))
            sums[path] = sums.get(path, 0.0) + n * moment
        total += n
    if patterns and not matched:
        raise ValueError(f"adapt_batch_norm: no BatchNorm module matches {list(modules)}")
    if total == 0:
        raise ValueError("adapt_batch_norm got no batches")
    old = traverse_util.flatten_dict(variables["batch_stats"], sep="/")
    new = dict(old)
    for path in sums:
        module, kind = path.rsplit("/", 1)
        mean = sums[f"{module}/mean"] / total
        value = mean if kind == "mean" else np.maximum(sums[path] / total - np.square(mean), 0.0)
        new[path] = jnp.asarray(value, np.asarray(old[path]).dtype)
    return {**variables, "batch_stats": traverse_util.unflatten_dict(new, sep="/")}
