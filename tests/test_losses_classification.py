"""Losses against worked vectors, numpy and torch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import losses


def _np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_cross_entropy_course_vectors():
    logits = jnp.array([[2.0, 1.0, 0.0]])
    np.testing.assert_allclose(losses.cross_entropy(logits, jnp.array([0])), 0.40760596, rtol=1e-6)
    np.testing.assert_allclose(losses.cross_entropy(logits, jnp.array([1])), 1.40760596, rtol=1e-6)
    np.testing.assert_allclose(losses.cross_entropy(logits, jnp.array([0]), label_smoothing=0.1),
                               0.50760596, rtol=1e-6)
    np.testing.assert_allclose(losses.cross_entropy(jnp.zeros((1, 10)), jnp.array([3])), np.log(10), rtol=1e-6)
    # A true-class probability of 0.1 costs -log(0.1); of 0.01, -log(0.01).
    probs = jnp.log(jnp.array([[0.1, 0.9], [0.01, 0.99]]))
    np.testing.assert_allclose(losses.cross_entropy(probs, jnp.array([0, 0]), reduction="none"),
                               [2.302585093, 4.605170186], rtol=1e-6)


def test_cross_entropy_one_hot_and_soft_targets_mixup_identity():
    logits = jnp.array([[2.0, 1.0, 0.0]])
    one_hot = jnp.array([[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(losses.cross_entropy(logits, one_hot), 0.40760596, rtol=1e-6)
    soft = 0.7 * jnp.array([[1.0, 0, 0]]) + 0.3 * jnp.array([[0, 1.0, 0]])
    np.testing.assert_allclose(losses.cross_entropy(logits, soft), 0.70760596, rtol=1e-6)  # mixup's soft label


def test_class_weighted_cross_entropy_course_vector_and_torch():
    logits = jnp.array([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    targets = jnp.array([0, 2])
    weights = jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(losses.cross_entropy(logits, targets, class_weights=weights),
                               1.15760596, rtol=1e-6)
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=6)
    w = rng.uniform(0.5, 2.0, size=4).astype(np.float32)
    for smoothing in (0.0, 0.2):
        ref = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y), weight=torch.tensor(w),
                                                label_smoothing=smoothing)
        ours = losses.cross_entropy(jnp.array(x), jnp.array(y), class_weights=jnp.array(w),
                                    label_smoothing=smoothing)
        np.testing.assert_allclose(ours, ref.item(), rtol=1e-5)
    soft = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    ref = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(soft), weight=torch.tensor(w))
    np.testing.assert_allclose(losses.cross_entropy(jnp.array(x), jnp.array(soft), class_weights=jnp.array(w)),
                               ref.item(), rtol=1e-5)


def test_binary_cross_entropy_numpy_reference():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3)).astype(np.float32) * 3
    t = rng.integers(0, 2, size=(5, 3)).astype(np.float32)
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    ref = -(2.0 * t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(losses.binary_cross_entropy(jnp.array(x), jnp.array(t), pos_weight=2.0,
                                                           reduction="none"), ref, rtol=1e-5)
    np.testing.assert_allclose(losses.binary_cross_entropy(jnp.array(x), jnp.array(t)),
                               (-(t * np.log(p) + (1 - t) * np.log(1 - p))).mean(), rtol=1e-5)
    # Large logits stay finite (log-sigmoid form).
    assert np.isfinite(losses.binary_cross_entropy(jnp.array([100.0, -100.0]), jnp.array([0.0, 1.0])))


def test_focal_loss_numpy_reference_and_reduces_to_ce():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    y = rng.integers(0, 5, size=7)
    alpha = rng.uniform(0.2, 1.0, size=5).astype(np.float32)
    logp = _np_log_softmax(x.astype(np.float64))[np.arange(7), y]
    ref = -alpha[y] * (1 - np.exp(logp)) ** 2.0 * logp
    np.testing.assert_allclose(losses.focal_loss(jnp.array(x), jnp.array(y), gamma=2.0, alpha=jnp.array(alpha),
                                                 reduction="none"), ref, rtol=1e-5)
    np.testing.assert_allclose(losses.focal_loss(jnp.array(x), jnp.array(y), gamma=0.0),
                               losses.cross_entropy(jnp.array(x), jnp.array(y)), rtol=1e-6)


def test_regression_losses_against_numpy_and_torch():
    np.testing.assert_allclose(losses.mse(jnp.array([1.0, 2, 3]), jnp.array([1.5, 2, 2])), 0.41666667, rtol=1e-6)
    rng = np.random.default_rng(3)
    p = rng.normal(size=(4, 6)).astype(np.float32) * 2
    t = rng.normal(size=(4, 6)).astype(np.float32)
    d = np.abs(p - t)
    np.testing.assert_allclose(losses.mae(p, t), d.mean(), rtol=1e-6)
    huber_ref = np.where(d < 0.7, 0.5 * d**2, 0.7 * (d - 0.35))
    np.testing.assert_allclose(losses.huber(p, t, delta=0.7, reduction="none"), huber_ref, rtol=1e-5)
    np.testing.assert_allclose(losses.smooth_l1(p, t, beta=0.7, reduction="none"), huber_ref / 0.7, rtol=1e-5)
    torch = pytest.importorskip("torch")
    tp, tt = torch.tensor(p), torch.tensor(t)
    np.testing.assert_allclose(losses.huber(p, t, delta=0.7), torch.nn.functional.huber_loss(tp, tt, delta=0.7).item(), rtol=1e-5)
    np.testing.assert_allclose(losses.smooth_l1(p, t, beta=0.7), torch.nn.functional.smooth_l1_loss(tp, tt, beta=0.7).item(), rtol=1e-5)


def test_penalties_course_values_and_weight_decay_factor():
    import optax

    params = {"w": jnp.array([0.5, -1.0, 2.0])}
    np.testing.assert_allclose(losses.l2_penalty(params, coefficient=1.0), 5.25)   # sum w^2
    np.testing.assert_allclose(losses.l1_penalty(params, coefficient=1.0), 3.5)    # sum |w|
    # PyTorch/optax weight decay wd adds wd*w: the gradient of (wd/2) sum w^2, not of wd sum w^2.
    wd = 0.1
    decay_grad, _ = optax.add_decayed_weights(wd).update({"w": jnp.zeros(3)}, None, params)
    penalty_grad = jax.grad(lambda p: losses.l2_penalty_for_weight_decay(p, weight_decay=wd))(params)
    np.testing.assert_allclose(penalty_grad["w"], decay_grad["w"], rtol=1e-6)
    course_grad = jax.grad(lambda p: losses.l2_penalty(p, coefficient=wd))(params)
    np.testing.assert_allclose(course_grad["w"], 2 * decay_grad["w"], rtol=1e-6)


def test_penalty_mask_skips_biases_and_scales():
    from jaxvision.optim.partition import decay_mask

    params = {"conv": {"kernel": jnp.ones((3, 3, 1, 2)), "bias": jnp.ones(2)},
              "bn": {"scale": jnp.ones(2), "bias": jnp.ones(2)}}
    assert float(losses.l2_penalty(params, coefficient=1.0, mask=decay_mask)) == 18.0
    assert float(losses.l2_penalty(params, coefficient=1.0)) == 24.0


def test_combine_losses_weights_and_logs():
    total, logs = losses.combine_losses({"ce": jnp.float32(2.0), "l2": jnp.float32(10.0)}, weights={"l2": 0.01})
    np.testing.assert_allclose(total, 2.1, rtol=1e-6)
    assert float(logs["loss/ce"]) == 2.0 and float(logs["loss/l2"]) == 10.0
    with pytest.raises(ValueError, match="unknown loss terms"):
        losses.combine_losses({"ce": 1.0}, weights={"cee": 1.0})


def test_class_weights_and_oversampling():
    np.testing.assert_allclose(losses.class_weights_from_counts([10, 20, 70]),
                               [1.82608696, 0.91304348, 0.26086957], rtol=1e-6)  # counts [10, 20, 70]
    labels = np.array([0] * 90 + [1] * 10)
    p = losses.oversampling_weights(labels, num_classes=2)
    np.testing.assert_allclose([p[labels == 0].sum(), p[labels == 1].sum()], [0.5, 0.5])
    idx = losses.oversample_indices(jax.random.key(0), jnp.array(labels), num_classes=2, num_samples=4000)
    frac_minority = float((labels[np.asarray(idx)] == 1).mean())
    assert 0.46 < frac_minority < 0.54   # 4000 draws: std of the fraction is 0.008


def test_losses_jit_and_vmap():
    logits = jax.random.normal(jax.random.key(0), (3, 4, 5))
    labels = jnp.array([[0, 1, 2, 3]] * 3)
    per_batch = jax.vmap(lambda x, y: losses.cross_entropy(x, y, label_smoothing=0.1))(logits, labels)
    jitted = jax.jit(lambda x, y: losses.focal_loss(x, y))(logits[0], labels[0])
    np.testing.assert_allclose(per_batch[0], losses.cross_entropy(logits[0], labels[0], label_smoothing=0.1), rtol=1e-6)
    assert np.isfinite(jitted)
