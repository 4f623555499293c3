"""RetinaNet (Lin et al. 2017) as torchvision builds it: backbone -> FPN P3-P7 -> shared heads.

Each head is four 3x3 convs of ``fpn_channels`` with ReLU (GroupNorm(32) before the ReLU with
``head_norm="group_norm"``, torchvision's v2), then a 3x3 conv to ``A * K`` class logits or
``A * 4`` box deltas; the same weights run on every level. Initialisation is torchvision's:
N(0, 0.01) kernels and zero biases, except the class logits' bias, the prior
``-log((1 - π) / π)`` (π = 0.01) that starts every anchor as background.

``__call__`` returns per-level tuples, in torchvision's order within a level (row, column,
anchor; classes last): ``class_logits [B, h*w*A, K]``, ``box_deltas [B, h*w*A, 4]`` and the
matching ``anchors [h*w*A, 4]`` (xyxy pixels, host constants), plus ``image_size`` ``[2]``
(H, W) so that post-processing can clip boxes. A single-level detector without a pyramid is
``in_levels=("c4",), extra=None`` and one tuple holding every anchor size: the neck is then a
1x1 projection and a 3x3 conv of that one map, with no top-down path
(``experiments/fpn_ablation.py``). Anchors default to torchvision's: sizes
``(x, int(x 2^(1/3)), int(x 2^(2/3)))`` for x in 32..512, ratios 0.5/1/2 (height/width),
corners rounded, cell corners on the grid (offset 0), stride ``image // grid``.

Registered: ``retinanet_resnet50_fpn`` (FrozenBatchNorm backbone as torchvision's pretrained
model: 34,014,999 parameters for 91 classes; ``backbone_norm="batch_norm"``: 34,068,119),
``retinanet_resnet50_fpn_v2`` (P6 from C5, GroupNorm heads, BatchNorm backbone as
torchvision's: 38,198,935) and
``retinanet_resnet18_fpn`` / ``retinanet_resnet34_fpn`` (trainable BatchNorm, for training
from scratch on small data).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxvision.losses.detection import prior_bias_init
from jaxvision.models.fpn import FPN, feature_levels
from jaxvision.models.registry import register
from jaxvision.nn.frozen_norm import FrozenBatchNorm
from jaxvision.nn.layers import ModuleDef, resolve_conv, resolve_norm
from jaxvision.ops.anchors import RETINANET_ASPECT_RATIOS, cell_anchors, grid_anchors

TORCHVISION_ANCHOR_SIZES = tuple((x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3)))
                                 for x in (32, 64, 128, 256, 512))
head_kernel_init = nn.initializers.normal(0.01)


def level_anchors(grid_shapes: Sequence[tuple[int, int]], image_size: tuple[int, int], *,
                  sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[float],
                  offset: float = 0.0, round_to_integer: bool = True) -> list[np.ndarray]:
    """Anchors of each level, float32 ``[h*w*A, 4]``, for the levels' actual grid shapes, with
    torchvision's stride ``image_size // grid`` (per axis) and explicit sizes per level."""
    if len(sizes) != len(grid_shapes):
        raise ValueError(f"need one tuple of anchor sizes per pyramid level ({len(grid_shapes)}),"
                         f" got {len(sizes)}: {sizes}")
    out = []
    for (grid_h, grid_w), level_sizes in zip(grid_shapes, sizes):
        stride_h, stride_w = image_size[0] // grid_h, image_size[1] // grid_w
        cell = cell_anchors(1.0, aspect_ratios=aspect_ratios, octave_scales=level_sizes,
                            round_to_integer=round_to_integer)
        anchors = grid_anchors((grid_h, grid_w), stride=1.0, cell=np.zeros((1, 4)),
                               offset=offset)  # [h*w, 4] grid points (x, y, x, y) in cells
        shifts = anchors * np.array([stride_w, stride_h, stride_w, stride_h])
        out.append((shifts[:, None, :] + cell[None]).reshape(-1, 4).astype(np.float32))
    return out


class RetinaNetHead(nn.Module):
    """One subnet (class or box): ``num_convs`` 3x3 convs + (norm) + ReLU, then the output conv.
    Names follow torchvision: ``conv_<i>`` (``conv.<i>.0``), ``norm_<i>`` (``conv.<i>.1``)."""

    outputs_per_anchor: int
    num_anchors: int = 9
    num_convs: int = 4
    channels: int = 256
    norm: str | ModuleDef | None = None
    output_name: str = "cls_logits"
    output_bias_init: Any = nn.initializers.zeros
    conv: str | ModuleDef = "auto"
    dtype: Any = jnp.float32

    def setup(self):
        conv = resolve_conv(self.conv, dtype=self.dtype, kernel_init=head_kernel_init,
                            bias_init=nn.initializers.zeros)
        norm = resolve_norm(self.norm, train=False, dtype=self.dtype)
        pad = ((1, 1), (1, 1))
        self.convs = [conv(self.channels, (3, 3), padding=pad, use_bias=norm is None,
                           name=f"conv_{i}") for i in range(self.num_convs)]
        self.norms = [norm(name=f"norm_{i}") for i in range(self.num_convs)] if norm else []
        self.out = conv(self.num_anchors * self.outputs_per_anchor, (3, 3), padding=pad,
                        bias_init=self.output_bias_init, name=self.output_name)

    def __call__(self, x):
        for i, layer in enumerate(self.convs):
            x = layer(x)
            if self.norms:
                x = self.norms[i](x)
            x = nn.relu(x)
        x = self.out(x)
        batch, height, width, _ = x.shape
        return x.reshape(batch, height * width * self.num_anchors, self.outputs_per_anchor)


