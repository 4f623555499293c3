"""One train-step body and one eval-step body, shared by every parallel mode.

The bodies see either the global batch (``parallel="none"|"jit"``) or one device's share
(``parallel="pmap"``, where ``axis_name`` is set and gradients, metrics and, unless BatchNorm
is synced in the forward pass, BatchNorm statistics are averaged explicitly with ``pmean``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxvision.losses import cross_entropy
from jaxvision.train.state import TrainState

Batch = dict[str, jax.Array]
AugmentFn = Callable[[jax.Array, Batch], Batch]


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """Static choices baked into the compiled step."""

    learning_rate_fn: Callable[[jax.Array], jax.Array]
    label_smoothing: float = 0.0
    grad_accum_steps: int = 1
    compute_dtype: Any = jnp.float32
    sam_rho: float = 0.0
    sam_group_size: int | None = None
    axis_name: str | None = None  # set under pmap: the body sees one device's batch
    batch_stats_synced: bool = True  # False: per-device BatchNorm, running stats pmean'd


def _to_float(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] from the host becomes float32 [0, 1]; floats pass through."""
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 255.0
    return images.astype(jnp.float32)


def _correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example hit (float); soft/one-hot targets count their argmax as the label."""
    if labels.ndim == logits.ndim:
        labels = jnp.argmax(labels, axis=-1)
    return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


def _device_keys(key: jax.Array, axis_name: str | None) -> jax.Array:
    return key if axis_name is None else jax.random.fold_in(key, lax.axis_index(axis_name))


def make_train_step(options: StepOptions, augment_fn: AugmentFn | None = None
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """The train-step body ``(state, batch) -> (state, metrics)``.

    A non-finite loss, gradient or update leaves params, optimizer state and BatchNorm statistics as
    they were (only ``step`` advances) and reports ``finite = 0``; the loop decides whether
    to stop or skip.
    """
    accum = options.grad_accum_steps
    axis = options.axis_name

    def grads_of_microbatch(state, params, batch_stats, micro, dropout_key):
        def loss_fn(p, mb):
            logits, updates = state.apply_fn(
                {"params": p, "batch_stats": batch_stats},
                mb["image"].astype(options.compute_dtype), train=True,
                mutable=["batch_stats"], rngs={"dropout": dropout_key})
            loss = cross_entropy(logits, mb["label"], label_smoothing=options.label_smoothing)
            return loss, (updates.get("batch_stats", batch_stats), logits)

        if options.sam_rho > 0:
            from jaxvision.optim.sam import sam_value_and_grad

            (loss, aux), grads, sam_stats = sam_value_and_grad(
                loss_fn, params, micro, rho=options.sam_rho, group_size=options.sam_group_size)
            sam_stats = {f"sam_{name}": value for name, value in sam_stats.items()}
        else:
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, micro)
            sam_stats = {}
        new_batch_stats, logits = aux
        return grads, loss, new_batch_stats, _correct(logits, micro["label"]).mean(), sam_stats

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(state.key, state.step)
        augment_key, dropout_key = (_device_keys(k, axis) for k in jax.random.split(key))
        batch = dict(batch, image=_to_float(batch["image"]))
        if augment_fn is not None:
            batch = augment_fn(augment_key, batch)

        if accum == 1:
            grads, loss, batch_stats, accuracy, sam_stats = grads_of_microbatch(
                state, state.params, state.batch_stats, batch, dropout_key)
        else:
            micro = jax.tree.map(lambda x: x.reshape((accum, -1) + x.shape[1:]), batch)

            def body(carry, inputs):
                grad_sum, batch_stats = carry
                index, mb = inputs
                grads, loss, batch_stats, accuracy, sam_stats = grads_of_microbatch(
                    state, state.params, batch_stats, mb, jax.random.fold_in(dropout_key, index))
                grad_sum = jax.tree.map(jnp.add, grad_sum, grads)
                return (grad_sum, batch_stats), (loss, accuracy, sam_stats)

            zeros = jax.tree.map(jnp.zeros_like, state.params)
            (grad_sum, batch_stats), (losses, accuracies, sam_stats) = lax.scan(
                body, (zeros, state.batch_stats), (jnp.arange(accum), micro))
            grads = jax.tree.map(lambda g: g / accum, grad_sum)
            loss, accuracy = losses.mean(), accuracies.mean()
            sam_stats = jax.tree.map(jnp.mean, sam_stats)

        metrics = {"loss": loss, "accuracy": accuracy, **sam_stats}
        if axis is not None:
            grads = lax.pmean(grads, axis)
            metrics = lax.pmean(metrics, axis)
            if not options.batch_stats_synced:
                batch_stats = lax.pmean(batch_stats, axis)

        grad_norm = optax.tree.norm(grads)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # An overflowing update is as bad as a NaN gradient: it would leave inf parameters.
        finite = (jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
                  & jnp.isfinite(optax.tree.norm(updates)))
        keep_if_bad = lambda new, old: jax.tree.map(  # noqa: E731
            lambda n, o: jnp.where(finite, n, o), new, old)
        new_state = state.replace(
            step=state.step + 1,
            params=keep_if_bad(params, state.params),
            opt_state=keep_if_bad(opt_state, state.opt_state),
            batch_stats=keep_if_bad(batch_stats, state.batch_stats),
        )
        metrics.update(grad_norm=grad_norm, learning_rate=options.learning_rate_fn(state.step),
                       finite=finite.astype(jnp.float32))
        return new_state, metrics

    return step


def make_eval_step(options: StepOptions, preprocess_fn: Callable[[Batch], Batch] | None = None
                   ) -> Callable[[TrainState, Batch], dict]:
    """The eval-step body: sums of loss and hits over the unmasked examples, and their count.
    ``preprocess_fn`` applies the deterministic preprocessing (e.g. normalization) that the
    training augmentation applies."""

    def step(state: TrainState, batch: Batch) -> dict:
        batch = dict(batch, image=_to_float(batch["image"]))
        if preprocess_fn is not None:
            batch = preprocess_fn(batch)
        images = batch["image"].astype(options.compute_dtype)
        logits = state.apply_fn(state.variables(), images, train=False)
        mask = batch["valid"].astype(jnp.float32)
        losses = cross_entropy(logits, batch["label"], reduction="none")
        sums = {"loss": (losses * mask).sum(), "correct": (_correct(logits, batch["label"]) * mask).sum(),
                "count": mask.sum()}
        if options.axis_name is not None:
            sums = lax.psum(sums, options.axis_name)
        return sums

    return step
