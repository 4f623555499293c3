"""The transfer-learning matrix (target data size x similarity): each cell's strategy, settings
and reasons."""

import re

import pytest

from jaxvision.train import default_config
from jaxvision.transfer import STRATEGIES, recommend_strategy


@pytest.mark.parametrize("n,similarity,cell,strategy", [
    (200, "similar", ("small", "similar"), "feature_extraction"),
    (50_000, "similar", ("large", "similar"), "gradual"),
    (200, "dissimilar", ("small", "dissimilar"), "last_fraction"),
    (50_000, 0.1, ("large", "dissimilar"), "full"),
    (999, 0.5, ("small", "similar"), "feature_extraction"),
    (1000, 0.49, ("large", "dissimilar"), "full"),
])
def test_matrix_cells(n, similarity, cell, strategy):
    rec = recommend_strategy(n, similarity)
    assert rec.cell == cell and rec.strategy == strategy
    assert rec.config["transfer.strategy"] == strategy and strategy in STRATEGIES
    assert rec.reasons and all(r and not re.search(r"L\d{3,}", r) for r in rec.reasons)  # words


def test_recommended_configs_are_valid_engine_configs():
    for n in (10, 10_000):
        for similarity in ("similar", "dissimilar"):
            config = default_config()
            for key, value in recommend_strategy(n, similarity).config.items():
                group, name = key.split(".")
                config[group][name] = value


def test_the_second_size_band_moves_the_boundary():
    assert recommend_strategy(5000, "similar").cell[0] == "large"
    assert recommend_strategy(5000, "similar", large_from=100_000).cell[0] == "small"


@pytest.mark.parametrize("n,similarity,match", [
    (0, "similar", "positive int"), (10, "close", "similarity must be"),
    (10, 1.5, r"\[0, 1\]"),
])
def test_bad_input(n, similarity, match):
    with pytest.raises(ValueError, match=match):
        recommend_strategy(n, similarity)
