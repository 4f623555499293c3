"""Initializers by name: their scales and re-initialising a model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.models import create
from jaxvision.nn.init import INITIALIZERS, fans, get_initializer, reinitialize


def test_course_init_scales():
    key = jax.random.key(0)
    w = get_initializer("he_normal_fan_out")(key, (3, 3, 64, 64))
    np.testing.assert_allclose(np.std(w), np.sqrt(2 / 576), rtol=0.03)    # 0.0589256
    w = get_initializer("he_normal")(key, (784, 256))
    np.testing.assert_allclose(np.std(w), np.sqrt(2 / 784), rtol=0.03)    # 0.0505076
    w = get_initializer("xavier_uniform")(key, (3, 3, 3, 64))
    limit = np.sqrt(6 / (27 + 576))                                        # 0.0997509
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.97 * limit
    w = get_initializer("lecun_uniform")(key, (400, 300))
    assert np.abs(w).max() <= np.sqrt(3 / 400)
    np.testing.assert_allclose(np.std(get_initializer("lecun_normal")(key, (400, 300))), np.sqrt(1 / 400), rtol=0.03)
    q = np.asarray(get_initializer("orthogonal")(key, (64, 64)))
    np.testing.assert_allclose(q.T @ q, np.eye(64), atol=1e-5)
    assert fans((3, 3, 16, 32)) == (144, 288)
    assert len(INITIALIZERS) >= 14


def test_matches_torch_kaiming_statistics():
    torch = pytest.importorskip("torch")
    t = torch.empty(128, 64, 3, 3)
    torch.nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    ours = get_initializer("he_normal_fan_out")(jax.random.key(1), (3, 3, 64, 128))
    np.testing.assert_allclose(np.std(ours), t.std().item(), rtol=0.05)


def test_reinitialize_any_model():
    model = create("small_cnn", num_classes=4, widths=(8,), hidden=16)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
    params = reinitialize(variables["params"], jax.random.key(1), kernel_init="normal", stddev=0.5)
    assert np.std(params["fc"]["kernel"]) > 0.4                 # redrawn
    np.testing.assert_array_equal(params["bn0"]["scale"], variables["params"]["bn0"]["scale"])  # norms untouched
    np.testing.assert_array_equal(params["head"]["bias"], 0.0)
    with pytest.raises(ValueError, match="xavier_uniform"):
        get_initializer("xavier_unifrom")
