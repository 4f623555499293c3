"""Anchor-relative box deltas (the R-CNN parameterization), as torchvision's ``BoxCoder``.

For an anchor with centre (x_a, y_a) and size (w_a, h_a), weights (w_x, w_y, w_w, w_h)::

    t_x = w_x (x - x_a) / w_a      t_y = w_y (y - y_a) / h_a
    t_w = w_w log(w / w_a)         t_h = w_h log(h / h_a)

Decoding inverts this; ``t_w, t_h`` are clamped to ``log(1000/16)`` before ``exp`` so that a
wild prediction cannot overflow. Weights (1, 1, 1, 1) are RetinaNet's; (10, 10, 5, 5) are Faster
R-CNN's (keras-cv's ``box_variance`` (0.1, 0.1, 0.2, 0.2) is the reciprocal). Boxes are xyxy.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

DEFAULT_DELTA_CLIP = math.log(1000.0 / 16)


def _centres_and_sizes(boxes: jax.Array):
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * widths, boxes[..., 1] + 0.5 * heights, widths, heights


def encode_boxes(boxes: jax.Array, anchors: jax.Array, *,
                 weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> jax.Array:
    """Regression targets ``[..., 4]`` that take ``anchors`` to ``boxes`` (both xyxy).

    Zero-size boxes (for example padding matched to background anchors) give infinite
    ``t_w, t_h``: select the targets with the positive mask (``jnp.where``) before the loss.
    """
    boxes = jnp.asarray(boxes)
    anchors = jnp.asarray(anchors, dtype=boxes.dtype)
    wx, wy, ww, wh = weights
    ax, ay, aw, ah = _centres_and_sizes(anchors)
    gx, gy, gw, gh = _centres_and_sizes(boxes)
    return jnp.stack([wx * (gx - ax) / aw, wy * (gy - ay) / ah,
                      ww * jnp.log(gw / aw), wh * jnp.log(gh / ah)], axis=-1)


def decode_boxes(deltas: jax.Array, anchors: jax.Array, *,
                 weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
                 delta_clip: float = DEFAULT_DELTA_CLIP) -> jax.Array:
    """xyxy boxes from predicted deltas ``[..., 4]`` and their anchors (inverse of encode)."""
    deltas = jnp.asarray(deltas)
    anchors = jnp.asarray(anchors, dtype=deltas.dtype)
    wx, wy, ww, wh = weights
    ax, ay, aw, ah = _centres_and_sizes(anchors)
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw = jnp.minimum(deltas[..., 2] / ww, delta_clip)
    dh = jnp.minimum(deltas[..., 3] / wh, delta_clip)
    cx, cy = dx * aw + ax, dy * ah + ay
    half_w, half_h = 0.5 * jnp.exp(dw) * aw, 0.5 * jnp.exp(dh) * ah
    return jnp.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)
