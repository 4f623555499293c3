"""TFDS features to schema keys (``jaxvision.data.schema``): one decoder per data set.

Decoders run inside ``tf.data`` on one TFDS example. Boxes leave here as absolute pixel xyxy
(TFDS stores normalized ``[ymin, xmin, ymax, xmax]``), masks as ``[H, W]`` and instance masks
as ``[n, H, W]`` uint8; the host streams then pad objects to ``max_boxes`` and resize.
A data set without an entry here is read as classification (``image``, ``label``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from jaxvision.data import schema as S
from jaxvision.data.sources import _tf


@dataclasses.dataclass(frozen=True)
class TfdsDecoder:
    decode: Callable[[dict], dict]  # one TFDS example -> schema keys
    classes: str = "label"  # the ClassLabel feature giving num_classes and class names


def xyxy_from_tfds(bbox, image):
    """Normalized ``[n, 4]`` yxyx (TFDS ``BBoxFeature``) -> absolute pixel xyxy for ``image``."""
    tf = _tf()
    shape = tf.cast(tf.shape(image), tf.float32)
    ymin, xmin, ymax, xmax = tf.unstack(tf.reshape(tf.cast(bbox, tf.float32), (-1, 4)), axis=-1)
    return tf.stack([xmin * shape[1], ymin * shape[0], xmax * shape[1], ymax * shape[0]], axis=-1)


def classification(example: dict) -> dict:
    tf = _tf()
    return {S.IMAGE: example["image"], S.LABEL: tf.cast(example["label"], tf.int32)}


def _shapes(keys: tuple[str, ...]) -> Callable[[dict], dict]:
    def decode(example):
        tf = _tf()
        objects = example["objects"]
        out = {S.IMAGE: example["image"], S.LABEL: tf.cast(example["label"], tf.int32),
               S.BOXES: xyxy_from_tfds(objects["bbox"], example["image"]),
               S.BOX_CLASSES: tf.cast(objects["label"], tf.int32),
               S.MASK: example["semantic_mask"][..., 0],  # 0 background, class + 1 elsewhere
               S.INSTANCE_MASKS: objects["mask"][..., 0]}
        return {key: out[key] for key in keys}

    return decode


def _shapes_binary(example: dict) -> dict:
    """Image and a 0/1 mask (any object = 1): for tiny objects, finding them is the task."""
    tf = _tf()
    return {S.IMAGE: example["image"], S.LABEL: tf.cast(example["label"], tf.int32),
            S.MASK: tf.cast(example["semantic_mask"][..., 0] > 0, tf.uint8)}


def _objects(drop: str) -> Callable[[dict], dict]:
    """VOC and COCO: boxes and classes without the objects their evaluation ignores (VOC
    ``is_difficult``, COCO ``is_crowd``), which would otherwise be taught as positives."""

    def decode(example):
        tf = _tf()
        objects = example["objects"]
        keep = tf.logical_not(objects[drop])
        return {S.IMAGE: example["image"],
                S.BOXES: tf.boolean_mask(xyxy_from_tfds(objects["bbox"], example["image"]), keep),
                S.BOX_CLASSES: tf.boolean_mask(tf.cast(objects["label"], tf.int32), keep)}

    return decode


def _pets(example: dict) -> dict:
    """Breed label, the head box (class = breed) and the trimap as 0 background, 1 pet,
    2 border (TFDS: 1 pet, 2 background, 3 border), so that 0 is background as everywhere."""
    tf = _tf()
    trimap = example["segmentation_mask"][..., 0]
    mask = tf.where(trimap == 1, 1, tf.where(trimap == 3, 2, 0))
    label = tf.cast(example["label"], tf.int32)
    return {S.IMAGE: example["image"], S.LABEL: label,
            S.BOXES: xyxy_from_tfds(example["head_bbox"], example["image"]),
            S.BOX_CLASSES: label[None], S.MASK: tf.cast(mask, tf.uint8)}


_DECODERS: dict[str, TfdsDecoder] = {
    "shapes/det64": TfdsDecoder(_shapes(S.DETECTION)),
    "shapes/seg64": TfdsDecoder(_shapes(S.SEGMENTATION)),
    "shapes/tiny64": TfdsDecoder(_shapes_binary),
    "voc": TfdsDecoder(_objects("is_difficult"), classes="objects/label"),
    "coco/2014": TfdsDecoder(_objects("is_crowd"), classes="objects/label"),
    "coco/2017": TfdsDecoder(_objects("is_crowd"), classes="objects/label"),
    "oxford_iiit_pet": TfdsDecoder(_pets),
}


def decoder_for(builder) -> TfdsDecoder:
    """The decoder of ``builder``'s data set and config (``voc`` covers every VOC year)."""
    config = builder.builder_config.name if builder.builder_config else None
    return (_DECODERS.get(f"{builder.name}/{config}") or _DECODERS.get(builder.name)
            or TfdsDecoder(classification))
