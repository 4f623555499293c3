"""The course's SimpleCNN (its "architectural design principles" example): 94,986 params for RGB, 10 classes.

Three [Conv3x3 pad 1 -> BN -> ReLU -> MaxPool 2] blocks (32, 64, 128 channels), global average
pooling, one linear layer (``head``). ``head="flatten"`` swaps GAP for flatten + linear, the
comparison of the course's "Global Average Pooling" section (its parameters then depend on the
input size).
"""

from __future__ import annotations

from typing import Literal, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool


class SimpleCNN(Classifier):
    """``num_classes=None``: features ``c1``..``c3`` (the blocks, after pooling) and
    ``pre_logits``. Sown intermediates: ``block1``..``block3``, ``features`` (the map the head
    sees, on which a class activation map is computed), ``pre_logits``."""

    num_classes: int | None = 10
    widths: Sequence[int] = (32, 64, 128)
    head: Literal["gap", "flatten"] = "gap"
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = "batch_norm"
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        pre_logits = self.widths[-1] if self.head == "gap" else None  # flatten: input-dependent
        return pyramid([(2**i, w) for i, w in enumerate(self.widths, start=1)], pre_logits)

    @nn.compact
    def __call__(self, x, *, train: bool):
        if self.head not in ("gap", "flatten"):
            raise ValueError(f"SimpleCNN head must be 'gap' or 'flatten', got {self.head!r}")
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype)
        x = x.astype(self.dtype)
        maps = []
        for i, width in enumerate(self.widths, start=1):
            x = conv(width, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{i}")(x)
            x = act(norm(name=f"bn{i}")(x))
            x = resolve_max_pool(self.conv)(x, (2, 2), strides=(2, 2))
            self.sow("intermediates", f"block{i}", x)
            maps.append(x)
        self.sow("intermediates", "features", x)
        if self.head == "gap":
            x = jnp.mean(x, axis=(1, 2))
        else:
            x = x.reshape((x.shape[0], -1))
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features(maps, x)


@register("simple_cnn")
def simple_cnn(**kwargs) -> SimpleCNN:
    return SimpleCNN(**kwargs)
