"""Shared machinery: samples, per-example batching, resampling and box geometry.

A *sample* is either an image array ``[H, W, C]`` or a dict of ``jaxvision.data.schema`` keys:
``"image"`` and optionally ``"boxes"`` ``[N, 4]`` (absolute pixel xyxy, torchvision convention:
pixel ``i`` spans ``[i, i + 1)``) with ``"boxes_valid"`` ``[N]`` (bool), ``"mask"`` ``[H, W]``
(int semantic mask), ``"instance_masks"`` ``[N, H, W]``, and keys that geometry leaves alone
(``"label"``, ``"box_classes"``, ``"valid"``). Every op accepts either form and returns the same
form, so one op serves classification (arrays) and detection/segmentation (dicts) alike.
``RULES`` says how a geometric op moves each key; a key it does not list is an error, since
passing it through would leave it misaligned with the moved image.

Continuous coordinates put pixel centres at ``i + 0.5``; geometric transforms are written as
3x3 matrices acting on ``(x, y, 1)`` in these coordinates, so boxes, masks and images all move
by the very same map.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxvision.data import schema as S

Sample = Any  # an image array [H, W, C] or a dict of schema keys with "image"

# How a geometric op moves each per-example key: "image" bilinear, "mask" nearest, "instances"
# nearest for each of the N masks, "boxes" corners mapped and clipped (``boxes_valid`` updated
# with them; with instance masks, then tightened to the moved masks: ``mask_boxes``), "keep"
# unchanged.
RULES: dict[str, str] = {
    S.IMAGE: "image", S.MASK: "mask", S.INSTANCE_MASKS: "instances",
    S.BOXES: "boxes", S.BOXES_VALID: "boxes",
    S.LABEL: "keep", S.BOX_CLASSES: "keep", S.VALID: "keep",
}
EXAMPLE_KEYS = tuple(k for k, rule in RULES.items() if rule != "keep")  # vmapped per example


def check_keys(sample: dict) -> None:
    unknown = [key for key in sample if key not in RULES]
    if unknown:
        raise ValueError(
            f"augmentation does not know how to move the per-example key(s) {unknown} with the "
            f"image (known: {', '.join(RULES)}); rename them to schema keys "
            "(jaxvision.data.schema) or drop them before augmenting")


def to_dict(sample: Sample) -> tuple[dict, bool]:
    """Returns ``(dict_sample, was_array)`` and checks the image rank."""
    if isinstance(sample, dict):
        if "image" not in sample:
            raise ValueError(f"a sample dict needs an 'image' entry; got keys {sorted(sample)}")
        check_keys(sample)
        out, was_array = dict(sample), False
    else:
        out, was_array = {"image": sample}, True
    image = out["image"]
    if image.ndim != 3:
        raise ValueError(
            f"augmentation ops take one image [H, W, C]; got shape {tuple(image.shape)}. "
            "For a batch, use jaxvision.augment.apply_per_example (vmap with per-example keys).")
    if ("boxes" in out) != ("boxes_valid" in out):
        raise ValueError("'boxes' and 'boxes_valid' go together; pass both or neither")
    return out, was_array


def from_dict(sample: dict, was_array: bool) -> Sample:
    return sample["image"] if was_array else sample


def image_op(fn: Callable) -> Callable:
    """Lifts ``fn(key, image, **options) -> image`` to samples: dicts get their image replaced."""

    @functools.wraps(fn)
    def wrapper(key, sample, **options):
        d, was_array = to_dict(sample)
        d["image"] = fn(key, d["image"], **options)
        return from_dict(d, was_array)

    return wrapper


def sample_op(fn: Callable) -> Callable:
    """Lifts ``fn(key, dict_sample, **options) -> dict_sample`` to accept arrays as well."""

    @functools.wraps(fn)
    def wrapper(key, sample, **options):
        d, was_array = to_dict(sample)
        return from_dict(fn(key, d, **options), was_array)

    return wrapper


def apply_per_example(fn: Callable, key: jax.Array, batch: Any) -> Any:
    """Applies per-sample ``fn(key, sample)`` to each example of a batch with its own key.

    ``batch`` is an image batch ``[B, H, W, C]`` or a dict whose ``EXAMPLE_KEYS`` entries are
    vmapped; keys that geometry keeps (``"label"``...) pass through, unknown keys are an error.
    Keys come from ``split(key, B)``, so example ``i`` gets exactly what
    ``fn(split(key, B)[i], sample_i)`` gives.
    """
    if isinstance(batch, dict):
        check_keys(batch)
        per_example = {k: v for k, v in batch.items() if k in EXAMPLE_KEYS}
        rest = {k: v for k, v in batch.items() if k not in EXAMPLE_KEYS}
        if "image" not in per_example:
            raise ValueError(f"the batch needs an 'image' entry; got keys {sorted(batch)}")
        size = per_example["image"].shape[0]
        out = jax.vmap(fn)(jax.random.split(key, size), per_example)
        return {**rest, **out}
    return jax.vmap(fn)(jax.random.split(key, batch.shape[0]), batch)


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------

def output_grid(height: int, width: int) -> jax.Array:
    """Continuous ``(x, y, 1)`` coordinates of the output pixel centres, shape ``[H, W, 3]``."""
    ys, xs = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32) + 0.5,
                          jnp.arange(width, dtype=jnp.float32) + 0.5, indexing="ij")
    return jnp.stack([xs, ys, jnp.ones_like(xs)], axis=-1)


def sample_bilinear(image: jax.Array, x: jax.Array, y: jax.Array, *, fill: float = 0.0) -> jax.Array:
    """Samples ``image [H, W, C]`` at continuous coordinates ``x, y`` (pixel centres at +0.5).

    Taps that fall outside the image read ``fill`` (scipy's ``mode='constant'``).
    """
    height, width = image.shape[:2]
    xi, yi = x - 0.5, y - 0.5
    x0, y0 = jnp.floor(xi), jnp.floor(yi)
    wx, wy = (xi - x0)[..., None], (yi - y0)[..., None]
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)

    def tap(yy, xx):
        inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        value = image[jnp.clip(yy, 0, height - 1), jnp.clip(xx, 0, width - 1)]
        return jnp.where(inside[..., None], value, jnp.asarray(fill, image.dtype))

    top = tap(y0, x0) * (1 - wx) + tap(y0, x0 + 1) * wx
    bottom = tap(y0 + 1, x0) * (1 - wx) + tap(y0 + 1, x0 + 1) * wx
    return (top * (1 - wy) + bottom * wy).astype(image.dtype)


def sample_nearest(array: jax.Array, x: jax.Array, y: jax.Array, *, fill=0) -> jax.Array:
    """Nearest-neighbour sampling of ``array [H, W, ...]`` (masks): labels are never blended."""
    height, width = array.shape[:2]
    xi = jnp.floor(x).astype(jnp.int32)
    yi = jnp.floor(y).astype(jnp.int32)
    inside = (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)
    value = array[jnp.clip(yi, 0, height - 1), jnp.clip(xi, 0, width - 1)]
    inside = inside.reshape(inside.shape + (1,) * (value.ndim - inside.ndim))
    return jnp.where(inside, value, jnp.asarray(fill, array.dtype))


# --------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------

def clip_boxes(boxes: jax.Array, valid: jax.Array, *, height: int, width: int,
               min_box_size: float) -> tuple[jax.Array, jax.Array]:
    """Clips xyxy boxes to the image and marks those narrower/shorter than ``min_box_size``."""
    x1 = jnp.clip(boxes[..., 0], 0.0, width)
    y1 = jnp.clip(boxes[..., 1], 0.0, height)
    x2 = jnp.clip(boxes[..., 2], 0.0, width)
    y2 = jnp.clip(boxes[..., 3], 0.0, height)
    clipped = jnp.stack([x1, y1, x2, y2], axis=-1)
    big_enough = ((x2 - x1) >= min_box_size) & ((y2 - y1) >= min_box_size)
    valid = valid & big_enough
    return jnp.where(valid[..., None], clipped, 0.0), valid


def transform_boxes(boxes: jax.Array, forward: jax.Array) -> jax.Array:
    """Maps the four corners of each xyxy box through ``forward`` (3x3) and takes their extent.

    For affine maps this is the exact bounding box of the transformed rectangle.
    """
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    corners = jnp.stack([
        jnp.stack([x1, y1], -1), jnp.stack([x2, y1], -1),
        jnp.stack([x1, y2], -1), jnp.stack([x2, y2], -1)], axis=-2)  # [N, 4, 2]
    mapped = corners @ forward[:2, :2].T + forward[:2, 2]
    lo, hi = mapped.min(axis=-2), mapped.max(axis=-2)
    return jnp.concatenate([lo, hi], axis=-1)


def move(sample: dict, *, image: Callable, nearest: Callable, boxes: Callable,
         mask_fill: int = 0, instances: Callable | None = None) -> dict:
    """Applies one geometric op to every key of ``sample`` through ``RULES``.

    ``image(array)`` moves the image; ``nearest(array [H, W, ...], fill)`` moves label maps:
    the semantic mask (filled with ``mask_fill``) and the instance masks as ``[H, W, N]``
    (filled with 0, or by ``instances(array)`` when given); ``boxes(boxes, boxes_valid)`` returns
    the moved boxes and their validity. Instance masks of boxes that became invalid are cleared,
    so that row ``k`` of both always describes the same object.
    """
    out = {}
    for key, value in sample.items():
        rule = RULES[key]
        if rule == "image":
            out[key] = image(value)
        elif rule == "mask":
            out[key] = nearest(value, mask_fill)
        elif rule == "instances":
            stacked = jnp.moveaxis(value, 0, -1)
            moved = instances(stacked) if instances else nearest(stacked, 0)
            out[key] = jnp.moveaxis(moved, -1, 0)
        elif rule == "keep":
            out[key] = value
    if S.BOXES in sample:
        out[S.BOXES], out[S.BOXES_VALID] = boxes(sample[S.BOXES], sample[S.BOXES_VALID])
        if S.INSTANCE_MASKS in out:
            out[S.BOXES], out[S.BOXES_VALID] = mask_boxes(out[S.INSTANCE_MASKS],
                                                          out[S.BOXES_VALID])
            valid = out[S.BOXES_VALID][:, None, None]
            out[S.INSTANCE_MASKS] = jnp.where(valid, out[S.INSTANCE_MASKS], 0).astype(
                sample[S.INSTANCE_MASKS].dtype)
    return out


def mask_boxes(instance_masks: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The tight xyxy box (pixel edges) of each ``[N, H, W]`` instance mask, and ``valid``
    narrowed to non-empty masks; invalid rows are zero.

    When instance masks travel with the boxes, a geometric op takes the boxes from the moved
    masks (as Detectron2's ``recompute_boxes`` does after a crop): mapping a box's corners
    bounds the moved rectangle, which is loose on a rotated or border-cut object, while the
    mask knows where the object is. Validity (``min_box_size``) is still judged on the mapped
    box, so the same boxes drop out with or without masks."""
    present = instance_masks > 0
    rows, cols = present.any(axis=2), present.any(axis=1)  # [N, H], [N, W]

    def extent(line):
        index = jnp.arange(line.shape[-1], dtype=jnp.float32)
        low = jnp.where(line, index, jnp.inf).min(-1)
        high = jnp.where(line, index + 1, -jnp.inf).max(-1)
        return low, high

    (y1, y2), (x1, x2) = extent(rows), extent(cols)
    valid = valid & rows.any(-1)
    boxes = jnp.stack([x1, y1, x2, y2], axis=-1)
    return jnp.where(valid[:, None], boxes, 0.0), valid


def check_interpolation(interpolation: str) -> str:
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest'; got {interpolation!r}")
    return interpolation


def sample_image(image: jax.Array, x: jax.Array, y: jax.Array, *, fill: float,
                 interpolation: str = "bilinear") -> jax.Array:
    """The image at ``x, y``: bilinear, or nearest (torchvision's ``InterpolationMode.NEAREST``,
    which its AutoAugment family uses by default); outside taps read ``fill``."""
    if check_interpolation(interpolation) == "nearest":
        return sample_nearest(image, x, y, fill=jnp.asarray(fill, image.dtype))
    return sample_bilinear(image, x, y, fill=fill)


def warp_affine(sample: dict, inverse: jax.Array, *, out_height: int, out_width: int,
                fill: float, mask_fill: int, min_box_size: float,
                interpolation: str = "bilinear") -> dict:
    """Warps every entry of a sample dict by one affine map.

    ``inverse`` (3x3) maps output coordinates to input coordinates; images are sampled
    bilinearly (or by nearest neighbour with ``interpolation='nearest'``), masks by nearest
    neighbour, boxes are moved by the forward map and clipped.
    """
    check_interpolation(interpolation)
    grid = output_grid(out_height, out_width) @ inverse.T
    x, y = grid[..., 0], grid[..., 1]

    def boxes(b, valid):
        moved = transform_boxes(b, jnp.linalg.inv(inverse))
        return clip_boxes(moved, valid, height=out_height, width=out_width,
                          min_box_size=min_box_size)

    return move(sample, image=lambda im: sample_image(im, x, y, fill=fill,
                                                      interpolation=interpolation),
                nearest=lambda m, f: sample_nearest(m, x, y, fill=f), boxes=boxes,
                mask_fill=mask_fill)


def uniform(key: jax.Array, low, high, shape=()) -> jax.Array:
    return jax.random.uniform(key, shape, jnp.float32, low, high)


def as_pair(value, name: str) -> tuple[float, float]:
    """``v -> (-v, v)`` for a scalar, ``(lo, hi)`` unchanged; checks order."""
    if isinstance(value, (int, float)):
        lo, hi = -float(value), float(value)
    else:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or a (low, high) pair; got {value!r}") from None
    if lo > hi:
        raise ValueError(f"{name} must satisfy low <= high; got {value!r}")
    return lo, hi


def check_probability(p, name: str = "probability") -> None:
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {p!r}")


def maybe(key: jax.Array, probability: float, apply: Callable, sample: Any) -> Any:
    """``apply(sample)`` with the given probability, else ``sample`` (a select under vmap)."""
    if probability >= 1.0:
        return apply(sample)
    if probability <= 0.0:
        return sample
    return jax.lax.cond(jax.random.bernoulli(key, probability), apply, lambda s: s, sample)
