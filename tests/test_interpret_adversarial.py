"""Adversarial examples (jaxvision.interpret.adversarial) and adversarial training
(config.adversarial): exact FGSM on a linear model, PGD's constraints, attacks on a CNN the
engine trained, and the engine switch."""

import dataclasses
import functools

import jax
import numpy as np
import optax
import pytest

from helpers import digits_config
from jaxvision import augment, models, train
from jaxvision.data.builders.digits import digits_arrays
from jaxvision.interpret.adversarial import cross_entropy, fgsm, pgd, robust_accuracy
from jaxvision.tasks import ClassificationTask
from jaxvision.train import StepOptions, create_train_state, make_train_step
from jaxvision.train.step import Adversarial

rng = np.random.default_rng(0)
W = rng.normal(size=(48, 5)).astype(np.float32)
B = rng.normal(size=5).astype(np.float32)
X = rng.uniform(size=(6, 4, 4, 3)).astype(np.float32)
Y = np.array([0, 1, 2, 3, 4, 0])


def linear(x):
    return x.reshape(len(x), -1) @ W + B


def _input_grad_of_cross_entropy(x, y):
    """d CE / d x of the linear model, by hand: W (softmax(logits) - onehot(y))."""
    logits = linear(x).astype(np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return ((p - np.eye(5)[y]) @ W.T).reshape(x.shape)


def test_fgsm_is_x_plus_epsilon_times_the_sign_of_the_input_gradient():
    sign = np.sign(_input_grad_of_cross_entropy(X, Y)).astype(np.float32)
    np.testing.assert_array_equal(fgsm(linear, X, Y, 0.1, clip=None), X + 0.1 * sign)
    clipped = np.clip(X + np.float32(0.3) * sign, 0, 1)
    assert ((clipped == 0) | (clipped == 1)).any()  # the clip is exercised
    np.testing.assert_array_equal(jax.jit(fgsm, static_argnums=0)(linear, X, Y, 0.3), clipped)
    # y=None attacks the model's own clean prediction; an int attacks one class for all.
    predicted = np.argmax(linear(X), -1)
    np.testing.assert_array_equal(fgsm(linear, X, None, 0.1), fgsm(linear, X, predicted, 0.1))
    np.testing.assert_array_equal(fgsm(linear, X, 2, 0.1), fgsm(linear, X, np.full(6, 2), 0.1))


def test_one_pgd_step_of_epsilon_from_the_centre_is_fgsm():
    one_step = pgd(linear, X, Y, 0.1, num_steps=1, step_size=0.1, random_start=False)
    np.testing.assert_allclose(one_step, fgsm(linear, X, Y, 0.1), atol=1e-7, rtol=0)


@pytest.mark.parametrize("norm, epsilon", [("linf", 0.05), ("l2", 0.5)])
def test_pgd_stays_in_the_epsilon_ball_and_in_0_1_and_raises_the_loss(norm, epsilon):
    attack = jax.jit(functools.partial(pgd, linear, norm=norm, num_steps=5),
                     static_argnames="random_start")
    x_adv = np.asarray(attack(X, Y, epsilon, key=jax.random.key(1)))
    delta = (x_adv - X).reshape(len(X), -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)
    assert (size <= epsilon * (1 + 1e-5)).all() and (size >= 0.5 * epsilon).all(), size
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (cross_entropy(linear(x_adv), Y) > cross_entropy(linear(X), Y)).all()
    # epsilon 0 is the identity, random start included (no 0/0 in the L2 projection).
    np.testing.assert_array_equal(attack(X, Y, 0.0, key=jax.random.key(1)), X)


@pytest.mark.parametrize("call, message", [
    (lambda: fgsm(linear, X, Y, -0.1), "epsilon must be >= 0"),
    (lambda: pgd(linear, X, Y, 0.1, norm="l1", key=jax.random.key(0)), "norm must be one of"),
    (lambda: pgd(linear, X, Y, 0.1, num_steps=0, key=jax.random.key(0)), "num_steps must be"),
    (lambda: pgd(linear, X, Y, 0.1, step_size=0.0, key=jax.random.key(0)), "step_size must be"),
    (lambda: pgd(linear, X, Y, 0.1), "needs a key"),
    (lambda: robust_accuracy(linear, X, Y, [0.1, -0.1]), "epsilon must be >= 0"),
])
def test_impossible_attacks_are_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the engine switch --------------------------------------------------------------------------

def test_adversarial_step_equals_pgd_on_the_chosen_examples_then_a_clean_step():
    """Micro-batches of 4 (grad accumulation 2), fraction 0.5: examples 0, 1, 4, 5 attacked,
    through the normalization, against the model in inference mode (BatchNorm, dropout)."""
    model = models.create("small_cnn", num_classes=10, widths=(4, 8), hidden=16, conv="xla")
    state = create_train_state(model, optax.sgd(0.1), seed=0, input_shape=(1, 8, 8, 1))
    spec = {"ops": ["normalize"], "normalize_mean": (0.3,), "normalize_std": (0.4,)}
    augment_fn, preprocess_fn = augment.build(spec, num_classes=10), augment.build_eval(spec)
    batch = {"image": rng.integers(0, 256, (8, 8, 8, 1), dtype=np.uint8),
             "label": rng.integers(0, 10, 8).astype(np.int32)}
    attack = dict(epsilon=0.5, norm="l2", num_steps=3, step_size=None, random_start=False)
    options = StepOptions(learning_rate_fn=lambda step: 0.1, grad_accum_steps=2)
    adversarial_step = make_train_step(
        dataclasses.replace(options, adversarial=Adversarial(**attack, fraction=0.5)),
        augment_fn, preprocess_fn)
    got, got_metrics = jax.jit(adversarial_step)(state, batch)

    chosen = np.array([0, 1, 4, 5])
    part = {"image": batch["image"][chosen] / np.float32(255), "label": batch["label"][chosen]}

    def forward(x):
        return model.apply(state.variables(), preprocess_fn({"image": x})["image"], train=False)

    images = jax.jit(lambda part: pgd(
        forward, part["image"], part, loss=lambda out, b: ClassificationTask().loss(
            out, b, train=False)[0], **attack))(part)
    assert not np.allclose(images, part["image"], atol=1e-3)
    attacked = dict(batch, image=(batch["image"] / np.float32(255)).copy())
    attacked["image"][chosen] = images
    want, want_metrics = jax.jit(make_train_step(options, augment_fn))(state, attacked)
    for a, b in zip(jax.tree.leaves((got, got_metrics)), jax.tree.leaves((want, want_metrics)),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    ({"adversarial.epsilon": -0.1}, r"config\.adversarial\.epsilon must be >= 0"),
    ({"adversarial.epsilon": float("nan")}, r"config\.adversarial\.epsilon must be finite"),
    ({"adversarial.norm": "l1"}, r"config\.adversarial\.norm must be one of"),
    ({"adversarial.num_steps": 0}, r"config\.adversarial\.num_steps must be"),
    ({"adversarial.step_size": 0.0}, r"config\.adversarial\.step_size must be > 0"),
    ({"adversarial.fraction": 0.0}, r"config\.adversarial\.fraction must lie in \(0, 1\]"),
    ({"adversarial.fraction": 1.5}, r"config\.adversarial\.fraction must lie in \(0, 1\]"),
])
def test_bad_adversarial_options_stop_before_compiling(tfds_dir, tmp_path, compile_counter,
                                                       overrides, message):
    with pytest.raises(ValueError, match=message):
        train.train_and_evaluate(digits_config(tfds_dir, **overrides), str(tmp_path))
    assert compile_counter.count == 0


