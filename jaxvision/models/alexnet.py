"""AlexNet, torchvision's single-tower variant (64-192-384-256-256 convs, 61,100,840 params).

Layers are named ``conv1``..``conv5``, ``fc1``, ``fc2``, ``head``; ``jaxvision.convert`` maps
torchvision's ``features.N`` / ``classifier.N`` keys onto them.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.ops.pooling import adaptive_avg_pool
from jaxvision.models.registry import register

# (features, kernel, stride, padding, max-pool after)
_ALEXNET_CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                  (256, 3, 1, 1, False), (256, 3, 1, 1, True))


class AlexNet(nn.Module):
    """Five convs with overlapping 3x3/2 max-pooling, adaptive 6x6 average pool, three FCs.

    Sown intermediates: ``act1``..``act5`` (each conv after ReLU), ``features`` (after the last
    pool), ``pre_logits``.
    """

    num_classes: int = 1000
    dropout_rate: float = 0.5
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = x.astype(self.dtype)
        for i, (features, kernel, stride, pad, pool) in enumerate(_ALEXNET_CONVS, start=1):
            x = nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                        padding=((pad, pad), (pad, pad)), dtype=self.dtype, name=f"conv{i}")(x)
            x = nn.relu(x)
            self.sow("intermediates", f"act{i}", x)
            if pool:
                x = nn.max_pool(x, (3, 3), strides=(2, 2))
        self.sow("intermediates", "features", x)
        x = adaptive_avg_pool(x, 6).reshape((x.shape[0], -1))
        for i in (1, 2):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = nn.relu(nn.Dense(4096, dtype=self.dtype, name=f"fc{i}")(x))
        self.sow("intermediates", "pre_logits", x)
        return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)


@register("alexnet")
def alexnet(**kwargs) -> AlexNet:
    return AlexNet(**kwargs)
