"""AlexNet: torchvision's single-tower variant (64-192-384-256-256 convs, 61,100,840 params)
and the 2012 paper's network (96-256-384-384-256 at 227 px: 62,378,344; split over two GPUs
as grouped convs: 60,965,224).

Layers are named ``conv1``..``conv5``, ``fc1``, ``fc2``, ``head``; ``jaxvision.convert`` maps
torchvision's ``features.N`` / ``classifier.N`` keys onto them (torchvision has no paper
variant, so :class:`AlexNet2012` has no converter).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxvision.ops.pooling import adaptive_avg_pool
from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers, resolve_max_pool

# (features, kernel, stride, padding, max-pool after)
_ALEXNET_CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
                  (256, 3, 1, 1, False), (256, 3, 1, 1, True))


class AlexNet(Classifier):
    """Five convs with overlapping 3x3/2 max-pooling, adaptive 6x6 average pool, three FCs.

    ``num_classes=None``: features after each max-pool, ``c3``, ``c4``, ``c5`` (nominal strides
    8, 16, 32; the unpadded pools make the maps slightly smaller than input/stride), and
    ``pre_logits``. Sown intermediates: ``act1``..``act5`` (each conv after ReLU), ``features``
    (after the last pool), ``pre_logits``.
    """

    num_classes: int | None = 1000
    dropout_rate: float = 0.5
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        stages, stride = [], 1
        for features, _, conv_stride, _, pool in _ALEXNET_CONVS:
            stride *= conv_stride
            if pool:
                stride *= 2
                stages.append((stride, features))
        return pyramid(stages, 4096)

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, _, act = resolve_layers(self.conv, None, self.act, train=train, dtype=self.dtype)
        x = x.astype(self.dtype)
        maps = []
        for i, (features, kernel, stride, pad, pool) in enumerate(_ALEXNET_CONVS, start=1):
            x = act(conv(features, (kernel, kernel), strides=(stride, stride),
                         padding=((pad, pad), (pad, pad)), name=f"conv{i}")(x))
            self.sow("intermediates", f"act{i}", x)
            if pool:
                x = resolve_max_pool(self.conv)(x, (3, 3), strides=(2, 2))
                maps.append(x)
        self.sow("intermediates", "features", x)
        x = adaptive_avg_pool(x, 6).reshape((x.shape[0], -1))
        for i in (1, 2):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = act(nn.Dense(4096, dtype=self.dtype, name=f"fc{i}")(x))
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features(maps, x)


@register("alexnet")
def alexnet(**kwargs) -> AlexNet:
    return AlexNet(**kwargs)


# Krizhevsky et al. 2012, Fig. 2 at 227 px: (features, kernel, stride, padding, LRN after,
# 3x3/2 max-pool after, split over the two GPUs). conv3 is the one conv reading both towers.
_PAPER_CONVS = ((96, 11, 4, 0, True, True, False), (256, 5, 1, 2, True, True, True),
                (384, 3, 1, 1, False, False, False), (384, 3, 1, 1, False, False, True),
                (256, 3, 1, 1, False, True, True))


def local_response_norm(x, *, size: int = 5, k: float = 2.0, alpha: float = 1e-4,
                        beta: float = 0.75):
    """The paper's LRN across channels: ``x / (k + alpha * sum of x**2 over size
    neighbouring channels)**beta`` (a sum, where ``torch.nn.LocalResponseNorm`` averages:
    its ``alpha`` is this one times ``size``). No parameters."""
    squares = jnp.pad(x * x, [(0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2)])
    window = sum(squares[..., i:i + x.shape[-1]] for i in range(size))
    return x / (k + alpha * window) ** beta


def ceil_max_pool(x, window: int = 3, stride: int = 2, pool=nn.max_pool):
    """Max-pooling that keeps a partial last window (Caffe's rounding, PyTorch's
    ``ceil_mode=True``): ``ceil((H - window) / stride) + 1`` outputs. At 227 px AlexNet's
    maps are 27, 13, 6 either way; rounding up keeps a map at small inputs (64 px: 7, 3, 1)."""
    pads = [(0, (-(-(n - window) // stride)) * stride + window - n) for n in x.shape[1:3]]
    return pool(x, (window, window), strides=(stride, stride), padding=pads)


class AlexNet2012(Classifier):
    """The paper's AlexNet at 227 px: conv1 11x11/4 (96) -> 55, 3x3/2 max-pool -> 27, conv2
    5x5 (256), pool -> 13, conv3..5 3x3 (384, 384, 256), pool -> 6x6x256 = 9,216, flattened
    into FC-4096, FC-4096, head; dropout 0.5 after the two hidden FCs. Pools round up
    (:func:`ceil_max_pool`, as Caffe's reference model), which changes nothing at 227 px.

    ``groups=2`` is the two-GPU split: conv2, conv4 and conv5 only see their own tower's
    half of the channels (grouped convolutions). ``lrn=True`` adds the paper's local
    response normalisation after conv1 and conv2 (no parameters). The classifier flattens
    (no adaptive pool, as in the paper), so ``fc1`` is sized by the input; ``image_size``
    records the paper's 227.

    ``num_classes=None``: ``c3``, ``c4``, ``c5`` after each pool (nominal strides 8, 16,
    32; 27, 13, 6 px at 227) and ``pre_logits``. Sown: ``act1``..``act5``, ``features``,
    ``pre_logits``.
    """

    num_classes: int | None = 1000
    groups: int = 1
    lrn: bool = False
    image_size: int = 227
    dropout_rate: float = 0.5
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    act: str | Activation = "relu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        stages, stride = [], 1
        for features, _, conv_stride, _, _, pool, _ in _PAPER_CONVS:
            stride *= conv_stride
            if pool:
                stride *= 2
                stages.append((stride, features))
        return pyramid(stages, 4096)

    @nn.compact
    def __call__(self, x, *, train: bool):
        conv, _, act = resolve_layers(self.conv, None, self.act, train=train, dtype=self.dtype)
        x = x.astype(self.dtype)
        maps = []
        for i, (features, kernel, stride, pad, lrn, pool, split) in enumerate(_PAPER_CONVS, 1):
            x = act(conv(features, (kernel, kernel), strides=(stride, stride),
                         padding=((pad, pad), (pad, pad)),
                         feature_group_count=self.groups if split else 1, name=f"conv{i}")(x))
            self.sow("intermediates", f"act{i}", x)
            if lrn and self.lrn:
                x = local_response_norm(x)
            if pool:
                x = ceil_max_pool(x, pool=resolve_max_pool(self.conv))
                maps.append(x)
        self.sow("intermediates", "features", x)
        x = act(nn.Dense(4096, dtype=self.dtype, name="fc1")(x.reshape((x.shape[0], -1))))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = act(nn.Dense(4096, dtype=self.dtype, name="fc2")(x))
        self.sow("intermediates", "pre_logits", x)
        if self.num_classes is not None:
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return self.head_or_features(maps, x)


@register("alexnet_paper")
def alexnet_paper(**kwargs) -> AlexNet2012:
    return AlexNet2012(**kwargs)


@register("alexnet_paper_grouped")
def alexnet_paper_grouped(**kwargs) -> AlexNet2012:
    return AlexNet2012(**{"groups": 2, **kwargs})
