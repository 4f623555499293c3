"""parallel='jit' and 'pmap' on 8 virtual CPU devices against a single-device run."""

import jax
import numpy as np
import optax
import pytest

from jaxvision import models
from jaxvision.nn.layers import sync_batch_norm
from jaxvision.train import StepOptions, create_train_state, make_parallel, make_train_step

NUM_STEPS = 4
LR = 0.1


def _batches(num_steps=NUM_STEPS, batch_size=32):
    rng = np.random.default_rng(0)
    return [{"image": rng.integers(0, 256, (batch_size, 8, 8, 1), dtype=np.uint8),
             "label": rng.integers(0, 10, (batch_size,), dtype=np.int32)}
            for _ in range(num_steps)]


def _train(mode, *, batch_norm, bn_sync=True, batches=None):
    parallel = make_parallel(mode)
    model = models.create("small_cnn", num_classes=10, norm="batch_norm" if batch_norm else None,
                          dropout_rate=0.0)
    if mode == "pmap" and batch_norm and bn_sync:
        model = model.clone(norm=sync_batch_norm(model.norm, "data"))
    state = parallel.place_state(create_train_state(model, optax.sgd(LR, momentum=0.9), seed=0,
                                                    input_shape=(1, 8, 8, 1)))
    options = StepOptions(learning_rate_fn=lambda step: LR, axis_name=parallel.axis_name,
                          batch_stats_synced=bn_sync)
    step = parallel.compile_train_step(make_train_step(options))
    losses = []
    for batch in batches or _batches():
        state, metrics = step(state, parallel.place_batch(batch))
        losses.append(float(metrics["loss"]))
    return jax.device_get(state), losses


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def single_device():
    return {bn: _train("none", batch_norm=bn) for bn in (False, True)}


def test_eight_devices_are_visible():
    assert jax.device_count() == 8
    assert make_parallel("jit").num_devices == 8
    assert make_parallel("none").num_devices == 1


@pytest.mark.parametrize("mode", ["jit", "pmap"])
def test_matches_single_device_without_batchnorm(single_device, mode):
    reference, ref_losses = single_device[False]
    state, losses = _train(mode, batch_norm=False)
    assert ref_losses[-1] < ref_losses[0]  # it trains: the comparison is not of idle params
    assert _max_diff(state.params, reference.params) < 1e-5
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)


@pytest.mark.parametrize("mode", ["jit", "pmap"])
def test_matches_single_device_with_synced_batchnorm(single_device, mode):
    reference, _ = single_device[True]
    state, _ = _train(mode, batch_norm=True)
    assert _max_diff(state.params, reference.params) < 1e-5
    assert _max_diff(state.batch_stats, reference.batch_stats) < 1e-5


def test_per_device_batchnorm_semantics(single_device):
    """Per-device BN normalises each device's 4 examples on their own; the running statistics
    are then averaged over devices. After one step the first layer's running mean equals the
    global one (the mean of equal-sized shards' means), while its running variance is smaller
    (the mean of within-shard variances leaves out the between-shard part)."""
    one_step = _batches(num_steps=1)
    synced, _ = _train("none", batch_norm=True, batches=one_step)
    per_device, _ = _train("pmap", batch_norm=True, bn_sync=False, batches=one_step)
    ref, ours = synced.batch_stats["bn0"], per_device.batch_stats["bn0"]
    np.testing.assert_allclose(ours["mean"], ref["mean"], atol=1e-5)
    assert np.all(ours["var"] < ref["var"])
    # and it changes training, which is why 'sync' is the default
    trained, _ = _train("pmap", batch_norm=True, bn_sync=False)
    assert _max_diff(trained.params, single_device[True][0].params) > 1e-3
