"""Learning-rate schedules as pure functions ``step -> lr`` (optax ``Schedule``s), jit-safe.

Each follows ``torch.optim.lr_scheduler`` step for step (steps count from 0, the value at step
``t`` is the LR used for the ``t``-th update), so recipes written for PyTorch carry over:

==========================  ============================================================
``step_decay``              ``StepLR(step_size, gamma)``
``multistep_decay``         ``MultiStepLR(milestones, gamma)``
``exponential_decay``       ``ExponentialLR(gamma)``
``polynomial_decay``        ``PolynomialLR(total_iters, power)`` (+ an ``end_lr`` floor)
``cosine_decay``            ``CosineAnnealingLR(T_max, eta_min)`` (held at ``eta_min`` after ``T_max``,
                            or ``periodic``: on past it, as PyTorch)
``cosine_warm_restarts``    ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`` (SGDR)
``one_cycle``               ``OneCycleLR`` (defaults div_factor=25, final_div_factor=1e4, cos)
``cyclic``                  ``CyclicLR`` (triangular, triangular2, exp_range)
``with_warmup``             linear warmup from ``init_lr`` in front of any schedule
``reduce_on_plateau_*``     ``ReduceLROnPlateau`` as a pure state update on a metric
``scale_by_plateau``        that state inside the optimizer state, as an LR multiplier
==========================  ============================================================
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

Schedule = Callable[[jax.Array | int], jax.Array]


def _as_float(step) -> jax.Array:
    return jnp.asarray(step, jnp.float32)


def constant(lr: float) -> Schedule:
    """The same LR at every step."""
    return lambda step: jnp.full((), lr, jnp.float32) + 0.0 * _as_float(step)


def step_decay(lr: float, *, step_size: int, gamma: float = 0.1) -> Schedule:
    """``lr * gamma ** floor(step / step_size)``."""
    if step_size <= 0:
        raise ValueError(f"step_size must be > 0, got {step_size}")
    return lambda step: lr * gamma ** jnp.floor(_as_float(step) / step_size)


def multistep_decay(lr: float, *, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """``lr * gamma ** (number of milestones <= step)``."""
    bounds = jnp.asarray(sorted(int(m) for m in milestones), jnp.float32)
    return lambda step: lr * gamma ** jnp.sum(_as_float(step) >= bounds).astype(jnp.float32)


def exponential_decay(lr: float, *, gamma: float) -> Schedule:
    """``lr * gamma ** step``."""
    return lambda step: lr * jnp.asarray(gamma, jnp.float32) ** _as_float(step)


def polynomial_decay(lr: float, *, total_steps: int, power: float = 1.0, end_lr: float = 0.0) -> Schedule:
    """``(lr - end_lr) * (1 - min(step, T) / T) ** power + end_lr``."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")

    def schedule(step):
        frac = 1.0 - jnp.minimum(_as_float(step), total_steps) / total_steps
        return (lr - end_lr) * frac**power + end_lr

    return schedule


