"""One train-step body and one eval-step body, shared by every parallel mode.

The task (``jaxvision.tasks``) says what the loss and the metrics are; the bodies only run the
model, differentiate, update and reduce. The bodies see either the global batch (``parallel="none"|"jit"``) or one device's share
(``parallel="pmap"``, where ``axis_name`` is set and gradients, metrics and, unless BatchNorm
is synced in the forward pass, BatchNorm statistics are averaged explicitly with ``pmean``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxvision.tasks.base import Task, model_inputs
from jaxvision.tasks.classification import ClassificationTask
from jaxvision.train.freeze import Freeze, frozen_batch_norm, merge
from jaxvision.train.state import TrainState

Batch = dict[str, jax.Array]
AugmentFn = Callable[[jax.Array, Batch], Batch]
_ATTACK_STREAM = 0xAD  # folded into the step's key for the attack's random starts


@dataclasses.dataclass(frozen=True)
class Adversarial:
    """Adversarial training (``config.adversarial``): PGD examples (``jaxvision.interpret.
    adversarial.pgd`` with these options; ``step_size`` None: its default) replace
    ``fraction`` of every micro-batch."""

    epsilon: float
    norm: str
    num_steps: int
    step_size: float | None
    random_start: bool
    fraction: float


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """Static choices baked into the compiled step."""

    learning_rate_fn: Callable[[jax.Array], jax.Array]
    task: Task = ClassificationTask()
    grad_accum_steps: int = 1
    compute_dtype: Any = jnp.float32
    sam_rho: float = 0.0
    sam_group_size: int | None = None
    axis_name: str | None = None  # set under pmap: the body sees one device's batch
    batch_stats_synced: bool = True  # False: per-device BatchNorm, running stats pmean'd
    freeze: Freeze = Freeze()  # frozen parameters: no gradient, no optimizer state
    adversarial: Adversarial | None = None  # None: clean training


def images_to_float(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] from the host becomes float32 [0, 1]; floats pass through."""
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)


def _device_keys(key: jax.Array, axis_name: str | None) -> jax.Array:
    return key if axis_name is None else jax.random.fold_in(key, lax.axis_index(axis_name))


