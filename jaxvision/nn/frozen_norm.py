"""torchvision's ``FrozenBatchNorm2d``: a fixed affine map whose four vectors are buffers.

``norm="frozen_batch_norm"`` (:mod:`jaxvision.nn.layers`) is a BatchNorm that always uses its
running statistics but keeps ``scale``/``bias`` as trainable ``params``. torchvision's detection
backbones freeze all four: ``weight``, ``bias``, ``running_mean`` and ``running_var`` are
buffers, so they neither train nor count as parameters (RetinaNet-ResNet-50-FPN has 34,014,999
parameters, not 34,068,119). :class:`FrozenBatchNorm` stores the four in ``batch_stats`` (the
collection the engine carries but never differentiates) and computes
``x * scale * rsqrt(var + eps) + bias - mean * scale * rsqrt(var + eps)`` as torchvision does.
Pretrained torchvision detectors set ``eps`` to 0 (``overwrite_eps``); the default is 1e-5.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class FrozenBatchNorm(nn.Module):
    """Per-channel fixed affine map over the last axis; nothing in ``params``."""

    epsilon: float = 1e-5
    dtype: Any = None
    scale_init: Any = nn.initializers.ones  # accepted so blocks can ask for zero-init

    @nn.compact
    def __call__(self, x):
        features = x.shape[-1]
        scale = self.variable("batch_stats", "scale",
                              lambda: self.scale_init(jax.random.key(0), (features,), jnp.float32))
        bias = self.variable("batch_stats", "bias", lambda: jnp.zeros((features,), jnp.float32))
        mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
        var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
        multiplier = scale.value * jax.lax.rsqrt(var.value + self.epsilon)
        shift = bias.value - mean.value * multiplier
        dtype = self.dtype or x.dtype
        return (x * multiplier.astype(dtype) + shift.astype(dtype)).astype(dtype)
