"""Heads for a pretrained backbone, their initialisations, and residual adapters.

A head reads the backbone's features (``num_classes=None``: ``pre_logits``, or the deepest map
for the domain-adaptation head) and is named ``head`` in :class:`TransferModel`, so
``init_dont_load=('head',)`` and ``trainable=('head',)`` address it as they address a zoo
model's own classifier. The backbone's parameters keep their names (``nn.share_scope``), so a
workdir or torchvision file trained with the plain model loads into the wrapped one.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

# Kaiming-normal, fan_out (PyTorch's nn.init.kaiming_normal_(mode="fan_out"), as torchvision
# initialises its ResNets): the ReLU gain keeps the activations' scale through new layers.
kaiming_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def dirac_init(key, shape, dtype=jnp.float32):
    """Identity 1x1 kernel ``(1, 1, C, C)`` (torch ``nn.init.dirac_``): the layer starts as a
    no-op, so a new adaptation layer does not disturb the pretrained features."""
    del key
    if len(shape) != 4 or shape[0] != 1 or shape[1] != 1 or shape[2] != shape[3]:
        raise ValueError(f"dirac_init is for square 1x1 kernels (1, 1, C, C), got {shape}")
    return jnp.eye(shape[2], dtype=dtype).reshape(shape)


def prior_bias_init(priors: Sequence[float] | float, *, sigmoid: bool = False):
    """A bias initialiser so that the untrained head predicts the class ``priors``: softmax
    heads get ``log p_c`` (softmax of it is ``p``); ``sigmoid=True`` gives ``log(p / (1 - p))``
    per class (RetinaNet's ``-log((1 - pi) / pi)``)."""
    p = np.asarray(priors, np.float64)
    if np.any(p <= 0) or np.any(p >= 1 if sigmoid else p > 1):
        raise ValueError(f"class priors must lie in (0, 1), got {priors}")
    if not sigmoid and p.ndim and not np.isclose(p.sum(), 1.0):
        raise ValueError(f"softmax class priors must sum to 1, got sum {p.sum()}")
    bias = np.log(p / (1 - p)) if sigmoid else np.log(p)

    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.broadcast_to(jnp.asarray(bias, dtype), shape)

    return init


def _features(features, *, spatial: bool):
    """``pre_logits`` (or, ``spatial``, the deepest map) of a backbone's feature dict."""
    if not isinstance(features, dict):
        return features
    if spatial:
        maps = [v for v in features.values() if v.ndim == 4]
        if not maps:
            raise ValueError("this head needs a spatial feature map; the backbone returns none")
        return maps[-1]
    return features["pre_logits"]


class LinearHead(nn.Module):
    """Dropout -> Dense (dropout 0.5 for small, similar targets: a new head on few examples
    overfits quickly)."""

    num_classes: int
    dropout_rate: float = 0.5
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(self, features, *, train: bool):
        x = _features(features, spatial=False)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, kernel_init=kaiming_fan_out, bias_init=self.bias_init,
                        name="fc")(x)


class MLPHead(nn.Module):
    """[Dense -> BatchNorm1d -> ReLU -> Dropout] per hidden width -> Dense (default
    widths 512, 256, dropout 0.3)."""

    num_classes: int
    hidden: Sequence[int] = (512, 256)
    dropout_rate: float = 0.3
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(self, features, *, train: bool):
        x = _features(features, spatial=False)
        for i, width in enumerate(self.hidden):
            x = nn.Dense(width, kernel_init=kaiming_fan_out, name=f"fc{i}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             name=f"bn{i}")(x)
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(x))
        return nn.Dense(self.num_classes, kernel_init=kaiming_fan_out, bias_init=self.bias_init,
                        name="fc")(x)


class BottleneckHead(nn.Module):
    """D -> D/2 -> ReLU -> D/4 -> ReLU -> classes."""

    num_classes: int
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(self, features, *, train: bool):
        x = _features(features, spatial=False)
        d = x.shape[-1]
        x = nn.relu(nn.Dense(max(d // 2, 1), kernel_init=kaiming_fan_out, name="fc0")(x))
        x = nn.relu(nn.Dense(max(d // 4, 1), kernel_init=kaiming_fan_out, name="fc1")(x))
        return nn.Dense(self.num_classes, kernel_init=kaiming_fan_out, bias_init=self.bias_init,
                        name="fc")(x)


class DomainAdaptationHead(nn.Module):
    """Conv1x1(C -> C, identity init, zero bias) -> BatchNorm -> ReLU -> global average pool ->
    Dense, on the backbone's deepest map."""

    num_classes: int
    bias_init: Any = nn.initializers.zeros

    @nn.compact
    def __call__(self, features, *, train: bool):
        x = _features(features, spatial=True)
        x = nn.Conv(x.shape[-1], (1, 1), kernel_init=dirac_init, name="adapt")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         name="bn")(x)
        x = jnp.mean(nn.relu(x), axis=(1, 2))
        return nn.Dense(self.num_classes, kernel_init=kaiming_fan_out, bias_init=self.bias_init,
                        name="fc")(x)


HEADS = {"linear": LinearHead, "mlp": MLPHead, "bottleneck": BottleneckHead,
         "domain_adaptation": DomainAdaptationHead}


class ResidualAdapter(nn.Module):
    """``x + up(relu(down(x)))`` with 1x1 convs (Rebuffi et al. 2017; Houlsby et al. 2019 for
    tokens): ``up`` starts at zero, so the adapted network starts as the pretrained one."""

    reduction: int = 4

    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        dense = nn.Dense if x.ndim == 3 else lambda f, **kw: nn.Conv(f, (1, 1), **kw)
        y = nn.relu(dense(max(width // self.reduction, 1), name="down")(x))
        return x + dense(width, kernel_init=nn.initializers.zeros, name="up")(y)


def adapter_name(block: str) -> str:
    return f"adapter_{block}"


class TransferModel(nn.Module):
    """A backbone with residual adapters after the named top-level blocks, and optionally a new
    ``head`` (then the backbone must be built with ``num_classes=None``).

    Parameters: the backbone's under their own names, ``adapter_<block>/...``, ``head/...``.
    The adapters run inside the backbone's forward pass, right after their block (through
    ``nn.intercept_methods``), so no model needs a field for them."""

    backbone: nn.Module
    head: nn.Module | None = None
    adapters_after: tuple[str, ...] = ()
    adapter_reduction: int = 4

    def setup(self):
        nn.share_scope(self, self.backbone)
        self.adapters = {block: ResidualAdapter(self.adapter_reduction, name=adapter_name(block))
                         for block in self.adapters_after}

    def __call__(self, x, *, train: bool):
        adapters = self.adapters

        def insert(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            path = tuple(context.module.path)
            if (context.method_name == "__call__" and len(path) == 1 and path[0] in adapters
                    and context.module is not self):
                out = adapters[path[0]](out)
            return out

        if adapters:
            with nn.intercept_methods(insert):
                features = self.backbone(x, train=train)
        else:
            features = self.backbone(x, train=train)
        return features if self.head is None else self.head(features, train=train)

    @nn.nowrap
    def feature_info(self):
        return self.backbone.feature_info()
