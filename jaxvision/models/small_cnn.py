"""A small CNN with BatchNorm and dropout: the engine's reference model and the quickstart's."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool


class SmallCNN(Classifier):
    """[Conv3x3 -> BN -> ReLU] blocks with 2x2 max-pooling after each stage, then a dropout head.

    ``norm=None`` gives the same network without normalisation (used to test the parallel
    engine where BatchNorm semantics would otherwise differ). ``num_classes=None``:
    features ``c1``, ``c2``, ... (each stage after its pool) and ``pre_logits`` (after ``fc``,
    the hidden layer).
    """

    num_classes: int | None = 10
    widths: Sequence[int] = (32, 64)
    hidden: int = 128
    dropout_rate: float = 0.25
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        return pyramid([(2**i, w) for i, w in enumerate(self.widths, start=1)], self.hidden)

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype)
        x = x.astype(self.dtype)
        maps = []
        for i, width in enumerate(self.widths):
            x = conv(width, (3, 3), padding=1, use_bias=norm is None, name=f"conv{i}")(x)
            if norm is not None:
                x = norm(name=f"bn{i}")(x)
            x = act(x)
            self.sow("intermediates", f"stage{i}", x)
            x = resolve_max_pool(self.conv)(x, (2, 2), strides=(2, 2))
            maps.append(x)
        x = x.reshape((x.shape[0], -1))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = act(nn.Dense(self.hidden, dtype=self.dtype, name="fc")(x))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return self.head_or_features(maps, x)


@register("small_cnn")
def small_cnn(**kwargs) -> SmallCNN:
    return SmallCNN(**kwargs)
