"""Snapshot ensembles done right (Huang et al. 2017): cosine cycles *with restarts*.

The course's version uses ``CosineAnnealingLR(T_max=epochs // snapshots)`` without
restarts: the LR climbs back up, so every other snapshot is taken at the peak LR. Here each
cycle restarts at ``lr`` and anneals to ``min_lr``; a snapshot is taken after the last step
of each cycle (at the LR minimum), and the ensemble averages the snapshots'
softmax outputs (``jaxvision.metrics.ensemble_probabilities``).
"""

from __future__ import annotations

from jaxvision.optim.schedules import Schedule, cosine_warm_restarts, restart_steps


def snapshot_schedule(lr: float, *, steps_per_cycle: int, min_lr: float = 0.0) -> Schedule:
    """Cosine annealing from ``lr`` to ``min_lr`` over each cycle, restarting every cycle."""
    return cosine_warm_restarts(lr, first_cycle_steps=steps_per_cycle, cycle_mult=1, min_lr=min_lr)


def snapshot_steps(*, steps_per_cycle: int, num_snapshots: int) -> list[int]:
    """Numbers of completed updates after which to save a snapshot: ``T, 2T, ..., MT``.

    The update with index ``k * T - 1`` (0-based) used the cycle's smallest LR; after it the
    schedule restarts. ``total_steps = steps_per_cycle * num_snapshots``.
    """
    return restart_steps(first_cycle_steps=steps_per_cycle, cycle_mult=1, num_cycles=num_snapshots)


def is_snapshot_step(completed_steps: int, *, steps_per_cycle: int) -> bool:
    """True when ``completed_steps`` ends a cycle (host-side check in the training loop)."""
    return completed_steps > 0 and completed_steps % steps_per_cycle == 0
