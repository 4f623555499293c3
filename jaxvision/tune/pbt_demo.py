"""PBT against random search at an equal budget, on a problem cheap enough to repeat.

The problem: a 64-64-10 MLP on scikit-learn's 8x8 digits (bundled with scikit-learn, no
download), 1,000 training, 400 validation and 397 test images, trained by SGD with momentum 0.9
and minibatches of 32. Searched: ``lr`` log-uniform in [1e-4, 1] and ``weight_decay``
log-uniform in [1e-6, 1e-1]. Both methods spend ``members * rounds * steps_per_round`` SGD
steps: random search trains ``members`` draws for ``rounds * steps_per_round`` steps each; PBT
trains a population of ``members`` and exploits/explores after every round. Each picks its
best model on the validation set; the figure is that model's test accuracy.

Both start from the same draws and initialisations (same seed), so a seed where PBT never
replaced its best member gives the same model twice. Measured (CPU, 10 members x 10 rounds x
30 steps = 3,000 steps per method): over seeds 0-4, mean test accuracy PBT 0.9718, random
search 0.9673 (PBT ahead on 4, tied on 1); over seeds 0-19, PBT 0.9707 (sd 0.0062), random
0.9665 (sd 0.0054), PBT ahead on 14, tied on 2, behind on 4. A small but consistent edge on
397 test images (0.4 points is under 2 images); PBT's best members end with learning rates
near 0.1, reached by repeated 0.8/1.2 steps from the draws that survived.

    python -m jaxvision.tune.pbt_demo      # prints the per-seed table and the means
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.tune.pbt import population_based_training
from jaxvision.tune.space import LogUniform

SPACE = {"lr": LogUniform(1e-4, 1.0), "weight_decay": LogUniform(1e-6, 1e-1)}
BATCH = 32


@functools.cache
def digits():
    """(x_train, y_train, x_val, y_val, x_test, y_test), a fixed shuffle."""
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    x = (data.data[order] / 16.0).astype(np.float32)
    y = data.target[order].astype(np.int32)
    return x[:1000], y[:1000], x[1000:1400], y[1000:1400], x[1400:], y[1400:]


def init(hparams, seed: int):
    del hparams
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = {"w1": jax.random.normal(k1, (64, 64)) * np.sqrt(2 / 64), "b1": jnp.zeros(64),
              "w2": jax.random.normal(k2, (64, 10)) * np.sqrt(1 / 64), "b2": jnp.zeros(10)}
    return {"params": params, "velocity": jax.tree.map(jnp.zeros_like, params),
            "step": jnp.zeros((), jnp.int32), "seed": jnp.asarray(seed, jnp.int32)}


def _logits(params, x):
    return jax.nn.relu(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def _loss(params, x, y):
    logp = jax.nn.log_softmax(_logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


@jax.jit
def _train(state, lr, weight_decay, steps):  # steps traced: one compile for every length
    x_train, y_train = (jnp.asarray(a) for a in digits()[:2])

    def one(_, state):
        key = jax.random.fold_in(jax.random.key(state["seed"]), state["step"])
        idx = jax.random.randint(key, (BATCH,), 0, x_train.shape[0])
        grads = jax.grad(_loss)(state["params"], x_train[idx], y_train[idx])
        grads = jax.tree.map(lambda g, p: g + weight_decay * p, grads, state["params"])
        velocity = jax.tree.map(lambda v, g: 0.9 * v + g, state["velocity"], grads)
        params = jax.tree.map(lambda p, v: p - lr * v, state["params"], velocity)
        return {**state, "params": params, "velocity": velocity, "step": state["step"] + 1}

    return jax.lax.fori_loop(0, steps, one, state)


def train(state, hparams, steps: int):
    return _train(state, jnp.float32(hparams["lr"]), jnp.float32(hparams["weight_decay"]),
                  jnp.int32(steps))


@jax.jit
def _accuracy(params, x, y):
    ok = jnp.argmax(_logits(params, x), -1) == y
    return jnp.where(jnp.all(jnp.isfinite(_logits(params, x))), jnp.mean(ok), 0.0)


def val_accuracy(state) -> float:
    return float(_accuracy(state["params"], *digits()[2:4]))


def test_accuracy(state) -> float:
    return float(_accuracy(state["params"], *digits()[4:6]))


def random_search(*, members: int, rounds: int, steps_per_round: int, seed: int):
    """``members`` random draws, each trained for the whole per-member budget; the best on
    validation -> (its test accuracy, its hparams)."""
    rng = np.random.default_rng(seed)
    best = None
    for i in range(members):
        hparams = {name: dim.sample(rng) for name, dim in SPACE.items()}
        state = train(init(hparams, seed * 100_003 + i), hparams, rounds * steps_per_round)
        score = val_accuracy(state)
        if best is None or score > best[0]:
            best = (score, test_accuracy(state), hparams)
    return best[1], best[2]


def compare(seeds=(0, 1, 2, 3, 4), *, members: int = 10, rounds: int = 10,
            steps_per_round: int = 30) -> list[dict]:
    """One row per seed: test accuracy of PBT's and random search's picks, equal budgets."""
    rows = []
    for seed in seeds:
        pbt = population_based_training(init, train, val_accuracy, SPACE,
                                        population_size=members, rounds=rounds,
                                        steps_per_round=steps_per_round, seed=seed)
        random_test, random_hparams = random_search(members=members, rounds=rounds,
                                                    steps_per_round=steps_per_round, seed=seed)
        rows.append(dict(seed=seed, pbt=test_accuracy(pbt.best.state), random=random_test,
                         pbt_lr=pbt.best.hparams["lr"], random_lr=random_hparams["lr"],
                         steps=pbt.steps_trained))
    return rows


if __name__ == "__main__":
    table = compare()
    print("| seed | PBT test acc | random test acc | PBT best lr | random best lr | steps (each) |")
    print("|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['seed']} | {r['pbt']:.4f} | {r['random']:.4f} | {r['pbt_lr']:.3g} | "
              f"{r['random_lr']:.3g} | {r['steps']} |")
    print(f"mean PBT {np.mean([r['pbt'] for r in table]):.4f}, "
          f"random {np.mean([r['random'] for r in table]):.4f}")
