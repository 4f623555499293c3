"""What the engine needs to know about a task: its loss, its per-batch metrics, its set-level
evaluators and the names of the metrics it offers (scenic's model + loss + metrics unit).

The step and the loop take a ``Task``; they never look inside a batch themselves. A task is a
plain object: subclass ``Task`` or write any class with the same members.

- ``loss(outputs, batch, *, train)`` -> ``(scalar loss, {name: scalar})``: what the train step
  differentiates, and the train metrics it reports (averaged over the batch).
- ``batch_metrics(outputs, batch)`` -> ``{name: (sum, count)}`` over the examples whose
  ``batch["valid"]`` is true: summed over batches and devices, divided at the end. Counts may
  be pixels (segmentation) as well as examples.
- ``predict(outputs)``: what host evaluators and inference see (probabilities, a mask...).
- ``evaluators()``: fresh host-side evaluators with ``update(predictions, batch)`` and
  ``result() -> {name: float}``, for metrics of the whole set (mIoU from a confusion matrix,
  COCO AP).
- ``metric_names``: every eval metric the task reports, without the ``eval_`` prefix; the
  config's ``best_metric`` and early-stopping metric must be one of them.
- ``rng_streams``: the random streams the model draws from in training (``dropout``; a VAE
  adds its sampling stream).
- ``model_inputs(batch)`` -> ``{name: array}``: keyword inputs of the model besides the images
  (a conditional VAE's ``labels``); the engine passes them in every train and eval step.
  Optional: a task without it passes none.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import numpy as np

Batch = dict[str, jax.Array]


class Evaluator(Protocol):
    def update(self, predictions: Any, batch: dict[str, np.ndarray]) -> None: ...

    def result(self) -> dict[str, float]: ...


class Task:
    """The base of the shipped tasks; see the module docstring for the contract."""

    metric_names: tuple[str, ...] = ("loss",)
    rng_streams: tuple[str, ...] = ("dropout",)

    def loss(self, outputs: Any, batch: Batch, *, train: bool) -> tuple[jax.Array, dict]:
        raise NotImplementedError

    def batch_metrics(self, outputs: Any, batch: Batch) -> dict[str, tuple[jax.Array, jax.Array]]:
        raise NotImplementedError

    def predict(self, outputs: Any) -> Any:
        return outputs

    def evaluators(self) -> list[Evaluator]:
        return []

    def model_inputs(self, batch: Batch) -> dict[str, jax.Array]:
        return {}


def model_inputs(task, batch: Batch) -> dict[str, jax.Array]:
    """``task.model_inputs(batch)``, or none for a task that does not define it."""
    method = getattr(task, "model_inputs", None)
    return {} if method is None else method(batch)


def valid_weights(batch: Batch, shape_of_example: tuple[int, ...] = ()) -> jax.Array:
    """1.0 for real examples, 0.0 for eval padding, broadcast over per-example axes."""
    valid = batch.get("valid")
    size = batch["image"].shape[0]
    weights = (jax.numpy.ones((size,)) if valid is None else valid.astype(jax.numpy.float32))
    return weights.reshape((size,) + (1,) * len(shape_of_example))
