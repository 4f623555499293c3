"""Discriminative learning rates: a multiplier per leaf, applied after the whole optimizer.

The multipliers scale each leaf's final update (``jaxvision.optim.partition.scale_by_path``
chained after the optimizer, its schedule and its decoupled weight decay), so they hold under
every optax schedule: timm's ``lr_scale`` only works through timm's own scheduler (timm issue
2532), this works through any. For SGD, momentum, RMSprop, AdaGrad and Adam(W), whose updates
are linear in the learning rate, scaling the update is exactly scaling the learning rate.

* :func:`course_multipliers`: a per-stage preset, stem base/10, then base/8, /6, /4, /2 for
  the stages, the head at base: the early layers' generic features need the least change.
* :func:`layer_decay_multipliers`: timm's ``param_groups_layer_decay``:
  ``decay ** (layer_max - layer_id)`` with timm's grouping (stem 0, block i -> i + 1, head last).
"""

from __future__ import annotations

import re

from jaxvision.transfer.structure import Structure

COURSE_DIVISORS = (10, 8, 6, 4, 2)


def course_multipliers(structure: Structure) -> dict[str, float]:
    """``{leaf path: multiplier}``: 1/10, 1/8, 1/6, 1/4, 1/2 from the stem up, 1 for the head.

    A model with fewer than five groups below the head takes the last divisors (three stages
    and a stem: /8, /6, /4, /2); more than five is refused: say what each stage should get in
    ``config.optimizer.lr_multipliers`` instead."""
    below = [g for g in structure.groups if g.name != "head"]
    if len(below) > len(COURSE_DIVISORS):
        raise ValueError(f"the course preset has {len(COURSE_DIVISORS)} divisors "
                         f"{COURSE_DIVISORS} but the model has {len(below)} groups below the "
                         f"head ({[g.name for g in below]}); use transfer.lr_decay='layer'")
    divisors = COURSE_DIVISORS[len(COURSE_DIVISORS) - len(below):]
    factors = [1.0 / d for d in divisors] + [1.0]
    return {leaf: factors[structure.group_of(leaf)] for leaf in structure.leaves}


def layer_decay_multipliers(structure: Structure, decay: float, *,
                            min_scale: float = 0.0) -> dict[str, float]:
    """``{leaf path: max(min_scale, decay ** (layer_max - layer_id))}`` as timm computes it."""
    if not 0 < decay <= 1:
        raise ValueError(f"transfer.layer_decay must lie in (0, 1], got {decay}")
    ids = structure.layer_ids()
    layer_max = max(ids.values())
    return {leaf: max(min_scale, decay ** (layer_max - i)) for leaf, i in ids.items()}


def as_rules(multipliers: dict[str, float]) -> dict[str, float]:
    """Exact-path regexes for ``scale_by_path`` / ``config.optimizer.lr_multipliers``."""
    return {f"^{re.escape(path)}$": factor for path, factor in multipliers.items()}
