"""MobileNetV2 (Sandler et al. 2018) laid out as torchvision's (3,504,872 params at width 1.0).

Inverted residuals: a 1x1 expansion (x6), a 3x3 depthwise conv and a *linear* 1x1 projection,
ReLU6 after the first two; the shortcut joins the narrow ends. The width multiplier scales
every width through :func:`make_divisible`, the rounding torchvision and TensorFlow use, so
the widths (and weights) match theirs at any multiplier.

Module names follow torchvision's ``features.N``: ``features_0`` (stem), ``features_1`` ..
``features_17`` (blocks with ``expand``/``depthwise``/``project``), ``features_18`` (the 1x1
conv to 1280), then ``head`` (torchvision's ``classifier.1``); ``jaxvision.convert`` maps them.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.blocks import ConvBNAct, InvertedResidual, conv_kernel_init
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers

# Sandler et al., Table 2: (expansion t, channels c, repeats n, first stride s).
MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``,
    default ``divisor``), bumped up one step if that lost more than 10%: torchvision's and
    TensorFlow's ``_make_divisible``, which fixes every scaled width of MobileNet/EfficientNet."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class BlockSpec(NamedTuple):
    """One inverted-residual block of a plan: widths, stride and the block's own options."""

    out: int
    stride: int
    expand: int
    kernel: int = 3


def level_ends(blocks: Sequence[BlockSpec], stem_stride: int) -> list[tuple[int, int, int]]:
    """``(block index, stride, channels)`` of the last block at each stride: the map a pyramid
    level takes, as the next downsampling block sees it (timm's MobileNet/EfficientNet rule)."""
    ends, stride = [], stem_stride
    for i, block in enumerate(blocks):
        stride *= block.stride
        if i + 1 == len(blocks) or blocks[i + 1].stride > 1:
            ends.append((i, stride, block.out))
    return ends


def mobile_features(blocks: Sequence[BlockSpec], stem: tuple[int, int],
                    last_channels: int) -> tuple[FeatureInfo, ...]:
    """``feature_info`` of a stem + blocks + 1x1 head-conv network: ``stem``, one map per
    stride level, the deepest replaced by the head conv's output (the map the classifier
    pools), and ``pre_logits``."""
    stages = [(stride, channels) for _, stride, channels in level_ends(blocks, stem[0])]
    stages[-1] = (stages[-1][0], last_channels)
    return pyramid(stages, last_channels, stem=stem)


class MobileNetV2(Classifier):
    """MobileNetV2: 3x3/2 stem (32), 17 inverted residuals, 1x1 conv to 1280, GAP, dropout,
    linear head. ``width_mult`` scales every width (the last conv only when > 1, as in the
    paper); ``round_nearest`` is the rounding step.

    ``num_classes=None``: features ``stem`` (stride 2, 32), ``c1`` (16), ``c2`` (24), ``c3``
    (32), ``c4`` (96), ``c5`` (1280, the last conv), ``pre_logits``. Sown intermediates: the
    same names.
    """

    num_classes: int | None = 1000
    width_mult: float = 1.0
    round_nearest: int = 8
    dropout_rate: float = 0.2
    drop_path_rate: float = 0.0  # not in torchvision's model; per block, rising linearly
    setting: Sequence[tuple[int, int, int, int]] = MOBILENET_V2_SETTING
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = "batch_norm"  # torchvision's BatchNorm2d: eps 1e-5
    act: str | Activation = "relu6"

    @nn.nowrap
    def plan(self) -> tuple[int, list[BlockSpec], int]:
        """Stem width, the blocks, last-conv width (torchvision's rounding)."""
        width = lambda c: make_divisible(c * self.width_mult, self.round_nearest)  # noqa: E731
        blocks = [BlockSpec(width(c), s if i == 0 else 1, t)
                  for t, c, n, s in self.setting for i in range(n)]
        last = make_divisible(1280 * max(1.0, self.width_mult), self.round_nearest)
        return width(32), blocks, last

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        stem, blocks, last = self.plan()
        return mobile_features(blocks, (2, stem), last)

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype, kernel_init=conv_kernel_init)
        layers = dict(conv=conv, norm=norm)
        stem, blocks, last = self.plan()
        names = [f.name for f in self.feature_info()]
        ends = {i: name for (i, _, _), name in zip(level_ends(blocks, 2), names[1:])}
        x = ConvBNAct(stem, 3, strides=2, act=act, name="features_0", **layers)(
            x.astype(self.dtype), train=train)
        self.sow("intermediates", "stem", x)
        maps = [x]
        for i, block in enumerate(blocks):
            x = InvertedResidual(block.out, strides=block.stride, expand_ratio=block.expand,
                                 drop_path_rate=self.drop_path_rate * i / len(blocks),
                                 act=act, name=f"features_{i + 1}", **layers)(x, train=train)
            if i in ends and i + 1 < len(blocks):
                self.sow("intermediates", ends[i], x)
                maps.append(x)
        x = ConvBNAct(last, 1, act=act, name=f"features_{len(blocks) + 1}", **layers)(
            x, train=train)
        self.sow("intermediates", names[-2], x)
        maps.append(x)
        x = jnp.mean(x, axis=(1, 2))
        self.sow("intermediates", "pre_logits", x)
        if self.num_classes is not None:
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return self.head_or_features(maps, x, kernel_init=nn.initializers.normal(0.01))


@register("mobilenet_v2")
def mobilenet_v2(**kwargs) -> MobileNetV2:
    return MobileNetV2(**kwargs)
