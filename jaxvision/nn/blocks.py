"""Reusable CNN building blocks (Flax Linen), laid out so torchvision weights map one to one.

Every block takes ``x`` in NHWC and ``train`` as a keyword, and its layers as ``conv``,
``norm`` and ``act`` (names or constructors, see :mod:`jaxvision.nn.layers`): BatchNorm with
PyTorch's defaults, the fast convolution and ReLU unless told otherwise, so that synced, frozen,
Group-, Layer- or InstanceNorm, or none at all, are each one argument (``norm=None`` or
``"none"`` gives the convolutions a bias instead). Convolutions use explicit symmetric padding so
that stride-2 layers sample the same pixels as PyTorch (Flax ``"SAME"`` pads asymmetrically).

Two options change a block's computation but not its parameters (torchvision weights still
load): ``padding_mode`` (``zeros``, ``reflect``, ``replicate``, ``circular``: PyTorch
``Conv2d(padding_mode=...)``, i.e. pad explicitly, then convolve without padding) and
``downsample`` (``"stride"``: a strided convolution, the default; ``"max_pool"`` or
``"avg_pool"``: the convolution runs at stride 1 and a pool with window and stride ``strides``
follows it, and a projection shortcut pools before its 1x1 convolution, as in ResNet-D).
"""

from __future__ import annotations

from typing import Literal, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, with_defaults
from jaxvision.nn.regularization import DropPath
from jaxvision.ops.padding import pad_images

# He-normal with fan_out, as torchvision initialises ResNet/VGG convolutions.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
zeros = nn.initializers.zeros


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2:
        raise ValueError(f"expected an int or a pair, got {value!r}")
    return value  # type: ignore[return-value]


def symmetric_padding(kernel_size: int | Sequence[int], dilation: int = 1) -> tuple[tuple[int, int], ...]:
    """PyTorch-style padding ``(k - 1) * d // 2`` on both sides, per spatial axis: what
    torchvision's convs use at every stride (``ops.same_padding`` is the stride-1 'same')."""
    return tuple(((k - 1) * dilation // 2,) * 2 for k in _pair(kernel_size))


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")  # torch.nn.Conv2d's
DOWNSAMPLES = ("stride", "max_pool", "avg_pool")
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
Downsample = Literal["stride", "max_pool", "avg_pool"]


def _check_options(padding_mode: str, downsample: str = "stride") -> None:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"unknown padding_mode {padding_mode!r}; use one of {PADDING_MODES}")
    if downsample not in DOWNSAMPLES:
        raise ValueError(f"unknown downsample {downsample!r}; use one of {DOWNSAMPLES}")


def padded_conv(conv: ModuleDef, features: int, kernel_size, *, padding=None, dilation: int = 1,
                padding_mode: str = "zeros", **kwargs):
    """``conv(features, kernel_size, ...)`` as a function of ``x`` that pads like PyTorch's
    ``Conv2d(padding_mode=...)``: a mode other than zeros pads ``x`` explicitly and convolves
    without padding (the parameters, and their names, are those of the plain conv)."""
    _check_options(padding_mode)
    kernel = _pair(kernel_size)
    pads = (symmetric_padding(kernel, dilation) if padding is None
            else padding if isinstance(padding, str) else tuple(padding))
    zeros_mode = padding_mode == "zeros"
    if isinstance(pads, str) and not zeros_mode:
        raise ValueError(f"padding_mode={padding_mode!r} needs explicit padding amounts, "
                         f"got {pads!r}")
    layer = conv(features, kernel, padding=pads if zeros_mode else ((0, 0), (0, 0)),
                 kernel_dilation=_pair(dilation), **kwargs)
    return layer if zeros_mode else (lambda x: layer(pad_images(x, pads, mode=padding_mode)))


def pool_downsample(x: jax.Array, kind: str, strides) -> jax.Array:
    """``x`` max- or average-pooled with window and stride ``strides`` (no-op at stride 1)."""
    window = _pair(strides)
    if window == (1, 1) or kind == "stride":
        return x
    pool = nn.max_pool if kind == "max_pool" else nn.avg_pool
    return pool(x, window, strides=window)


def maybe_norm(norm, name: str, **kwargs):
    """``norm(name=...)``, or the identity when there is no norm."""
    return (lambda x: x) if norm is None else norm(name=name, **kwargs)


class ConvBNAct(nn.Module):
    """Conv -> norm -> activation (torchvision ``Conv2dNormActivation``).

    ``act=None`` leaves the output linear (e.g. the last conv of a residual branch);
    ``norm=None`` gives a biased conv instead. With ``downsample`` a pool the convolution runs
    at stride 1 and the pool comes last (conv -> norm -> act -> pool, as in VGG).
    """

    features: int
    kernel_size: int | Sequence[int] = 3
    strides: int | Sequence[int] = 1
    padding: Sequence[tuple[int, int]] | None = None  # None: symmetric "same" padding
    dilation: int = 1
    groups: int = 1
    norm_zero_init: bool = False
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation | None = "relu"
    padding_mode: PaddingMode = "zeros"
    downsample: Downsample = "stride"

    @nn.compact
    def __call__(self, x, *, train: bool):
        _check_options(self.padding_mode, self.downsample)
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         kernel_init=conv_kernel_init)
        strides = self.strides if self.downsample == "stride" else 1
        x = padded_conv(conv, self.features, self.kernel_size, strides=_pair(strides),
                        padding=self.padding, dilation=self.dilation,
                        padding_mode=self.padding_mode, feature_group_count=self.groups,
                        use_bias=norm is None, name="conv")(x)
        if norm is not None:
            x = norm(name="bn", **(dict(scale_init=zeros) if self.norm_zero_init else {}))(x)
        x = act(x) if act is not None else x
        return pool_downsample(x, self.downsample, self.strides)


