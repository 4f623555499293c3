"""Data: sources (TFDS, embedded builders, arrays, tf.data, image folders) and host streams.

``build_datasets(config)`` turns an experiment config into train/eval streams; users with their
own data build ``Source``s with ``from_arrays`` / ``from_tf_dataset`` / ``from_image_folder``
and pass them to ``make_datasets``. Key names, shapes and the box format are in ``schema``.
"""

from __future__ import annotations

import dataclasses
import logging

import jax

from jaxvision.data import schema
from jaxvision.data.pipeline import EvalStream, TrainStream
from jaxvision.data.sources import (DatasetNotAvailableError, Source, check_image_size,
                                    from_arrays, from_image_folder, from_tf_dataset, from_tfds)


@dataclasses.dataclass(frozen=True)
class Datasets:
    train: TrainStream
    eval: EvalStream
    num_classes: int
    image_shape: tuple[int, int, int]  # after resizing: what the model sees
    class_names: tuple[str, ...] | None = None


def make_datasets(train: Source, eval: Source, *, batch_size: int, eval_batch_size: int,  # noqa: A002
                  seed: int, image_size: tuple[int, int] | None = None,
                  cache: bool = True, max_boxes: int | None = None) -> Datasets:
    """Streams over two sources; this process reads its share of each. Eval images of another
    size than the training images are resized to the training (or ``image_size``) size, with a
    warning, since it usually means mismatched data. Sources with boxes need ``max_boxes``."""
    if train.num_classes != eval.num_classes:
        raise ValueError(f"train and eval disagree on num_classes: {train.num_classes} vs "
                         f"{eval.num_classes}")
    if train.image_shape[2] != eval.image_shape[2]:
        raise ValueError(f"train and eval images differ in channels: {train.image_shape} vs "
                         f"{eval.image_shape}")
    size = check_image_size(image_size) if image_size is not None else train.image_shape[:2]
    if None in size:
        raise ValueError("the training images vary in size: pass image_size (config.image_size)")
    known = None not in (*eval.image_shape[:2], *train.image_shape[:2])
    if known and eval.image_shape[:2] != train.image_shape[:2]:
        logging.getLogger("jaxvision.data").warning(
            "eval images are %dx%d but training images are %dx%d: resizing the eval images to "
            "%dx%d", *eval.image_shape[:2], *train.image_shape[:2], *size)
    shard = dict(process_index=jax.process_index(), process_count=jax.process_count(),
                 max_boxes=max_boxes)
    return Datasets(
        train=TrainStream(train, batch_size=batch_size, seed=seed, image_size=size, cache=cache,
                          **shard),
        eval=EvalStream(eval, batch_size=eval_batch_size, image_size=size, cache=cache, **shard),
        num_classes=train.num_classes,
        image_shape=(*size, train.image_shape[2]),
        class_names=train.class_names,
    )


def build_datasets(config) -> Datasets:
    """Streams for ``config.dataset`` (a TFDS or embedded name, or ``folder:<path>`` with
    ``train``/``test`` subfolders) with the config's batch sizes, seed and image size."""
    name = config.dataset
    image_size = tuple(config.image_size) if config.get("image_size") else None
    if name.startswith("folder:"):
        if image_size is None:
            raise ValueError("config.image_size is required for folder: data sets")
        root = name[len("folder:"):]
        train = from_image_folder(f"{root}/{config.train_split}", image_size=image_size)
        # One class-name-to-id mapping, the training folder's, for both splits.
        eval_ = from_image_folder(f"{root}/{config.eval_split}", image_size=image_size,
                                  class_names=train.class_names)
    else:
        options = dict(data_dir=config.get("data_dir"), download=config.get("download", True))
        train = from_tfds(name, config.train_split, **options)
        eval_ = from_tfds(name, config.eval_split, **options)
    return make_datasets(train, eval_, batch_size=config.batch_size,
                         eval_batch_size=config.eval_batch_size, seed=config.seed,
                         image_size=image_size, cache=config.get("cache_data", True),
                         max_boxes=config.get("max_boxes"))


__all__ = [
    "Datasets", "DatasetNotAvailableError", "EvalStream", "Source", "TrainStream",
    "build_datasets", "from_arrays", "from_image_folder", "from_tf_dataset", "from_tfds",
    "make_datasets", "schema",
]
