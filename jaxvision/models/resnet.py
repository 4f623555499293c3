"""ResNets: torchvision's ImageNet ResNet-18..152 (v1.5), SE-ResNet, CIFAR ResNets and their
plain (no-shortcut) counterparts, Wide ResNets.

Module names follow torchvision (``conv1``, ``bn1``, ``layer1_0`` for ``layer1.0``) except the
classifier, ``head`` (torchvision's ``fc``), so ``jaxvision.convert`` can load torchvision state
dicts; parameter counts equal torchvision's
(ResNet-18: 11,689,512; ResNet-50: 25,557,032) and He et al.'s for CIFAR (ResNet-20: 269,722).
"""

from __future__ import annotations

import functools
from typing import Literal, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.nn.blocks import BasicBlock, Bottleneck, PreActBlock, conv_kernel_init, maybe_norm
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool
from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register


def _layers(model, train: bool):
    """The injected layers of a ResNet family model, with torchvision's He init; convolutions
    are bias-free unless there is no norm to follow them."""
    return resolve_layers(model.conv, model.norm, model.act, train=train, dtype=model.dtype,
                          kernel_init=conv_kernel_init, use_bias=model.norm in (None, "none"))


class ResNet(Classifier):
    """ResNet with a 7x7/2 + maxpool stem (``stem="imagenet"``) or a 3x3/1 stem (``"cifar"``).

    ``block`` is ``BasicBlock`` or ``Bottleneck``; ``stage_sizes`` the blocks per stage; stage
    widths are ``base_features * 2**i``. ``se_reduction`` turns it into an SE-ResNet.
    ``num_classes=None``: features ``stem``, one per stage (``c2``..``c5`` for the ImageNet stem,
    ``c0``..``c3`` for the CIFAR one), ``pre_logits``.
    Sown intermediates: ``stem``, ``layer1``..``layer4``, ``pre_logits``.
    """

    stage_sizes: Sequence[int]
    block: type[nn.Module] = BasicBlock
    num_classes: int | None = 1000
    base_features: int = 64
    stem: Literal["imagenet", "cifar"] = "imagenet"
    groups: int = 1
    width_per_group: int = 64
    se_reduction: int | None = None
    drop_path_rate: float = 0.0
    zero_init_residual: bool = False
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = "batch_norm"
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        stride = 4 if self.stem == "imagenet" else 1
        widths = [self.base_features * 2**i * self.block.expansion
                  for i in range(len(self.stage_sizes))]
        return pyramid([(stride * 2**i, w) for i, w in enumerate(widths)], widths[-1],
                       stem=(stride, self.base_features))

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = layers = _layers(self, train)
        x = x.astype(self.dtype)
        if self.stem == "imagenet":
            x = conv(self.base_features, (7, 7), strides=(2, 2), padding=((3, 3), (3, 3)),
                     name="conv1")(x)
        elif self.stem == "cifar":
            x = conv(self.base_features, (3, 3), padding=((1, 1), (1, 1)), name="conv1")(x)
        else:
            raise ValueError(f"unknown stem {self.stem!r}; use 'imagenet' or 'cifar'")
        x = act(maybe_norm(norm, "bn1")(x))
        if self.stem == "imagenet":
            x = resolve_max_pool(self.conv)(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        self.sow("intermediates", "stem", x)
        maps = [x]
        total_blocks = sum(self.stage_sizes)
        block_index = 0
        for stage, num_blocks in enumerate(self.stage_sizes):
            for j in range(num_blocks):
                extra = {}
                if self.block is Bottleneck:
                    extra = dict(groups=self.groups, base_width=self.width_per_group)
                x = self.block(
                    self.base_features * 2**stage,
                    strides=2 if stage > 0 and j == 0 else 1,
                    se_reduction=self.se_reduction,
                    drop_path_rate=self.drop_path_rate * block_index / max(total_blocks - 1, 1),
                    zero_init_last_bn=self.zero_init_residual,
                    **layers._asdict(),
                    name=f"layer{stage + 1}_{j}",
                    **extra,
                )(x, train=train)
                block_index += 1
            self.sow("intermediates", f"layer{stage + 1}", x)
            maps.append(x)
        x = jnp.mean(x, axis=(1, 2))
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features(maps, x)


class PlainBlock(nn.Module):
    """A basic block without its shortcut (He et al.'s "plain" net): 3x3 -> BN -> ReLU -> 3x3
    -> BN -> ReLU. Same names as :class:`BasicBlock`, so with option-A shortcuts (no
    parameters) a plain and a residual net share their variables."""

    features: int
    strides: int = 1
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"  # None: biased convs, no norm
    act: str | Activation = "relu"

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         kernel_init=conv_kernel_init)
        for i, strides in ((1, self.strides), (2, 1)):
            x = conv(self.features, (3, 3), strides=(strides, strides), use_bias=norm is None,
                     padding=((1, 1), (1, 1)), name=f"conv{i}")(x)
            x = act(x if norm is None else norm(name=f"bn{i}")(x))
        return x


