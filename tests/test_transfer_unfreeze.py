"""Gradual unfreezing: a stage that joins starts with fresh optimizer moments (its own Adam
count included), the stages already training keep theirs, and the run's schedule goes on."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from helpers import digits_config

from jaxvision import models
from jaxvision.optim import build_schedule
from jaxvision.train import default_config, train_and_evaluate
from jaxvision.xla_options import compile_once
from jaxvision.transfer import engine
from jaxvision.transfer.strategy import build_optimizer

INPUT = (1, 8, 8, 1)
LR = 1e-2


def _flat(tree):
    return traverse_util.flatten_dict(tree, sep="/")


def _group(path):
    top = path.split("/")[0]
    return {"conv0": "stage0", "bn0": "stage0", "conv1": "stage1", "bn1": "stage1"}.get(top, "head")


@pytest.fixture(scope="module")
def run():
    """small_cnn (stages stage0, stage1, then fc+head), Adam on a cosine schedule, a stage
    every 2 steps: head from step 0, stage1 from step 2, stage0 from step 4; 3 steps."""
    model = models.create("small_cnn", num_classes=10)
    params = model.init(jax.random.key(0), jnp.zeros(INPUT), train=False)["params"]
    config = default_config()
    config.model = "small_cnn"
    config.transfer.strategy = "gradual"
    config.optimizer.update(name="adam", learning_rate=LR, schedule="cosine", weight_decay=0.0)
    plan = engine.plan(config, model, INPUT, steps_per_epoch=2)
    assert plan.start_steps == {"head": 0, "stage1": 2, "stage0": 4}
    tx = build_optimizer(config, plan, total_steps=10)
    rng = np.random.default_rng(0)
    grads = [jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32), params)
             for _ in range(3)]
    state, updates, update = tx.init(params), [], jax.jit(tx.update)
    for g in grads:
        u, state = update(g, state, params)
        updates.append(_flat(u))
    return config, params, grads, state, updates


def _inner(state, label):
    """The Adam state (``ScaleByAdamState``) of one stage's optimizer."""
    staged = state[0]  # chain(multi_transform, global schedule)
    return staged.inner_states[label].inner_state["inner"][0]


@pytest.mark.slow
def test_a_stage_waits_with_zero_updates_and_untouched_state(run):
    _, params, _, state, updates = run
    for u in updates:
        assert all(not np.any(u[p]) for p in u if _group(p) == "stage0")
    adam = _inner(state, "stage0")
    assert int(adam.count) == 0
    assert all(not np.any(leaf) for leaf in jax.tree.leaves((adam.mu, adam.nu)))


def test_the_unfrozen_stage_starts_with_fresh_moments_and_the_head_keeps_its_own(run):
    config, params, grads, state, updates = run
    g = [_flat(x) for x in grads]
    b1, b2 = 0.9, 0.999
    stage1, head = _inner(state, "stage1"), _inner(state, "head")
    assert int(stage1.count) == 1 and int(head.count) == 3
    mu1, nu1 = _flat(stage1.mu), _flat(stage1.nu)
    mu_head = _flat(head.mu)
    for path in g[2]:
        if _group(path) == "stage1":  # fresh at step 2: one Adam step on the last gradient
            np.testing.assert_allclose(mu1[path], (1 - b1) * g[2][path], rtol=1e-6)
            np.testing.assert_allclose(nu1[path], (1 - b2) * g[2][path] ** 2, rtol=1e-6)
        elif _group(path) == "head":  # three steps of moments
            expected = (1 - b1) * (b1 ** 2 * g[0][path] + b1 * g[1][path] + g[2][path])
            np.testing.assert_allclose(mu_head[path], expected, rtol=1e-5, atol=1e-7)
    # The first update of stage1 is a fresh Adam step at the run's LR of step 2, not step 0.
    lr = build_schedule(config.optimizer, 10)
    fresh_tx = optax.adam(float(lr(2)))
    fresh = {p: g[2][p] for p in g[2] if _group(p) == "stage1"}
    expected, _ = fresh_tx.update(fresh, fresh_tx.init(fresh))
    for path, value in expected.items():
        np.testing.assert_allclose(updates[2][path], value, rtol=1e-5, atol=1e-8)
        assert not np.any(updates[1][path])


@pytest.mark.slow  # two epochs through the engine: ~1 min on a loaded 2-core machine
def test_gradual_unfreezing_through_the_engine(tfds_dir, tmp_path):
    """digits, one stage more per epoch: after epoch 1 only the head group has moved, after
    epoch 2 stage1 too, never stage0 (its turn would be epoch 3)."""
    config = digits_config(tfds_dir, model="small_cnn", num_epochs=2, batch_size=128,
                           **{"transfer.strategy": "gradual", "optimizer.weight_decay": 0.1})
    seen = []
    train_and_evaluate(config, str(tmp_path),
                       callbacks=[lambda step, state, _: seen.append(jax.device_get(
                           _flat(state.params)))])
    model = models.create("small_cnn", num_classes=10)
    # Compiled as the engine compiles its initialisation, so that the values match bit for bit.
    key = jax.random.split(jax.random.key(0))[0]
    init = compile_once(jax.jit(lambda: model.init({"params": key, "dropout": key},
                                                   jnp.zeros(INPUT), train=False)))()
    start = _flat(init["params"])
    moved = [{p for p in start if not np.array_equal(start[p], params[p])} for params in seen]
    assert {_group(p) for p in moved[0]} == {"head"}
    assert {_group(p) for p in moved[1]} == {"head", "stage1"}
