"""Gradient clipping by global norm, as the engine builds it from ``config.grad_clip_norm``
(and the factory from ``optimizer.grad_clip_norm``): against optax and a hand-computed case."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.optim import build_optimizer
from jaxvision.train.config import default_config
from jaxvision.train.loop import _build_tx

# Global norm sqrt(3^2 + 4^2 + 12^2) = 13.
GRADS = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([12.0])}
PARAMS = {"a": jnp.zeros(2), "b": jnp.zeros(1)}


def _engine_tx(clip):
    config = default_config()
    config.optimizer.update(name="sgd", learning_rate=1.0, schedule="constant", momentum=0.0,
                            weight_decay=0.0)
    config.grad_clip_norm = clip
    return _build_tx(config, total_steps=10)


@pytest.mark.parametrize("build", [
    _engine_tx,
    lambda clip: build_optimizer(dict(name="sgd", learning_rate=1.0, grad_clip_norm=clip), 10),
])
def test_clip_by_global_norm_hand_computed_and_optax(build):
    tx = build(6.5)  # half the norm: every gradient is halved
    updates, _ = tx.update(GRADS, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["a"], [-1.5, -2.0], rtol=1e-6)  # SGD lr 1: -g_clipped
    np.testing.assert_allclose(updates["b"], [-6.0], rtol=1e-6)
    np.testing.assert_allclose(optax.tree.norm(updates), 6.5, rtol=1e-6)
    reference = optax.clip_by_global_norm(6.5)
    clipped, _ = reference.update(GRADS, reference.init(PARAMS))
    for key in GRADS:
        np.testing.assert_allclose(-updates[key], clipped[key], rtol=1e-6)
    loose = build(13.5)  # above the norm: untouched
    updates, _ = loose.update(GRADS, loose.init(PARAMS), PARAMS)
    for key in GRADS:
        np.testing.assert_allclose(-updates[key], GRADS[key], rtol=1e-6)


def test_clip_zero_is_off():
    tx = _engine_tx(0.0)
    big = {"a": jnp.array([300.0, 400.0]), "b": jnp.array([1200.0])}
    updates, _ = tx.update(big, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(-updates["a"], big["a"])