def cosine_decay(lr: float, *, total_steps: int, min_lr: float = 0.0,
                 periodic: bool = False) -> Schedule:
    """``min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2`` for ``t <= T``, then ``min_lr``;
    ``periodic=True`` continues the cosine past ``T`` (it climbs back to ``lr`` at ``2T``), as
    PyTorch's ``CosineAnnealingLR`` does when stepped beyond ``T_max``."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")

    def schedule(step):
        t = _as_float(step) if periodic else jnp.minimum(_as_float(step), total_steps)
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + jnp.cos(jnp.pi * t / total_steps))

    return schedule


def restart_steps(*, first_cycle_steps: int, cycle_mult: int = 1, num_cycles: int) -> list[int]:
    """Steps at which SGDR cycles end (= where the next restarts): ``T0, T0 + T0*m, ...``."""
    ends, length, total = [], first_cycle_steps, 0
    for _ in range(num_cycles):
        total += length
        ends.append(total)
        length *= cycle_mult
    return ends


def cosine_warm_restarts(lr: float, *, first_cycle_steps: int, cycle_mult: int = 1,
                         min_lr: float = 0.0) -> Schedule:
    """SGDR (Loshchilov & Hutter 2017): cosine cycles of length ``T0 * m**i`` restarting at ``lr``.

    With ``T0=10, m=2`` the restarts are at 10, 30, 70, 150, .... This is the
    schedule snapshot ensembles need (take a snapshot at the end of each cycle).
    """
    if first_cycle_steps <= 0 or cycle_mult < 1 or int(cycle_mult) != cycle_mult:
        raise ValueError("first_cycle_steps must be > 0 and cycle_mult an integer >= 1, got "
                         f"{first_cycle_steps}, {cycle_mult}")
    t0, m = float(first_cycle_steps), float(cycle_mult)

    def cycle_start(n):
        return t0 * n if m == 1 else t0 * (m**n - 1.0) / (m - 1.0)

    def schedule(step):
        t = _as_float(step)
        if m == 1:
            n = jnp.floor(t / t0)
        else:
            n = jnp.floor(jnp.log(t / t0 * (m - 1.0) + 1.0) / math.log(m))
            # Guard the float log against off-by-one at the cycle boundaries.
            n = jnp.where(t < cycle_start(n), n - 1, n)
            n = jnp.where(t >= cycle_start(n + 1), n + 1, n)
        t_cur = t - cycle_start(n)
        t_i = t0 * m**n
        return min_lr + (lr - min_lr) * 0.5 * (1.0 + jnp.cos(jnp.pi * t_cur / t_i))

    return schedule


def _anneal_cos(start, end, pct):
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)


def _anneal_linear(start, end, pct):
    return (end - start) * pct + start


def _one_cycle_phases(total_steps, pct_start, three_phase, low, high, final):
    if three_phase:
        return [(float(pct_start * total_steps) - 1, low, high),
                (float(2 * pct_start * total_steps) - 2, high, low),
                (total_steps - 1.0, low, final)]
    return [(float(pct_start * total_steps) - 1, low, high), (total_steps - 1.0, high, final)]


def _piecewise_phases(phases, anneal):
    def schedule(step):
        t = _as_float(step)
        value = jnp.zeros((), jnp.float32)
        start = 0.0
        done = jnp.zeros((), bool)
        for i, (end, v0, v1) in enumerate(phases):
            last = i == len(phases) - 1
            here = jnp.logical_and(~done, (t <= end) | last)
            value = jnp.where(here, anneal(v0, v1, (t - start) / (end - start)), value)
            done = done | here
            start = end
        return value

    return schedule


def one_cycle(max_lr: float, *, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4, anneal: str = "cos", three_phase: bool = False) -> Schedule:
    """One-cycle policy (Smith 2018) with ``torch.optim.lr_scheduler.OneCycleLR`` semantics.

    Starts at ``max_lr / div_factor``, reaches ``max_lr`` at step ``pct_start * T - 1`` and ends at
    ``max_lr / div_factor / final_div_factor`` at step ``T - 1``. PyTorch's defaults
    (div 25, final div 1e4, cosine) give, for ``max_lr=0.01``, 4e-4 -> 0.01 -> 4e-8.
    (``optax.cosine_onecycle_schedule`` places the phase ends one step later.)
    """
    if not 0.0 < pct_start < 1.0:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
    if anneal not in ("cos", "linear"):
        raise ValueError(f"anneal must be 'cos' or 'linear', got {anneal!r}")
    initial = max_lr / div_factor
    phases = _one_cycle_phases(total_steps, pct_start, three_phase, initial, max_lr,
                               initial / final_div_factor)
    return _piecewise_phases(phases, _anneal_cos if anneal == "cos" else _anneal_linear)


def one_cycle_momentum(*, total_steps: int, pct_start: float = 0.3, base_momentum: float = 0.85,
                       max_momentum: float = 0.95, anneal: str = "cos",
                       three_phase: bool = False) -> Schedule:
    """OneCycleLR's momentum cycle: ``max -> base`` while the LR rises, ``base -> max`` after."""
    if three_phase:
        phases = [(float(pct_start * total_steps) - 1, max_momentum, base_momentum),
                  (float(2 * pct_start * total_steps) - 2, base_momentum, max_momentum),
                  (total_steps - 1.0, max_momentum, max_momentum)]
    else:
        phases = [(float(pct_start * total_steps) - 1, max_momentum, base_momentum),
                  (total_steps - 1.0, base_momentum, max_momentum)]
    return _piecewise_phases(phases, _anneal_cos if anneal == "cos" else _anneal_linear)


