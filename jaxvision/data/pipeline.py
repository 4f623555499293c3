"""Host input pipeline: decode, pad objects to ``max_boxes``, resize the image with its boxes and
masks to a fixed size, shuffle, batch; nothing random else.

Augmentation runs on device inside the train step, so the host only delivers uint8 batches.
The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run can skip to any step
and see exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import itertools
import re
from typing import Iterator

import numpy as np

from jaxvision.data import schema as S
from jaxvision.data.sources import Source, _tf

Batch = dict[str, np.ndarray]

_OVERFLOW = re.compile(r"example (\d+) has (\d+) objects")


def _prepared(source: Source, image_size: tuple[int, int] | None, max_boxes: int | None):
    """The source with objects padded to ``max_boxes`` and everything resized together:
    the image bilinearly (antialiased), masks by nearest neighbour, boxes scaled."""
    tf = _tf()
    ds = source.dataset
    if set(S.PER_OBJECT) & set(source.keys):
        if max_boxes is None or int(max_boxes) < 1:
            raise ValueError(f"this source has per-object targets ({', '.join(source.keys)}): "
                             f"pass max_boxes >= 1 (config.max_boxes), the object rows per example "
                             f"(got {max_boxes})")
        ds = ds.enumerate().map(lambda index, example: _pad_objects(index, example, max_boxes),
                                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if image_size is None and None in source.image_shape[:2]:
        raise ValueError("the images of this source vary in size: pass image_size")
    if image_size is not None and tuple(image_size) != source.image_shape[:2]:
        height, width = image_size

        def resize(example):
            out = dict(example)
            image = tf.image.resize(example["image"], (height, width), antialias=True)
            out["image"] = tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)
            if S.MASK in example:
                out[S.MASK] = tf.image.resize(example[S.MASK][..., None], (height, width),
                                              method="nearest")[..., 0]
            if S.INSTANCE_MASKS in example:  # [N, H, W] -> [H, W, N] and back
                masks = tf.transpose(example[S.INSTANCE_MASKS], (1, 2, 0))
                masks = tf.image.resize(masks, (height, width), method="nearest")
                out[S.INSTANCE_MASKS] = tf.transpose(masks, (2, 0, 1))
            if S.BOXES in example:
                size = tf.cast(tf.shape(example["image"]), tf.float32)
                scale = tf.stack([width / size[1], height / size[0]] * 2)
                out[S.BOXES] = example[S.BOXES] * scale
            return out

        ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds


def _pad_objects(index, example: dict, max_boxes: int) -> dict:
    """Pads ``boxes``, ``box_classes`` and ``instance_masks`` to ``max_boxes`` rows and adds
    ``boxes_valid``. More objects than ``max_boxes`` is an error naming the example (its index
    in the source) and its count, rather than a silent truncation: a dropped object would be
    taught as background and missing from the metrics' ground truth. The error surfaces when
    the stream first reads the example: for a training stream with the default whole-set
    shuffle buffer, at its first batch."""
    tf = _tf()
    count = tf.shape(example[S.BOXES])[0]
    message = tf.strings.format("example {} has {} objects", (index, count))
    check = tf.debugging.Assert(count <= max_boxes, [message])
    out = dict(example)
    with tf.control_dependencies([check]):
        for key in S.PER_OBJECT:
            if key in example:
                value = example[key]
                value = tf.pad(value, [[0, max_boxes - count]] + [[0, 0]] * (value.shape.rank - 1))
                value.set_shape([max_boxes, *value.shape[1:]])
                out[key] = value
        out[S.BOXES_VALID] = tf.range(max_boxes) < count
    return out


def _numpy(ds, max_boxes: int | None) -> Iterator[Batch]:
    """``ds`` as numpy batches; a ``max_boxes`` overflow surfaces as a plain ``ValueError``."""
    tf = _tf()
    try:
        yield from ds.as_numpy_iterator()
    except tf.errors.InvalidArgumentError as error:
        found = _OVERFLOW.search(error.message)
        if found is None:
            raise
        index, count = found.groups()
        raise ValueError(f"example {index} of the source has {count} objects, more than "
                         f"max_boxes={max_boxes}: raise max_boxes to at least {count}") from None


class TrainStream:
    """Shuffled, repeated-by-epoch training batches of ``batch_size // process_count`` examples
    for this process. Sources with boxes need ``max_boxes`` (see ``_pad_objects``).

    The global batches do not depend on the number of processes: every process shuffles the
    whole split in the same order (set by ``(seed, epoch)``), cuts it into global batches of
    ``batch_size`` and keeps rows ``[i * local, (i + 1) * local)`` of each, where ``i`` is its
    ``process_index``: the rows its devices hold in the global array (``Parallel.place_batch``).
    Over an epoch the processes' examples are disjoint and together are what one process would
    see. So a job trains the same on 1 process x 8 devices as on 2 x 4, and resumes on
    another process count. Each process holds the whole prepared split (in its cache and
    shuffle buffer, as one process does) and batches only its own rows."""

    def __init__(self, source: Source, *, batch_size: int, seed: int,
                 image_size: tuple[int, int] | None = None, cache: bool = True,
                 shuffle_buffer: int | None = None, process_index: int = 0,
                 process_count: int = 1, max_boxes: int | None = None):
        if batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} must be divisible by the number of "
                             f"processes {process_count}")
        self.local_batch_size = batch_size // process_count
        self.batch_size = batch_size
        self.process_index, self.process_count = process_index, process_count
        self.steps_per_epoch = source.num_examples // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {batch_size} is larger than the training set "
                             f"({source.num_examples} examples)")
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer or source.num_examples
        self.max_boxes = max_boxes if S.BOXES in source.keys else None
        ds = _prepared(source, image_size, max_boxes)
        self._dataset = ds.cache() if cache else ds

    def epoch(self, epoch: int, *, start_step: int = 0) -> Iterator[Batch]:
        """Batches of ``epoch`` from step ``start_step`` on (``steps_per_epoch`` in all)."""
        tf = _tf()
        ds = self._dataset.shuffle(self.shuffle_buffer, seed=self.seed * 100_003 + epoch,
                                   reshuffle_each_iteration=False)
        if self.process_count > 1:  # this process's rows of every global batch
            size, first = self.batch_size, self.process_index * self.local_batch_size
            last = first + self.local_batch_size
            ds = ds.enumerate().filter(
                lambda position, _: (position % size >= first) & (position % size < last))
            ds = ds.map(lambda _, example: example)
        ds = ds.batch(self.local_batch_size, drop_remainder=True).take(self.steps_per_epoch)
        ds = ds.skip(start_step).prefetch(tf.data.AUTOTUNE)
        return _numpy(ds, self.max_boxes) if self.max_boxes else ds.as_numpy_iterator()


class EvalStream:
    """Every example once, in order, in batches of a fixed size; the last batch is padded and
    carries a ``valid`` flag per example so that padding never counts (padding examples have
    no valid boxes either)."""

    def __init__(self, source: Source, *, batch_size: int,
                 image_size: tuple[int, int] | None = None, cache: bool = True,
                 process_index: int = 0, process_count: int = 1, max_boxes: int | None = None):
        if batch_size % process_count:
            raise ValueError(f"eval batch_size {batch_size} must be divisible by the number of "
                             f"processes {process_count}")
        if source.num_examples == 0:  # else the run fails after a whole epoch, on a None metric
            raise ValueError("the eval set is empty (0 examples): point the eval split or folder "
                             "at some data")
        self.local_batch_size = batch_size // process_count
        self.num_examples = source.num_examples
        self.max_boxes = max_boxes if S.BOXES in source.keys else None
        ds = _prepared(source, image_size, max_boxes).shard(process_count, process_index)
        self._dataset = ds.cache() if cache else ds
        height, width = image_size or source.image_shape[:2]
        self._empty = {key: np.zeros((0, *spec.shape), spec.dtype.as_numpy_dtype)
                       for key, spec in ds.element_spec.items()}
        self._empty["image"] = np.zeros((0, height, width, source.image_shape[2]), np.uint8)
        # Every process runs the same number of steps, even when shards differ by one example.
        self.steps = -(-source.num_examples // batch_size)

    def __iter__(self) -> Iterator[Batch]:
        tf = _tf()
        ds = self._dataset.batch(self.local_batch_size).prefetch(tf.data.AUTOTUNE)
        batches = _numpy(ds, self.max_boxes) if self.max_boxes else ds.as_numpy_iterator()
        padding = itertools.repeat(self._empty)  # for a process that runs out before the others
        for batch in itertools.islice(itertools.chain(batches, padding), self.steps):
            yield _pad(batch, self.local_batch_size)

    def __len__(self) -> int:
        return self.steps


def _pad(batch: Batch, size: int) -> Batch:
    n = len(batch["image"])
    padded = {k: np.concatenate([v, np.zeros((size - n,) + v.shape[1:], v.dtype)])
              for k, v in batch.items()}
    padded["valid"] = np.arange(size) < n
    return padded
