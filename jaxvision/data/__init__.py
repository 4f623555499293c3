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
    eval: EvalStream  # judged during training: the validation split when there is a test one
    num_classes: int
    image_shape: tuple[int, int, int]  # after resizing: what the model sees
    class_names: tuple[str, ...] | None = None
    test: EvalStream | None = None  # evaluated once, at the end, with the best checkpoint


def make_datasets(train: Source, eval: Source, *, batch_size: int, eval_batch_size: int,  # noqa: A002
                  seed: int, image_size: tuple[int, int] | None = None,
                  cache: bool = True, max_boxes: int | None = None,
                  test: Source | None = None) -> Datasets:
    """Streams over the sources; this process reads its share of each. Eval images of another
    size than the training images are resized to the training (or ``image_size``) size, with a
    warning, since it usually means mismatched data. Sources with boxes need ``max_boxes``.
    With a ``test`` source, ``eval`` is the validation set the run is judged on during
    training, and ``test`` is evaluated once at the end."""
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
        test=(EvalStream(test, batch_size=eval_batch_size, image_size=size, cache=cache, **shard)
              if test is not None else None),
    )


def validation_splits(train_split: str, fraction: float) -> tuple[str, str]:
    """``(train, validation)`` TFDS split strings that carve the last ``fraction`` of
    ``train_split`` off, deterministically (the same examples every run)."""
    percent = round(100 * fraction)
    if not 1 <= percent <= 50 or abs(percent - 100 * fraction) > 1e-9:
        raise ValueError(f"config.validation_fraction must be a whole percentage in [0.01, 0.5], "
                         f"got {fraction}")
    if "[" in train_split:
        raise ValueError(f"config.validation_fraction cannot carve a split that is already a "
                         f"slice ({train_split!r}); name the validation split in "
                         "config.validation_split instead")
    return f"{train_split}[:{100 - percent}%]", f"{train_split}[{100 - percent}%:]"


def build_datasets(config) -> Datasets:
    """Streams for ``config.dataset`` (a TFDS or embedded name, or ``folder:<path>`` with
    ``train``/``test`` subfolders) with the config's batch sizes, seed and image size.

    With ``config.validation_split`` (a named split or folder) or ``config.validation_fraction``
    (carved from the training split), the run is judged on the validation set and
    ``config.eval_split`` becomes the test set, evaluated once at the end."""
    name = config.dataset
    image_size = tuple(config.image_size) if config.get("image_size") else None
    train_split, validation_split = config.train_split, config.get("validation_split")
    if config.get("validation_fraction"):
        if validation_split:
            raise ValueError("set config.validation_split or config.validation_fraction, not both")
        if name.startswith("folder:"):
            raise ValueError("config.validation_fraction carves TFDS splits; for an image folder "
                             "name a validation folder in config.validation_split")
        train_split, validation_split = validation_splits(train_split,
                                                          config.validation_fraction)
    if name.startswith("folder:"):
        if image_size is None:
            raise ValueError("config.image_size is required for folder: data sets")
        root = name[len("folder:"):]
        train = from_image_folder(f"{root}/{train_split}", image_size=image_size)
        # One class-name-to-id mapping, the training folder's, for every split.
        read = lambda split: from_image_folder(f"{root}/{split}", image_size=image_size,  # noqa: E731
                                               class_names=train.class_names)
    else:
        options = dict(data_dir=config.get("data_dir"), download=config.get("download", True))
        train = from_tfds(name, train_split, **options)
        read = lambda split: from_tfds(name, split, **options)  # noqa: E731
    test = read(config.eval_split)
    validation = read(validation_split) if validation_split else None
    return make_datasets(train, test if validation is None else validation,
                         test=None if validation is None else test,
                         batch_size=config.batch_size,
                         eval_batch_size=config.eval_batch_size, seed=config.seed,
                         image_size=image_size, cache=config.get("cache_data", True),
                         max_boxes=config.get("max_boxes"))


__all__ = [
    "Datasets", "DatasetNotAvailableError", "EvalStream", "Source", "TrainStream",
    "build_datasets", "from_arrays", "from_image_folder", "from_tf_dataset", "from_tfds",
    "make_datasets", "schema",
]
