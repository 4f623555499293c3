"""EfficientNet-B0..B3 (Tan & Le 2019) laid out as torchvision's (B0: 5,288,548 params).

B0 is a MobileNetV2-like stack of MBConv blocks (inverted residual + squeeze-and-excitation,
SiLU, 3x3 or 5x5 depthwise, stochastic depth); B1..B3 scale it: widths by ``width_mult``
(rounded by :func:`~jaxvision.models.mobilenet.make_divisible`), repeats by ``ceil(n *
depth_mult)``, and the input resolution, carried as ``image_size`` (what ``jaxvision.convert``
and pretrained loading trace the model at; the network itself takes any size).
:func:`compound_scale` is the paper's rule behind the three factors.

BatchNorm: torchvision's B0..B4 use ``nn.BatchNorm2d`` defaults (eps 1e-5, momentum 0.1),
which is jaxvision's ``"batch_norm"``; its B5+ (not registered here) use eps 1e-3, momentum
0.01: pass ``norm=functools.partial(nn.BatchNorm, epsilon=1e-3, momentum=0.99)``.

Module names follow torchvision's ``features.S.J``: ``features_0`` (stem), ``features_<S>_<J>``
(block J of stage S, with ``expand``/``depthwise``/``se``/``project``), ``features_8`` (the
1x1 conv to 4x the last width), ``head`` (``classifier.1``).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.models.backbone import Classifier, FeatureInfo
from jaxvision.models.mobilenet import BlockSpec, level_ends, make_divisible, mobile_features
from jaxvision.models.registry import register
from jaxvision.nn.blocks import ConvBNAct, conv_kernel_init
from jaxvision.nn.layers import Activation, ModuleDef, resolve_act, resolve_layers
from jaxvision.nn.regularization import DropPath

# Tan & Le, Table 1 (B0): (expansion, kernel, first stride, in, out, repeats) per stage.
EFFICIENTNET_B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                          (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                          (6, 3, 1, 192, 320, 1))

# (width_mult, depth_mult, resolution, dropout): the paper's B0..B3 (torchvision's factors
# and dropouts; its B2 weights were trained at 288 px, the paper's B2 uses 260).
EFFICIENTNET_VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2),
                         "b2": (1.1, 1.2, 260, 0.3), "b3": (1.2, 1.4, 300, 0.3)}


def compound_scale(phi: float, alpha: float = 1.2, beta: float = 1.1,
                   gamma: float = 1.15) -> tuple[float, float, float]:
    """Compound scaling (Tan & Le, eq. 3): depth ``alpha**phi``, width ``beta**phi``,
    resolution ``gamma**phi``. With the paper's grid-searched defaults ``alpha * beta**2 *
    gamma**2`` is about 2, so FLOPs grow about ``2**phi``. (The published B1..B7 round these
    by hand, hence the table above rather than this formula.)"""
    return alpha ** phi, beta ** phi, gamma ** phi


class SqueezeExcite(nn.Module):
    """EfficientNet's SE (torchvision ``SqueezeExcitation``): GAP -> 1x1 to ``squeeze`` ->
    ``act`` -> 1x1 back -> sigmoid gate. Unlike ResNet's SE the width is set from the block
    *input* (``in // 4``), not from the expanded channels it gates."""

    squeeze: int
    act: str | Activation = "silu"

    @nn.compact
    def __call__(self, x):
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = resolve_act(self.act)(nn.Dense(self.squeeze, dtype=x.dtype, name="fc1")(s))
        return x * nn.sigmoid(nn.Dense(x.shape[-1], dtype=x.dtype, name="fc2")(s))


class MBConv(nn.Module):
    """Mobile inverted bottleneck with SE: [1x1 expand] -> kxk depthwise -> SE -> linear 1x1
    project; stride 1 and equal widths add the input back, through stochastic depth
    (``drop_path_rate``, per example, as torchvision's ``StochasticDepth(p, "row")``)."""

    features: int
    kernel_size: int = 3
    strides: int = 1
    expand_ratio: int = 6
    drop_path_rate: float = 0.0
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef = "batch_norm"
    act: str | Activation = "silu"

    @nn.compact
    def __call__(self, x, *, train: bool):
        layers = dict(conv=self.conv, norm=self.norm)
        in_features = x.shape[-1]
        hidden = make_divisible(in_features * self.expand_ratio)
        y = x
        if hidden != in_features:
            y = ConvBNAct(hidden, 1, act=self.act, name="expand", **layers)(y, train=train)
        y = ConvBNAct(hidden, self.kernel_size, strides=self.strides, groups=hidden,
                      act=self.act, name="depthwise", **layers)(y, train=train)
        y = SqueezeExcite(max(1, in_features // 4), self.act, name="se")(y)
        y = ConvBNAct(self.features, 1, act=None, name="project", **layers)(y, train=train)
        if self.strides == 1 and in_features == self.features:
            return x + DropPath(self.drop_path_rate, name="drop_path")(y, train=train)
        return y


class EfficientNet(Classifier):
    """EfficientNet: 3x3/2 stem, seven MBConv stages, 1x1 conv to 4x the last width, GAP,
    dropout, linear head; ``drop_path_rate`` rises linearly over the blocks (block ``i`` of
    ``n``: ``rate * i / n``, torchvision's rule).

    ``num_classes=None``: features ``stem``, ``c1`` .. ``c5`` (the last map per stride,
    B0 widths 16, 24, 40, 112 and the 1280 head conv) and ``pre_logits``; sown under the
    same names.
    """

    num_classes: int | None = 1000
    width_mult: float = 1.0
    depth_mult: float = 1.0
    image_size: int = 224
    dropout_rate: float = 0.2
    drop_path_rate: float = 0.2
    stages: Sequence[tuple[int, int, int, int, int, int]] = EFFICIENTNET_B0_STAGES
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = "batch_norm"
    act: str | Activation = "silu"

    @nn.nowrap
    def plan(self) -> tuple[int, list[list[BlockSpec]], int]:
        """Stem width, the blocks of each stage, head-conv width after compound scaling."""
        width = lambda c: make_divisible(c * self.width_mult)  # noqa: E731
        stages = [[BlockSpec(width(out), stride if j == 0 else 1, expand, kernel)
                   for j in range(math.ceil(repeats * self.depth_mult))]
                  for expand, kernel, stride, _, out, repeats in self.stages]
        return width(self.stages[0][3]), stages, 4 * width(self.stages[-1][4])

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        stem, stages, last = self.plan()
        return mobile_features([b for s in stages for b in s], (2, stem), last)

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype, kernel_init=conv_kernel_init)
        layers = dict(conv=conv, norm=norm)
        stem, stages, last = self.plan()
        flat = [(s, j, b) for s, blocks in enumerate(stages, start=1) for j, b in enumerate(blocks)]
        names = [f.name for f in self.feature_info()]
        ends = {i: name for (i, _, _), name in zip(level_ends([b for *_, b in flat], 2),
                                                     names[1:])}
        x = ConvBNAct(stem, 3, strides=2, act=act, name="features_0", **layers)(
            x.astype(self.dtype), train=train)
        self.sow("intermediates", "stem", x)
        maps = [x]
        for i, (s, j, block) in enumerate(flat):
            x = MBConv(block.out, block.kernel, block.stride, block.expand,
                       drop_path_rate=self.drop_path_rate * i / len(flat), act=act,
                       name=f"features_{s}_{j}", **layers)(x, train=train)
            if i in ends and i + 1 < len(flat):
                self.sow("intermediates", ends[i], x)
                maps.append(x)
        x = ConvBNAct(last, 1, act=act, name=f"features_{len(stages) + 1}", **layers)(
            x, train=train)
        self.sow("intermediates", names[-2], x)
        maps.append(x)
        x = jnp.mean(x, axis=(1, 2))
        self.sow("intermediates", "pre_logits", x)
        if self.num_classes is not None:
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        # torchvision's head init: U(-1/sqrt(num_classes), 1/sqrt(num_classes)).
        head_init = nn.initializers.variance_scaling(1 / 3, "fan_out", "uniform")
        return self.head_or_features(maps, x, kernel_init=head_init)


def _efficientnet(variant: str, **kwargs) -> EfficientNet:
    width, depth, size, dropout = EFFICIENTNET_VARIANTS[variant]
    return EfficientNet(**{"width_mult": width, "depth_mult": depth, "image_size": size,
                           "dropout_rate": dropout, **kwargs})


def _register_all() -> None:
    for variant in EFFICIENTNET_VARIANTS:
        register(f"efficientnet_{variant}")(functools.partial(_efficientnet, variant))


_register_all()
