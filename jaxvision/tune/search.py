"""Grid, random and Bayesian hyperparameter search with median pruning and a results table.

An objective is ``objective(params: dict, report) -> float``: it trains with ``params`` and
returns the final validation metric. Calling ``report(step, value)`` with intermediate
values lets the pruner stop unpromising trials early (it raises ``TrialPruned``, which the
search catches). ``direction`` is ``"maximize"`` (accuracy) or ``"minimize"`` (loss).

Bayesian search uses a Gaussian process (scikit-learn, Matern 5/2) with expected improvement
after ``num_initial`` random trials, or Optuna's TPE sampler and median
pruner with ``backend="optuna"`` (optional dependency: ``pip install optuna``).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from jaxvision.tune.space import as_dimension

Objective = Callable[[dict, Callable[[int, float], None]], float]


class TrialPruned(Exception):
    """Raised by ``report`` when the pruner stops a trial."""


@dataclass
class Trial:
    """One evaluated configuration."""

    number: int
    params: dict
    value: float | None = None
    state: str = "running"          # "complete", "pruned" or "failed"
    intermediate: dict = field(default_factory=dict)
    seconds: float = 0.0


class MedianPruner:
    """Prunes a trial whose value at a step is worse than the median of earlier trials at that step.

    Nothing is pruned during the first ``num_startup_trials`` trials or before ``warmup_steps``.
    """

    def __init__(self, *, num_startup_trials: int = 3, warmup_steps: int = 0, direction: str = "maximize"):
        self.num_startup_trials = num_startup_trials
        self.warmup_steps = warmup_steps
        self.sign = 1.0 if direction == "maximize" else -1.0

    def should_prune(self, trials: list[Trial], current: Trial, step: int, value: float) -> bool:
        finished = [t for t in trials if t is not current and t.state in ("complete", "pruned")]
        if len([t for t in finished if t.state == "complete"]) < self.num_startup_trials or step < self.warmup_steps:
            return False
        history = [t.intermediate[step] for t in finished if step in t.intermediate]
        if not history:
            return False
        return self.sign * value < self.sign * float(np.median(history))


def _run_trial(objective: Objective, trial: Trial, trials: list[Trial], pruner: MedianPruner | None) -> Trial:
    def report(step: int, value: float) -> None:
        trial.intermediate[int(step)] = float(value)
        if pruner is not None and pruner.should_prune(trials, trial, int(step), float(value)):
            raise TrialPruned(f"trial {trial.number} pruned at step {step}")

    start = time.perf_counter()
    try:
        trial.value = float(objective(dict(trial.params), report))
        trial.state = "complete" if math.isfinite(trial.value) else "failed"
    except TrialPruned:
        trial.state = "pruned"
        trial.value = trial.intermediate[max(trial.intermediate)] if trial.intermediate else None
    trial.seconds = time.perf_counter() - start
    return trial


def _check_direction(direction: str) -> None:
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")


def grid_search(objective: Objective, space: Mapping[str, Any], *, direction: str = "maximize",
                pruner: MedianPruner | None = None, grid_points: int = 3) -> list[Trial]:
    """Every combination of the dimensions' grids (``Choice`` values; ``grid_points`` per range)."""
    _check_direction(direction)
    names = list(space)
    grids = [as_dimension(space[name]).grid(grid_points) for name in names]
    trials: list[Trial] = []
    for number, values in enumerate(itertools.product(*grids)):
        trial = Trial(number, dict(zip(names, values)))
        trials.append(trial)
        _run_trial(objective, trial, trials, pruner)
    return trials


def random_search(objective: Objective, space: Mapping[str, Any], *, num_trials: int, seed: int = 0,
                  direction: str = "maximize", pruner: MedianPruner | None = None) -> list[Trial]:
    """``num_trials`` independent draws from the space (Bergstra & Bengio 2012)."""
    _check_direction(direction)
    rng = np.random.default_rng(seed)
    dims = {name: as_dimension(spec) for name, spec in space.items()}
    trials: list[Trial] = []
    for number in range(num_trials):
        trial = Trial(number, {name: dim.sample(rng) for name, dim in dims.items()})
        trials.append(trial)
        _run_trial(objective, trial, trials, pruner)
    return trials


def _expected_improvement(mean, std, best, xi=0.01):
    from scipy.stats import norm

    std = np.maximum(std, 1e-12)
    z = (mean - best - xi) / std
    return (mean - best - xi) * norm.cdf(z) + std * norm.pdf(z)


