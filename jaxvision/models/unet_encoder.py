"""UNet on a zoo backbone: the encoder is any registered model built with ``num_classes=None``,
its skips are the maps its ``feature_info`` names (the deepest map per stride), and the decoder
is segmentation_models_pytorch's ``Unet``: per block nearest x2 upsampling, concatenation of
the skip at that stride, two 3x3 conv-BN-ReLU; then a 3x3 head with bias.

smp's ResNet encoders also pass the stem's stride-2 map (ReLU after ``bn1``, before the
max-pool), which ResNet's ``feature_info`` does not list; it is tapped here with
``nn.intercept_methods``, so ``unet_resnet34`` has exactly the parameters of smp's
``Unet("resnet34", encoder_weights=None)`` (24,436,369 for 3 input channels and 1 class).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models import registry
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_act, resolve_layers


def _resnet_stem_tap(backbone) -> tuple[str, int] | None:
    """``(module name, stride)`` of a pre-pool stem map to tap, for ImageNet-stem ResNets."""
    from jaxvision.models.resnet import ResNet

    if isinstance(backbone, ResNet) and backbone.stem == "imagenet":
        return "bn1", 2
    return None


class EncoderUNet(nn.Module):
    encoder: str = "resnet34"
    num_classes: int = 1
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)
    encoder_kwargs: Any = None  # dict of options for the backbone (norm, conv, stem...)
    skip: bool = True  # False: the no-skip ablation
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"
    norm: str | ModuleDef | None = "batch_norm"
    act: str | Activation = "relu"

    @nn.nowrap
    def backbone(self) -> nn.Module:
        """The encoder, unbound (``parent=None``) whatever context this is called in."""
        kwargs = dict(self.encoder_kwargs or {})
        return registry.create(self.encoder, num_classes=None, dtype=self.dtype, parent=None,
                               **kwargs)

    @nn.nowrap
    def skip_strides(self) -> dict[int, int]:
        """``{stride: channels}`` of the maps the decoder concatenates (deepest per stride)."""
        backbone = self.backbone()
        strides = {f.stride: f.channels for f in backbone.feature_info() if f.stride}
        tap = _resnet_stem_tap(backbone)
        if tap is not None:
            strides.setdefault(tap[1], backbone.base_features)
        return strides

    @nn.compact
    def __call__(self, x, *, train: bool):
        backbone = self.backbone().clone(parent=self, name="encoder")
        info = [f for f in backbone.feature_info() if f.stride]
        deepest = max(f.stride for f in info)
        blocks = deepest.bit_length() - 1
        if len(self.decoder_channels) != blocks:
            raise ValueError(f"{self.encoder}'s deepest map has stride {deepest}, so the "
                             f"decoder needs {blocks} decoder_channels, got "
                             f"{tuple(self.decoder_channels)}")
        if x.shape[1] % deepest or x.shape[2] % deepest:
            raise ValueError(f"EncoderUNet({self.encoder!r}) needs a height and width divisible "
                             f"by {deepest}, got {x.shape[1:3]}")
        tap = _resnet_stem_tap(backbone)
        tapped = {}

        def interceptor(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            module = context.module
            if (tap and context.method_name == "__call__" and module.name == tap[0]
                    and module.parent is not None and getattr(module.parent, "name", None)
                    == "encoder"):
                tapped[tap[1]] = out
            return out

        with nn.intercept_methods(interceptor):
            features = backbone(x, train=train)
        maps = {f.stride: features[f.name] for f in info}  # later (deeper) maps win per stride
        if tap and tap[1] in tapped and tap[1] not in maps:
            maps[tap[1]] = resolve_act(backbone.act)(tapped[tap[1]])
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype)
        bias = norm is None
        y = maps[deepest]
        stride = deepest
        for i, width in enumerate(self.decoder_channels):
            stride //= 2
            y = jnp.repeat(jnp.repeat(y, 2, axis=1), 2, axis=2)
            if self.skip and stride in maps:
                y = jnp.concatenate([y, maps[stride].astype(y.dtype)], axis=-1)
            for j in (1, 2):
                y = conv(width, (3, 3), padding=((1, 1), (1, 1)), use_bias=bias,
                         name=f"decoder{i}_conv{j}")(y)
                if norm is not None:
                    y = norm(name=f"decoder{i}_norm{j}")(y)
                y = act(y)
        return conv(self.num_classes, (3, 3), padding=((1, 1), (1, 1)), use_bias=True,
                    name="head")(y).astype(jnp.float32)


@register("unet_resnet34")
def unet_resnet34(**kwargs) -> EncoderUNet:
    return EncoderUNet(**{"encoder": "resnet34", **kwargs})


@register("unet_resnet18")
def unet_resnet18(**kwargs) -> EncoderUNet:
    return EncoderUNet(**{"encoder": "resnet18", **kwargs})


def count_params(variables) -> int:
    """Trainable parameters (``params`` only; BatchNorm running statistics are not counted)."""
    return sum(p.size for p in jax.tree.leaves(variables["params"]))
