"""The per-example keys: one name, shape, dtype and meaning for each, shared by the data
sources, the host streams, augmentation, losses, metrics and prediction.

Boxes are absolute pixel ``xyxy`` float32 in the coordinates of the image they travel with
(pixel ``i`` spans ``[i, i + 1)``: a box over the whole image is ``[0, 0, W, H]``). TFDS's
normalized ``[ymin, xmin, ymax, xmax]`` is converted once, when a source decodes an example,
so that no later stage guesses the format. Sources yield a variable number ``n`` of objects;
the host streams pad the per-object keys to ``max_boxes`` rows, and ``boxes_valid`` marks the
real ones. ``valid`` is another flag: the eval stream's mark of the examples that only pad the
last batch (padding examples have no valid boxes either).
"""

from __future__ import annotations

import dataclasses

import numpy as np

IMAGE = "image"
LABEL = "label"
BOXES = "boxes"
BOX_CLASSES = "box_classes"
BOXES_VALID = "boxes_valid"
MASK = "mask"
INSTANCE_MASKS = "instance_masks"
VALID = "valid"


@dataclasses.dataclass(frozen=True)
class Field:
    shape: tuple[str, ...]  # per example; "H", "W", "C" image axes, "N" = max_boxes
    dtypes: tuple[str, ...]  # the first is what the host streams deliver
    doc: str


FIELDS: dict[str, Field] = {
    IMAGE: Field(("H", "W", "C"), ("uint8", "float32"),
                 "pixels; uint8 on the host, float32 in [0, 1] inside the train step"),
    LABEL: Field((), ("int32",), "image class"),
    BOXES: Field(("N", "4"), ("float32",), "absolute pixel xyxy; padding rows are 0"),
    BOX_CLASSES: Field(("N",), ("int32",), "class of each box; padding rows are 0"),
    BOXES_VALID: Field(("N",), ("bool",), "True for real objects, False for padding rows"),
    MASK: Field(("H", "W"), ("uint8", "int32"),
                "semantic mask, 0 = background unless the source says otherwise"),
    INSTANCE_MASKS: Field(("N", "H", "W"), ("uint8", "bool"),
                          "0/1 mask of object k in row k; padding rows are 0"),
    VALID: Field((), ("bool",), "eval streams only: False for examples that pad the last batch"),
}

PER_OBJECT = (BOXES, BOX_CLASSES, BOXES_VALID, INSTANCE_MASKS)  # padded to max_boxes together
DETECTION = (IMAGE, LABEL, BOXES, BOX_CLASSES, MASK, INSTANCE_MASKS)
SEGMENTATION = (IMAGE, LABEL, MASK)


def check_batch(batch: dict, *, batched: bool = True) -> None:
    """Raises ``ValueError`` naming the first key whose shape or dtype breaks the schema
    (unknown keys included); ``H``, ``W``, ``C`` come from the image, ``N`` from ``boxes``."""
    lead = 1 if batched else 0
    sizes = dict(zip("HWC", np.shape(batch[IMAGE])[lead:]))
    for key in PER_OBJECT:
        if key in batch:
            sizes["N"] = np.shape(batch[key])[lead]
            break
    for key, value in batch.items():
        if key not in FIELDS:
            raise ValueError(f"{key!r} is not a schema key ({', '.join(FIELDS)})")
        field = FIELDS[key]
        expected = tuple(int(d) if d.isdigit() else sizes.get(d) for d in field.shape)
        shape = tuple(np.shape(value)[lead:])
        dtype = np.dtype(getattr(value, "dtype", None) or np.asarray(value).dtype).name
        if shape != expected or dtype not in field.dtypes:
            raise ValueError(f"{key!r}: expected shape {expected} ([{', '.join(field.shape)}]) "
                             f"and dtype in {field.dtypes}, got {shape} {dtype}")
