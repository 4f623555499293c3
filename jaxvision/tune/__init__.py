"""Hyperparameter search: grid, random and Bayesian (GP or Optuna) with median pruning, and
population-based training."""

from jaxvision.tune.pbt import (Member, PBTResult, exploit_pairs, explore,
                                population_based_training)
from jaxvision.tune.search import (MedianPruner, Trial, TrialPruned, bayesian_search, best_trial, grid_search,
                                   random_search, results_table)
from jaxvision.tune.space import Choice, IntRange, LogUniform, Uniform, apply_overrides

__all__ = ["Choice", "IntRange", "LogUniform", "Uniform", "apply_overrides", "MedianPruner", "Trial",
           "TrialPruned", "bayesian_search", "best_trial", "grid_search", "random_search", "results_table",
           "Member", "PBTResult", "exploit_pairs", "explore", "population_based_training"]