class SEBlock(nn.Module):
    """Squeeze-and-Excitation (Hu et al.): ``x * sigmoid(W2 relu(W1 GAP(x)))``.

    The bottleneck width is ``max(channels // reduction, min_width)``; both layers have biases
    (C=256, r=16: 8,464 parameters).
    """

    reduction: int = 16
    min_width: int = 1

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        if self.reduction < 1:
            raise ValueError(f"SEBlock reduction must be >= 1, got {self.reduction}")
        squeezed = jnp.mean(x, axis=(1, 2), keepdims=True)
        hidden = max(channels // self.reduction, self.min_width)
        s = nn.relu(nn.Dense(hidden, dtype=x.dtype, name="fc1")(squeezed))
        s = nn.sigmoid(nn.Dense(channels, dtype=x.dtype, name="fc2")(s))
        return x * s


def _option_a_shortcut(x: jax.Array, features: int, strides: int) -> jax.Array:
    """He et al.'s CIFAR "option A": subsample by striding and zero-pad the new channels."""
    if strides > 1:
        x = x[:, ::strides, ::strides, :]
    extra = features - x.shape[-1]
    if extra < 0:
        raise ValueError(f"option-A shortcut cannot reduce channels ({x.shape[-1]} -> {features})")
    if extra:
        x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
    return x


ShortcutKind = Literal["projection", "option_a"]


class _ResidualBase(nn.Module):
    """Shared layers / shortcut / SE / DropPath logic of the residual blocks."""

    def layers(self, train: bool):
        return resolve_layers(self.conv, self.norm, self.act, train=train,
                              kernel_init=conv_kernel_init)

    def shortcut(self, x, out_features: int, conv, norm):
        strides = self.strides
        if x.shape[-1] == out_features and strides == 1:
            return x
        if self.shortcut_kind == "option_a":
            return _option_a_shortcut(x, out_features, strides)
        if self.shortcut_kind != "projection":
            raise ValueError(f"unknown shortcut_kind {self.shortcut_kind!r}; "
                             "use 'projection' or 'option_a'")
        if self.downsample != "stride":
            x, strides = pool_downsample(x, self.downsample, strides), 1
        x = conv(out_features, (1, 1), strides=(strides, strides), use_bias=norm is None,
                 name="downsample_conv")(x)
        return maybe_norm(norm, "downsample_bn")(x)

    def strided_conv(self, conv, norm, features: int, name: str, **kwargs):
        """The block's 3x3 conv that downsamples: strided, or at stride 1 then pooled."""
        _check_options(self.padding_mode, self.downsample)
        strides = self.strides if self.downsample == "stride" else 1
        layer = padded_conv(conv, features, 3, strides=(strides, strides),
                            padding_mode=self.padding_mode, use_bias=norm is None, name=name,
                            **kwargs)
        return lambda x: pool_downsample(layer(x), self.downsample, self.strides)

    def merge(self, residual, branch, act, *, train: bool):
        if self.se_reduction:
            branch = SEBlock(self.se_reduction, name="se")(branch)
        branch = DropPath(self.drop_path_rate, name="drop_path")(branch, train=train)
        return act(residual + branch)

    def last_norm(self, norm, name: str):
        return maybe_norm(norm, name, **(dict(scale_init=zeros) if self.zero_init_last_bn else {}))


class BasicBlock(_ResidualBase):
    """ResNet basic block: 3x3 -> BN -> ReLU -> 3x3 -> BN, plus shortcut, then ReLU.

    Output channels = ``features``. A shortcut is only added when shape changes:
    ``"projection"`` (1x1 conv + BN, torchvision's ``downsample``) or ``"option_a"``
    (He et al.'s parameter-free CIFAR shortcut).
    """

    features: int
    strides: int = 1
    shortcut_kind: ShortcutKind = "projection"
    se_reduction: int | None = None
    drop_path_rate: float = 0.0
    zero_init_last_bn: bool = False
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"
    padding_mode: PaddingMode = "zeros"
    downsample: Downsample = "stride"
    expansion = 1

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = self.layers(train)
        y = self.strided_conv(conv, norm, self.features, "conv1")(x)
        y = act(maybe_norm(norm, "bn1")(y))
        y = padded_conv(conv, self.features, 3, padding_mode=self.padding_mode,
                        use_bias=norm is None, name="conv2")(y)
        y = self.last_norm(norm, "bn2")(y)
        return self.merge(self.shortcut(x, self.features, conv, norm), y, act, train=train)


class Bottleneck(_ResidualBase):
    """ResNet v1.5 bottleneck: 1x1 reduce -> 3x3 (strided, grouped) -> 1x1 expand (x4).

    ``features`` is the inner width before ``groups``/``base_width`` scaling, as torchvision's
    ``planes``; the output has ``features * expansion`` channels.
    """

    features: int
    strides: int = 1
    groups: int = 1
    base_width: int = 64
    expansion: int = 4
    shortcut_kind: ShortcutKind = "projection"
    se_reduction: int | None = None
    drop_path_rate: float = 0.0
    zero_init_last_bn: bool = False
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"
    padding_mode: PaddingMode = "zeros"
    downsample: Downsample = "stride"

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = self.layers(train)
        conv = with_defaults(conv, use_bias=norm is None)
        width = int(self.features * (self.base_width / 64.0)) * self.groups
        out_features = self.features * self.expansion
        y = act(maybe_norm(norm, "bn1")(conv(width, (1, 1), name="conv1")(x)))
        y = self.strided_conv(conv, norm, width, "conv2", feature_group_count=self.groups)(y)
        y = act(maybe_norm(norm, "bn2")(y))
        y = self.last_norm(norm, "bn3")(conv(out_features, (1, 1), name="conv3")(y))
        return self.merge(self.shortcut(x, out_features, conv, norm), y, act, train=train)


class PreActBlock(nn.Module):
    """Pre-activation basic block (BN -> ReLU -> conv, twice), as in Wide ResNets.

    The shortcut is a plain 1x1 conv (no BN) when the shape changes; ``dropout_rate`` sits
    between the two convolutions as in Zagoruyko & Komodakis.
    """

    features: int
    strides: int = 1
    dropout_rate: float = 0.0
    drop_path_rate: float = 0.0
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"
    padding_mode: PaddingMode = "zeros"
    downsample: Downsample = "stride"

    @nn.compact
    def __call__(self, x, *, train: bool):
        _check_options(self.padding_mode, self.downsample)
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         kernel_init=conv_kernel_init)
        conv = with_defaults(conv, use_bias=norm is None)
        strides = self.strides if self.downsample == "stride" else 1
        pre = act(maybe_norm(norm, "bn1")(x))
        if x.shape[-1] != self.features or self.strides != 1:
            shortcut = conv(self.features, (1, 1), strides=(strides,) * 2,
                            name="shortcut_conv")(pool_downsample(pre, self.downsample,
                                                                  self.strides))
        else:
            shortcut = x
        y = padded_conv(conv, self.features, 3, strides=(strides,) * 2,
                        padding_mode=self.padding_mode, name="conv1")(pre)
        y = pool_downsample(y, self.downsample, self.strides)
        y = act(maybe_norm(norm, "bn2")(y))
        y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        y = padded_conv(conv, self.features, 3, padding_mode=self.padding_mode, name="conv2")(y)
        y = DropPath(self.drop_path_rate, name="drop_path")(y, train=train)
        return shortcut + y


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (MobileNet v1 unit).

    32 -> 64 channels: 2,528 parameters against 18,432 for a plain 3x3 conv.
    """

    features: int
    strides: int = 1
    kernel_size: int = 3
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"
    padding_mode: PaddingMode = "zeros"
    downsample: Downsample = "stride"

    @nn.compact
    def __call__(self, x, *, train: bool):
        layers = dict(conv=self.conv, norm=self.norm, act=self.act)
        x = ConvBNAct(x.shape[-1], self.kernel_size, strides=self.strides, groups=x.shape[-1],
                      padding_mode=self.padding_mode, downsample=self.downsample,
                      name="depthwise", **layers)(x, train=train)
        return ConvBNAct(self.features, 1, name="pointwise", **layers)(x, train=train)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (xexpand_ratio) -> 3x3 depthwise -> 1x1 linear project.

    ReLU6 after the first two convolutions, none after the projection; the input is added
    back when stride is 1 and the channel count is unchanged.
    """

    features: int
    strides: int = 1
    expand_ratio: int = 6
    se_reduction: int | None = None
    drop_path_rate: float = 0.0
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu6"
    padding_mode: PaddingMode = "zeros"
    downsample: Downsample = "stride"

    @nn.compact
    def __call__(self, x, *, train: bool):
        layers = dict(conv=self.conv, norm=self.norm)
        in_features = x.shape[-1]
        hidden = in_features * self.expand_ratio
        y = x
        if self.expand_ratio != 1:
            y = ConvBNAct(hidden, 1, act=self.act, name="expand", **layers)(y, train=train)
        y = ConvBNAct(hidden, 3, strides=self.strides, groups=hidden, act=self.act,
                      padding_mode=self.padding_mode, downsample=self.downsample,
                      name="depthwise", **layers)(y, train=train)
        if self.se_reduction:
            y = SEBlock(self.se_reduction, name="se")(y)
        y = ConvBNAct(self.features, 1, act=None, name="project", **layers)(y, train=train)
        if self.strides == 1 and in_features == self.features:
            return x + DropPath(self.drop_path_rate, name="drop_path")(y, train=train)
        return y


