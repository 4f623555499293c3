"""Freezing (config.trainable / config.frozen): frozen leaves get no gradient, no optimizer
state, no weight decay, and their BatchNorm neither normalizes with batch statistics nor
updates its running statistics."""

import jax
import numpy as np
import optax
import pytest
from flax import traverse_util

from helpers import digits_config

from jaxvision import models
from jaxvision.train import StepOptions, create_train_state, make_train_step, train_and_evaluate
from jaxvision.train.freeze import Freeze


def _flat(tree):
    return traverse_util.flatten_dict(tree, sep="/")


@pytest.fixture(scope="module")
def trained():
    """small_cnn with its first stage frozen, 5 AdamW steps with weight decay."""
    freeze = Freeze(frozen=("conv0", "bn0"))
    model = models.create("small_cnn", num_classes=10, dropout_rate=0.0)
    tx = optax.adamw(1e-2, weight_decay=0.1)
    before = create_train_state(model, tx, seed=0, input_shape=(1, 8, 8, 1), freeze=freeze)
    step = jax.jit(make_train_step(StepOptions(learning_rate_fn=lambda s: 1e-2, freeze=freeze)))
    rng = np.random.default_rng(0)
    state = before
    for _ in range(5):
        batch = {"image": rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8),
                 "label": rng.integers(0, 10, (16,), dtype=np.int32)}
        state, metrics = step(state, batch)
    return before, state


def test_frozen_parameters_and_their_batchnorm_statistics_do_not_move(trained):
    before, after = trained
    old, new = _flat(before.params), _flat(after.params)
    for path in old:
        changed = not np.array_equal(old[path], new[path])
        assert changed == (not path.startswith(("conv0", "bn0"))), path
    old_stats, new_stats = _flat(before.batch_stats), _flat(after.batch_stats)
    assert all(np.array_equal(old_stats[p], new_stats[p]) for p in old_stats if p.startswith("bn0"))
    assert not np.array_equal(old_stats["bn1/mean"], new_stats["bn1/mean"])


def test_frozen_parameters_hold_no_optimizer_state(trained):
    _, state = trained
    trainable = [p for p in _flat(state.params) if not p.startswith(("conv0", "bn0"))]
    # AdamW: one mu and one nu per trainable leaf, plus the step count.
    assert len(jax.tree.leaves(state.opt_state)) == 2 * len(trainable) + 1


def test_frozen_batchnorm_normalizes_with_running_statistics(trained):
    """With everything but the head frozen, the training forward equals the eval forward."""
    _, state = trained
    freeze = Freeze(trainable=("head",))
    step = jax.jit(make_train_step(StepOptions(learning_rate_fn=lambda s: 0.0, freeze=freeze)))
    state = create_train_state(models.create("small_cnn", num_classes=10, dropout_rate=0.0),
                               optax.sgd(0.0), seed=0, input_shape=(1, 8, 8, 1), freeze=freeze)
    batch = {"image": np.full((4, 8, 8, 1), 200, np.uint8), "label": np.zeros(4, np.int32)}
    _, metrics = step(state, batch)
    logits = state.apply_fn(state.variables(), batch["image"] / 255.0, train=False)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-6)


@pytest.mark.parametrize("field,pattern", [("frozen", "layer9"), ("trainable", "classifier")])
def test_a_regex_that_matches_nothing_stops_before_compiling(tfds_dir, tmp_path, compile_counter,
                                                             field, pattern):
    config = digits_config(tfds_dir, num_epochs=1, **{field: (pattern,)})
    with pytest.raises(ValueError, match=f"config.{field} regex '{pattern}' matches no parameter"):
        train_and_evaluate(config, str(tmp_path))
    assert compile_counter.count == 0
