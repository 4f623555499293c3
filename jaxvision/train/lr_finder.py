"""LR range test (Smith 2017; ``torch_lr_finder``): grow the LR exponentially, watch the loss.

``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))`` (1e-7 -> 10 over 100 steps
multiplies by 10**(8/99) = 1.2045 per step). The loss is smoothed with an
exponential moving average; the test stops early once the smoothed loss exceeds
``diverge_threshold`` times the best. The suggestion is the LR where the smoothed loss falls
fastest (most negative slope against log LR, as ``torch_lr_finder``'s ``suggestion()``), looked
for only up to the minimum of the smoothed loss (as fastai does): after a loss spike the loss
also falls steeply while it recovers, and that region is past the usable range. For one-cycle,
use the suggestion as ``max_lr``, or about a tenth of the LR at the loss minimum.

``lr_range_test`` takes any ``loss_fn(params, batch)``; ``engine_range_test`` runs it on what
``train_and_evaluate`` trains with (a model, a task and the dict batches of ``Datasets.train``)
so that the suggestion holds for the engine's run.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, Iterable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision.tasks import Task
from jaxvision.train.state import create_train_state
from jaxvision.train.step import images_to_float
from jaxvision.xla_options import compiler_options


def range_test_lrs(*, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100) -> np.ndarray:
    """The exponentially spaced LRs of the test."""
    if not 0 < start_lr < end_lr or num_steps < 2:
        raise ValueError(f"need 0 < start_lr < end_lr and num_steps >= 2, got {start_lr}, {end_lr}, {num_steps}")
    return start_lr * (end_lr / start_lr) ** (np.arange(num_steps) / (num_steps - 1))


def lr_range_test(loss_fn: Callable[[Any, Any], jax.Array], params: Any, batches: Iterable[Any], *,
                  start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100, momentum: float = 0.9,
                  smoothing: float = 0.05, diverge_threshold: float = 5.0, skip_start: int = 10,
                  skip_end: int = 5) -> dict[str, Any]:
    """Runs the test with SGD(+momentum) and returns lrs, losses, smoothed losses and the suggestion.

    ``loss_fn(params, batch) -> scalar loss`` (close over BatchNorm state and RNGs; batch
    statistics are used in train mode anyway). ``batches`` yields at least ``num_steps``
    batches (cycle a loader). ``params`` are not modified.
    """
    lrs = range_test_lrs(start_lr=start_lr, end_lr=end_lr, num_steps=num_steps)
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=start_lr, momentum=momentum or None)

    @functools.partial(jax.jit, compiler_options=compiler_options())
    def step(params, opt_state, batch, lr):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        opt_state.hyperparams["learning_rate"] = lr
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = tx.init(params)
    losses, smoothed, used = [], [], []
    best = np.inf
    iterator = iter(batches)
    for lr in lrs:
        try:
            batch = next(iterator)
        except StopIteration as err:
            raise ValueError(f"batches ran out after {len(used)} of num_steps={num_steps} steps; "
                             "pass an endless iterator (itertools.cycle) or fewer steps") from err
        params, opt_state, loss = step(params, opt_state, batch, jnp.float32(lr))
        loss = float(loss)
        avg = loss if not smoothed else smoothing * loss + (1 - smoothing) * smoothed[-1]
        used.append(float(lr))
        losses.append(loss)
        smoothed.append(avg)
        best = min(best, avg)
        if not np.isfinite(avg) or avg > diverge_threshold * best:
            break
    result = {"lrs": np.array(used), "losses": np.array(losses), "smoothed": np.array(smoothed)}
    result["suggested_lr"] = suggest_lr(result["lrs"], result["smoothed"], skip_start=skip_start, skip_end=skip_end)
    return result


def engine_range_test(model: nn.Module, task: Task, stream, *, seed: int = 0,
                      **options) -> dict[str, Any]:
    """``lr_range_test`` of ``model`` as ``train_and_evaluate`` would train it: initialised
    from ``seed`` as the engine does, ``task.loss`` in train mode on the uint8 dict batches of
    ``stream`` (a ``Datasets.train``, epochs chained so ``num_steps`` may exceed one), a
    fresh key per step for the task's random streams. ``options`` go to ``lr_range_test``;
    BatchNorm statistics stay at their initial values (train mode uses the batch's).
    """
    batches = itertools.chain.from_iterable(stream.epoch(epoch) for epoch in itertools.count())
    first = next(batches)
    state = create_train_state(model, optax.identity(), seed=seed,
                               input_shape=(1, *first["image"].shape[1:]))
    model_state = state.model_state

    def loss_fn(params, item):
        batch, key = item
        batch = dict(batch, image=images_to_float(batch["image"]))
        rngs = dict(zip(task.rng_streams, jax.random.split(key, len(task.rng_streams))))
        variables = {"params": params, **model_state}
        if model_state:
            outputs, _ = model.apply(variables, batch["image"], train=True,
                                     mutable=list(model_state), rngs=rngs)
        else:
            outputs = model.apply(variables, batch["image"], train=True, rngs=rngs)
        return task.loss(outputs, batch, train=True)[0]

    items = ((batch, jax.random.fold_in(state.key, i))
             for i, batch in enumerate(itertools.chain([first], batches)))
    return lr_range_test(loss_fn, state.params, items, **options)


def suggest_lr(lrs: np.ndarray, smoothed: np.ndarray, *, skip_start: int = 10, skip_end: int = 5) -> float:
    """LR at the steepest descent of the smoothed loss (``np.gradient`` minimum) before its minimum,
    skipping ``skip_start`` points at the start and ``skip_end`` at the end."""
    lrs, smoothed = np.asarray(lrs), np.asarray(smoothed)
    end = len(lrs) - skip_end
    finite_all = np.where(np.isfinite(smoothed), smoothed, np.inf)
    end = min(end, int(np.argmin(finite_all[:end] if end > 0 else finite_all)) + 1)
    if end - skip_start < 2:
        skip_start, end = 0, max(end, min(2, len(lrs)))
    window = smoothed[skip_start:end]
    finite = np.isfinite(window)
    if finite.sum() < 2:
        raise ValueError("the range test has fewer than two finite losses; lower start_lr or end_lr")
    slope = np.gradient(np.where(finite, window, np.nanmax(window[finite])))
    return float(lrs[skip_start + int(np.argmin(slope))])


def plot_lr_finder(result: dict[str, Any], *, path: str, title: str = "LR range test") -> str:
    """Loss against LR (log x-axis) with the suggested LR marked."""
    from jaxvision import plots

    fig, ax = plots.figure((6, 4))
    ax.plot(result["lrs"], result["losses"], alpha=0.3, label="loss")
    ax.plot(result["lrs"], result["smoothed"], label="smoothed loss")
    ax.axvline(result["suggested_lr"], color="r", ls="--", label=f"suggested {result['suggested_lr']:.2e}")
    ax.set_xscale("log")
    finite = np.asarray(result["smoothed"])[np.isfinite(result["smoothed"])]
    if finite.size:
        ax.set_ylim(min(finite.min(), np.nanmin(result["losses"])) * 0.9, 1.5 * finite[0])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    plots.save(fig, path, dpi=100)
    return path
