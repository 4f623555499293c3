"""Strategies through the engine: what a strategy freezes stays bitwise as the source left it
(parameters and BatchNorm statistics, under AdamW weight decay), the optimizer holds no state
for it, and a BatchNorm can be put in either mode independently of its parameters."""

import functools

import jax
import numpy as np
import optax
import pytest
from flax import traverse_util

from helpers import digits_config

from jaxvision import models
from jaxvision.train import StepOptions, create_train_state, load_state, make_train_step, \
    train_and_evaluate
from jaxvision.train.config import default_config
from jaxvision.transfer import engine

STAGE0 = ("conv0", "bn0")


def _flat(tree):
    return traverse_util.flatten_dict(tree, sep="/")


@pytest.fixture(scope="module")
def runs(tfds_dir, tmp_path_factory):
    """A source small_cnn on digits, then a target run from it with a new linear head
    (``transfer.head``, kept fresh by init_from), training only the last stage and the head
    group ('top_k', 1), with bn1's statistics frozen, AdamW weight decay 0.1."""
    source_dir = str(tmp_path_factory.mktemp("source"))
    source_config = digits_config(tfds_dir, model="small_cnn", num_epochs=1, batch_size=128)
    train_and_evaluate(source_config, source_dir)
    target_dir = str(tmp_path_factory.mktemp("target"))
    target_config = digits_config(
        tfds_dir, model="small_cnn", num_epochs=1, batch_size=128, init_from=source_dir,
        **{"transfer.strategy": "top_k", "transfer.top_k": 1, "transfer.head": "linear",
           "transfer.batch_norm_frozen": ("bn1",), "optimizer.name": "adamw",
           "optimizer.weight_decay": 0.1, "optimizer.learning_rate": 1e-2})
    summary = train_and_evaluate(target_config, target_dir)
    return (load_state(source_dir, source_config), load_state(target_dir, target_config),
            summary)


@pytest.mark.slow
def test_frozen_stage_and_frozen_statistics_are_bitwise_the_sources(runs):
    source, target, summary = runs
    assert summary["step"] > 0
    before, after = _flat(source.params), _flat(target.params)
    assert set(after) - set(before) == {"head/fc/kernel", "head/fc/bias"}  # the new head
    before.pop("head/kernel"), before.pop("head/bias")
    for path in before:
        same = np.array_equal(before[path], after[path])
        assert same == path.startswith(STAGE0), path  # weight decay 0.1 never touched them
    stats_before, stats_after = _flat(source.batch_stats), _flat(target.batch_stats)
    for path in stats_before:  # bn0 (frozen stage) and bn1 (batch_norm_frozen)
        assert np.array_equal(stats_before[path], stats_after[path]), path
    assert not np.array_equal(before["bn1/scale"], after["bn1/scale"])  # its params train


def test_the_optimizer_holds_nothing_for_frozen_leaves(runs):
    _, target, _ = runs
    params = _flat(target.params)
    trainable = {p for p in params if not p.startswith(STAGE0)}
    shapes = [np.shape(leaf) for leaf in jax.tree.leaves(target.opt_state)]
    # AdamW: mu and nu for each trainable leaf, plus scalar counts.
    assert sorted(s for s in shapes if s != ()) == sorted(
        [np.shape(params[p]) for p in trainable] * 2)
    assert (3, 3, 1, 32) not in shapes and (32,) not in shapes  # conv0/bn0 shapes


def test_batch_norm_train_mode_updates_statistics_of_a_frozen_stage():
    """feature extraction with ``batch_norm_train=('bn0',)``: bn0's scale and bias stay, its
    running statistics follow the data (the course's "parameter freezing only"); bn1 is frozen
    with its stage and keeps both."""
    config = default_config()
    config.model = "small_cnn"
    config.transfer.strategy = "feature_extraction"
    config.transfer.batch_norm_train = ("bn0",)
    model = models.create("small_cnn", num_classes=10, dropout_rate=0.0)
    plan = engine.plan(config, model, (1, 8, 8, 1))
    state = jax.jit(functools.partial(create_train_state, model, optax.sgd(0.1), seed=0,
                                      input_shape=(1, 8, 8, 1), freeze=plan.freeze))()
    step = jax.jit(make_train_step(StepOptions(learning_rate_fn=lambda s: 0.1,
                                               freeze=plan.freeze)))
    rng = np.random.default_rng(0)
    batch = {"image": rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8),
             "label": rng.integers(0, 10, (16,), dtype=np.int32)}
    new, _ = step(state, batch)
    p0, p1 = _flat(state.params), _flat(new.params)
    s0, s1 = _flat(state.batch_stats), _flat(new.batch_stats)
    assert all(np.array_equal(p0[p], p1[p]) for p in p0 if not p.startswith(("fc", "head")))
    assert not np.array_equal(p0["head/kernel"], p1["head/kernel"])
    assert not np.array_equal(s0["bn0/mean"], s1["bn0/mean"])
    assert np.array_equal(s0["bn1/mean"], s1["bn1/mean"])
    assert np.array_equal(s0["bn1/var"], s1["bn1/var"])