class RetinaNet(nn.Module):
    """``backbone`` (built with ``num_classes=None``) -> :class:`~jaxvision.models.fpn.FPN`
    -> class and box subnets; see the module docstring for the outputs."""

    backbone: nn.Module
    num_classes: int = 91
    in_levels: Sequence[str] = ("c3", "c4", "c5")
    fpn_channels: int = 256
    extra: str | None = "p6p7"  # the FPN's levels above the top input; None: no P6/P7
    extra_from: str = "p5"
    head_convs: int = 4
    head_norm: str | ModuleDef | None = None
    prior_probability: float = 0.01
    anchor_sizes: Sequence[Sequence[float]] = TORCHVISION_ANCHOR_SIZES
    aspect_ratios: Sequence[float] = RETINANET_ASPECT_RATIOS
    anchor_offset: float = 0.0
    round_anchors: bool = True
    conv: str | ModuleDef = "auto"
    dtype: Any = jnp.float32

    @property
    def num_anchors(self) -> int:
        return len(self.aspect_ratios) * len(self.anchor_sizes[0])

    @nn.compact
    def __call__(self, x, *, train: bool):
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 (object classes, no background), got "
                             f"{self.num_classes}")
        if x.ndim != 4:
            raise ValueError(f"RetinaNet expects NHWC images, got shape {x.shape}")
        feature_levels(self.backbone, self.in_levels)
        features = self.backbone(x, train=train)
        pyramid = FPN(in_levels=self.in_levels, channels=self.fpn_channels,
                      extra=self.extra, extra_from=self.extra_from, conv=self.conv,
                      dtype=self.dtype, name="fpn")({k: features[k] for k in self.in_levels})
        head = functools.partial(RetinaNetHead, num_anchors=self.num_anchors,
                                 num_convs=self.head_convs, channels=self.fpn_channels,
                                 norm=self.head_norm, conv=self.conv, dtype=self.dtype)
        classification = head(self.num_classes, output_name="cls_logits",
                              output_bias_init=prior_bias_init(self.prior_probability),
                              name="classification_head")
        regression = head(4, output_name="bbox_reg", name="regression_head")
        levels = list(pyramid.values())
        image_size = tuple(x.shape[1:3])
        anchors = level_anchors([p.shape[1:3] for p in levels], image_size,
                                sizes=self.anchor_sizes, aspect_ratios=self.aspect_ratios,
                                offset=self.anchor_offset, round_to_integer=self.round_anchors)
        return {"class_logits": tuple(classification(p).astype(jnp.float32) for p in levels),
                "box_deltas": tuple(regression(p).astype(jnp.float32) for p in levels),
                "anchors": tuple(jnp.asarray(a) for a in anchors),
                "image_size": jnp.asarray(image_size, jnp.float32)}


def _retinanet(depth: int, *, num_classes: int = 91, backbone_norm: Any = "frozen",
               frozen_eps: float = 1e-5, v2: bool = False, backbone_kwargs: dict | None = None,
               **kwargs) -> RetinaNet:
    """``backbone_norm="frozen"``: FrozenBatchNorm with ``frozen_eps`` (torchvision's pretrained
    COCO weights need 0.0); any other value is a norm name or constructor for the ResNet."""
    from jaxvision.models.resnet import _imagenet_resnet

    norm = (functools.partial(FrozenBatchNorm, epsilon=frozen_eps) if backbone_norm == "frozen"
            else backbone_norm)
    backbone = _imagenet_resnet(depth, False, num_classes=None, norm=norm,
                                **(backbone_kwargs or {}))
    if v2:
        kwargs = {"extra_from": "c5", "head_norm": "group_norm", **kwargs}
    return RetinaNet(backbone=backbone, num_classes=num_classes, **kwargs)


def small_anchor_sizes(smallest: float = 16.0, levels: int = 5) -> tuple[tuple[float, ...], ...]:
    """Octave-scaled sizes ``(x, x 2^(1/3), x 2^(2/3))`` for x = smallest * 2^l: anchors for
    small images (``shapes/det64``: objects 13-32 pixels), one level per tuple."""
    return tuple(tuple(smallest * 2 ** level * 2 ** (i / 3) for i in range(3))
                 for level in range(levels))


register("retinanet_resnet50_fpn")(functools.partial(_retinanet, 50))
# torchvision's v2 builds its ResNet-50 with plain (trainable) BatchNorm2d.
register("retinanet_resnet50_fpn_v2")(functools.partial(_retinanet, 50, v2=True,
                                                         backbone_norm="batch_norm"))
register("retinanet_resnet18_fpn")(functools.partial(_retinanet, 18, backbone_norm="batch_norm"))
register("retinanet_resnet34_fpn")(functools.partial(_retinanet, 34, backbone_norm="batch_norm"))

__all__ = ["RetinaNet", "RetinaNetHead", "TORCHVISION_ANCHOR_SIZES", "level_anchors",
           "small_anchor_sizes"]