class CifarResNet(Classifier):
    """He et al.'s CIFAR ResNet-(6n+2): 3x3 conv (16) then three stages of n basic blocks
    (16, 32, 64 channels) with parameter-free option-A shortcuts, GAP and a linear head.
    ``shortcut_kind="projection"`` gives option B instead. ``skip=False`` drops every
    shortcut: the paper's plain net of the same depth and (option A) the same parameters,
    whose training error grows with depth (Fig. 6). Features: ``stem``, ``c0``, ``c1``,
    ``c2`` (strides 1, 2, 4), ``pre_logits``.
    """

    depth: int = 20
    num_classes: int | None = 10
    widths: Sequence[int] = (16, 32, 64)
    shortcut_kind: Literal["option_a", "projection"] = "option_a"
    skip: bool = True
    drop_path_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = "batch_norm"
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        return pyramid([(2**i, w) for i, w in enumerate(self.widths)], self.widths[-1],
                       stem=(1, self.widths[0]))

    @nn.nowrap
    def _block(self, layers, width: int, strides: int, name: str) -> nn.Module:
        if not self.skip:
            return PlainBlock(width, strides=strides, **layers._asdict(), name=name)
        return BasicBlock(width, strides=strides, shortcut_kind=self.shortcut_kind,
                          drop_path_rate=self.drop_path_rate, **layers._asdict(), name=name)

    @nn.compact
    def __call__(self, x, *, train: bool):
        if (self.depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110, ...), "
                             f"got {self.depth}")
        n = (self.depth - 2) // 6
        conv, norm, act = layers = _layers(self, train)
        x = x.astype(self.dtype)
        x = conv(self.widths[0], (3, 3), padding=((1, 1), (1, 1)), name="conv1")(x)
        x = act(maybe_norm(norm, "bn1")(x))
        self.sow("intermediates", "stem", x)
        maps = [x]
        for stage, width in enumerate(self.widths):
            for j in range(n):
                x = self._block(layers, width, 2 if stage > 0 and j == 0 else 1,
                                f"layer{stage + 1}_{j}")(x, train=train)
            self.sow("intermediates", f"layer{stage + 1}", x)
            maps.append(x)
        x = jnp.mean(x, axis=(1, 2))
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features(maps, x)


class WideResNet(Classifier):
    """WRN-depth-k (Zagoruyko & Komodakis): pre-activation blocks, widths 16k/32k/64k,
    (depth-4)/6 blocks per stage, dropout between the convs. WRN-28-10: 36,479,194 params.

    Features: ``stem``, ``c0``, ``c1``, ``c2`` (strides 1, 2, 4), ``pre_logits``. Blocks are
    pre-activation, so (as timm's ResNetV2) the last map is taken after the final BN-ReLU:
    the only normalised form of it, and the one the head pools.
    """

    depth: int = 28
    widen_factor: int = 10
    num_classes: int | None = 10
    dropout_rate: float = 0.0
    drop_path_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = "batch_norm"
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        widths = [w * self.widen_factor for w in (16, 32, 64)]
        return pyramid([(2**i, w) for i, w in enumerate(widths)], widths[-1], stem=(1, 16))

    @nn.compact
    def __call__(self, x, *, train: bool):
        if (self.depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n+4 (16, 22, 28, 40, ...), got {self.depth}")
        n = (self.depth - 4) // 6
        conv, norm, act = layers = _layers(self, train)
        x = x.astype(self.dtype)
        x = conv(16, (3, 3), padding=((1, 1), (1, 1)), name="conv1")(x)
        self.sow("intermediates", "stem", x)
        maps = [x]
        for stage, width in enumerate((16, 32, 64)):
            for j in range(n):
                x = PreActBlock(width * self.widen_factor,
                                strides=2 if stage > 0 and j == 0 else 1,
                                dropout_rate=self.dropout_rate,
                                drop_path_rate=self.drop_path_rate, **layers._asdict(),
                                name=f"layer{stage + 1}_{j}")(x, train=train)
            self.sow("intermediates", f"layer{stage + 1}", x)
            maps.append(x)
        x = act(maybe_norm(norm, "bn_final")(x))
        maps[-1] = x
        x = jnp.mean(x, axis=(1, 2))
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features(maps, x)


_IMAGENET_DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def _imagenet_resnet(depth: int, se: bool, **kwargs) -> ResNet:
    block, stages = _IMAGENET_DEPTHS[depth]
    if se:
        kwargs.setdefault("se_reduction", 16)
    return ResNet(**{"stage_sizes": stages, "block": block, **kwargs})


def _register_all() -> None:
    for depth in _IMAGENET_DEPTHS:
        register(f"resnet{depth}")(functools.partial(_imagenet_resnet, depth, False))
        register(f"se_resnet{depth}")(functools.partial(_imagenet_resnet, depth, True))
    for depth in (20, 32, 44, 56, 110, 1202):
        register(f"cifar_resnet{depth}")(functools.partial(CifarResNet, depth=depth))
    for depth in (20, 32, 56):  # the depth study's; other 6n+2 depths: depth=...
        register(f"plain_resnet{depth}")(functools.partial(CifarResNet, depth=depth, skip=False))
    for depth, k in ((28, 10), (16, 8), (16, 4), (40, 4), (28, 2)):
        register(f"wide_resnet{depth}_{k}")(
            functools.partial(WideResNet, depth=depth, widen_factor=k))


_register_all()
