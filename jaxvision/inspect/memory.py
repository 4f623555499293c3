"""How much memory a training step needs: an estimate by parts, and XLA's own figure to check it.

The estimate adds what a step holds at its peak: the parameters, their gradients, the
optimizer's state (``tx.init``'s shapes: 0 for SGD, 1x the parameters for momentum, 2x for
Adam), the model's other state (BatchNorm statistics), the input batch, and the activations the
backward pass needs. Those last are read off autodiff itself: the residuals ``jax.vjp`` of the
loss saves, minus the ones that are the parameters or the input (already counted). Nothing is
compiled or run, so it answers for batch sizes the machine could not hold.

:func:`xla_training_memory` compiles the same step (``jax.jit(...).lower(...).compile()``,
parameters and optimizer state donated, as the engine does) and reads
``memory_analysis()``: arguments + outputs - aliased + temporaries. XLA fuses element-wise
work and so keeps fewer residuals than autodiff names (ResNet-18: the estimate runs high), and
needs workspace for the backward pass on top (ViT: it runs low); tests/test_inspect.py bounds
the gap at 20% for ResNet-18 and ViT-S/16 at batch 64.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxvision.inspect.table import _abstract, _nbytes


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes by part; ``total`` is their sum."""

    params: int
    gradients: int
    optimizer_state: int
    model_state: int
    inputs: int
    activations: int

    @property
    def total(self) -> int:
        return sum(dataclasses.astuple(self))

    def __str__(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name) / 2**20:.1f} MiB"
                 for f in dataclasses.fields(self)]
        return ", ".join(parts) + f", total={self.total / 2**20:.1f} MiB"


def _mean_square(outputs) -> jax.Array:
    """The default loss: a scalar that depends on every output (which loss makes no odds to
    the memory; what it differentiates does)."""
    return sum(jnp.mean(jnp.square(o.astype(jnp.float32))) for o in jax.tree.leaves(outputs))


def _loss(model: nn.Module, loss_fn: Callable, mutable: list[str]):
    def loss(params, state, x):
        out = model.apply({"params": params, **state}, x, train=True, mutable=mutable,
                          rngs={"dropout": jax.random.key(0)})
        outputs, new_state = out if mutable else (out, {})
        return loss_fn(outputs), new_state
    return loss


def _setup(model, input_shape, dtype, variables):
    x = jax.ShapeDtypeStruct(tuple(input_shape), dtype)
    if variables is None:
        variables = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                                      jnp.zeros((1, *x.shape[1:]), dtype),
                                                      train=False))
    variables = _abstract(variables)
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    return x, params, state, list(state)


def saved_residual_bytes(fn: Callable, *args) -> int:
    """Bytes of what ``jax.vjp(fn, *args)`` keeps for the backward pass, arguments excluded
    (each buffer once). ``args`` may be ``jax.ShapeDtypeStruct``s; nothing runs."""
    def forward(*args):
        out, vjp_fn = jax.vjp(fn, *args)
        return out, vjp_fn
    closed = jax.make_jaxpr(forward)(*args)
    jaxpr = closed.jaxpr
    arguments = {id(v) for v in jaxpr.invars}
    num_out = len(jax.tree.leaves(jax.eval_shape(fn, *args)))
    seen, total = set(), 0
    for var in jaxpr.outvars[num_out:]:
        if not hasattr(var, "aval") or id(var) in seen or id(var) in arguments:
            continue  # a literal, a duplicate, or an argument (counted as such)
        seen.add(id(var))
        total += var.aval.size * jnp.dtype(var.aval.dtype).itemsize
    return int(total)


def training_memory(model: nn.Module, input_shape: Sequence[int],
                    tx: optax.GradientTransformation, *, variables=None, dtype=jnp.float32,
                    loss_fn: Callable = _mean_square) -> MemoryEstimate:
    """The parts of a training step's peak memory for a batch of ``input_shape`` (see module
    doc). ``variables`` default to ``model.init``'s shapes; ``loss_fn(outputs) -> scalar``."""
    x, params, state, mutable = _setup(model, input_shape, dtype, variables)
    loss = _loss(model, loss_fn, mutable)
    concrete = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (params, state))
    activations = saved_residual_bytes(lambda p, x: loss(p, concrete[1], x)[0],
                                       concrete[0], jnp.zeros(x.shape, x.dtype))
    return MemoryEstimate(params=_nbytes(params), gradients=_nbytes(params),
                          optimizer_state=_nbytes(jax.eval_shape(tx.init, params)),
                          model_state=_nbytes(state), inputs=_nbytes(x),
                          activations=activations)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation, *,
                    loss_fn: Callable = _mean_square, mutable: Sequence[str] = ()):
    """``step(params, state, opt_state, x) -> (params, state, opt_state, loss)``: the plain
    step the memory figures describe."""
    loss = _loss(model, loss_fn, list(mutable))

    def step(params, state, opt_state, x):
        (value, new_state), grads = jax.value_and_grad(loss, has_aux=True)(params, state, x)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), {**state, **new_state}, opt_state, value
    return step


def compiled_step_bytes(step: Callable, *args, donate_argnums=()) -> int:
    """Peak bytes XLA's ``memory_analysis`` reports for ``jax.jit(step)(*args)``: arguments +
    outputs - aliased (donated) + temporaries."""
    return peak_bytes(jax.jit(step, donate_argnums=donate_argnums).lower(*args).compile())


def peak_bytes(compiled) -> int:
    """A compiled program's peak bytes from its ``memory_analysis()``."""
    ma = compiled.memory_analysis()
    return int(ma.argument_size_in_bytes + ma.output_size_in_bytes - ma.alias_size_in_bytes
               + ma.temp_size_in_bytes)


def xla_training_memory(model: nn.Module, input_shape: Sequence[int],
                        tx: optax.GradientTransformation, *, variables=None, dtype=jnp.float32,
                        loss_fn: Callable = _mean_square) -> int:
    """XLA's peak bytes for the compiled step of :func:`make_train_step` (params, state and
    optimizer state donated)."""
    x, params, state, mutable = _setup(model, input_shape, dtype, variables)
    step = make_train_step(model, tx, loss_fn=loss_fn, mutable=mutable)
    return compiled_step_bytes(step, params, state, jax.eval_shape(tx.init, params), x,
                               donate_argnums=(0, 1, 2))
