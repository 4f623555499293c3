"""AlexNet, torchvision's single-tower variant (64-192-384-256-256 convs, 61,100,840 params).

Layers are named ``conv1``..``conv5``, ``fc1``, ``fc2``, ``head``; ``jaxvision.convert`` maps
torchvision's ``features.N`` / ``classifier.N`` keys onto them.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.ops.pooling import adaptive_avg_pool
from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers

# (features, kernel, stride, padding, max-pool after)
_ALEXNET_CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                  (256, 3, 1, 1, False), (256, 3, 1, 1, True))


class AlexNet(Classifier):
    """Five convs with overlapping 3x3/2 max-pooling, adaptive 6x6 average pool, three FCs.

    ``num_classes=None``: features after each max-pool, ``c3``, ``c4``, ``c5`` (nominal strides
    8, 16, 32; the unpadded pools make the maps slightly smaller than input/stride), and
    ``pre_logits``. Sown intermediates: ``act1``..``act5`` (each conv after ReLU), ``features``
    (after the last pool), ``pre_logits``.
    """

    num_classes: int | None = 1000
    dropout_rate: float = 0.5
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        stages, stride = [], 1
        for features, _, conv_stride, _, pool in _ALEXNET_CONVS:
            stride *= conv_stride
            if pool:
                stride *= 2
                stages.append((stride, features))
        return pyramid(stages, 4096)

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, _, act = resolve_layers(self.conv, None, self.act, train=train, dtype=self.dtype)
        x = x.astype(self.dtype)
        maps = []
        for i, (features, kernel, stride, pad, pool) in enumerate(_ALEXNET_CONVS, start=1):
            x = act(conv(features, (kernel, kernel), strides=(stride, stride),
                         padding=((pad, pad), (pad, pad)), name=f"conv{i}")(x))
            self.sow("intermediates", f"act{i}", x)
            if pool:
                x = nn.max_pool(x, (3, 3), strides=(2, 2))
                maps.append(x)
        self.sow("intermediates", "features", x)
        x = adaptive_avg_pool(x, 6).reshape((x.shape[0], -1))
        for i in (1, 2):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = act(nn.Dense(4096, dtype=self.dtype, name=f"fc{i}")(x))
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features(maps, x)


@register("alexnet")
def alexnet(**kwargs) -> AlexNet:
    return AlexNet(**kwargs)