class InceptionBlock(nn.Module):
    """GoogLeNet inception module: 1x1, 1x1->3x3, 1x1->5x5 and maxpool->1x1, concatenated.

    Each conv is ConvBNAct (the BN-Inception variant); output channels
    ``b1 + b3 + b5 + pool_proj``.
    """

    b1: int
    b3_reduce: int
    b3: int
    b5_reduce: int
    b5: int
    pool_proj: int
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"
    padding_mode: PaddingMode = "zeros"

    @nn.compact
    def __call__(self, x, *, train: bool):
        def unit(features, kernel, name):
            return ConvBNAct(features, kernel, conv=self.conv, norm=self.norm, act=self.act,
                             padding_mode=self.padding_mode, name=name)
        branch1 = unit(self.b1, 1, "branch1")(x, train=train)
        branch3 = unit(self.b3_reduce, 1, "branch3_reduce")(x, train=train)
        branch3 = unit(self.b3, 3, "branch3")(branch3, train=train)
        branch5 = unit(self.b5_reduce, 1, "branch5_reduce")(x, train=train)
        branch5 = unit(self.b5, 5, "branch5")(branch5, train=train)
        pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
        pooled = unit(self.pool_proj, 1, "pool_proj")(pooled, train=train)
        return jnp.concatenate([branch1, branch3, branch5, pooled], axis=-1)


