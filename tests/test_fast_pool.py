"""jaxvision.nn.pool: the strided-slice max pool against Flax's (reduce_window)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.nn import layers
from jaxvision.nn.pool import fast_max_pool


@pytest.mark.parametrize("window, strides, padding", [
    ((3, 3), (2, 2), ((1, 1), (1, 1))),   # the ResNet stem
    ((2, 2), (2, 2), "VALID"),
    ((3, 3), (1, 1), "SAME"),
    ((3, 2), (2, 3), ((0, 2), (1, 0))),   # asymmetric everything
    ((2, 2), None, "VALID"),              # Flax's default stride is 1
])
def test_values_and_gradients_equal_flax_bit_for_bit(window, strides, padding):
    x = jax.random.normal(jax.random.key(0), (2, 13, 11, 5))
    x = jnp.round(x * 2) / 2  # many ties: their gradient must go where reduce_window sends it
    ours = jax.jit(lambda x: fast_max_pool(x, window, strides, padding))
    flax_pool = jax.jit(lambda x: nn.max_pool(x, window, strides, padding))
    np.testing.assert_array_equal(ours(x), flax_pool(x))
    dy = jax.random.normal(jax.random.key(1), ours(x).shape)

    def grad(pool):
        return jax.jit(jax.grad(lambda x: (pool(x) * dy).sum()))(x)

    np.testing.assert_array_equal(grad(ours), grad(flax_pool))
    # forward mode too: the custom JVP is reduce_window's
    tangent = jax.random.normal(jax.random.key(2), x.shape)
    for a, b in zip(jax.jvp(ours, (x,), (tangent,)), jax.jvp(flax_pool, (x,), (tangent,))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape, window, strides, padding", [
    ((1, 1, 1, 2), (3, 3), (2, 2), ((1, 1), (1, 1))),   # taps outside a one-pixel image
    ((1, 2, 2, 1), (2, 2), (1, 1), ((2, 2), (2, 2))),   # windows that see only padding
    ((1, 1, 1, 1), (2, 2), (2, 2), ((3, 3), (3, 3))),   # every tap sees only padding
    ((1, 1, 5, 3), (4, 1), (2, 1), "VALID"),            # no window fits: an empty output
])
def test_windows_in_the_padding_equal_flax(shape, window, strides, padding):
    x = jax.random.normal(jax.random.key(0), shape)
    ours = jax.jit(lambda x: fast_max_pool(x, window, strides, padding))(x)
    np.testing.assert_array_equal(ours, nn.max_pool(x, window, strides, padding))


def test_integer_inputs_pad_with_their_lowest_value():
    x = -jnp.arange(2 * 6 * 6 * 3, dtype=jnp.int32).reshape(2, 6, 6, 3)
    window, strides, pads = (3, 3), (2, 2), ((1, 1), (1, 1))
    np.testing.assert_array_equal(jax.jit(lambda x: fast_max_pool(x, window, strides, pads))(x),
                                  nn.max_pool(x, window, strides, pads))


def test_inference_compiles_no_reduce_window_and_gradients_keep_it():
    x = jnp.zeros((4, 32, 32, 16))

    def pool(x):
        return fast_max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))

    assert "reduce-window" not in jax.jit(pool).lower(x).compile().as_text()
    grads = str(jax.make_jaxpr(jax.grad(lambda x: pool(x).sum()))(x))
    assert "select_and_scatter_add" in grads and " slice[" not in grads


def test_other_ranks_and_types_without_a_padding_value_go_to_flax():
    x = jax.random.normal(jax.random.key(0), (3, 10, 4))  # 1-D pooling, (N, L, C)
    np.testing.assert_array_equal(fast_max_pool(x, (3,), (2,)), nn.max_pool(x, (3,), (2,)))
    mask = jax.random.bernoulli(jax.random.key(1), 0.3, (2, 6, 6, 1))
    pads = ((1, 1), (1, 1))
    np.testing.assert_array_equal(fast_max_pool(mask, (3, 3), (2, 2), pads),
                                  nn.max_pool(mask, (3, 3), (2, 2), pads))


def test_the_fast_path_picks_it_and_exports_keep_flax():
    assert layers.resolve_max_pool("auto") is fast_max_pool
    assert layers.resolve_max_pool("xla") is nn.max_pool
    assert layers.resolve_max_pool(nn.Conv) is nn.max_pool
    image = jnp.zeros((2, 64, 64, 3))
    for conv, pools_by_reduce_window in (("auto", False), ("xla", True)):
        model = models.create("resnet18", num_classes=10, base_features=8, conv=conv)
        variables = jax.eval_shape(lambda m=model: m.init(jax.random.key(0), image, train=False))
        hlo = jax.jit(lambda v, m=model: m.apply(v, image, train=False)).lower(
            variables).compile().as_text()
        assert ("reduce-window" in hlo) is pools_by_reduce_window, conv
