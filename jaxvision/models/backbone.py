"""What every model family shares: one ``head`` and, with ``num_classes=None``, named features.

Detection, segmentation and transfer learning need a backbone's multi-scale maps rather than
its logits, so every family ends its ``__call__`` with :meth:`Classifier.head_or_features`:
an int ``num_classes`` gives logits from a Dense named ``head`` (one name to re-initialise or
freeze around), ``None`` drops the head and returns ``{name: array}`` instead.

Naming rule (timm / FPN): a feature map with stride ``s`` (input pixels per map pixel) is
``c<k>`` with ``k = floor(log2 s)``, so ``k`` is the pyramid level: an ImageNet ResNet gives
``c2``..``c5`` (strides 4..32), a CIFAR ResNet's three stages (strides 1, 2, 4) ``c0``, ``c1``,
``c2``. A stage's map is its output as the next stage sees it; in plain conv nets that is after
the stage's pooling, so the deepest map is the one the head reads. ``stem`` is a stem's output
(ResNets; ViT's patch embedding) and ``pre_logits`` the vector the head would see, with stride
``None`` because it is no longer a map.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax


class FeatureInfo(NamedTuple):
    """One returned feature. ``channels`` is None when it depends on the input size
    (a flatten head's ``pre_logits``, an MLP without hidden layers)."""

    name: str
    stride: int | None
    channels: int | None


def level_name(stride: int) -> str:
    """``c<floor(log2 stride)>``: the pyramid level of a map with this stride."""
    return f"c{int(stride).bit_length() - 1}"


def pyramid(stages: Sequence[tuple[int, int]], pre_logits: int | None, *,
            stem: tuple[int, int] | None = None) -> tuple[FeatureInfo, ...]:
    """``feature_info`` from ``(stride, channels)`` per stage (named by :func:`level_name`),
    an optional ``stem`` ``(stride, channels)`` and the ``pre_logits`` width."""
    info = [FeatureInfo("stem", *stem)] if stem is not None else []
    info += [FeatureInfo(level_name(s), s, c) for s, c in stages]
    return (*info, FeatureInfo("pre_logits", None, pre_logits))


class Classifier(nn.Module):
    """Base of the model families. Subclasses declare ``num_classes: int | None`` and ``dtype``,
    describe their outputs in :meth:`feature_info` and return :meth:`head_or_features`."""

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        """The features ``num_classes=None`` returns, in order, from the fields alone."""
        raise NotImplementedError

    def head_or_features(self, maps: Sequence[jax.Array], pre_logits: jax.Array,
                         **head_kwargs):
        """Logits from the ``head`` Dense, or (``num_classes=None``) ``maps`` and ``pre_logits``
        named by :meth:`feature_info`, so names and outputs cannot drift apart."""
        if self.num_classes is not None:
            return nn.Dense(self.num_classes, dtype=self.dtype, name="head",
                            **head_kwargs)(pre_logits)
        names = [f.name for f in self.feature_info()]
        if len(names) != len(maps) + 1:
            raise AssertionError(f"{type(self).__name__}.feature_info names {names} but "
                                 f"__call__ produced {len(maps) + 1} features")
        return dict(zip(names, [*maps, pre_logits]))
