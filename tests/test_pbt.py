"""Population-based training: the course's exploit rule (ranks 8 and 9 of 10 copy ranks 0 and
1), explore by 0.8/1.2 within the space, and the equal-budget comparison with random search."""

import numpy as np
import pytest

from jaxvision import tune


def test_exploit_pairs_follow_the_course():
    rng = np.random.default_rng(0)
    ranked = [5, 2, 7, 0, 1, 3, 4, 6, 9, 8]  # best first
    pairs = tune.exploit_pairs(ranked, 0.2, rng)
    assert [loser for loser, _ in pairs] == [9, 8]  # ranks 8 and 9 (int(0.8 * 10) = 8)
    assert all(winner in (5, 2) for _, winner in pairs)  # from ranks 0 and 1
    assert [l for l, _ in tune.exploit_pairs(list(range(5)), 0.2, rng)] == [4]  # at least one
    with pytest.raises(ValueError):
        tune.exploit_pairs([0, 1, 2], 0.7, rng)  # top 2 and bottom 2 of 3 would overlap


def test_explore_multiplies_by_0_8_or_1_2_and_clips():
    space = {"lr": tune.LogUniform(1e-3, 1.0), "depth": tune.IntRange(1, 10),
             "opt": ["sgd", "adam"]}
    seen = set()
    for seed in range(20):
        out = tune.explore({"lr": 0.1, "depth": 5, "opt": "adam"}, space,
                           np.random.default_rng(seed))
        assert out["opt"] == "adam"
        assert out["lr"] in (pytest.approx(0.08), pytest.approx(0.12))
        assert out["depth"] in (4, 6)
        seen.add(round(out["lr"], 6))
    assert seen == {0.08, 0.12}
    assert tune.explore({"lr": 0.95, "depth": 10, "opt": "sgd"}, space,
                        np.random.default_rng(1), factors=(1.2,)) == {"lr": 1.0, "depth": 10,
                                                                       "opt": "sgd"}


def test_pbt_copies_state_and_hparams_from_the_top():
    """Score = accumulated lr: the ranking is the lr ranking, so exploits are predictable."""
    log = []

    def train(state, hparams, steps):
        log.append(steps)
        return state + hparams["lr"] * steps

    result = tune.population_based_training(
        lambda h, seed: 0.0, train, lambda s: s, {"lr": tune.Uniform(0.0, 1.0)},
        population_size=10, rounds=3, steps_per_round=2, seed=0)
    assert result.steps_trained == sum(log) == 10 * 3 * 2
    first, second = result.history[0], result.history[1]
    assert [r["score"] for r in first] == sorted((r["score"] for r in first), reverse=True)
    top = {r["index"]: r for r in first[:2]}
    losers = [r for r in first[-2:]]
    for loser in losers:
        assert loser["copied_from"] in top  # the bottom two copied one of the top two
        parent = top[loser["copied_from"]]
        after = next(r for r in second if r["index"] == loser["index"])
        lr = after["hparams"]["lr"]  # x0.8 or x1.2, clipped to the space's [0, 1]
        assert lr in (pytest.approx(0.8 * parent["hparams"]["lr"]),
                      pytest.approx(min(1.2 * parent["hparams"]["lr"], 1.0)))
        # Its state continued from the parent's: parent's score + 2 steps at the new lr.
        assert after["score"] == pytest.approx(parent["score"] + 2 * after["hparams"]["lr"])
    assert all(r["copied_from"] is None for r in first[2:-2])
    assert all(r["copied_from"] is None for r in result.history[-1])  # no exploit after the end
    assert result.best.score == max(r["score"] for r in result.history[-1])


@pytest.mark.slow
def test_pbt_vs_random_search_figures():
    """Equal budgets (the demo's compile alone takes ~8 s on a busy CPU, hence slow).

    Measured (5 seeds, 10 members x 10 rounds x 30 steps): PBT 0.9718 mean test accuracy,
    random search 0.9673; PBT ahead on 4 seeds, tied on seed 0 (where PBT's best member was
    never replaced: the same draw, init and steps as random search's best)."""
    pytest.importorskip("sklearn")
    from jaxvision.tune import pbt_demo

    rows = pbt_demo.compare()
    assert all(r["steps"] == 10 * 10 * 30 for r in rows)  # random: 10 draws x 300 steps
    pbt, random = np.array([r["pbt"] for r in rows]), np.array([r["random"] for r in rows])
    np.testing.assert_allclose(pbt.mean(), 0.9718, atol=2e-3)
    np.testing.assert_allclose(random.mean(), 0.9673, atol=2e-3)
    assert (pbt >= random).all()