@pytest.mark.slow
@pytest.mark.parametrize("composed", [
    {},
    {"parallel": "pmap", "num_devices": 2, "grad_accum_steps": 2, "sam.rho": 0.05,
     "augment.ops": ("flip",), "adversarial.fraction": 0.5},
], ids=["plain", "pmap_accum_sam_augment"])
def test_adversarial_run_compiles_its_step_once_and_learns(tfds_dir, tmp_path, composed):
    config = digits_config(tfds_dir, **{"adversarial.epsilon": 0.1, "adversarial.num_steps": 3,
                                        "tensorboard": False, **composed})
    compiled = []

    def listener(event, duration, fun_name="", **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        summary = train.train_and_evaluate(config, str(tmp_path))
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert sum(name.endswith("(step)") for name in compiled) == 2, compiled  # train and eval
    assert summary["eval_accuracy"] > 0.8


# --- attacks on a CNN the engine trained ------------------------------------------------------

@pytest.mark.slow
def test_on_a_trained_cnn_accuracy_falls_with_epsilon_and_pgd_beats_fgsm(tfds_dir, tmp_path):
    config = digits_config(tfds_dir, tensorboard=False)
    summary = train.train_and_evaluate(config, str(tmp_path))
    state = train.load_state(str(tmp_path), config)
    forward = lambda x: state.apply_fn(state.variables(), x, train=False)  # noqa: E731
    images, labels = digits_arrays("test")
    epsilons = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
    by_fgsm = robust_accuracy(forward, images / np.float32(255), labels, epsilons)
    by_pgd = robust_accuracy(forward, images / np.float32(255), labels, epsilons, attack=(
        functools.partial(pgd, num_steps=10, key=jax.random.key(0))))
    # epsilon 0 is the engine's own test accuracy (the padded last batch counts once)
    assert by_fgsm[0] == by_pgd[0] == pytest.approx(summary["eval_accuracy"], abs=1e-6)
    assert by_fgsm[0] > 0.9 and by_pgd[-1] < 0.1, (by_fgsm, by_pgd)
    assert (np.diff(by_fgsm) < 0).all() and (np.diff(by_pgd) < 0).all(), (by_fgsm, by_pgd)
    assert (by_pgd[1:] <= by_fgsm[1:]).all(), (by_fgsm, by_pgd)


@pytest.mark.slow
def test_adversarial_experiment_smoke(tmp_path):
    from experiments import adversarial

    config = adversarial.get_config()
    config.epochs, config.num_steps, config.eval_steps, config.epsilons = 1, 2, 2, (0.0, 0.1)
    result = adversarial.main(config, str(tmp_path))
    for name in ("report.md", "robust_accuracy.png", "examples.png"):
        assert (tmp_path / name).exists(), name
    assert set(result) == {"standard", "adversarial"}
    assert "| adversarial |" in (tmp_path / "report.md").read_text()
