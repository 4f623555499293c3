"""Single optimizer steps equal their textbook formulas; factory options."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.optim import build_optimizer, decay_mask, freeze, sam_value_and_grad
from jaxvision.optim.partition import label_params


def _run(cfg, steps, w0=1.0):
    """Steps of the factory's optimizer on L(w) = w^2 from w0; returns the iterates."""
    tx = build_optimizer(cfg, total_steps=100)
    w = jnp.array(w0)
    state = tx.init(w)
    out = []
    for _ in range(steps):
        updates, state = tx.update(2.0 * w, state, w)
        w = optax.apply_updates(w, updates)
        out.append(float(w))
    return out


def test_sgd_step():
    np.testing.assert_allclose(_run({"name": "sgd", "learning_rate": 0.01}, 1), [0.98], rtol=1e-7)


def test_momentum_two_steps():
    # v <- 0.9 v + 0.01 g, w <- w - v: 0.98 then 0.9424.
    np.testing.assert_allclose(_run({"name": "momentum", "learning_rate": 0.01, "momentum": 0.9}, 2),
                               [0.98, 0.9424], rtol=1e-6)
    np.testing.assert_allclose(_run({"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}, 2),
                               [0.98, 0.9424], rtol=1e-6)


def test_adam_three_steps():
    np.testing.assert_allclose(_run({"name": "adam", "learning_rate": 1e-3}, 3),
                               [0.9990000000, 0.9980000262, 0.9970000961], rtol=0, atol=2e-7)


def test_adagrad_two_steps_course_formula():
    # G0 = 0 and eps = 1e-8 inside the root (optax's own defaults are 0.1 and 1e-7).
    np.testing.assert_allclose(_run({"name": "adagrad", "learning_rate": 0.1}, 2),
                               [0.9000000001, 0.8331035270], rtol=1e-6)


def test_rmsprop_two_steps_course_formula():
    np.testing.assert_allclose(_run({"name": "rmsprop", "learning_rate": 0.01, "decay": 0.9}, 2),
                               [0.9683772238, 0.9457880253], rtol=1e-6)


def test_sam_single_step_course_vector():
    # rho 0.05, SGD lr 0.1 on w^2 from 1: e = 0.05, g_adv = 2.1, w = 0.79 (plain SGD gives 0.8).
    w = jnp.array(1.0)
    (_, _), g, stats = sam_value_and_grad(lambda p, b: (p**2, None), w, None, rho=0.05)
    tx = build_optimizer({"name": "sgd", "learning_rate": 0.1}, total_steps=1)
    updates, _ = tx.update(g, tx.init(w), w)
    np.testing.assert_allclose(optax.apply_updates(w, updates), 0.79, rtol=1e-6)
    np.testing.assert_allclose(stats["perturbed_loss"], 1.05**2, rtol=1e-6)


def test_sam_optax_drop_in_single_step():
    w = jnp.array(1.0)
    tx = build_optimizer({"name": "sam_optax", "sam_base": "sgd", "learning_rate": 0.1, "sam_rho": 0.05},
                         total_steps=1)
    updates, _ = tx.update(2.0 * w, tx.init(w), w, grad_fn=lambda p, i: 2.0 * p)
    np.testing.assert_allclose(optax.apply_updates(w, updates), 0.79, rtol=1e-6)


def test_torch_parity_multi_step():
    torch = pytest.importorskip("torch")
    configs = [
        ({"name": "nesterov", "learning_rate": 0.05, "momentum": 0.9},
         lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
        ({"name": "rmsprop", "learning_rate": 0.01, "decay": 0.99, "eps": 1e-8, "eps_in_sqrt": False},
         lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
        ({"name": "adam", "learning_rate": 0.01, "weight_decay": 0.1, "decay_mask": "all"},
         lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),   # coupled L2
        ({"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.1, "decay_mask": "all"},
         lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),  # decoupled
        ({"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "weight_decay": 0.01, "decay_mask": "all"},
         lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01)),
    ]
    target = np.array([0.3, -1.0, 2.0], np.float32)
    for cfg, make in configs:
        w_t = torch.tensor([1.0, 2.0, -1.5], requires_grad=True)
        opt = make([w_t])
        tx = build_optimizer(cfg, total_steps=10)
        w = jnp.array([1.0, 2.0, -1.5])
        state = tx.init(w)
        for _ in range(5):
            opt.zero_grad()
            (torch.cos(w_t) + (w_t - torch.tensor(target)) ** 2).sum().backward()
            opt.step()
            g = jax.grad(lambda p: jnp.sum(jnp.cos(p) + (p - target) ** 2))(w)
            updates, state = tx.update(g, state, w)
            w = optax.apply_updates(w, updates)
        np.testing.assert_allclose(w, w_t.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=cfg["name"])


def test_coupled_vs_decoupled_adam_differ_and_adamw_matches_optax():
    params = {"w": jnp.array([[1.0, 3.0]])}
    grads = {"w": jnp.array([[0.5, -0.5]])}
    adamw = build_optimizer({"name": "adamw", "learning_rate": 0.1, "weight_decay": 0.5}, total_steps=1)
    ref = optax.adamw(0.1, weight_decay=0.5)
    u1, _ = adamw.update(grads, adamw.init(params), params)
    u2, _ = ref.update(grads, ref.init(params), params)
    np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-6)
    coupled = build_optimizer({"name": "adam", "learning_rate": 0.1, "weight_decay": 0.5}, total_steps=1)
    u3, _ = coupled.update(grads, coupled.init(params), params)
    assert not np.allclose(u1["w"], u3["w"])


def test_decay_mask_excludes_biases_and_norm_scales():
    params = {"conv": {"kernel": jnp.ones((3, 3, 1, 2)), "bias": jnp.ones(2)},
              "bn": {"scale": jnp.ones(2), "bias": jnp.ones(2)}, "head": {"kernel": jnp.ones((2, 3))}}
    mask = decay_mask(params)
    assert mask == {"conv": {"kernel": True, "bias": False}, "bn": {"scale": False, "bias": False},
                    "head": {"kernel": True}}
    tx = build_optimizer({"name": "sgd", "learning_rate": 1.0, "weight_decay": 0.1}, total_steps=1)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    np.testing.assert_allclose(updates["conv"]["kernel"], -0.1)
    np.testing.assert_allclose(updates["bn"]["scale"], 0.0)
    np.testing.assert_allclose(updates["conv"]["bias"], 0.0)


def test_freeze_and_discriminative_lr():
    params = {"backbone": {"kernel": jnp.ones((2, 2))}, "head": {"kernel": jnp.ones((2, 2))}}
    grads = jax.tree.map(jnp.ones_like, params)
    tx = build_optimizer({"name": "sgd", "learning_rate": 0.01, "lr_multipliers": {"backbone": 0.1}},
                         total_steps=1)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["backbone"]["kernel"], -0.001, rtol=1e-6)
    np.testing.assert_allclose(updates["head"]["kernel"], -0.01, rtol=1e-6)
    frozen = freeze(optax.adam(0.1), frozen=["^backbone/"])
    updates, _ = frozen.update(grads, frozen.init(params), params)
    np.testing.assert_allclose(updates["backbone"]["kernel"], 0.0)
    assert np.all(np.asarray(updates["head"]["kernel"]) < 0)
    assert label_params(params, [("head", "h")], default="b") == {"backbone": {"kernel": "b"}, "head": {"kernel": "h"}}


def test_factory_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="'adamx'"):
        build_optimizer({"name": "adamx", "learning_rate": 0.1}, total_steps=10)
    with pytest.raises(ValueError, match="weight_decay_mode"):
        build_optimizer({"name": "adam", "learning_rate": 0.1, "weight_decay": 0.1,
                         "weight_decay_mode": "both"}, total_steps=10)
    with pytest.raises(ValueError, match="'cosinus'"):
        build_optimizer({"name": "sgd", "learning_rate": 0.1, "schedule": "cosinus"}, total_steps=10)
