"""jaxvision.interpret.hooks: named layers of any model, their outputs and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import interpret, models


@pytest.fixture(scope="module")
def resnet():
    model = models.create("cifar_resnet20", num_classes=10, conv="xla")
    x = jax.random.normal(jax.random.key(0), (3, 16, 16, 3))
    variables = model.init(jax.random.key(1), x, train=False)
    return model, variables, x


def test_layer_names_follow_the_parameter_tree(resnet):
    model, variables, x = resnet
    names = interpret.layer_names(model, variables, x)
    assert names[:3] == ["conv1", "bn1", "layer1_0"] and names[-1] == "head"
    assert "layer3_2/conv2" in names
    with pytest.raises(ValueError, match=r"no layer\(s\) \['layer9'\].*layer1_0, layer1_0/conv1"):
        interpret.capture(model, variables, x, ["layer9"])


def test_capture_returns_the_layer_output_and_leaves_the_model_unchanged(resnet):
    model, variables, x = resnet
    outputs, acts = interpret.capture(model, variables, x, ["layer3_2", "head"])
    np.testing.assert_array_equal(outputs, model.apply(variables, x, train=False))
    np.testing.assert_array_equal(acts["head"], outputs)
    assert acts["layer3_2"].shape == (3, 4, 4, 64)
    # The same map as the sown intermediate of the last stage.
    _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
    np.testing.assert_array_equal(acts["layer3_2"], state["intermediates"]["layer3"][0])


def test_layer_gradients_equal_finite_differences_per_example(resnet):
    model, variables, x = resnet
    target = jnp.array([1, 4, 7])
    activation, grads, outputs = jax.jit(
        lambda x: interpret.layer_gradients(model, variables, x, "layer2_2", target))(x)
    assert grads.shape == activation.shape == (3, 8, 8, 32)
    # d score / d activation[i, 2, 3, 5] by central differences through the rest of the net.
    def score_with(delta):
        out, _ = interpret.capture(model, variables, x, ["layer2_2"],
                                   edit=lambda _, a: a.at[:, 2, 3, 5].add(delta))
        return interpret.class_scores(out, target)

    eps = 1e-2
    numeric = (score_with(eps) - score_with(-eps)) / (2 * eps)
    np.testing.assert_allclose(grads[:, 2, 3, 5], numeric, rtol=2e-2, atol=1e-4)
    np.testing.assert_allclose(outputs, model.apply(variables, x, train=False), rtol=1e-5,
                               atol=1e-5)  # jitted vs eager


def test_class_scores_targets():
    logits = jnp.array([[0.1, 2.0, 0.3], [3.0, 0.0, 1.0]])
    np.testing.assert_array_equal(interpret.class_scores(logits, None), [logits[0, 1], logits[1, 0]])
    np.testing.assert_array_equal(interpret.class_scores(logits, 2), logits[:, 2])
    np.testing.assert_array_equal(interpret.class_scores(logits, [0, 1]), [logits[0, 0], logits[1, 1]])
    with pytest.raises(ValueError, match="target class 3 is out of range for 3 classes"):
        interpret.class_scores(logits, 3)
    with pytest.raises(ValueError, match=r"out of range"):
        interpret.class_scores(logits, [0, -1])
    with pytest.raises(ValueError, match="one class per example"):
        interpret.class_scores(logits, [0, 1, 2])