def cyclic(base_lr: float, *, max_lr: float, step_size_up: int, step_size_down: int | None = None,
           mode: str = "triangular", gamma: float = 1.0) -> Schedule:
    """Cyclical LR (Smith 2017) with ``torch.optim.lr_scheduler.CyclicLR`` semantics.

    ``mode='triangular'`` (constant amplitude), ``'triangular2'`` (amplitude halves each cycle)
    or ``'exp_range'`` (amplitude ``* gamma**step``).
    """
    if mode not in ("triangular", "triangular2", "exp_range"):
        raise ValueError(f"mode must be 'triangular', 'triangular2' or 'exp_range', got {mode!r}")
    down = step_size_up if step_size_down is None else step_size_down
    total = float(step_size_up + down)
    ratio = step_size_up / total

    def schedule(step):
        t = _as_float(step)
        cycle = jnp.floor(1.0 + t / total)
        x = 1.0 + t / total - cycle
        scale = jnp.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
        height = (max_lr - base_lr) * scale
        if mode == "triangular":
            amplitude = 1.0
        elif mode == "triangular2":
            amplitude = 1.0 / 2.0 ** (cycle - 1.0)
        else:
            amplitude = jnp.asarray(gamma, jnp.float32) ** t
        return base_lr + height * amplitude

    return schedule


def with_warmup(schedule: Schedule, *, warmup_steps: int, init_lr: float = 0.0) -> Schedule:
    """Linear warmup from ``init_lr`` to ``schedule(0)`` over ``warmup_steps``, then ``schedule(t - w)``."""
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if warmup_steps == 0:
        return schedule
    peak = schedule(0)

    def warmed(step):
        t = _as_float(step)
        ramp = init_lr + (peak - init_lr) * t / warmup_steps
        return jnp.where(t < warmup_steps, ramp, schedule(jnp.maximum(t - warmup_steps, 0.0)))

    return warmed


# --- reduce on plateau (driven by a metric, not by the step) ------------------------------------

class PlateauState(NamedTuple):
    """State of ``reduce_on_plateau_update``: the current LR and the bookkeeping of ReduceLROnPlateau."""

    lr: jax.Array
    best: jax.Array
    num_bad_epochs: jax.Array
    cooldown_counter: jax.Array


