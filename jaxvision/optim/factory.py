"""Optimizers and schedules from a config: the one place that turns names into optax objects.

``cfg`` is a mapping (``ml_collections.ConfigDict`` or ``dict``) with ``name``,
``learning_rate`` and optional ``schedule``, ``warmup_steps``, ``momentum``, ``nesterov``,
``weight_decay``.
"""

from __future__ import annotations

from typing import Any, Mapping

import optax


def _get(cfg: Mapping[str, Any], key: str, default: Any) -> Any:
    value = cfg.get(key, default)
    return default if value is None else value


def build_schedule(cfg: Mapping[str, Any], total_steps: int) -> optax.Schedule:
    """Learning-rate schedule with optional linear warmup in front."""
    lr = float(cfg["learning_rate"])
    if lr < 0:
        raise ValueError(f"optimizer.learning_rate must be >= 0, got {lr}")
    name = _get(cfg, "schedule", "constant")
    warmup = int(_get(cfg, "warmup_steps", 0))
    decay_steps = max(total_steps - warmup, 1)
    if name == "constant":
        main = optax.constant_schedule(lr)
    elif name == "cosine":
        main = optax.cosine_decay_schedule(lr, decay_steps)
    else:
        raise ValueError(f"unknown optimizer.schedule {name!r}; use 'constant' or 'cosine'")
    if warmup <= 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def build_optimizer(cfg: Mapping[str, Any], total_steps: int) -> optax.GradientTransformation:
    """Optax optimizer named by ``cfg['name']`` driven by ``build_schedule``."""
    schedule = build_schedule(cfg, total_steps)
    name = cfg["name"]
    weight_decay = float(_get(cfg, "weight_decay", 0.0))
    if weight_decay < 0:
        raise ValueError(f"optimizer.weight_decay must be >= 0, got {weight_decay}")
    if name == "sgd":
        momentum = float(_get(cfg, "momentum", 0.0)) or None
        tx = optax.sgd(schedule, momentum=momentum, nesterov=bool(_get(cfg, "nesterov", False)))
        if weight_decay:
            tx = optax.chain(optax.add_decayed_weights(weight_decay), tx)
        return tx
    if name == "adam":
        return optax.adam(schedule)
    if name == "adamw":
        return optax.adamw(schedule, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer.name {name!r}; use 'sgd', 'adam' or 'adamw'")
