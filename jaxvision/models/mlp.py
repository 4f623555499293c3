"""Multi-layer perceptron on flattened images: the course's baseline against CNNs."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, resolve_act


class MLP(Classifier):
    """Flatten -> [Dense -> ReLU -> Dropout] * len(hidden) -> Dense(num_classes).

    ``num_classes=None``: no maps, only ``pre_logits`` (the last hidden layer).
    """

    num_classes: int | None = 10
    hidden: Sequence[int] = (256, 128)
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    act: str | Activation = "relu"  # see jaxvision.nn.layers

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        return pyramid([], self.hidden[-1] if self.hidden else None)

    @nn.compact
    def __call__(self, x, *, train: bool):
        act = resolve_act(self.act)
        x = x.reshape((x.shape[0], -1)).astype(self.dtype)
        for i, width in enumerate(self.hidden):
            x = act(nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(x))
            self.sow("intermediates", f"hidden{i}", x)
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return self.head_or_features([], x)


@register("mlp")
def mlp(**kwargs) -> MLP:
    return MLP(**kwargs)
