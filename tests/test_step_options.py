"""Config switches of the step body: gradient accumulation, bfloat16 compute, SAM."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision import models
from jaxvision.optim.sam import sam_value_and_grad
from jaxvision.losses import cross_entropy
from jaxvision.train import StepOptions, create_train_state, make_parallel, make_train_step

LR = 0.05


def _batches(num_steps, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    return [{"image": rng.integers(0, 256, (batch_size, 8, 8, 1), dtype=np.uint8),
             "label": rng.integers(0, 10, (batch_size,), dtype=np.int32)}
            for _ in range(num_steps)]


def _run(model, batches, *, mode="none", tx=None, **options):
    parallel = make_parallel(mode)
    state = create_train_state(model, tx or optax.sgd(LR, momentum=0.9), seed=0,
                               input_shape=(1, 8, 8, 1))
    state = parallel.place_state(state)
    step = parallel.compile_train_step(make_train_step(StepOptions(
        learning_rate_fn=lambda s: LR, axis_name=parallel.axis_name, **options)))
    history = []
    for batch in batches:
        state, metrics = step(state, parallel.place_batch(batch))
        history.append(jax.device_get(metrics))
    return jax.device_get(state), history


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_gradient_accumulation_of_4x64_equals_one_batch_of_256():
    model = models.create("small_cnn", num_classes=10, norm=None, dropout_rate=0.0)
    batches = _batches(2, 256)
    whole, whole_metrics = _run(model, batches)
    accumulated, accum_metrics = _run(model, batches, grad_accum_steps=4)
    assert _max_diff(whole.params, accumulated.params) < 1e-6
    np.testing.assert_allclose(accum_metrics[-1]["loss"], whole_metrics[-1]["loss"], rtol=1e-6)


def test_bfloat16_compute_tracks_float32_loss():
    batches = _batches(30, 64, seed=1)
    for batch in batches:  # a learnable signal: the label is the brightest row
        batch["image"][np.arange(64), batch["label"] % 8, :, 0] = 255
    losses = {}
    for dtype in (jnp.float32, jnp.bfloat16):
        model = models.create("small_cnn", num_classes=10, dtype=dtype)
        state, history = _run(model, batches, tx=optax.adam(3e-3), compute_dtype=dtype)
        losses[dtype] = np.array([m["loss"] for m in history])
        leaf = state.params["conv0"]["kernel"]
        assert leaf.dtype == jnp.float32  # params stay float32
    # Compare the loss as the loop logs it: the mean over windows of steps (5 here).
    f32, bf16 = (losses[d].reshape(-1, 5).mean(axis=1) for d in (jnp.float32, jnp.bfloat16))
    assert f32[-1] < 0.5 * f32[0]  # it learns, so the comparison covers a real trajectory
    np.testing.assert_allclose(bf16, f32, rtol=0.02)


def _sam_model():
    return models.create("small_cnn", num_classes=10, norm=None, dropout_rate=0.0,
                         widths=(8,), hidden=16)


def test_sam_global_view_matches_single_device():
    batches = _batches(2, 32)
    single, metrics = _run(_sam_model(), batches, sam_rho=0.05)
    sharded, _ = _run(_sam_model(), batches, mode="jit", sam_rho=0.05)
    assert _max_diff(single.params, sharded.params) < 1e-5
    assert metrics[-1]["sam_perturbation_norm"] == pytest.approx(0.05, rel=1e-3)
    assert metrics[-1]["sam_loss_gap"] > 0


def test_sam_under_pmap_perturbs_per_device():
    """Under pmap each device perturbs with its own 4-example gradient and the SAM gradients
    are averaged: the m-sharpness of the SAM paper with m = per-device batch."""
    model = _sam_model()
    (batch,) = _batches(1, 32)
    per_device, _ = _run(model, [batch], mode="pmap", sam_rho=0.05)
    global_view, _ = _run(model, [batch], mode="jit", sam_rho=0.05)

    state = create_train_state(model, optax.sgd(LR, momentum=0.9), seed=0, input_shape=(1, 8, 8, 1))

    def loss_fn(params, shard):
        logits = model.apply({"params": params}, shard["image"].astype(jnp.float32) / 255, train=True)
        return cross_entropy(logits, shard["label"]), None

    shard_grads = [sam_value_and_grad(loss_fn, state.params,
                                      {k: v[i * 4:(i + 1) * 4] for k, v in batch.items()},
                                      rho=0.05)[1] for i in range(8)]
    mean_grads = jax.tree.map(lambda *g: sum(g) / 8, *shard_grads)
    updates, _ = state.tx.update(mean_grads, state.opt_state, state.params)
    expected = optax.apply_updates(state.params, updates)
    assert _max_diff(per_device.params, expected) < 1e-5
    assert _max_diff(per_device.params, global_view.params) > 1e-5


def test_sam_updates_batchnorm_statistics_once_from_the_clean_pass():
    model = models.create("small_cnn", num_classes=10, dropout_rate=0.0, widths=(8,), hidden=16)
    batches = _batches(1, 32)
    plain, _ = _run(model, batches)
    sam, _ = _run(model, batches, sam_rho=0.05)
    # Same clean forward pass, so the same running statistics; the params differ.
    assert _max_diff(plain.batch_stats, sam.batch_stats) == 0.0
    assert _max_diff(plain.params, sam.params) > 0.0
