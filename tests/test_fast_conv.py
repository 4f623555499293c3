"""jaxvision.nn.conv: Winograd and im2col convolutions against lax.conv_general_dilated."""

import functools
from fractions import Fraction

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

from jaxvision.nn import conv as fast

DN = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("m", [2, 4, 6])
def test_winograd_matrices_compute_the_1d_correlation_exactly(m):
    at, g, bt = fast.winograd_matrices(m)
    assert at.shape == (m, m + 2) and g.shape == (m + 2, 3) and bt.shape == (m + 2, m + 2)
    rng = np.random.default_rng(m)
    for _ in range(5):
        d = [Fraction(int(v)) for v in rng.integers(-9, 10, m + 2)]
        w = [Fraction(int(v)) for v in rng.integers(-9, 10, 3)]
        expected = [sum(d[i + k] * w[k] for k in range(3)) for i in range(m)]
        assert list(at.dot(g.dot(w) * bt.dot(d))) == expected


def test_winograd_f43_transform_is_lavins():
    """B^T of F(4,3) as printed by Lavin & Gray (2016)."""
    _, _, bt = fast.winograd_matrices(4)
    np.testing.assert_array_equal(bt.astype(float), [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0],
                                                     [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                                                     [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])


def _value_and_grads(conv, x, w, dy):
    def loss(x, w):
        y = conv(x, w)
        return (y * dy).sum(), y
    (_, y), grads = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(x, w)
    return (y,) + grads


def _lax(strides=(1, 1), padding=((1, 1), (1, 1))):
    return lambda x, w: lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=DN,
                                                 precision="highest")


def _assert_close(ours, expected, rtol):
    """Errors relative to each array's largest magnitude (Winograd spreads rounding error)."""
    for name, a, b in zip(("y", "dx", "dw"), ours, expected):
        assert a.shape == b.shape, name
        error = float(jnp.abs(a - b).max() / jnp.abs(b).max())
        assert error < rtol, (name, error)


@pytest.mark.parametrize("m, shape, rtol", [(4, (2, 9, 7, 5), 1e-5), (4, (3, 8, 8, 16), 1e-5),
                                            (2, (2, 5, 6, 3), 2e-6)])
def test_winograd_conv3x3_forward_and_gradients_match_xla(m, shape, rtol):
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], shape)
    w = jax.random.normal(keys[1], (3, 3, shape[-1], 6))
    dy = jax.random.normal(keys[2], shape[:3] + (6,))
    ours = _value_and_grads(lambda x, w: fast.winograd_conv3x3(x, w, m), x, w, dy)
    _assert_close(ours, _value_and_grads(_lax(), x, w, dy), rtol)


def test_winograd_conv3x3_float64_is_exact_to_1e12():
    with jax.enable_x64():
        x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4), jnp.float64)
        w = jax.random.normal(jax.random.key(1), (3, 3, 4, 4), jnp.float64)
        dy = jnp.ones((2, 8, 8, 4), jnp.float64)
        ours = _value_and_grads(lambda x, w: fast.winograd_conv3x3(x, w, 4), x, w, dy)
        _assert_close(ours, _value_and_grads(_lax(), x, w, dy), 1e-12)


@pytest.mark.parametrize("kernel, strides, padding, rtol", [
    (3, 1, ((1, 1), (1, 1)), 1e-5),   # Winograd
    (3, 2, ((1, 1), (1, 1)), 1e-6),   # strided: im2col
    (1, 2, "SAME", 1e-6),             # the projection shortcut, string padding
    (7, 2, ((3, 3), (3, 3)), 1e-6),   # ImageNet stem
    (3, 1, ((0, 2), (1, 0)), 1e-6),   # asymmetric padding
])
def test_fast_conv_general_dilated_matches_xla(kernel, strides, padding, rtol):
    keys = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(keys[0], (4, 34, 30, 16))  # 288 Winograd tiles, partial ones at edges
    w = jax.random.normal(keys[1], (kernel, kernel, 16, 16))
    conv = lambda x, w: fast.fast_conv_general_dilated(x, w, (strides,) * 2, padding,  # noqa: E731
                                                       dimension_numbers=DN)
    out_shape = jax.eval_shape(_lax((strides,) * 2, padding), x, w).shape
    dy = jax.random.normal(keys[2], out_shape)
    _assert_close(_value_and_grads(conv, x, w, dy),
                  _value_and_grads(_lax((strides,) * 2, padding), x, w, dy), rtol)


