"""Gradual unfreezing (ULMFiT, Howard & Ruder 2018): stages join the training one after
another, each with fresh optimizer state (momentum and Adam moments start from zero when a
stage joins, rather than from whatever they held while it was frozen).

Every stage gets its own copy of the optimizer (``optax.multi_transform``), built with a
learning rate of 1 and no schedule; until the stage's step comes its updates are zero and its
state stays at ``init`` (its own count included, so Adam's bias correction starts afresh), and
from then on it runs. The run's schedule multiplies all updates afterwards, on the global step:
``update = lr(t) * U`` holds for every optimizer of ``jaxvision.optim.factory`` (the learning
rate is their last factor, and decoupled weight decay is ``-lr(t) * wd * w``), so a stage
unfrozen late continues the run's schedule instead of restarting it.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import optax

from jaxvision.optim import build_optimizer, build_schedule



def delayed(tx: optax.GradientTransformation, start_step: int) -> optax.GradientTransformation:
    """``tx`` that gives zero updates and keeps its initial state before ``start_step``."""

    def init_fn(params):
        return {"inner": tx.init(params), "count": jnp.zeros([], jnp.int32)}

    def update_fn(updates, state, params=None):
        active = state["count"] >= start_step
        new_updates, new_inner = tx.update(updates, state["inner"], params)
        fresh = tx.init(params if params is not None else updates)
        inner = jax.tree.map(lambda n, f: jnp.where(active, n, f), new_inner, fresh)
        new_updates = jax.tree.map(lambda u: jnp.where(active, u, jnp.zeros_like(u)), new_updates)
        return new_updates, {"inner": inner, "count": optax.safe_int32_increment(state["count"])}

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_global_schedule(schedule: optax.Schedule) -> optax.GradientTransformation:
    """Multiplies the updates by ``schedule(step)`` (positive: the sign is the optimizer's)."""

    def init_fn(params):
        del params
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        lr = schedule(state.count)
        return (jax.tree.map(lambda u: u * lr, updates),
                optax.ScaleByScheduleState(count=optax.safe_int32_increment(state.count)))

    return optax.GradientTransformation(init_fn, update_fn)


_OUTER_KEYS = ("lr_multipliers", "frozen", "grad_clip_norm")


def gradual_optimizer(cfg: Mapping[str, Any], total_steps: int, *, labels: Any,
                      start_steps: Mapping[str, int]) -> optax.GradientTransformation:
    """The optimizer ``cfg`` names with each label's leaves starting at ``start_steps[label]``.

    ``labels``: a pytree of stage labels like the params (or a function of the params), as
    ``optax.multi_transform`` takes. Gradient clipping, frozen leaves and LR multipliers of
    ``cfg`` apply to the whole tree, around the staged optimizer."""
    if cfg["name"] == "sam_optax":
        raise ValueError("gradual unfreezing does not support optimizer.name='sam_optax'")
    inner_cfg = {k: v for k, v in dict(cfg).items() if k not in _OUTER_KEYS}
    inner_cfg.update(learning_rate=1.0, schedule="constant", warmup_steps=0)
    staged = optax.multi_transform(
        {label: delayed(build_optimizer(inner_cfg, total_steps), int(step))
         for label, step in start_steps.items()}, labels)
    tx = optax.chain(staged, scale_by_global_schedule(build_schedule(cfg, total_steps)))
    from jaxvision.optim.partition import discriminative_lr, freeze

    if cfg.get("lr_multipliers"):
        tx = discriminative_lr(tx, multipliers=dict(cfg["lr_multipliers"]))
    if cfg.get("frozen"):
        tx = freeze(tx, frozen=list(cfg["frozen"]))
    if cfg.get("grad_clip_norm"):
        tx = optax.chain(optax.clip_by_global_norm(float(cfg["grad_clip_norm"])), tx)
    return tx
