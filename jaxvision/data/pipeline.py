"""Host input pipeline: decode, resize to a fixed size, shuffle, batch; nothing random else.

Augmentation runs on device inside the train step, so the host only delivers uint8 batches.
The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run can skip to any step
and see exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from jaxvision.data.sources import Source, _tf

Batch = dict[str, np.ndarray]


def _resized(source: Source, image_size: tuple[int, int] | None):
    tf = _tf()
    ds = source.dataset
    if image_size is not None and tuple(image_size) != source.image_shape[:2]:
        height, width = image_size

        def resize(example):
            image = tf.image.resize(example["image"], (height, width), antialias=True)
            return {"image": tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8),
                    "label": example["label"]}

        ds = ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds


class TrainStream:
    """Shuffled, repeated-by-epoch training batches of ``batch_size // process_count`` examples
    for this process (the global batch is split across processes)."""

    def __init__(self, source: Source, *, batch_size: int, seed: int,
                 image_size: tuple[int, int] | None = None, cache: bool = True,
                 shuffle_buffer: int | None = None, process_index: int = 0,
                 process_count: int = 1):
        if batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} must be divisible by the number of "
                             f"processes {process_count}")
        self.local_batch_size = batch_size // process_count
        self.steps_per_epoch = source.num_examples // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {batch_size} is larger than the training set "
                             f"({source.num_examples} examples)")
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer or source.num_examples
        ds = _resized(source, image_size).shard(process_count, process_index)
        self._dataset = ds.cache() if cache else ds

    def epoch(self, epoch: int, *, start_step: int = 0) -> Iterator[Batch]:
        """Batches of ``epoch`` from step ``start_step`` on (``steps_per_epoch`` in all)."""
        tf = _tf()
        ds = self._dataset.shuffle(self.shuffle_buffer, seed=self.seed * 100_003 + epoch,
                                   reshuffle_each_iteration=False)
        ds = ds.batch(self.local_batch_size, drop_remainder=True).take(self.steps_per_epoch)
        ds = ds.skip(start_step).prefetch(tf.data.AUTOTUNE)
        return ds.as_numpy_iterator()


class EvalStream:
    """Every example once, in order, in batches of a fixed size; the last batch is padded and
    carries a ``valid`` flag per example so that padding never counts."""

    def __init__(self, source: Source, *, batch_size: int,
                 image_size: tuple[int, int] | None = None, cache: bool = True,
                 process_index: int = 0, process_count: int = 1):
        if batch_size % process_count:
            raise ValueError(f"eval batch_size {batch_size} must be divisible by the number of "
                             f"processes {process_count}")
        if source.num_examples == 0:  # else the run fails after a whole epoch, on a None metric
            raise ValueError("the eval set is empty (0 examples): point the eval split or folder "
                             "at some data")
        self.local_batch_size = batch_size // process_count
        self.num_examples = source.num_examples
        ds = _resized(source, image_size).shard(process_count, process_index)
        self._dataset = ds.cache() if cache else ds
        height, width = image_size or source.image_shape[:2]
        self._empty = {"image": np.zeros((0, height, width, source.image_shape[2]), np.uint8),
                       "label": np.zeros((0,), np.int32)}
        # Every process runs the same number of steps, even when shards differ by one example.
        self.steps = -(-source.num_examples // batch_size)

    def __iter__(self) -> Iterator[Batch]:
        tf = _tf()
        ds = self._dataset.batch(self.local_batch_size).prefetch(tf.data.AUTOTUNE)
        batches = ds.as_numpy_iterator()
        padding = itertools.repeat(self._empty)  # for a process that runs out before the others
        for batch in itertools.islice(itertools.chain(batches, padding), self.steps):
            yield _pad(batch, self.local_batch_size)

    def __len__(self) -> int:
        return self.steps


def _pad(batch: Batch, size: int) -> Batch:
    n = len(batch["label"])
    padded = {k: np.concatenate([v, np.zeros((size - n,) + v.shape[1:], v.dtype)])
              for k, v in batch.items()}
    padded["valid"] = np.arange(size) < n
    return padded
