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
# Every shape the renderer draws; a spec picks its classes from these (default: CLASS_NAMES).
# The transfer experiments pretrain on ten of them and transfer to five others.
SHAPE_NAMES = CLASS_NAMES + ("star", "ring", "hexagon", "ellipse", "arrow", "frame", "t_shape",
                             "l_shape", "hourglass", "semicircle", "pentagon", "crescent")
TEXTURES = ("solid", "stripes", "checker", "dots")


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
    # The class names, in label order, each one of SHAPE_NAMES.
    classes: tuple[str, ...] = CLASS_NAMES
    # Fill objects with a random texture (solid, stripes, checker, dots) in a darker shade.
    textures: bool = False

    def __post_init__(self):
        unknown = [c for c in self.classes if c not in SHAPE_NAMES]
        if unknown or not self.classes:
            raise ValueError(f"classes must be a non-empty tuple of {SHAPE_NAMES}, got "
                             f"{self.classes!r}")
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
    name = SHAPE_NAMES[kind] if 0 <= kind < len(SHAPE_NAMES) else None
    rho = np.sqrt(dx * dx + dy * dy)
    angle = np.arctan2(dy, dx)
    if name == "star":  # five points, apex up
        spikes = np.cos(5 * (angle + np.pi / 2)) * 0.5 + 0.5  # 1 at a point, 0 between
        return rho <= r * (0.45 + 0.55 * spikes ** 2)
    if name == "ring":
        return (rho <= r) & (rho >= 0.55 * r)
    if name == "hexagon":  # flat top
        return (np.abs(dy) <= r * 0.866) & (np.abs(dx) * 0.866 + np.abs(dy) * 0.5 <= r * 0.866)
    if name == "ellipse":  # wide
        return (dx / r) ** 2 + (dy / (0.5 * r)) ** 2 <= 1
    if name == "arrow":  # pointing right: a shaft and a triangular head
        shaft = (dx >= -r) & (dx <= 0.1 * r) & (np.abs(dy) <= 0.25 * r)
        head = (dx >= 0.1 * r) & (dx <= r) & (np.abs(dy) <= (r - dx) * (0.75 / 0.9))
        return shaft | head
    if name == "frame":  # a hollow square
        outer = (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
        return outer & ~((np.abs(dx) <= r * 0.5) & (np.abs(dy) <= r * 0.5))
    if name == "t_shape":
        return (((dy >= -r) & (dy <= -0.45 * r) & (np.abs(dx) <= r))
                | ((np.abs(dx) <= 0.3 * r) & (dy >= -r) & (dy <= r)))
    if name == "l_shape":
        return (((dx >= -0.8 * r) & (dx <= -0.25 * r) & (np.abs(dy) <= r))
                | ((dy >= 0.45 * r) & (dy <= r) & (dx >= -0.8 * r) & (dx <= 0.8 * r)))
    if name == "hourglass":  # two triangles meeting at the centre
        return (np.abs(dy) <= r) & (np.abs(dx) <= np.abs(dy) * 0.9)
    if name == "semicircle":  # the upper half of a disc, centred
        return (rho <= r) & (dy <= 0.2 * r) & (dy + 0.2 * r >= -r)
    if name == "pentagon":  # apex up
        sector = 2 * np.pi / 5
        local = np.mod(angle + np.pi / 2 + sector / 2, sector) - sector / 2
        return rho * np.cos(local) <= r * np.cos(sector / 2)
    if name == "crescent":
        return (rho <= r) & ((dx - 0.45 * r) ** 2 + dy ** 2 > (0.8 * r) ** 2)
    raise ValueError(f"unknown shape kind {kind}")


def _texture(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Where a texture's second colour goes (True) over the whole image."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = float(rng.uniform(3.0, 6.0))
    if TEXTURES[kind] == "stripes":
        theta = rng.uniform(0, np.pi)
        return np.mod(x * np.cos(theta) + y * np.sin(theta), period) < period / 2
    if TEXTURES[kind] == "checker":
        return (np.floor(x / period) + np.floor(y / period)) % 2 == 0
    if TEXTURES[kind] == "dots":
        return (np.mod(x, period) - period / 2) ** 2 + (np.mod(y, period) - period / 2) ** 2 < (
            period / 3.5) ** 2
    return np.zeros((size, size), bool)


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
        kind = int(rng.integers(len(spec.classes)))
        mask = _shape_mask(SHAPE_NAMES.index(spec.classes[kind]), size, cx, cy, r)
        if not mask.any():
            continue
        colour = rng.uniform(130, 255, size=3)
        image[mask] = colour
        if spec.textures:  # drawn only for textured specs: the plain ones keep their pixels
            pattern = mask & _texture(int(rng.integers(len(TEXTURES))), size, rng)
            image[pattern] = colour * rng.uniform(0.4, 0.65)  # a darker shade of the fill
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