def bayesian_search(objective: Objective, space: Mapping[str, Any], *, num_trials: int, seed: int = 0,
                    direction: str = "maximize", num_initial: int = 5, pruner: MedianPruner | None = None,
                    backend: str = "gp", num_candidates: int = 2000) -> list[Trial]:
    """Sequential model-based search: GP + expected improvement (``"gp"``) or Optuna TPE (``"optuna"``)."""
    _check_direction(direction)
    if backend == "optuna":
        return _optuna_search(objective, space, num_trials=num_trials, seed=seed, direction=direction,
                              pruner=pruner)
    if backend != "gp":
        raise ValueError(f"backend must be 'gp' or 'optuna', got {backend!r}")
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    rng = np.random.default_rng(seed)
    names = list(space)
    dims = [as_dimension(space[name]) for name in names]
    sign = 1.0 if direction == "maximize" else -1.0
    trials: list[Trial] = []
    for number in range(num_trials):
        done = [t for t in trials if t.state == "complete"]
        if len(done) < num_initial:
            params = {name: dim.sample(rng) for name, dim in zip(names, dims)}
        else:
            x = np.array([[dim.to_unit(t.params[n]) for n, dim in zip(names, dims)] for t in done])
            y = sign * np.array([t.value for t in done])
            kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(len(dims), 0.3), nu=2.5) + WhiteKernel(1e-4, noise_level_bounds=(1e-10, 1e-1))
            gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed, n_restarts_optimizer=2)
            with warnings.catch_warnings():   # tiny data sets: optimiser warnings are expected
                warnings.simplefilter("ignore")
                gp.fit(x, y)
            candidates = rng.random((num_candidates, len(dims)))
            mean, std = gp.predict(candidates, return_std=True)
            best = candidates[int(np.argmax(_expected_improvement(mean, std, y.max())))]
            params = {n: dim.from_unit(float(u)) for n, dim, u in zip(names, dims, best)}
        trial = Trial(number, params)
        trials.append(trial)
        _run_trial(objective, trial, trials, pruner)
    return trials


def _optuna_search(objective, space, *, num_trials, seed, direction, pruner) -> list[Trial]:
    try:
        import optuna
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("backend='optuna' needs Optuna: pip install optuna (or use backend='gp')") from err
    from jaxvision.tune.space import Choice, IntRange, LogUniform, Uniform

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_pruner = (optuna.pruners.MedianPruner(n_startup_trials=pruner.num_startup_trials,
                                                 n_warmup_steps=pruner.warmup_steps)
                     if pruner is not None else optuna.pruners.NopPruner())
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna_pruner)
    trials: list[Trial] = []

    dims = {name: as_dimension(spec) for name, spec in space.items()}

    def optuna_objective(ot):
        params = {}
        for name, dim in dims.items():
            if isinstance(dim, Choice):
                params[name] = ot.suggest_categorical(name, list(dim.values))
            elif isinstance(dim, LogUniform):
                params[name] = ot.suggest_float(name, dim.low, dim.high, log=True)
            elif isinstance(dim, Uniform):
                params[name] = ot.suggest_float(name, dim.low, dim.high)
            elif isinstance(dim, IntRange):
                params[name] = ot.suggest_int(name, dim.low, dim.high)
        trial = Trial(ot.number, params)
        trials.append(trial)
        start = time.perf_counter()

        def report(step, value):
            trial.intermediate[int(step)] = float(value)
            ot.report(float(value), int(step))
            if ot.should_prune():
                raise TrialPruned(f"trial {trial.number} pruned at step {step}")

        try:
            trial.value = float(objective(dict(params), report))
            trial.state = "complete"
            return trial.value
        except TrialPruned as err:
            trial.state = "pruned"
            trial.value = trial.intermediate[max(trial.intermediate)] if trial.intermediate else None
            raise optuna.TrialPruned() from err
        finally:
            trial.seconds = time.perf_counter() - start

    study.optimize(optuna_objective, n_trials=num_trials)
    return trials


def best_trial(trials: list[Trial], *, direction: str = "maximize") -> Trial:
    """The complete trial with the best value."""
    done = [t for t in trials if t.state == "complete"]
    if not done:
        raise ValueError("no trial completed; check the objective or loosen the pruner")
    return (max if direction == "maximize" else min)(done, key=lambda t: t.value)


def results_table(trials: list[Trial], *, direction: str = "maximize") -> str:
    """Markdown table of all trials, best first (pruned and failed trials last)."""
    names = sorted({k for t in trials for k in t.params})
    sign = -1.0 if direction == "maximize" else 1.0
    order = sorted(trials, key=lambda t: (t.state != "complete",
                                          sign * t.value if t.value is not None else math.inf))

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| trial | " + " | ".join(names) + " | value | state | steps | seconds |",
             "|" + "---|" * (len(names) + 5)]
    for t in order:
        value = "-" if t.value is None else f"{t.value:.4f}"
        lines.append(f"| {t.number} | " + " | ".join(fmt(t.params.get(n)) for n in names)
                     + f" | {value} | {t.state} | {len(t.intermediate)} | {t.seconds:.1f} |")
    return "\n".join(lines)
