"""AdaBN: BatchNorm statistics recomputed on shifted target data, with no gradient step,
recover at least half of the accuracy a colour/contrast shift takes away."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision import models
from jaxvision.data.shapes import ShapesSpec, generate
from jaxvision.train import StepOptions, create_train_state, make_train_step
from jaxvision.transfer import adapt_batch_norm

SPEC = ShapesSpec(image_size=16, num_train=2000, num_test=600)
CONTRAST, OFFSET = 0.15, np.array([0.05, 0.1, 0.0])  # stays inside [0, 1]


def shift(images_uint8):
    """A colour/contrast domain shift: low contrast and a colour cast."""
    return (images_uint8 / 255.0) * CONTRAST + OFFSET


@pytest.fixture(scope="module")
def trained():
    """small_cnn with BatchNorm, 300 Adam steps on 16-pixel shapes (5 classes)."""
    train, test = generate(SPEC, "train", 2000), generate(SPEC, "test", 600)
    model = models.create("small_cnn", num_classes=5, widths=(16, 32), hidden=64,
                          dropout_rate=0.0)
    state = jax.jit(functools.partial(create_train_state, model, optax.adam(3e-3), seed=0,
                                      input_shape=(1, 16, 16, 3)))()
    step = jax.jit(make_train_step(StepOptions(learning_rate_fn=lambda s: 3e-3)))
    rng = np.random.default_rng(0)
    for _ in range(300):
        idx = rng.choice(2000, 64, replace=False)
        state, _ = step(state, {"image": train["image"][idx], "label": train["label"][idx]})
    return model, state.variables(), test


def accuracy(model, variables, images, labels):
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, jnp.asarray(images))
    return float(np.mean(np.argmax(logits, -1) == labels))


@pytest.mark.slow  # trains a CNN: ~1 min on a loaded 2-core machine
def test_adabn_recovers_at_least_half_of_the_accuracy_lost_to_the_shift(trained):
    model, variables, test = trained
    images, labels = test["image"], test["label"]
    clean = accuracy(model, variables, images / 255.0, labels)
    shifted = accuracy(model, variables, shift(images), labels)
    # Statistics from the first 300 target images (unlabelled), judged on the other 300.
    adapted_vars = adapt_batch_norm(model, variables,
                                    [shift(images[i:i + 100]) for i in range(0, 300, 100)])
    adapted = accuracy(model, adapted_vars, shift(images[300:]), labels[300:])
    shifted_held_out = accuracy(model, variables, shift(images[300:]), labels[300:])
    print(f"clean {clean:.3f} shifted {shifted:.3f} ({shifted_held_out:.3f} held out) "
          f"AdaBN {adapted:.3f}")
    assert clean > 0.8
    assert clean - shifted_held_out > 0.2  # the shift hurts
    assert adapted - shifted_held_out >= 0.5 * (clean - shifted_held_out)
    # No parameter moved; only the statistics.
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(variables["params"]),
                                                     jax.tree.leaves(adapted_vars["params"])))


@pytest.fixture(scope="module")
def untrained():
    model = models.create("small_cnn", num_classes=5, widths=(16, 32), hidden=64,
                          dropout_rate=0.0)
    variables = jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)),
                                           train=False))()
    return model, variables, generate(SPEC, "test", 120)


def test_adabn_statistics_are_the_pooled_population_statistics(untrained):
    """The first BatchNorm's new statistics equal the mean and biased variance of its input
    over all target images, however the data is batched."""
    model, variables, test = untrained
    images = shift(test["image"][:120])
    pooled = adapt_batch_norm(model, variables, [images[:50], images[50:120]], modules=("bn0",))
    conv = jax.jit(lambda v, x: model.apply(v, x, train=False, capture_intermediates=True,
                                            mutable=["intermediates"])[1])(variables, images)
    features = np.asarray(conv["intermediates"]["conv0"]["__call__"][0], np.float64)
    np.testing.assert_allclose(pooled["batch_stats"]["bn0"]["mean"],
                               features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pooled["batch_stats"]["bn0"]["var"],
                               features.var(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    # bn1 is not in `modules`: untouched.
    assert np.array_equal(pooled["batch_stats"]["bn1"]["mean"],
                          variables["batch_stats"]["bn1"]["mean"])


def test_adabn_refuses_a_pattern_matching_no_batch_norm(untrained):
    model, variables, test = untrained
    with pytest.raises(ValueError, match="no BatchNorm module matches"):
        adapt_batch_norm(model, variables, [shift(test["image"][:8])], modules=("layer9",))
