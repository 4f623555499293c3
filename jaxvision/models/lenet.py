"""LeNet-5 (LeCun et al. 1998), the common variant with a full C3 table: 61,706 parameters.

28x28 inputs (MNIST) are zero-padded by 2 in C1 to give the paper's 32x32 geometry.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool


class LeNet5(Classifier):
    """C1 conv5x5(6) -> S2 pool -> C3 conv5x5(16) -> S4 pool -> F5 120 -> F6 84 -> head.

    ``act`` (tanh as in the paper, or relu) and ``pool`` ("avg" as the paper's
    subsampling, or "max") are the modern-vs-classic knobs. ``conv1_padding=0`` for 32x32 input.
    ``num_classes=None``: features ``c1`` (S2, stride 2), ``c2`` (S4, stride 4), ``pre_logits``
    (F6). Sown intermediates keep the paper's layer names instead: ``c1``, ``c3`` (C1 and C3
    conv outputs), ``features`` (S4), ``pre_logits``.
    """

    num_classes: int | None = 10
    conv1_padding: int = 2
    act: str | Activation = "tanh"
    pool: str = "avg"
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        return pyramid([(2, 6), (4, 16)], 84)

    @nn.compact
    def __call__(self, x, *, train: bool):
        if self.pool not in ("avg", "max"):
            raise ValueError(f"LeNet5 pool must be 'avg' or 'max', got {self.pool!r}")
        pool = nn.avg_pool if self.pool == "avg" else resolve_max_pool(self.conv)
        p = self.conv1_padding
        conv, _, act = resolve_layers(self.conv, None, self.act, train=train, dtype=self.dtype)
        x = x.astype(self.dtype)
        x = act(conv(6, (5, 5), padding=((p, p), (p, p)), name="conv1")(x))
        self.sow("intermediates", "c1", x)
        x = s2 = pool(x, (2, 2), strides=(2, 2))
        x = act(conv(16, (5, 5), padding="VALID", name="conv2")(x))
        self.sow("intermediates", "c3", x)
        x = s4 = pool(x, (2, 2), strides=(2, 2))
        self.sow("intermediates", "features", x)
        x = x.reshape((x.shape[0], -1))
        x = act(nn.Dense(120, dtype=self.dtype, name="fc1")(x))
        x = act(nn.Dense(84, dtype=self.dtype, name="fc2")(x))
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features([s2, s4], x)


@register("lenet5")
def lenet5(**kwargs) -> LeNet5:
    return LeNet5(**kwargs)
