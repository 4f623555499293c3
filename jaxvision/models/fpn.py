"""Feature Pyramid Network neck (Lin et al. 2017) as torchvision builds it.

For the backbone maps ``c<k>`` named in ``in_levels`` (see :mod:`jaxvision.models.backbone`):
1x1 lateral convs to ``channels``, top-down from the deepest map by nearest upsampling to the
next map's size (torchvision's ``F.interpolate(size=...)``: x2 for even sizes) and addition,
then a 3x3 smoothing conv per level, giving ``p<k>``. Extra levels above the deepest:
``extra="p6p7"`` adds P6 (3x3 stride 2) and P7 (ReLU then 3x3 stride 2), P6 reading P5
(``extra_from="p5"``, torchvision's v1 ``LastLevelP6P7(256, 256)``) or C5 (``"c5"``, the
RetinaNet paper and torchvision's v2); ``extra="pool"`` adds a max-pooled P6 (Faster R-CNN's
``LastLevelMaxPool``); ``None`` adds nothing. Module names follow torchvision's state dict
(``inner_blocks_0`` for ``inner_blocks.0.0``, ``layer_blocks_0``, ``p6``, ``p7``), and so does
the initialisation (Kaiming-uniform with a=1, zero bias).
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.backbone import FeatureInfo
from jaxvision.nn.layers import ModuleDef, resolve_conv

# torch.nn.init.kaiming_uniform_(a=1): gain sqrt(2 / (1 + 1)) = 1, bound sqrt(3 / fan_in).
fpn_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")


def feature_levels(backbone: nn.Module, in_levels: Sequence[str]) -> dict[str, FeatureInfo]:
    """The backbone's ``feature_info`` entries for ``in_levels``; raises ``ValueError`` naming
    what is missing (a backbone without ``feature_info``, or a level it does not return)."""
    info_fn = getattr(backbone, "feature_info", None)
    if not callable(info_fn):
        raise ValueError(f"{type(backbone).__name__} has no feature_info(): an FPN needs a "
                         "backbone that names its multi-scale maps (any jaxvision Classifier "
                         "family with num_classes=None)")
    try:
        info = {f.name: f for f in info_fn()}
    except NotImplementedError:
        raise ValueError(f"{type(backbone).__name__}.feature_info() is not implemented: an FPN "
                         "needs a backbone that names its multi-scale maps") from None
    missing = [name for name in in_levels if name not in info or info[name].stride is None]
    if missing:
        raise ValueError(f"{type(backbone).__name__} returns no map named {missing}; it has "
                         f"{[n for n, f in info.items() if f.stride is not None]}")
    if getattr(backbone, "num_classes", None) is not None:
        raise ValueError(f"the FPN's backbone must return features: build it with "
                         f"num_classes=None (got num_classes={backbone.num_classes})")
    return {name: info[name] for name in in_levels}


def resize_nearest(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """PyTorch's ``mode="nearest"`` to ``size``: source index ``floor(i * in / out)``."""
    height, width = x.shape[1:3]
    rows = (jnp.arange(size[0]) * height) // size[0]
    cols = (jnp.arange(size[1]) * width) // size[1]
    return x[:, rows][:, :, cols]


def _level(name: str) -> int:
    if not (name.startswith(("c", "p")) and name[1:].isdigit()):
        raise ValueError(f"pyramid levels are named c<k>/p<k>, got {name!r}")
    return int(name[1:])


class FPN(nn.Module):
    """``{"c3": .., "c4": .., "c5": ..}`` -> ``{"p3": .., ..., "p7": ..}``, ``channels`` wide."""

    in_levels: Sequence[str] = ("c3", "c4", "c5")
    channels: int = 256
    extra: Literal["p6p7", "pool"] | None = "p6p7"
    extra_from: Literal["p5", "c5"] = "p5"  # what P6 reads: the top output or the top input
    conv: str | ModuleDef = "auto"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features: dict[str, jax.Array]) -> dict[str, jax.Array]:
        missing = [name for name in self.in_levels if name not in features]
        if missing:
            raise ValueError(f"FPN needs maps {list(self.in_levels)}, got {sorted(features)}")
        conv = resolve_conv(self.conv, dtype=self.dtype, kernel_init=fpn_kernel_init,
                            bias_init=nn.initializers.zeros)
        pad = ((1, 1), (1, 1))
        inputs = [features[name] for name in self.in_levels]
        laterals = [conv(self.channels, (1, 1), name=f"inner_blocks_{i}")(x)
                    for i, x in enumerate(inputs)]
        top = laterals[-1]
        outputs = [conv(self.channels, (3, 3), padding=pad,
                        name=f"layer_blocks_{len(inputs) - 1}")(top)]
        for i in range(len(inputs) - 2, -1, -1):
            top = laterals[i] + resize_nearest(top, laterals[i].shape[1:3])
            outputs.insert(0, conv(self.channels, (3, 3), padding=pad,
                                   name=f"layer_blocks_{i}")(top))
        top_level = _level(self.in_levels[-1])
        names = [f"p{_level(name)}" for name in self.in_levels]
        if self.extra == "p6p7":
            source = outputs[-1] if self.extra_from == "p5" else inputs[-1]
            p6 = conv(self.channels, (3, 3), strides=(2, 2), padding=pad, name="p6")(source)
            p7 = conv(self.channels, (3, 3), strides=(2, 2), padding=pad, name="p7")(nn.relu(p6))
            outputs += [p6, p7]
            names += [f"p{top_level + 1}", f"p{top_level + 2}"]
        elif self.extra == "pool":  # max_pool2d(kernel 1, stride 2)
            outputs.append(outputs[-1][:, ::2, ::2])
            names.append(f"p{top_level + 1}")
        elif self.extra is not None:
            raise ValueError(f"extra must be 'p6p7', 'pool' or None, got {self.extra!r}")
        if self.extra_from not in ("p5", "c5"):
            raise ValueError(f"extra_from must be 'p5' or 'c5', got {self.extra_from!r}")
        return dict(zip(names, outputs))
