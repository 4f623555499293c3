"""The transfer-learning matrix (target data size x similarity to the source domain) as a
function: which strategy, with which ``config.transfer`` settings, and why.

Two size bands are in common use (small = dozens to hundreds, large = thousands+; or small =
hundreds to a few thousand, large = hundreds of thousands+). ``large_from`` picks the
boundary: 1000 labelled examples by default (the first band); pass ``large_from=100_000`` for
the second.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """``cell``: (``"small"|"large"``, ``"similar"|"dissimilar"``); ``config``: dotted
    overrides for the engine config; ``reasons``: why, in words."""

    cell: tuple[str, str]
    strategy: str
    config: dict[str, Any]
    reasons: tuple[str, ...]


_CELLS = {
    ("small", "similar"): Recommendation(
        ("small", "similar"), "feature_extraction",
        {"transfer.strategy": "feature_extraction", "transfer.head": "linear",
         "transfer.head_dropout": 0.5, "optimizer.name": "adam", "optimizer.learning_rate": 1e-3,
         "transfer.batch_norm_frozen": ()},
        ("few examples: fine-tuning millions of weights would overfit, so freeze the whole "
         "backbone and train a new head only",
         "a similar domain: the pretrained features already separate the classes",
         "head: dropout 0.5 then one linear layer; Adam lr 1e-3, weight decay on the head, "
         "early stopping, strong augmentation: a small set overfits even a new head",
         "frozen BatchNorm (running statistics) suits a similar domain: its statistics still "
         "hold")),
    ("large", "similar"): Recommendation(
        ("large", "similar"), "gradual",
        {"transfer.strategy": "gradual", "transfer.lr_decay": "course",
         "transfer.head": "linear", "transfer.head_dropout": 0.3},
        ("enough data to adapt the backbone without overfitting: multi-stage fine-tuning",
         "phase 1 head only, then unfreeze from the last block backwards with a smaller LR than "
         "the head, so the pretrained features are adjusted, not overwritten",
         "full fine-tuning with discriminative rates, early layers slowest: "
         "their generic edges and textures need the least change",
         "reset optimizer state when a stage is unfrozen (no stale momentum); head dropout "
         "0.2-0.3, less than for a small set")),
    ("small", "dissimilar"): Recommendation(
        ("small", "dissimilar"), "last_fraction",
        {"transfer.strategy": "last_fraction", "transfer.fraction": 0.4,
         "transfer.head": "domain_adaptation", "transfer.batch_norm_train": (".",)},
        ("early layers hold generic edges and textures that still transfer; later layers are "
         "source-specific: freeze the first 50-70% and retrain (or re-initialise, "
         "transfer.reinit_last_blocks) the rest",
         "heavy regularisation: dropout 0.5-0.7, strong weight decay, early stopping with low "
         "patience: few examples of a new domain overfit fast",
         "grayscale inputs: a summed stem kernel; normalise with the target's statistics "
         "(the source's mean and std do not describe it)",
         "an adaptation layer between backbone and head (1x1 conv or bottleneck)",
         "dissimilar domain: let BatchNorm statistics follow the target",
         "compare against a from-scratch baseline to detect negative transfer")),
    ("large", "dissimilar"): Recommendation(
        ("large", "dissimilar"), "full",
        {"transfer.strategy": "full", "transfer.lr_decay": ""},
        ("with much data and a distant domain the source features help little: train from "
         "scratch (option A)",
         "or keep only the early pretrained blocks, re-initialise the rest "
         "(transfer.reinit_last_blocks) and give new layers a higher LR (option B)",
         "or pretrain in sequence through intermediate domains (option C)")),
}


def recommend_strategy(num_examples: int, similarity: str | float, *,
                       large_from: int = 1000) -> Recommendation:
    """The matrix cell for ``num_examples`` labelled target examples and a ``similarity``
    (``"similar"``/``"dissimilar"`` or a score in [0, 1], similar from 0.5)."""
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"num_examples must be a positive int, got {num_examples!r}")
    if isinstance(similarity, str):
        if similarity not in ("similar", "dissimilar"):
            raise ValueError(f"similarity must be 'similar', 'dissimilar' or a number in [0, 1], "
                             f"got {similarity!r}")
        kind = similarity
    else:
        if not 0 <= float(similarity) <= 1:
            raise ValueError(f"similarity score must lie in [0, 1], got {similarity}")
        kind = "similar" if float(similarity) >= 0.5 else "dissimilar"
    size = "large" if num_examples >= large_from else "small"
    return _CELLS[(size, kind)]
