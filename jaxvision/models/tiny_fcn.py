"""A tiny fully convolutional segmentation network: the engine's reference dense model.

Conv-BN-ReLU stages (``widths``), each followed by 2x2 max-pooling, then back up by nearest x2
upsampling, adding each stage's map after a 1x1 projection (FCN skips), to per-pixel logits
``[B, H, W, num_classes]``. ``H`` and ``W`` must be divisible by ``2 ** len(widths)``. UNet proper lives in its
own module; this one only has to be small enough to train in seconds on a CPU.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool


def _upsample2(x: jax.Array) -> jax.Array:
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class TinyFCN(nn.Module):
    num_classes: int = 2
    widths: Sequence[int] = (16, 32, 64)
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = "batch_norm"
    act: str | Activation = "relu"

    @nn.compact
    def __call__(self, x, *, train: bool):
        factor = 2 ** len(self.widths)
        if x.shape[1] % factor or x.shape[2] % factor:
            raise ValueError(f"TinyFCN needs a height and width divisible by {factor}, got "
                             f"{x.shape[1:3]}")
        conv, norm, act = resolve_layers(self.conv, self.norm, self.act, train=train,
                                         dtype=self.dtype)
        x = x.astype(self.dtype)
        skips = []
        for i, width in enumerate(self.widths):
            x = conv(width, (3, 3), padding=1, use_bias=False, name=f"conv{i}")(x)
            x = act(norm(name=f"bn{i}")(x))
            skips.append(x)
            x = resolve_max_pool(self.conv)(x, (2, 2), strides=(2, 2))
        for i, skip in reversed(list(enumerate(skips))):
            x = conv(skip.shape[-1], (1, 1), name=f"up{i}")(_upsample2(x))
            x = act(x + skip)
        return conv(self.num_classes, (1, 1), name="head")(x)


@register("tiny_fcn")
def tiny_fcn(**kwargs) -> TinyFCN:
    return TinyFCN(**kwargs)
