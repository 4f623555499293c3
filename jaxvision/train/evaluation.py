"""``evaluate``: a task's metrics over a whole stream, in any parallel mode.

Per-batch metrics come from the eval step as ``{name: (sum, count)}``; they are added on
device and divided once at the end, so the result does not depend on how the set was split
into batches or devices. Set-level metrics come from the task's host evaluators (or those
passed in), which see every batch's predictions.
"""

from __future__ import annotations

from typing import Callable, Iterable

import jax
import jax.numpy as jnp

from jaxvision.tasks import Evaluator, Task
from jaxvision.train.parallel import Parallel, make_parallel
from jaxvision.train.step import StepOptions, make_eval_step


def evaluate(state, stream: Iterable[dict], *, task: Task, parallel: Parallel | None = None,
             evaluators: list[Evaluator] | None = None, eval_step: Callable | None = None,
             preprocess_fn: Callable | None = None) -> dict[str, float]:
    """``{metric name: value}`` of ``state`` over every batch of ``stream`` (batches carry a
    ``valid`` flag per example; padding never counts).

    ``eval_step`` is a compiled ``make_eval_step`` body (the loop passes its own); without
    one, it is built from ``task``, ``parallel`` (default: one device) and ``preprocess_fn``.
    """
    parallel = parallel or make_parallel("none")
    evaluators = task.evaluators() if evaluators is None else evaluators
    if eval_step is None:
        options = StepOptions(learning_rate_fn=lambda step: 0.0, task=task,
                              axis_name=parallel.axis_name)
        eval_step = parallel.compile_eval_step(
            make_eval_step(options, preprocess_fn, with_predictions=bool(evaluators)),
            with_predictions=bool(evaluators))
    sums = None
    for batch in stream:
        out = eval_step(state, parallel.place_batch(batch))
        if evaluators:
            out, predictions = out
            predictions = jax.device_get(predictions)
            for evaluator in evaluators:
                evaluator.update(predictions, batch)
        sums = out if sums is None else jax.tree.map(jnp.add, sums, out)  # stays on device
    if sums is None:
        raise ValueError("evaluate: the stream yielded no batch")
    sums = jax.device_get(sums)
    results = {name: float(total / count) for name, (total, count) in sums.items()}
    for evaluator in evaluators:
        results.update(evaluator.result())
    return results
