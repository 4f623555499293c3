"""Procedural ``shapes`` images: classes, boxes, semantic and instance masks from one seed.

Pure numpy and deterministic: example ``i`` of a split depends only on ``(seed, split, i)``,
so the TFDS builder, tests and galleries all see the same pixels. Later objects occlude
earlier ones; boxes and masks describe what is visible.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle", "diamond", "cross")


@dataclasses.dataclass(frozen=True)
class ShapesSpec:
    """What a ``shapes`` variant draws. ``label`` of an image is its largest object's class."""

    image_size: int = 32
    min_objects: int = 1
    max_objects: int = 1
    min_radius_frac: float = 0.15
    max_radius_frac: float = 0.35
    num_train: int = 4000
    num_test: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 0 < self.min_radius_frac <= self.max_radius_frac <= 0.5:
            raise ValueError("need 0 < min_radius_frac <= max_radius_frac <= 0.5, got "
                             f"{self.min_radius_frac}, {self.max_radius_frac}")


def _shape_mask(kind: int, size: int, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = x - cx, y - cy
    if kind == 0:  # circle
        return dx * dx + dy * dy <= r * r
    if kind == 1:  # square
        return (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
    if kind == 2:  # triangle, apex up
        depth = (dy + r) / (2 * r)  # 0 at the apex, 1 at the base
        return (depth >= 0) & (depth <= 1) & (np.abs(dx) <= depth * r)
    if kind == 3:  # diamond
        return np.abs(dx) + np.abs(dy) <= r
    if kind == 4:  # cross
        arm = r / 3
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    raise ValueError(f"unknown shape kind {kind}")


def _example_rng(spec: ShapesSpec, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, zlib.crc32(split.encode()), index])


def render_example(spec: ShapesSpec, split: str, index: int) -> dict[str, np.ndarray]:
    """One example: ``image`` uint8 [S,S,3], ``label`` int, ``boxes`` float32 [N,4] (pixel
    xyxy, exclusive max), ``classes`` int32 [N], ``semantic_mask`` uint8 [S,S] (0 background,
    class + 1 elsewhere) and ``instance_masks`` bool [N,S,S]."""
    rng = _example_rng(spec, split, index)
    size = spec.image_size
    background = rng.uniform(0, 90, size=3)
    image = np.broadcast_to(background, (size, size, 3)).copy()
    instance_ids = np.zeros((size, size), np.int32)  # 0 = background, k = k-th object
    classes, placed = [], []
    for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
        for _attempt in range(20):
            r = rng.uniform(spec.min_radius_frac, spec.max_radius_frac) * size
            cx, cy = rng.uniform(r, size - r, size=2)
            box = np.array([cx - r, cy - r, cx + r, cy + r])
            if all(_iou(box, other) < 0.2 for other in placed):
                break
        kind = int(rng.integers(len(CLASS_NAMES)))
        mask = _shape_mask(kind, size, cx, cy, r)
        if not mask.any():
            continue
        colour = rng.uniform(130, 255, size=3)
        image[mask] = colour
        instance_ids[mask] = len(classes) + 1
        classes.append(kind)
        placed.append(box)
    image += rng.normal(0, 6, size=image.shape)
    instance_masks = np.stack([instance_ids == k + 1 for k in range(len(classes))])
    keep = instance_masks.reshape(len(classes), -1).any(axis=1)  # fully occluded objects go
    instance_masks = instance_masks[keep]
    classes = np.asarray(classes, np.int32)[keep]
    boxes = np.stack([_mask_box(m) for m in instance_masks]).astype(np.float32)
    semantic = np.zeros((size, size), np.uint8)
    for m, c in zip(instance_masks, classes):
        semantic[m] = c + 1
    areas = instance_masks.reshape(len(classes), -1).sum(axis=1)
    return {
        "image": np.clip(np.rint(image), 0, 255).astype(np.uint8),
        "label": int(classes[np.argmax(areas)]),
        "boxes": boxes,
        "classes": classes,
        "semantic_mask": semantic,
        "instance_masks": instance_masks,
    }


def _mask_box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def generate(spec: ShapesSpec, split: str, num_examples: int | None = None) -> dict[str, np.ndarray]:
    """A whole split as arrays; per-object fields are padded to ``max_objects`` with ``valid``."""
    if split not in ("train", "test"):
        raise ValueError(f"shapes has splits 'train' and 'test', got {split!r}")
    n = num_examples if num_examples is not None else (
        spec.num_train if split == "train" else spec.num_test)
    size, k = spec.image_size, spec.max_objects
    out = {
        "image": np.zeros((n, size, size, 3), np.uint8),
        "label": np.zeros((n,), np.int32),
        "boxes": np.zeros((n, k, 4), np.float32),
        "classes": np.zeros((n, k), np.int32),
        "valid": np.zeros((n, k), bool),
        "semantic_mask": np.zeros((n, size, size), np.uint8),
        "instance_masks": np.zeros((n, k, size, size), bool),
    }
    for i in range(n):
        ex = render_example(spec, split, i)
        m = len(ex["classes"])
        for key in ("image", "label", "semantic_mask"):
            out[key][i] = ex[key]
        for key in ("boxes", "classes", "instance_masks"):
            out[key][i, :m] = ex[key]
        out["valid"][i, :m] = True
    return out
