"""Dynamic batching with precompiled bucket sizes: nothing compiles after start-up.

Requests wait in a bounded queue; one worker thread takes the first, then more until
``max_batch`` images or until the first has waited ``max_wait_s`` since it arrived (requests
that queued while the model ran wait only what is left of it). It pads the batch to the next
bucket size (:func:`bucket_sizes`; TF Serving's ``allowed_batch_sizes``) and runs the
executable compiled for that size at :meth:`Batcher.start`. A full queue refuses at once
(:class:`QueueFull`, a 503 with Retry-After for HTTP); :meth:`Batcher.stop` answers everything
already accepted before it returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import time
from typing import Any, Callable

import jax
import numpy as np

from jaxvision.xla_options import compiler_options


class QueueFull(RuntimeError):
    """The batcher holds ``max_queue`` images already; try again later."""


@dataclasses.dataclass
class _Request:
    images: np.ndarray  # uint8 [k, H, W, C]
    done: Callable[[Any, BaseException | None], None]
    arrived: float = dataclasses.field(default_factory=time.monotonic)


def bucket_sizes(max_batch: int) -> tuple[int, ...]:
    """1, 2, 3, 4, 6, 8, 12, ...: each power of two and one and a half times it, below
    ``max_batch``, then ``max_batch``. From 2 up, neighbours differ by at most 1.5x, so padding
    wastes under a third of a run (under half with powers of two alone), at the price of more
    executables to compile at start-up (10 for ``max_batch`` 32, against 6)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    sizes = {size for i in range(max_batch.bit_length()) for size in (1 << i, 3 << i >> 1)
             if size < max_batch}
    return (*sorted(sizes), max_batch)


class Batcher:
    """``await batcher.submit(images)`` -> the predictions for those images (see module doc).

    ``apply(variables, images)`` is a jitted function of uint8 ``[N, H, W, C]``; ``observe``
    (optional) receives ``(batch_size, seconds)`` after each run, for metrics."""

    def __init__(self, apply, variables, image_shape: tuple[int, int, int], *,
                 max_batch: int = 32, max_wait_s: float = 0.005, max_queue: int = 256,
                 observe: Callable[[int, float], None] | None = None):
        self.apply, self.variables, self.image_shape = apply, variables, tuple(image_shape)
        self.buckets = bucket_sizes(max_batch)
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self.observe = observe
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._queued_images = 0
        self._lock = threading.Lock()
        self._compiled: dict[int, Any] = {}
        self._carry: _Request | None = None  # taken, but did not fit the last batch
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ----- life cycle -----

    @property
    def ready(self) -> bool:
        return len(self._compiled) == len(self.buckets) and self._thread is not None

    @property
    def queue_depth(self) -> int:
        return self._queued_images

    def compile(self) -> None:
        """Compile the executable of every bucket size (requests may queue meanwhile)."""
        for size in self.buckets:
            if size not in self._compiled:
                example = jax.ShapeDtypeStruct((size, *self.image_shape), np.uint8)
                # Options here, not on the jit: the export traces the same function nested.
                self._compiled[size] = self.apply.lower(self.variables, example).compile(
                    compiler_options=compiler_options())

    def start(self) -> None:
        """Compile every bucket, then start the worker."""
        self.compile()
        self._thread = threading.Thread(target=self._work, name="jaxvision-batcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Answer every accepted request, then stop the worker."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()

    # ----- requests -----

    def submit_nowait(self, images: np.ndarray,
                      done: Callable[[Any, BaseException | None], None]) -> None:
        """Queue ``images`` (uint8 ``[k, H, W, C]``, ``k <= max_batch``); ``done(result,
        error)`` is called from the worker thread."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.shape[1:] != self.image_shape:
            raise ValueError(f"the batcher takes uint8 [k, {', '.join(map(str, self.image_shape))}]"
                             f", got {images.dtype} {list(images.shape)}")
        if not 1 <= len(images) <= self.max_batch:
            raise ValueError(f"one request takes 1 to {self.max_batch} images, got {len(images)}")
        if self._stopping.is_set():
            raise QueueFull("the server is shutting down")
        with self._lock:
            if self._queued_images + len(images) > self.max_queue:
                raise QueueFull(f"{self._queued_images} images are queued (limit "
                                f"{self.max_queue})")
            self._queued_images += len(images)
        self._queue.put(_Request(images, done))

    async def submit(self, images: np.ndarray) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(result, error):
            def settle():
                if future.cancelled():
                    return
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)
            loop.call_soon_threadsafe(settle)

        self.submit_nowait(images, done)
        return await future

    # ----- the worker -----

    def _take(self) -> list[_Request]:
        """The first waiting request, then more until ``max_batch`` images or until the first
        has waited ``max_wait_s``."""
        first, self._carry = self._carry, None
        while first is None:
            try:
                first = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._stopping.is_set():
                    return []
        taken, count = [first], len(first.images)
        deadline = first.arrived + self.max_wait_s
        while count < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                request = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 \
                    else self._queue.get_nowait()
            except queue.Empty:
                break
            if count + len(request.images) > self.max_batch:
                self._carry = request  # it leads the next batch
                break
            taken.append(request)
            count += len(request.images)
        return taken

    def _work(self) -> None:
        while True:
            taken = self._take()
            if not taken:
                return
            images = np.concatenate([r.images for r in taken])
            size = next(b for b in self.buckets if b >= len(images))
            padded = np.concatenate([images, np.zeros((size - len(images), *self.image_shape),
                                                      np.uint8)])
            start = time.perf_counter()
            try:
                outputs = jax.device_get(self._compiled[size](self.variables, padded))
                error = None
            except Exception as e:  # noqa: BLE001 - every waiter must hear of it
                outputs, error = None, e
            if self.observe is not None:
                self.observe(len(images), time.perf_counter() - start)
            with self._lock:
                self._queued_images -= len(images)
            offset = 0
            for request in taken:
                k = len(request.images)
                result = None if error else jax.tree.map(
                    lambda x, a=offset, b=offset + k: np.asarray(x)[a:b], outputs)
                request.done(result, error)
                offset += k


__all__ = ["Batcher", "QueueFull", "bucket_sizes"]
