"""Input adaptation: a grayscale target for an RGB source, other image sizes for a ViT, and
normalization statistics of the target domain.

``init_from`` calls :func:`adapt_leaf` on a leaf whose source shape differs from the model's;
it handles exactly two cases and every other mismatch still stops the run:

* a stem kernel ``(h, w, 3, c)`` loaded into a model of ``(h, w, 1, c)``: the kernel summed
  over its input channels, so the model on a grayscale image ``g`` gives what the source gives
  on ``(g, g, g)`` (the course's "repeat the channel 3x", without tripling the input);
* a ViT ``pos_embedding`` for another patch grid: bilinearly resized
  (``jaxvision.models.vit.resize_pos_embedding``), class token kept.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import jax.numpy as jnp
import numpy as np


def grayscale_stem_kernel(kernel) -> np.ndarray:
    """``(h, w, 3, c)`` -> ``(h, w, 1, c)``: the sum over the input channels."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"expected a conv kernel (h, w, in, out), got shape {kernel.shape}")
    return kernel.sum(axis=2, keepdims=True)


def _square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def adapt_leaf(path: str, source, fresh) -> Any | None:
    """The source leaf adapted to the model's shape, or None when no rule applies."""
    source_shape, shape = tuple(np.shape(source)), tuple(np.shape(fresh))
    if (len(shape) == 4 and len(source_shape) == 4 and path.endswith("kernel")
            and source_shape[2] == 3 and shape[2] == 1
            and source_shape[:2] + source_shape[3:] == shape[:2] + shape[3:]):
        return grayscale_stem_kernel(source)
    if (path.endswith("pos_embedding") and len(shape) == 3 and len(source_shape) == 3
            and shape[0] == source_shape[0] == 1 and shape[2] == source_shape[2]):
        from jaxvision.models.vit import resize_pos_embedding

        for prefix in (1, 0):
            old, new = source_shape[1] - prefix, shape[1] - prefix
            if _square(old) and _square(new):
                side = math.isqrt(new)
                return np.asarray(resize_pos_embedding(jnp.asarray(source), (side, side),
                                                       num_prefix_tokens=prefix))
    return None


def normalization_statistics(batches: Iterable[Any]) -> dict[str, tuple[float, ...]]:
    """Per-channel mean and standard deviation of the target images (uint8 or [0, 1] floats,
    arrays or dicts with ``image``), as ``{"normalize_mean": ..., "normalize_std": ...}`` for
    ``config.augment`` (the ``normalize`` op), computed in float64 over all pixels."""
    total, first, second = 0, 0.0, 0.0
    for batch in batches:
        images = np.asarray(batch["image"] if isinstance(batch, dict) else batch)
        images = images.astype(np.float64) / (255.0 if images.dtype == np.uint8 else 1.0)
        pixels = images.reshape(-1, images.shape[-1])
        total += pixels.shape[0]
        first = first + pixels.sum(axis=0)
        second = second + np.square(pixels).sum(axis=0)
    if total == 0:
        raise ValueError("normalization_statistics got no images")
    mean = first / total
    std = np.sqrt(np.maximum(second / total - np.square(mean), 0.0))
    return {"normalize_mean": tuple(float(v) for v in mean),
            "normalize_std": tuple(float(v) for v in std)}