def reduce_on_plateau_init(lr: float, *, mode: str = "min") -> PlateauState:
    """Initial state: LR ``lr`` and the worst possible best metric."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    worst = jnp.inf if mode == "min" else -jnp.inf
    return PlateauState(jnp.float32(lr), jnp.float32(worst), jnp.int32(0), jnp.int32(0))


def reduce_on_plateau_update(state: PlateauState, metric: jax.Array, *, mode: str = "min",
                             factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                             threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
                             eps: float = 1e-8) -> PlateauState:
    """One ``ReduceLROnPlateau.step(metric)``: multiply the LR by ``factor`` after ``patience``
    epochs without improvement (relative ``threshold``), then wait ``cooldown`` epochs.

    Pure and jit-safe; ``scale_by_plateau`` keeps the state in the optimizer state, where
    ``state.lr`` multiplies the updates.
    """
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must lie in (0, 1), got {factor}")
    metric = jnp.asarray(metric, jnp.float32)
    best = state.best
    if mode == "min":
        bound = best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold
        better = metric < bound
    else:
        bound = best * (1.0 + threshold) if threshold_mode == "rel" else best + threshold
        better = metric > bound
    best = jnp.where(better, metric, best)
    num_bad = jnp.where(better, 0, state.num_bad_epochs + 1)
    in_cooldown = state.cooldown_counter > 0
    cooldown_counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
    num_bad = jnp.where(in_cooldown, 0, num_bad)
    reduce = num_bad > patience
    new_lr = jnp.maximum(state.lr * factor, min_lr)
    new_lr = jnp.where(state.lr - new_lr > eps, new_lr, state.lr)
    lr = jnp.where(reduce, new_lr, state.lr)
    cooldown_counter = jnp.where(reduce, cooldown, cooldown_counter)
    num_bad = jnp.where(reduce, 0, num_bad)
    return PlateauState(lr, best, num_bad.astype(jnp.int32), cooldown_counter.astype(jnp.int32))


def scale_by_plateau(*, mode: str = "min") -> optax.GradientTransformation:
    """Multiplies the updates by a plateau LR multiplier held in the optimizer state (a
    ``PlateauState`` whose ``lr`` starts at 1), so checkpoints save and restore it with the rest.

    ``update`` never changes the multiplier: a metric arrives once per evaluation, not per
    step, through ``map_plateau_states``. Chained after an optimizer whose LR is its last
    factor, scaling the updates is scaling the LR, so the multiplier composes with any step
    schedule.
    """

    def init_fn(params):
        del params
        return reduce_on_plateau_init(1.0, mode=mode)

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: u * state.lr.astype(u.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def _is_plateau(node) -> bool:
    return isinstance(node, PlateauState)


def plateau_scale(opt_state) -> jax.Array:
    """The product of the plateau multipliers in ``opt_state`` (1 when it holds none)."""
    scale = jnp.ones((), jnp.float32)
    for node in jax.tree.leaves(opt_state, is_leaf=_is_plateau):
        if _is_plateau(node):
            scale = scale * node.lr
    return scale


def map_plateau_states(opt_state, fn: Callable[[PlateauState], PlateauState]):
    """``opt_state`` with ``fn`` applied to each ``scale_by_plateau`` state; the loop passes a
    jitted ``reduce_on_plateau_update`` on the evaluation's metric (``min_lr`` and ``eps`` in
    multiplier units). The other leaves are passed through, not copied."""
    return jax.tree.map(lambda node: fn(node) if _is_plateau(node) else node, opt_state,
                        is_leaf=_is_plateau)


# --- plotting -----------------------------------------------------------------------------------

def schedule_values(schedule: Schedule, *, total_steps: int) -> np.ndarray:
    """``schedule(t)`` for ``t = 0 .. total_steps - 1`` as a numpy array (one vmapped call)."""
    return np.asarray(jax.vmap(schedule)(jnp.arange(total_steps)))


def plot_schedules(schedules: dict[str, Schedule], *, total_steps: int, path: str,
                   title: str = "learning-rate schedules", log_scale: bool = False) -> str:
    """Plots one or more schedules against the step and saves a PNG at ``path``."""
    from jaxvision import plots

    fig, ax = plots.figure((7, 4))
    for name, schedule in schedules.items():
        ax.plot(schedule_values(schedule, total_steps=total_steps), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    plots.save(fig, path, dpi=100)
    return path


def plot_schedule(schedule: Schedule, *, total_steps: int, path: str, name: str = "lr") -> str:
    """Plots a single schedule (see ``plot_schedules``)."""
    return plot_schedules({name: schedule}, total_steps=total_steps, path=path, title=name)
