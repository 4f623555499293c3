"""The largest batch that fits: start from a size and halve on out-of-memory.

:func:`find_max_batch_size` takes any ``try_batch(size)`` that raises when ``size`` does not
fit; :func:`train_step_probe` builds one that compiles and runs a model's training step.
An accelerator reports out-of-memory itself (``RESOURCE_EXHAUSTED``). On CPU, memory is
whatever the operating system grants (under ``ulimit -v`` XLA's compiler can abort the process
with ``std::bad_alloc`` rather than raise), so ``budget_bytes`` makes XLA's own figure for the
compiled step (``memory_analysis``) the limit: the search is exact and nothing too big runs.

Halving returns a size within a factor of 2 of the largest that fits: every size it rejected
is at least twice the answer, unless the start size itself fits (then the answer is the start).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxvision.xla_options import compiler_options


class OutOfMemory(RuntimeError):
    """A batch size that does not fit the budget."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (XLA's ``RESOURCE_EXHAUSTED``, Python's
    ``MemoryError``, or :class:`OutOfMemory`) rather than a bug to re-raise."""
    if isinstance(error, (MemoryError, OutOfMemory)):
        return True
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


@dataclasses.dataclass
class BatchSizeSearch:
    batch_size: int                 # the largest size that fitted
    tried: dict[int, bool]          # every size tried -> whether it fitted, in order


def find_max_batch_size(try_batch: Callable[[int], object], *, start: int = 1024,
                        min_size: int = 1) -> BatchSizeSearch:
    """Tries ``start``, ``start // 2``, ... and returns the first size ``try_batch`` survives.

    Any other exception propagates (a shape bug is not an out-of-memory); raises
    :class:`OutOfMemory` if even ``min_size`` does not fit.
    """
    if start < min_size or min_size < 1:
        raise ValueError(f"need start >= min_size >= 1, got start={start}, min_size={min_size}")
    tried: dict[int, bool] = {}
    size = start
    while size >= min_size:
        try:
            try_batch(size)
        except Exception as error:  # noqa: BLE001 - filtered just below
            if not is_out_of_memory(error):
                raise
            tried[size] = False
            size //= 2
            continue
        tried[size] = True
        return BatchSizeSearch(size, tried)
    raise OutOfMemory(f"no batch size down to {min_size} fits (tried {sorted(tried)})")


def train_step_probe(model: nn.Module, tx: optax.GradientTransformation,
                     example_shape: Sequence[int], *, budget_bytes: int | None = None,
                     run: bool = True, dtype=jnp.float32) -> Callable[[int], int]:
    """``try_batch(size)`` for :func:`find_max_batch_size`: compiles the training step of
    :func:`jaxvision.inspect.make_train_step` for ``(size, *example_shape)`` inputs, raises
    :class:`OutOfMemory` if XLA's peak bytes exceed ``budget_bytes``, then (``run``) runs it
    once on zeros, where a real allocation failure raises. Returns XLA's peak bytes, and
    keeps them for every size in ``try_batch.peak``."""
    from jaxvision.inspect.memory import make_train_step, peak_bytes

    example = jnp.zeros((1, *example_shape), dtype)
    # Zeros of the variables' shapes: memory does not depend on the values, and drawing random
    # ones would compile the initialisers (seconds on CPU) for nothing.
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), example)
    variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    # Compiled as the engine compiles its step, so that its memory is the engine's.
    step = jax.jit(make_train_step(model, tx, mutable=list(state)),
                   compiler_options=compiler_options())
    opt_state = jax.jit(tx.init)(params)

    def try_batch(size: int) -> int:
        x = jax.ShapeDtypeStruct((size, *example_shape), dtype)
        compiled = step.lower(params, state, opt_state, x).compile()
        need = try_batch.peak[size] = peak_bytes(compiled)
        if budget_bytes is not None and need > budget_bytes:
            raise OutOfMemory(f"batch {size} needs {need:,} bytes > budget {budget_bytes:,}")
        if run:
            jax.block_until_ready(compiled(params, state, opt_state, jnp.zeros(x.shape, dtype)))
        return need

    try_batch.peak = {}  # size -> XLA's peak bytes, for every size compiled
    return try_batch