def _route(x_shape, w_shape, dtype=jnp.float32, strides=(1, 1)):
    """'winograd', 'im2col' or 'xla': what the CPU branch runs when differentiated."""
    jaxpr = str(jax.make_jaxpr(lambda x, w: fast.fast_conv_general_dilated(
        x, w, strides, ((1, 1), (1, 1)), dimension_numbers=DN))(
        jax.ShapeDtypeStruct(x_shape, dtype), jax.ShapeDtypeStruct(w_shape, dtype)))
    return "winograd" if "custom_vjp" in jaxpr else "im2col" if "custom_jvp" in jaxpr else "xla"


def test_fast_conv_uses_winograd_only_where_it_pays():
    assert _route((4, 32, 32, 16), (3, 3, 16, 16)) == "winograd"      # 256 tiles
    assert _route((8, 32, 32, 512), (3, 3, 512, 512)) == "winograd"   # UNet level 3, batch 8
    # 128 tiles: the UNet bottleneck (16x16x1024, batch 8) trains faster by im2col.
    assert _route((8, 16, 16, 1024), (3, 3, 1024, 1024)) == "im2col"
    assert _route((2, 8, 8, 16), (3, 3, 16, 16)) == "im2col"          # 8 tiles
    assert _route((32, 8, 8, 3), (3, 3, 3, 64)) == "im2col"           # RGB stem
    assert _route((64, 4, 4, 64), (3, 3, 64, 64)) == "im2col"         # below 8x8
    assert _route((8, 32, 32, 16), (3, 3, 16, 16), strides=(2, 2)) == "im2col"
    # bfloat16 would lose Winograd's accuracy: an ordinary im2col GEMM instead.
    assert _route((4, 32, 32, 16), (3, 3, 16, 16), jnp.bfloat16) == "im2col"


@pytest.mark.parametrize("kernel, strides", [(3, 1), (3, 2), (1, 1)])
def test_inference_is_xla_and_gradients_are_gemms(kernel, strides):
    """Undifferentiated: XLA's convolution, bit for bit; differentiated: no convolution left."""
    x = jax.random.normal(jax.random.key(0), (4, 32, 32, 16))
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, 16, 16))
    pads = ((kernel // 2,) * 2,) * 2

    def conv(x, w):
        return fast.fast_conv_general_dilated(x, w, (strides,) * 2, pads, dimension_numbers=DN)

    expected = jax.jit(lambda x, w: lax.conv_general_dilated(x, w, (strides,) * 2, pads,
                                                             dimension_numbers=DN))(x, w)
    np.testing.assert_array_equal(jax.jit(conv)(x, w), expected)
    grads = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), (0, 1))).lower(x, w).compile()
    assert " convolution(" not in grads.as_text() and " dot(" in grads.as_text()


@pytest.mark.parametrize("size, kernel, im2col", [(2, 3, True), (1, 3, True), (4, 5, True),
                                                  (3, 3, False)])
