"""Hyperparameter search: grid size, sampling, GP-BO finds a known optimum, pruning."""

import math

import ml_collections
import numpy as np
import pytest

from jaxvision import tune


def _objective(params, report):
    """Peak accuracy at lr = 1e-2, wd = 1e-4; a learning curve reported over 5 'epochs'."""
    score = 1.0 - 0.1 * (math.log10(params["lr"]) + 2) ** 2 - 0.05 * (math.log10(params.get("wd", 1e-4)) + 4) ** 2
    for epoch in range(5):
        report(epoch, score * (epoch + 1) / 5)
    return score


def test_grid_search_is_the_cartesian_product():
    trials = tune.grid_search(_objective, {"lr": [0.001, 0.01, 0.1], "wd": [1e-4, 1e-3, 1e-2]})
    assert len(trials) == 9  # a 3 x 3 grid
    assert {(t.params["lr"], t.params["wd"]) for t in trials} == {(a, b) for a in (0.001, 0.01, 0.1)
                                                                  for b in (1e-4, 1e-3, 1e-2)}
    best = tune.best_trial(trials)
    assert best.params == {"lr": 0.01, "wd": 1e-4}
    table = tune.results_table(trials)
    assert table.splitlines()[2].startswith(f"| {best.number} |")


def test_random_search_samples_log_uniformly_and_reproducibly():
    space = {"lr": tune.LogUniform(1e-5, 1e-1), "dropout": tune.Uniform(0.1, 0.5),
             "batch": [16, 32, 64], "depth": tune.IntRange(1, 3)}
    a = tune.random_search(lambda p, r: 0.0, space, num_trials=400, seed=3)
    b = tune.random_search(lambda p, r: 0.0, space, num_trials=400, seed=3)
    assert [t.params for t in a] == [t.params for t in b]
    logs = np.log10([t.params["lr"] for t in a])
    assert logs.min() >= -5 and logs.max() <= -1
    assert abs(np.median(logs) + 3) < 0.3                         # log-uniform: median exponent -3
    assert {t.params["depth"] for t in a} == {1, 2, 3}
    assert {t.params["batch"] for t in a} == {16, 32, 64}


def test_gp_bayesian_search_finds_the_optimum():
    space = {"lr": tune.LogUniform(1e-5, 1.0)}
    trials = tune.bayesian_search(_objective, space, num_trials=14, seed=0, num_initial=5)
    best = tune.best_trial(trials)
    assert abs(math.log10(best.params["lr"]) + 2) < 0.35
    guided = [t for t in trials[5:]]
    assert np.mean([t.value for t in guided]) > np.mean([t.value for t in trials[:5]])


def test_median_pruner_stops_bad_trials():
    pruner = tune.MedianPruner(num_startup_trials=2, warmup_steps=1)
    trials = tune.grid_search(_objective, {"lr": [0.01, 0.02, 1e-5, 1.0, 0.011]}, pruner=pruner)
    states = [t.state for t in trials]
    assert states[:2] == ["complete", "complete"]
    assert states[2] == "pruned" and states[3] == "pruned"       # far from the optimum
    assert states[4] == "complete"
    assert len(trials[2].intermediate) == 2                       # stopped at the first step after warmup


def test_apply_overrides_on_config():
    config = ml_collections.ConfigDict({"optimizer": {"learning_rate": 0.1, "name": "sgd"}, "seed": 0})
    new = tune.apply_overrides(config, {"optimizer.learning_rate": np.float64(0.01), "seed": 3})
    assert new.optimizer.learning_rate == 0.01 and new.seed == 3 and config.optimizer.learning_rate == 0.1
    with pytest.raises(KeyError, match="learning_rat"):
        tune.apply_overrides(config, {"optimizer.learning_rat": 0.01})


def test_optuna_backend():
    pytest.importorskip("optuna")
    trials = tune.bayesian_search(_objective, {"lr": tune.LogUniform(1e-5, 1.0), "wd": [1e-4, 1e-2]},
                                  num_trials=12, seed=0, backend="optuna",
                                  pruner=tune.MedianPruner(num_startup_trials=3, warmup_steps=1))
    assert len(trials) == 12
    best = tune.best_trial(trials)
    assert best.value > 0.7 and best.state == "complete"
