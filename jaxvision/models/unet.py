"""UNet (Ronneberger et al. 2015) and the variants the course discusses: padded, attention gates,
residual blocks, nested (UNet++) skips, and a no-skip ablation.

``UNet(padding="valid", norm=None)`` (registered as ``unet_original``) is the paper's network:
unpadded 3x3 convolutions with bias, 2x2 max-pooling, 2x2 up-convolutions that halve the
channels, encoder maps centre-cropped before concatenation, a 1x1 head. With 1 input channel
and 2 classes it maps 572x572 to 388x388 with 31,030,658 parameters; the sizes it takes and
returns are in :mod:`jaxvision.models.unet_sizes`. The registered ``unet`` is the modern one:
padded convolutions (output = input size), BatchNorm, widths ``base_width * 2**level``.

Options: ``depth`` and ``base_width`` (or ``widths``), ``norm``/``conv``/``act`` injected as in
:mod:`jaxvision.nn.layers` (``norm=None``: no normalisation, convolutions with bias),
``upsample="transpose"`` (2x2 up-convolution) or ``"resize"`` (nearest x2, then a padded 3x3
convolution: no checkerboard artefacts), ``skip`` in ``"concat"``, ``"attention"`` (Oktay et
al. 2018 additive gates on the encoder map), ``"nested"`` (UNet++, Zhou et al. 2018: dense
skip pathways; padded only) and ``"none"`` (the ablation whose boundaries blur), ``block``
``"plain"`` or ``"residual"`` (a projection shortcut around the two convolutions).
"""

from __future__ import annotations

from typing import Literal, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.registry import register
from jaxvision.models.unet_sizes import unet_sizes
from jaxvision.nn.conv import fast_conv_general_dilated
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool
from jaxvision.nn.upsample import FastConvTranspose


def center_crop(x: jax.Array, height: int, width: int) -> jax.Array:
    """The central ``height x width`` window of an NHWC map (the paper's skip cropping)."""
    top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
    return x[:, top:top + height, left:left + width]


class ConvBlock(nn.Module):
    """Two 3x3 conv (+ norm) + act; ``residual`` adds a (1x1-projected, cropped) shortcut."""

    features: int
    padding: str = "same"
    residual: bool = False
    conv: ModuleDef = nn.Conv
    norm: ModuleDef | None = None
    act: Activation = nn.relu

    @nn.compact
    def __call__(self, x):
        pad = "VALID" if self.padding == "valid" else ((1, 1), (1, 1))
        bias = self.norm is None
        y = x
        for i in (1, 2):
            y = self.conv(self.features, (3, 3), padding=pad, use_bias=bias, name=f"conv{i}")(y)
            if self.norm is not None:
                y = self.norm(name=f"norm{i}")(y)
            if i == 1 or not self.residual:
                y = self.act(y)
        if not self.residual:
            return y
        shortcut = center_crop(x, y.shape[1], y.shape[2])
        if shortcut.shape[-1] != self.features:
            shortcut = self.conv(self.features, (1, 1), use_bias=bias, name="shortcut")(shortcut)
            if self.norm is not None:
                shortcut = self.norm(name="shortcut_norm")(shortcut)
        return self.act(y + shortcut)


class AttentionGate(nn.Module):
    """Additive attention (Oktay et al. 2018): ``skip * sigmoid(psi(relu(Wx skip + Wg gate)))``,
    so the decoder decides which encoder pixels pass."""

    features: int
    conv: ModuleDef = nn.Conv
    norm: ModuleDef | None = None

    @nn.compact
    def __call__(self, skip, gate):
        def project(x, name):
            x = self.conv(self.features, (1, 1), use_bias=True, name=name)(x)
            return x if self.norm is None else self.norm(name=f"{name}_norm")(x)

        hidden = nn.relu(project(skip, "theta_x") + project(gate, "phi_g"))
        alpha = nn.sigmoid(self.conv(1, (1, 1), use_bias=True, name="psi")(hidden))
        self.sow("intermediates", "attention", alpha)
        return skip * alpha