def test_kernels_with_more_taps_than_input_pixels_run_as_im2col_in_inference(size, kernel,
                                                                            im2col):
    """XLA swaps such a convolution's operands into a slow layout: im2col instead, both ways."""
    x = jax.random.normal(jax.random.key(0), (4, size, size, 32))
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, 32, 16))
    pads = ((kernel // 2,) * 2,) * 2

    def conv(x, w):
        return fast.fast_conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=DN)

    hlo = jax.jit(conv).lower(x, w).compile().as_text()
    assert (" convolution(" not in hlo) is im2col
    dy = jax.random.normal(jax.random.key(2), (4, size, size, 16))
    _assert_close(_value_and_grads(conv, x, w, dy), _value_and_grads(_lax(padding=pads), x, w, dy),
                  rtol=1e-5)


@pytest.mark.parametrize("shape, padding", [((2, 2, 3, 5), "VALID"),           # an empty output
                                            ((2, 2, 2, 5), ((-1, 2), (1, 1)))])  # cropping
def test_small_inputs_im2col_cannot_take_stay_xla(shape, padding):
    x = jax.random.normal(jax.random.key(0), shape)
    w = jax.random.normal(jax.random.key(1), (3, 3, 5, 4))
    ours = jax.jit(lambda x, w: fast.fast_conv_general_dilated(x, w, (1, 1), padding,
                                                               dimension_numbers=DN))(x, w)
    np.testing.assert_array_equal(ours, lax.conv_general_dilated(x, w, (1, 1), padding,
                                                                 dimension_numbers=DN))


def test_im2col_route_supports_forward_mode():
    x = jax.random.normal(jax.random.key(0), (2, 12, 10, 16))
    w = jax.random.normal(jax.random.key(1), (3, 3, 16, 8))
    ours = jax.jvp(lambda x, w: fast.fast_conv_general_dilated(
        x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN), (x, w), (x[::-1], w[::-1]))
    expected = jax.jvp(_lax((2, 2)), (x, w), (x[::-1], w[::-1]))
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, atol=1e-5 * float(jnp.abs(b).max()))


def test_fast_conv_transpose_matches_lax_where_kernel_is_stride():
    x = jax.random.normal(jax.random.key(0), (2, 5, 7, 6))
    for kernel, strides, padding in (((2, 2), (2, 2), "VALID"), ((2, 3), (2, 3), "SAME"),
                                     ((3, 3), (2, 2), "VALID")):  # the last: lax's own
        w = jax.random.normal(jax.random.key(1), kernel + (6, 4))

        def run(conv):
            y = conv(x, w, strides, padding)
            return (y,) + jax.grad(lambda x, w: (conv(x, w, strides, padding) ** 2).sum(),
                                   (0, 1))(x, w)

        exact = functools.partial(lax.conv_transpose, precision="highest")
        _assert_close(jax.jit(lambda: run(fast.fast_conv_transpose))(),
                      jax.jit(lambda: run(exact))(), 1e-6)
    jaxpr = str(jax.make_jaxpr(fast.fast_conv_transpose, static_argnums=(2, 3))(
        x, jnp.zeros((2, 2, 6, 4)), (2, 2), "VALID"))
    assert "dot_general" in jaxpr  # the CPU branch is a GEMM


def test_fast_conv_routes_grouped_and_dilated_to_xla():
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 4))
    w = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
    grouped = fast.fast_conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=DN,
                                             feature_group_count=2)
    expected = lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=DN,
                                        feature_group_count=2)
    np.testing.assert_array_equal(grouped, expected)
    w = jax.random.normal(jax.random.key(1), (3, 3, 4, 4))
    dilated = fast.fast_conv_general_dilated(x, w, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2),
                                             dimension_numbers=DN)
    np.testing.assert_array_equal(dilated, lax.conv_general_dilated(
        x, w, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2), dimension_numbers=DN))


@pytest.mark.slow  # 30+ s: the default suite's 20 minutes
def test_resnet_with_fast_convs_trains_like_xla():
    """Same parameters, same logits and gradients: stride-1 Winograd, stride-2 and 1x1 im2col."""
    import optax

    from jaxvision.models.resnet import ResNet

    x = jax.random.normal(jax.random.key(0), (16, 16, 16, 3))  # 256 tiles: Winograd
    labels = jnp.arange(16) % 4
    results = []
    for conv in ("xla", "auto"):
        model = ResNet(stage_sizes=(1, 1), num_classes=4, stem="cifar", base_features=16,
                       conv=conv)
        variables = model.init(jax.random.key(1), x, train=False)

        def loss(params):
            logits, _ = model.apply({**variables, "params": params}, x, train=True,
                                    mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits

        results.append(jax.jit(jax.grad(loss, has_aux=True))(variables["params"]))
    (grads_xla, logits_xla), (grads_fast, logits_fast) = results
    np.testing.assert_allclose(logits_fast, logits_xla, rtol=1e-4, atol=1e-4)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4),
                 grads_fast, grads_xla)