class DenseLayer(nn.Module):
    """DenseNet-BC layer: BN -> ReLU -> 1x1 (bn_size*k) -> BN -> ReLU -> 3x3 (k)."""

    growth_rate: int
    bn_size: int = 4
    dropout_rate: float = 0.0
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"
    padding_mode: PaddingMode = "zeros"

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         kernel_init=conv_kernel_init)
        conv = with_defaults(conv, use_bias=norm is None)
        y = act(maybe_norm(norm, "norm1")(x))
        y = conv(self.bn_size * self.growth_rate, (1, 1), name="conv1")(y)
        y = act(maybe_norm(norm, "norm2")(y))
        y = padded_conv(conv, self.growth_rate, 3, padding_mode=self.padding_mode,
                        name="conv2")(y)
        return nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class DenseBlock(nn.Module):
    """Dense block ``x_l = H_l([x_0, ..., x_{l-1}])``: each layer sees all earlier maps.

    Output channels: ``in + num_layers * growth_rate``.
    """

    num_layers: int
    growth_rate: int = 32
    bn_size: int = 4
    dropout_rate: float = 0.0
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"
    padding_mode: PaddingMode = "zeros"

    @nn.compact
    def __call__(self, x, *, train: bool):
        for i in range(self.num_layers):
            y = DenseLayer(self.growth_rate, self.bn_size, self.dropout_rate, conv=self.conv,
                           norm=self.norm, act=self.act, padding_mode=self.padding_mode,
                           name=f"denselayer{i + 1}")(x, train=train)
            x = jnp.concatenate([x, y], axis=-1)
        return x
