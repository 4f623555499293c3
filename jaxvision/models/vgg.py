"""VGG-11/13/16/19 with and without BatchNorm, laid out as torchvision's (VGG-16: 138,357,544).

Convs are named ``conv0``.. in order (``bn0``.. with BN); the classifier ``fc1``, ``fc2``,
``head``. The classifier flattens the 7x7x512 map in NHWC order; ``jaxvision.convert``
permutes torchvision's NCHW-ordered ``classifier.0`` weight to match.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.nn.blocks import conv_kernel_init
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool
from jaxvision.ops.pooling import adaptive_avg_pool
from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register

# Stage layouts: number of 3x3 convs per stage (widths 64, 128, 256, 512, 512).
VGG_STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
_VGG_WIDTHS = (64, 128, 256, 512, 512)


class VGG(Classifier):
    """Stages of 3x3 convs (+BN) + ReLU, each closed by 2x2/2 max-pooling; adaptive 7x7 average
    pool; FC-4096 -> FC-4096 -> head with dropout.

    ``num_classes=None``: features ``c1``..``c5`` (each stage after its pool, strides 2..32)
    and ``pre_logits`` (after ``fc2``).
    Sown intermediates: ``stage1``..``stage5`` (last ReLU of each stage, before pooling),
    ``features`` (after the last pool), ``pre_logits``.
    """

    stage_sizes: Sequence[int] = VGG_STAGES[16]
    num_classes: int | None = 1000
    dropout_rate: float = 0.5
    hidden: int = 4096
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef | None = None  # "batch_norm": VGG-BN
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        widths = _VGG_WIDTHS[:len(self.stage_sizes)]
        return pyramid([(2**i, w) for i, w in enumerate(widths, start=1)], self.hidden)

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype, kernel_init=conv_kernel_init)
        x = x.astype(self.dtype)
        maps = []
        index = 0
        for stage, (num_convs, width) in enumerate(zip(self.stage_sizes, _VGG_WIDTHS), start=1):
            for _ in range(num_convs):
                x = conv(width, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{index}")(x)
                if norm is not None:
                    x = norm(name=f"bn{index}")(x)
                x = act(x)
                index += 1
            self.sow("intermediates", f"stage{stage}", x)
            x = resolve_max_pool(self.conv)(x, (2, 2), strides=(2, 2))
            maps.append(x)
        self.sow("intermediates", "features", x)
        x = adaptive_avg_pool(x, 7).reshape((x.shape[0], -1))
        dense_init = nn.initializers.normal(0.01)
        for i in (1, 2):
            x = act(nn.Dense(self.hidden, kernel_init=dense_init, dtype=self.dtype,
                             name=f"fc{i}")(x))
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features(maps, x, kernel_init=dense_init)


def _vgg(depth: int, bn: bool, **kwargs) -> VGG:
    return VGG(**{"stage_sizes": VGG_STAGES[depth], "norm": "batch_norm" if bn else None,
                  **kwargs})


def _register_all() -> None:
    for depth in VGG_STAGES:
        register(f"vgg{depth}")(functools.partial(_vgg, depth, False))
        register(f"vgg{depth}_bn")(functools.partial(_vgg, depth, True))


_register_all()