def make_train_step(options: StepOptions, augment_fn: AugmentFn | None = None,
                    preprocess_fn: Callable[[Batch], Batch] | None = None
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """The train-step body ``(state, batch) -> (state, metrics)``.

    With ``options.adversarial``, PGD examples replace the chosen images first, on the [0, 1]
    images before augmentation: the attack ascends the task's loss of the model in inference
    mode (BatchNorm on running statistics, so the attack's passes update none of them; no
    dropout) behind ``preprocess_fn`` (the evaluation's deterministic preprocessing, e.g.
    normalization), i.e. the threat model of evaluation; the augmentation then applies to the
    adversarial images as to any others. The same share of every micro-batch is replaced (the
    first ``max(1, round(fraction * micro_batch))`` examples of each), keys differ per step
    and per device, and the parameter gradient does not flow through the attack.

    The task gives the loss and the train metrics; every mutable collection of the model
    (``state.model_state``) is updated. A non-finite loss, gradient or update leaves params,
    optimizer state and model state as they were (only ``step`` advances) and reports
    ``finite = 0``; the loop decides whether to stop or skip.
    """
    accum = options.grad_accum_steps
    axis = options.axis_name
    task = options.task

    def with_adversarial_examples(state, batch, key):
        from jaxvision.interpret.adversarial import pgd

        adv = options.adversarial
        size = batch["image"].shape[0]
        micro = size // accum
        chosen = np.flatnonzero(np.arange(size) % micro < max(1, round(adv.fraction * micro)))
        part = jax.tree.map(lambda v: v[chosen], batch)

        def forward(images):
            if preprocess_fn is not None:
                images = preprocess_fn({"image": images})["image"]
            return state.apply_fn(state.variables(), images.astype(options.compute_dtype),
                                  train=False, **model_inputs(task, part))

        images = pgd(forward, part["image"], part, adv.epsilon, norm=adv.norm,
                     num_steps=adv.num_steps, step_size=adv.step_size,
                     random_start=adv.random_start, key=key,
                     loss=lambda outputs, examples: task.loss(outputs, examples, train=False)[0])
        return dict(batch, image=batch["image"].at[chosen].set(images))

    def grads_of_microbatch(state, params, frozen, model_state, micro, keys):
        """Gradients with respect to ``params`` (the trainable ones; ``frozen`` is None
        or the frozen rest)."""
        interceptor = (frozen_batch_norm(options.freeze.frozen_modules(state.params))
                       if frozen is not None else None)

        def loss_fn(p, mb):
            images = mb["image"].astype(options.compute_dtype)
            variables = {"params": p if frozen is None else merge(p, frozen), **model_state}
            extra = model_inputs(task, mb)
            with (nn.intercept_methods(interceptor) if interceptor else contextlib.nullcontext()):
                if model_state:
                    outputs, updates = state.apply_fn(variables, images, train=True,
                                                      mutable=list(model_state), rngs=keys,
                                                      **extra)
                else:  # flax returns the outputs alone when nothing is mutable
                    outputs = state.apply_fn(variables, images, train=True, rngs=keys, **extra)
                    updates = {}
            loss, aux = task.loss(outputs, mb, train=True)
            return loss, ({**model_state, **updates}, aux)

        if options.sam_rho > 0:
            from jaxvision.optim.sam import sam_value_and_grad

            (loss, aux), grads, sam_stats = sam_value_and_grad(
                loss_fn, params, micro, rho=options.sam_rho, group_size=options.sam_group_size)
            sam_stats = {f"sam_{name}": value for name, value in sam_stats.items()}
        else:
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, micro)
            sam_stats = {}
        new_model_state, task_metrics = aux
        return grads, loss, new_model_state, {**task_metrics, **sam_stats}

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(state.key, state.step)
        augment_key, *stream_keys = (_device_keys(k, axis) for k in
                                     jax.random.split(key, 1 + len(task.rng_streams)))
        keys = dict(zip(task.rng_streams, stream_keys))
        batch = dict(batch, image=images_to_float(batch["image"]))
        if options.adversarial is not None:
            batch = with_adversarial_examples(
                state, batch, _device_keys(jax.random.fold_in(key, _ATTACK_STREAM), axis))
        if augment_fn is not None:
            batch = augment_fn(augment_key, batch)
        trainable, frozen = (options.freeze.split(state.params) if options.freeze
                             else (state.params, None))

        if accum == 1:
            grads, loss, model_state, step_metrics = grads_of_microbatch(
                state, trainable, frozen, state.model_state, batch, keys)
        else:
            micro = jax.tree.map(lambda x: x.reshape((accum, -1) + x.shape[1:]), batch)

            def body(carry, inputs):
                grad_sum, model_state = carry
                index, mb = inputs
                micro_keys = {name: jax.random.fold_in(k, index) for name, k in keys.items()}
                grads, loss, model_state, step_metrics = grads_of_microbatch(
                    state, trainable, frozen, model_state, mb, micro_keys)
                grad_sum = jax.tree.map(jnp.add, grad_sum, grads)
                return (grad_sum, model_state), (loss, step_metrics)

            zeros = jax.tree.map(jnp.zeros_like, trainable)
            (grad_sum, model_state), (losses, step_metrics) = lax.scan(
                body, (zeros, state.model_state), (jnp.arange(accum), micro))
            grads = jax.tree.map(lambda g: g / accum, grad_sum)
            loss = losses.mean()
            step_metrics = jax.tree.map(jnp.mean, step_metrics)

        metrics = {"loss": loss, **step_metrics}
        if axis is not None:
            grads = lax.pmean(grads, axis)
            metrics = lax.pmean(metrics, axis)
            if not options.batch_stats_synced:
                model_state = lax.pmean(model_state, axis)

        grad_norm = optax.tree.norm(grads)
        updates, opt_state = state.tx.update(grads, state.opt_state, trainable)
        params = optax.apply_updates(trainable, updates)
        if frozen is not None:
            params = merge(params, frozen)
        # An overflowing update is as bad as a NaN gradient: it would leave inf parameters.
        finite = (jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
                  & jnp.isfinite(optax.tree.norm(updates)))
        keep_if_bad = lambda new, old: jax.tree.map(  # noqa: E731
            lambda n, o: jnp.where(finite, n, o), new, old)
        new_state = state.replace(
            step=state.step + 1,
            params=keep_if_bad(params, state.params),
            opt_state=keep_if_bad(opt_state, state.opt_state),
            model_state=keep_if_bad(model_state, state.model_state),
        )
        metrics.update(grad_norm=grad_norm, learning_rate=options.learning_rate_fn(state.step),
                       finite=finite.astype(jnp.float32))
        return new_state, metrics

    return step


def make_eval_step(options: StepOptions, preprocess_fn: Callable[[Batch], Batch] | None = None,
                   *, with_predictions: bool = False) -> Callable[[TrainState, Batch], Any]:
    """The eval-step body: the task's ``{name: (sum, count)}`` over the unmasked examples,
    summed over devices, and with ``with_predictions`` also ``task.predict`` of the outputs
    (for host evaluators). ``preprocess_fn`` applies the deterministic preprocessing (e.g.
    normalization) that the training augmentation applies."""
    task = options.task

    def step(state: TrainState, batch: Batch):
        batch = dict(batch, image=images_to_float(batch["image"]))
        if preprocess_fn is not None:
            batch = preprocess_fn(batch)
        images = batch["image"].astype(options.compute_dtype)
        outputs = state.apply_fn(state.variables(), images, train=False,
                                 **model_inputs(task, batch))
        sums = task.batch_metrics(outputs, batch)
        if options.axis_name is not None:
            sums = lax.psum(sums, options.axis_name)
        return (sums, task.predict(outputs)) if with_predictions else sums

    return step
