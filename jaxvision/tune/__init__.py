"""Hyperparameter search: grid, random and Bayesian (GP or Optuna) with median pruning."""

from jaxvision.tune.search import (MedianPruner, Trial, TrialPruned, bayesian_search, best_trial, grid_search,
                                   random_search, results_table)
from jaxvision.tune.space import Choice, IntRange, LogUniform, Uniform, apply_overrides

__all__ = ["Choice", "IntRange", "LogUniform", "Uniform", "apply_overrides", "MedianPruner", "Trial",
           "TrialPruned", "bayesian_search", "best_trial", "grid_search", "random_search", "results_table"]
