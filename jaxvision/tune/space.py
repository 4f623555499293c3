"""Search-space dimensions and config overrides for hyperparameter search."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (categorical; the grid uses all of them)."""

    values: Sequence[Any]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, num: int = 3) -> list[Any]:  # noqa: ARG002 - every value, whatever num
        return list(self.values)

    def to_unit(self, value: Any) -> float:
        idx = list(self.values).index(value)
        return idx / max(len(self.values) - 1, 1)

    def from_unit(self, u: float) -> Any:
        return self.values[int(round(u * (len(self.values) - 1)))]


@dataclass(frozen=True)
class Uniform:
    """A float uniform in ``[low, high]``."""

    low: float
    high: float

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))

    def grid(self, num: int = 3):
        return list(np.linspace(self.low, self.high, num))

    def to_unit(self, value):
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u):
        return float(self.low + u * (self.high - self.low))


@dataclass(frozen=True)
class LogUniform:
    """A positive float whose logarithm is uniform in ``[log low, log high]`` (LRs, weight decay)."""

    low: float
    high: float

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise ValueError(f"LogUniform needs 0 < low < high, got {self.low}, {self.high}")

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def grid(self, num: int = 3):
        return list(np.geomspace(self.low, self.high, num))

    def to_unit(self, value):
        return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))

    def from_unit(self, u):
        return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))


@dataclass(frozen=True)
class IntRange:
    """An integer uniform in ``[low, high]`` inclusive."""

    low: int
    high: int

    def sample(self, rng):
        return int(rng.integers(self.low, self.high + 1))

    def grid(self, num: int = 3):
        return sorted({int(round(v)) for v in np.linspace(self.low, self.high, num)})

    def to_unit(self, value):
        return (value - self.low) / max(self.high - self.low, 1)

    def from_unit(self, u):
        return int(round(self.low + u * (self.high - self.low)))


Dimension = Choice | Uniform | LogUniform | IntRange


def as_dimension(spec: Any) -> Dimension:
    """A list/tuple becomes a ``Choice``; dimensions pass through."""
    if isinstance(spec, (Choice, Uniform, LogUniform, IntRange)):
        return spec
    if isinstance(spec, (list, tuple)):
        return Choice(tuple(spec))
    raise TypeError(f"search-space entry must be a list of values or Choice/Uniform/LogUniform/IntRange, "
                    f"got {spec!r}")


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """A deep copy of ``config`` with dotted keys set (``{"optimizer.learning_rate": 0.1}``).

    Works on ``ml_collections.ConfigDict`` and nested dicts; unknown keys are an error so a typo
    does not silently search nothing.
    """
    config = copy.deepcopy(config)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            if part not in node:
                raise KeyError(f"override {dotted!r}: no {part!r} in the config; check the key")
            node = node[part]
        if leaf not in node:
            raise KeyError(f"override {dotted!r}: no {leaf!r} in the config; check the key")
        if isinstance(value, np.generic):
            value = value.item()
        node[leaf] = value
    return config
