"""The course's single-object localizer: one backbone, two heads.

The backbone (any family built with ``num_classes=None``) gives ``pre_logits`` (its global
average pool) and its deepest map. The class head is a Dense on the pooled vector; the box
head keeps spatial information: it flattens the deepest map, goes through
``box_hidden`` units with ReLU and ends in a **4-unit** layer: centre offsets from the image
centre and log sizes, returned as the box ``xyxy`` in ``[0, 1]`` image coordinates. The output container is
:class:`LocalizerOutput` (``class_logits [B, K]``, ``boxes [B, 4]``).

Registered: ``localizer_resnet18`` (ImageNet ResNet-18 stem) and ``localizer_small``
(a CIFAR-stem ResNet-20, for 32-64 pixel images).
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.registry import register


@flax.struct.dataclass
class LocalizerOutput:
    class_logits: jax.Array  # [B, num_classes]
    boxes: jax.Array  # [B, 4] normalized xyxy in [0, 1]


class Localizer(nn.Module):
    backbone: nn.Module
    num_classes: int
    box_hidden: int = 128
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool) -> LocalizerOutput:
        info = getattr(self.backbone, "feature_info", None)
        if not callable(info):
            raise ValueError(f"{type(self.backbone).__name__} has no feature_info(): the "
                             "localizer needs a backbone built with num_classes=None")
        maps = [f.name for f in info() if f.stride is not None]
        features = self.backbone(x, train=train)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="class_head")(
            features["pre_logits"])
        deepest = features[maps[-1]]
        hidden = nn.relu(nn.Dense(self.box_hidden, dtype=self.dtype, name="box_hidden")(
            deepest.reshape(deepest.shape[0], -1)))
        # Centre linear around the image centre, size through exp: no sigmoid to saturate
        # (a saturated xyxy sigmoid sticks at the whole image and stops learning).
        # Zero-initialised: every image starts with the centred half-size box, not a wild one
        # whose loss gradient wrecks the backbone in the first steps.
        raw = nn.Dense(4, dtype=self.dtype, kernel_init=nn.initializers.zeros,
                       name="box_head")(hidden).astype(jnp.float32)
        centre = 0.5 + raw[:, :2]
        size = 0.5 * jnp.exp(jnp.clip(raw[:, 2:], -6.0, 1.0))
        boxes = jnp.concatenate([centre - size / 2, centre + size / 2], -1)
        return LocalizerOutput(class_logits=logits.astype(jnp.float32), boxes=boxes)


def _localizer(backbone: str, *, num_classes: int = 10, backbone_kwargs: dict | None = None,
               **kwargs) -> Localizer:
    from jaxvision.models.registry import create

    return Localizer(backbone=create(backbone, num_classes=None, **(backbone_kwargs or {})),
                     num_classes=num_classes, **kwargs)


register("localizer_resnet18")(functools.partial(_localizer, "resnet18"))
register("localizer_small")(functools.partial(_localizer, "cifar_resnet20"))
