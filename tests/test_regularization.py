"""Dropout variants, stochastic depth, EMA, snapshot ensembles and early stopping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn.regularization import (DropBlock, SpatialDropout, StochasticDepth, drop_block_mask,
                                         linear_drop_path_rates)
from jaxvision.optim import ema, snapshot
from jaxvision.train import monitoring


def _apply(module, x, train, seed=0):
    return module.apply({}, x, train=train, rngs={"dropout": jax.random.key(seed)})


def test_spatial_dropout_drops_whole_channels_and_is_identity_at_eval():
    x = jnp.ones((4, 5, 5, 16))
    y = np.asarray(_apply(SpatialDropout(0.5), x, True))
    per_channel = y.reshape(4, 25, 16)
    assert np.all(per_channel.min(1) == per_channel.max(1))          # constant over H, W
    assert set(np.unique(y)) <= {0.0, 2.0}                            # inverted scaling 1/(1-p)
    assert 0 < (y == 0).mean() < 1
    np.testing.assert_array_equal(_apply(SpatialDropout(0.5), x, False), x)


def test_dropblock_blocks_are_squares_and_rate_is_met():
    mask = np.asarray(drop_block_mask(jax.random.key(0), (1, 16, 16, 1), rate=0.1, block_size=3))
    zeros = np.argwhere(mask[0, :, :, 0] == 0)
    assert len(zeros) >= 9
    # Every dropped unit belongs to a fully dropped 3x3 square inside the map.
    for i, j in zeros:
        ok = any(np.all(mask[0, a:a + 3, b:b + 3, 0] == 0)
                 for a in range(max(0, i - 2), min(i, 13) + 1) for b in range(max(0, j - 2), min(j, 13) + 1))
        assert ok
    big = drop_block_mask(jax.random.key(1), (64, 32, 32, 8), rate=0.1, block_size=5)
    assert abs(1 - float(big.mean()) - 0.1) < 0.015   # overlaps make it slightly below gamma's target
    x = jnp.ones((2, 12, 12, 4))
    y = _apply(DropBlock(0.2, block_size=3), x, True)
    np.testing.assert_allclose(float(y.mean()), 1.0, rtol=1e-4)   # rescaled to keep the mean
    np.testing.assert_array_equal(_apply(DropBlock(0.2, block_size=3), x, False), x)


def test_stochastic_depth_row_batch_and_expectation():
    branch = jnp.ones((4000, 2))
    y = np.asarray(_apply(StochasticDepth(0.2, mode="row"), branch, True))
    assert set(np.unique(y)) <= {0.0, 1.25}
    assert abs((y[:, 0] == 0).mean() - 0.2) < 0.03
    assert np.all(y[:, 0] == y[:, 1])
    yb = np.asarray(_apply(StochasticDepth(0.5, mode="batch"), branch, True, seed=3))
    assert len(np.unique(yb)) == 1
    np.testing.assert_array_equal(_apply(StochasticDepth(0.2), branch, False), branch)
    huang = StochasticDepth(0.2, scale_mode="huang")
    np.testing.assert_allclose(_apply(huang, branch, False), 0.8 * branch)
    assert set(np.unique(np.asarray(_apply(huang, branch, True)))) <= {0.0, 1.0}
    assert linear_drop_path_rates(0.2, 3) == [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match="rate must be in"):
        _apply(StochasticDepth(1.0), branch, True)


def test_ema_matches_recurrence():
    state = ema.ema_init({"w": jnp.array([0.0, 1.0])})
    ref = np.array([0.0, 1.0])
    for t, value in enumerate([1.0, 2.0, 3.0]):
        state = ema.ema_update(state, {"w": jnp.array([value, value])}, decay=0.9)
        ref = 0.9 * ref + 0.1 * value
    np.testing.assert_allclose(state.params["w"], ref, rtol=1e-6)
    warm = ema.ema_update(ema.ema_init({"w": jnp.zeros(1)}), {"w": jnp.ones(1)}, decay=0.999, warmup=True)
    np.testing.assert_allclose(warm.params["w"], 1 - 1 / 10, rtol=1e-6)   # decay = min(0.999, 1/10)


def test_snapshot_schedule_restarts_unlike_the_course_version():
    # A plain CosineAnnealingLR(T_max=20), 100 epochs, 5 snapshots -> LR 0.1 at epochs 40 and 80.
    course_lr = lambda e: 0.05 * (1 + np.cos(np.pi * e / 20))
    np.testing.assert_allclose([course_lr(e) for e in (20, 40, 60, 80, 100)], [0, 0.1, 0, 0.1, 0], atol=1e-12)
    sched = snapshot.snapshot_schedule(0.1, steps_per_cycle=20)
    steps = snapshot.snapshot_steps(steps_per_cycle=20, num_snapshots=5)
    assert steps == [20, 40, 60, 80, 100]
    lrs_at_last_update = np.asarray(jax.vmap(sched)(jnp.array(steps) - 1))
    np.testing.assert_allclose(lrs_at_last_update, 0.05 * (1 + np.cos(np.pi * 19 / 20)), rtol=1e-4)
    assert np.all(lrs_at_last_update < 0.001)
    np.testing.assert_allclose(jax.vmap(sched)(jnp.array(steps[:-1])), 0.1, rtol=1e-6)   # restarts
    assert snapshot.is_snapshot_step(40, steps_per_cycle=20) and not snapshot.is_snapshot_step(39, steps_per_cycle=20)


def test_early_stopping():
    state = monitoring.early_stopping_init(mode="min")
    stops, improvements = [], []
    for step, loss in enumerate([1.0, 0.8, 0.81, 0.79, 0.85, 0.9, 0.95]):
        state, improved, stop = monitoring.early_stopping_update(state, loss, step=step, patience=3, min_delta=0.02)
        stops.append(stop)
        improvements.append(improved)
    assert improvements == [True, True, False, False, False, False, False]  # 0.79 is within min_delta
    assert stops == [False, False, False, False, True, True, True]
    assert state.best == 0.8 and state.best_step == 1
