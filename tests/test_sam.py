"""SAM: analytic update on a quadratic, BatchNorm statistics from the clean pass only,
epsilon safety, m-sharpness groups against a manual loop and against per-device pmap."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.models import create
from jaxvision.optim import optax_sam, sam_value_and_grad


def test_quadratic_matches_analytic_sam_update():
    a = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
    b = np.array([1.0, -2.0, 0.5])
    w = np.array([0.3, 0.7, -1.2])
    rho, lr = 0.1, 0.05

    def loss_fn(params, batch):
        del batch
        return 0.5 * params @ jnp.asarray(a) @ params - jnp.asarray(b) @ params, {"unused": 0}

    (loss, _), grads, stats = sam_value_and_grad(loss_fn, jnp.asarray(w), None, rho=rho)
    g = a @ w - b
    e = rho * g / np.linalg.norm(g)
    g_sam = a @ (w + e) - b
    np.testing.assert_allclose(grads, g_sam, rtol=1e-5)
    tx = optax.sgd(lr)
    updates, _ = tx.update(grads, tx.init(jnp.asarray(w)), jnp.asarray(w))
    np.testing.assert_allclose(optax.apply_updates(jnp.asarray(w), updates), w - lr * g_sam, rtol=1e-5)
    np.testing.assert_allclose(stats["grad_norm"], np.linalg.norm(g), rtol=1e-5)
    np.testing.assert_allclose(stats["perturbation_norm"], rho, rtol=1e-5)
    clean = 0.5 * w @ a @ w - b @ w
    perturbed = 0.5 * (w + e) @ a @ (w + e) - b @ (w + e)
    np.testing.assert_allclose(loss, clean, rtol=1e-5)
    np.testing.assert_allclose(stats["loss_gap"], perturbed - clean, rtol=1e-4)


def test_zero_gradient_is_safe():
    (_, _), grads, stats = sam_value_and_grad(lambda p, b: (jnp.sum(p**2), None), jnp.zeros(3), None, rho=0.05)
    assert np.all(np.isfinite(grads)) and np.all(np.asarray(grads) == 0)
    assert float(stats["perturbation_norm"]) == 0.0


def _bn_setup():
    # XLA's convolution: the test compares a jitted pass with an eager one to 1e-6.
    model = create("small_cnn", num_classes=3, widths=(4,), hidden=8, dropout_rate=0.0, conv="xla")
    x = jax.random.normal(jax.random.key(1), (8, 6, 6, 2))
    y = jnp.arange(8) % 3
    variables = model.init(jax.random.key(0), x, train=False)

    def loss_fn(params, batch):
        logits, new_state = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                        batch["x"], train=True, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
        return loss, new_state["batch_stats"]

    return variables, loss_fn, {"x": x, "y": y}


@pytest.mark.parametrize("group_size", [None, 4])
def test_batchnorm_statistics_come_from_the_clean_pass_once(group_size):
    variables, loss_fn, batch = _bn_setup()
    params = variables["params"]
    (loss, stats_out), grads, sam_stats = jax.jit(
        lambda p: sam_value_and_grad(loss_fn, p, batch, rho=0.5, group_size=group_size))(params)
    clean_loss, clean_stats = loss_fn(params, batch)
    g = jax.grad(lambda p: loss_fn(p, batch)[0])(params)
    norm = optax.tree.norm(g)
    perturbed = jax.tree.map(lambda p, d: p + 0.5 * d / norm, params, g)
    _, perturbed_stats = loss_fn(perturbed, batch)
    # One update of the running averages, at the clean parameters, on the full batch:
    # mean <- 0.9 * old + 0.1 * batch_mean (small_cnn's momentum 0.9).
    conv_out = jax.lax.conv_general_dilated(batch["x"], params["conv0"]["kernel"], (1, 1), ((1, 1), (1, 1)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    expected_mean = 0.9 * variables["batch_stats"]["bn0"]["mean"] + 0.1 * conv_out.mean((0, 1, 2))
    np.testing.assert_allclose(stats_out["bn0"]["mean"], expected_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats_out["bn0"]["mean"], clean_stats["bn0"]["mean"], rtol=1e-6)
    assert not np.allclose(stats_out["bn0"]["mean"], perturbed_stats["bn0"]["mean"], rtol=1e-3)
    np.testing.assert_allclose(loss, clean_loss, rtol=1e-6)
    assert float(sam_stats["loss_gap"]) > 0


def _linear_problem():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(8,)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3,)), jnp.float32)

    def loss_fn(params, batch):
        pred = jnp.tanh(batch["x"] @ params)
        return jnp.mean((pred - batch["y"]) ** 2), {"pred": pred}

    return w, {"x": x, "y": y}, loss_fn


def test_group_size_matches_manual_loop():
    w, batch, loss_fn = _linear_problem()
    rho, m = 0.2, 2
    (_, aux), grads, stats = sam_value_and_grad(loss_fn, w, batch, rho=rho, group_size=m)
    manual = []
    for start in range(0, 8, m):
        group = {k: v[start:start + m] for k, v in batch.items()}
        g = jax.grad(lambda p: loss_fn(p, group)[0])(w)
        e = rho * g / jnp.linalg.norm(g)
        manual.append(jax.grad(lambda p: loss_fn(p, group)[0])(w + e))
    np.testing.assert_allclose(grads, np.mean(manual, 0), rtol=1e-5)
    assert aux["pred"].shape == (8,)   # aux from the clean full-batch pass
    (_, _), grads_one, _ = sam_value_and_grad(loss_fn, w, batch, rho=rho, group_size=8)
    (_, _), grads_none, _ = sam_value_and_grad(loss_fn, w, batch, rho=rho)
    np.testing.assert_allclose(grads_one, grads_none, rtol=1e-5)
    assert not np.allclose(grads, grads_none, rtol=1e-3)
    with pytest.raises(ValueError, match="divide the batch size 8"):
        sam_value_and_grad(loss_fn, w, batch, rho=rho, group_size=3)


def test_per_device_pmap_equals_group_size():
    w, batch, loss_fn = _linear_problem()
    assert jax.device_count() >= 4, "tests/conftest.py sets 8 virtual CPU devices"
    n = 4
    sharded = jax.tree.map(lambda v: v.reshape((n, 8 // n) + v.shape[1:]), batch)

    def step(batch_shard):
        (_, _), g, _ = sam_value_and_grad(loss_fn, w, batch_shard, rho=0.2)
        return jax.lax.pmean(g, "data")

    pmapped = jax.pmap(step, axis_name="data", devices=jax.devices()[:n])(sharded)[0]
    (_, _), grouped, _ = sam_value_and_grad(loss_fn, w, batch, rho=0.2, group_size=8 // n)
    np.testing.assert_allclose(pmapped, grouped, rtol=1e-5)


def test_optax_sam_opaque_equals_ours():
    w, batch, loss_fn = _linear_problem()
    base = optax.sgd(0.1, momentum=0.9)
    tx = optax_sam(base, rho=0.2)
    grad = jax.grad(lambda p: loss_fn(p, batch)[0])
    updates, _ = tx.update(grad(w), tx.init(w), w, grad_fn=lambda p, i: grad(p))
    (_, _), sam_grads, _ = sam_value_and_grad(loss_fn, w, batch, rho=0.2)
    ref, _ = base.update(sam_grads, base.init(w), w)
    np.testing.assert_allclose(updates, ref, rtol=1e-5)
