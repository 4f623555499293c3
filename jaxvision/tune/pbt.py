"""Population-based training (Jaderberg et al. 2017).

A population trains in rounds. After each round every member is evaluated and ranked; each
member of the bottom ``fraction`` (20%) *exploits* a random member of the top ``fraction``: it
takes a copy of that member's state (weights and optimizer state) and hyperparameters, then
*explores* by multiplying each numeric hyperparameter by 0.8 or 1.2 (clipped to its range in
the space; categorical ones are kept). With 10 members the ranks 8 and 9 are replaced from
ranks 0 and 1. The last round is not followed by an exploit step, so every final member has
been trained. What a hyperparameter did over time is each member's lineage in ``history``:
PBT finds schedules, not constants.

The caller supplies three functions of one member, so anything trainable can be a member:
``init(hparams, seed) -> state``, ``train(state, hparams, steps) -> state`` and
``evaluate(state) -> float`` (a validation metric).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np

from jaxvision.tune.space import Choice, IntRange, as_dimension


@dataclasses.dataclass
class Member:
    index: int
    hparams: dict
    state: Any
    score: float | None = None


@dataclasses.dataclass
class PBTResult:
    members: list[Member]           # after the last round, best first
    history: list[list[dict]]       # per round: {index, hparams, score, copied_from}
    steps_trained: int              # total training steps over all members (the budget)

    @property
    def best(self) -> Member:
        return self.members[0]


def exploit_pairs(ranked: list[int], fraction: float, rng: np.random.Generator
                  ) -> list[tuple[int, int]]:
    """``(loser, winner)`` pairs: each of the bottom ``fraction`` of ``ranked`` (best first)
    copies a random member of the top ``fraction`` (at least one each)."""
    n = len(ranked)
    count = max(1, int(fraction * n))
    if 2 * count > n:
        raise ValueError(f"fraction {fraction} leaves no middle in a population of {n}")
    top, bottom = ranked[:count], ranked[n - count:]
    return [(loser, top[int(rng.integers(len(top)))]) for loser in bottom]


def explore(hparams: Mapping[str, Any], space: Mapping[str, Any], rng: np.random.Generator,
            factors: tuple[float, ...] = (0.8, 1.2)) -> dict:
    """Each numeric hyperparameter times a random one of ``factors``, clipped to its range."""
    out = dict(hparams)
    for name, spec in space.items():
        dim = as_dimension(spec)
        if isinstance(dim, Choice):
            continue
        value = np.clip(hparams[name] * factors[int(rng.integers(len(factors)))], dim.low,
                        dim.high)
        out[name] = int(round(value)) if isinstance(dim, IntRange) else float(value)
    return out


def population_based_training(init: Callable, train: Callable, evaluate: Callable,
                              space: Mapping[str, Any], *, population_size: int = 10,
                              rounds: int = 10, steps_per_round: int = 1, fraction: float = 0.2,
                              factors: tuple[float, ...] = (0.8, 1.2), seed: int = 0,
                              direction: str = "maximize") -> PBTResult:
    """Runs PBT (see module doc); hyperparameters start as draws from ``space``."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    rng = np.random.default_rng(seed)
    dims = {name: as_dimension(spec) for name, spec in space.items()}
    members = []
    for i in range(population_size):
        hparams = {name: dim.sample(rng) for name, dim in dims.items()}
        members.append(Member(i, hparams, init(hparams, seed * 100_003 + i)))
    sign = -1.0 if direction == "maximize" else 1.0
    history = []
    for round_ in range(rounds):
        for m in members:
            m.state = train(m.state, m.hparams, steps_per_round)
            m.score = float(evaluate(m.state))
        ranked = sorted(range(population_size), key=lambda i: sign * members[i].score)
        record = {m.index: dict(index=m.index, hparams=dict(m.hparams), score=m.score,
                                copied_from=None) for m in members}
        history.append([record[i] for i in ranked])
        if round_ == rounds - 1:
            break
        for loser, winner in exploit_pairs(ranked, fraction, rng):
            members[loser].state = members[winner].state  # JAX arrays are immutable: a copy
            members[loser].hparams = explore(members[winner].hparams, space, rng, factors)
            record[loser]["copied_from"] = winner
    final = sorted(members, key=lambda m: sign * m.score)
    return PBTResult(final, history, population_size * rounds * steps_per_round)
