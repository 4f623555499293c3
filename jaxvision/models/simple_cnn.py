"""The course's SimpleCNN (C-1, "Architectural Design Principles"): 94,986 params for RGB, 10 classes.

Three [Conv3x3 pad 1 -> BN -> ReLU -> MaxPool 2] blocks (32, 64, 128 channels), global average
pooling, one linear layer (``head``). ``head="flatten"`` swaps GAP for flatten + linear, the
comparison of the course's "Global Average Pooling" section (its parameters then depend on the
input size).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.nn.blocks import batch_norm
from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.conv import resolve_conv


class SimpleCNN(Classifier):
    """``num_classes=None``: features ``c1``..``c3`` (the blocks, after pooling) and
    ``pre_logits``. Sown intermediates: ``block1``..``block3``, ``features`` (the map the head
    sees, on which a class activation map is computed), ``pre_logits``."""

    num_classes: int | None = 10
    widths: Sequence[int] = (32, 64, 128)
    head: Literal["gap", "flatten"] = "gap"
    bn_axis_name: str | None = None
    dtype: jnp.dtype = jnp.float32
    conv_general_dilated: str | Callable | None = None  # "fast": see nn.resolve_conv

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        pre_logits = self.widths[-1] if self.head == "gap" else None  # flatten: input-dependent
        return pyramid([(2**i, w) for i, w in enumerate(self.widths, start=1)], pre_logits)

    @nn.compact
    def __call__(self, x, *, train: bool):
        if self.head not in ("gap", "flatten"):
            raise ValueError(f"SimpleCNN head must be 'gap' or 'flatten', got {self.head!r}")
        x = x.astype(self.dtype)
        maps = []
        for i, width in enumerate(self.widths, start=1):
            x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype,
                        name=f"conv{i}",
                        conv_general_dilated=resolve_conv(self.conv_general_dilated))(x)
            x = nn.relu(batch_norm(train=train, axis_name=self.bn_axis_name, dtype=self.dtype,
                                   name=f"bn{i}")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
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