class UNet(nn.Module):
    num_classes: int = 2
    depth: int = 4
    base_width: int = 64
    widths: Sequence[int] | None = None  # one per level plus the bottleneck; overrides base_width
    padding: Literal["valid", "same"] = "same"
    upsample: Literal["transpose", "resize"] = "transpose"
    skip: Literal["concat", "attention", "nested", "none"] = "concat"
    block: Literal["plain", "residual"] = "plain"
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"

    def level_widths(self) -> tuple[int, ...]:
        widths = (tuple(self.widths) if self.widths is not None
                  else tuple(self.base_width * 2 ** i for i in range(self.depth + 1)))
        if len(widths) != self.depth + 1:
            raise ValueError(f"widths needs depth + 1 = {self.depth + 1} entries (levels and "
                             f"bottleneck), got {widths}")
        return widths

    def _check(self, x):
        for name, value, choices in (("padding", self.padding, ("valid", "same")),
                                     ("upsample", self.upsample, ("transpose", "resize")),
                                     ("skip", self.skip, ("concat", "attention", "nested", "none")),
                                     ("block", self.block, ("plain", "residual"))):
            if value not in choices:
                raise ValueError(f"UNet {name} must be one of {choices}, got {value!r}")
        if self.skip == "nested" and self.padding == "valid":
            raise ValueError("nested (UNet++) skips need padding='same': its dense pathways "
                             "join maps that valid convolutions would leave at different sizes")
        if x.ndim != 4:
            raise ValueError(f"UNet takes NHWC images, got shape {x.shape}")
        for axis, size in (("height", x.shape[1]), ("width", x.shape[2])):
            try:
                unet_sizes(size, depth=self.depth, padding=self.padding)
            except ValueError as error:
                raise ValueError(f"input {axis}: {error}") from None

    @nn.compact
    def __call__(self, x, *, train: bool):
        self._check(x)
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype)
        widths = self.level_widths()
        # With jaxvision's fast convolutions the 2x2 up-convolution is a GEMM too (same params).
        fast = (getattr(conv, "keywords", {}).get("conv_general_dilated")
                is fast_conv_general_dilated)
        transpose = FastConvTranspose if fast else nn.ConvTranspose

        def block(y, level, name):
            return ConvBlock(widths[level], self.padding, self.block == "residual", conv, norm,
                             act, name=name)(y)

        def up(y, level, name):
            if self.upsample == "transpose":
                return transpose(widths[level], (2, 2), strides=(2, 2), padding="VALID",
                                 dtype=self.dtype, name=name)(y)
            y = jnp.repeat(jnp.repeat(y, 2, axis=1), 2, axis=2)
            return conv(widths[level], (3, 3), padding=((1, 1), (1, 1)), name=name)(y)

        x = x.astype(self.dtype)
        nodes = {}  # (level, column): UNet++ naming; column 0 is the encoder
        for level in range(self.depth):
            nodes[level, 0] = x = block(x, level, f"enc{level}")
            x = resolve_max_pool(self.conv)(x, (2, 2), strides=(2, 2))
        nodes[self.depth, 0] = x = block(x, self.depth, "bottleneck")
        if self.skip == "nested":
            for column in range(1, self.depth + 1):
                for level in range(self.depth - column + 1):
                    upsampled = up(nodes[level + 1, column - 1], level, f"up{level}_{column}")
                    inputs = [nodes[level, k] for k in range(column)] + [upsampled]
                    nodes[level, column] = block(jnp.concatenate(inputs, axis=-1), level,
                                                 f"x{level}_{column}")
            x = nodes[0, self.depth]
        else:
            for level in reversed(range(self.depth)):
                upsampled = up(x, level, f"up{level}")
                if self.skip == "none":
                    x = upsampled
                else:
                    skip = center_crop(nodes[level, 0], upsampled.shape[1], upsampled.shape[2])
                    if self.skip == "attention":
                        skip = AttentionGate(max(widths[level] // 2, 1), conv, norm,
                                             name=f"gate{level}")(skip, upsampled)
                    x = jnp.concatenate([skip, upsampled], axis=-1)
                x = block(x, level, f"dec{level}")
        return conv(self.num_classes, (1, 1), use_bias=True, name="head")(x).astype(jnp.float32)


def _factory(**defaults):
    def build(**kwargs) -> UNet:
        return UNet(**{**defaults, **kwargs})

    return build


register("unet")(_factory())
register("unet_original")(_factory(padding="valid", norm=None))
register("unet_noskip")(_factory(skip="none"))
register("attention_unet")(_factory(skip="attention"))
register("residual_unet")(_factory(block="residual"))
register("unet_plusplus")(_factory(skip="nested"))
