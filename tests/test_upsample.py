"""Upsampling ops and layers: worked vectors and PyTorch parity."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn.upsample import (ConvTranspose, FastConvTranspose, PixelShuffleUpsample,
                                   ResizeConv, Upsample)
from jaxvision.ops import upsample as up

SQUARE = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)[None, :, :, None]


def test_nearest_and_bed_of_nails_vectors():
    np.testing.assert_array_equal(up.nearest_upsample(SQUARE, 2)[0, :, :, 0],
                                  [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    np.testing.assert_array_equal(up.bed_of_nails(SQUARE, 2)[0, :, :, 0],
                                  [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])
    assert up.nearest_upsample(SQUARE, 3).shape == (1, 6, 6, 1)


def test_bilinear_vectors():
    # Align corners 2 -> 3: the centre is the midpoint of the four pixels.
    assert float(up.resize_bilinear(SQUARE, (3, 3), align_corners=True)[0, 1, 1, 0]) == 2.5
    np.testing.assert_allclose(
        up.resize_bilinear(SQUARE, (4, 4))[0, :, :, 0],
        [[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]],
        atol=1e-6)
    # The half-pixel convention is jax.image.resize's (no antialiasing when upsampling).
    np.testing.assert_allclose(up.resize_bilinear(SQUARE, (4, 4)),
                               jax.image.resize(SQUARE, (1, 4, 4, 1), "bilinear"), atol=1e-6)


def test_pixel_shuffle_vector_is_crd_order():
    x = jnp.arange(8.0).reshape(1, 1, 1, 8)
    out = up.pixel_shuffle(x, 2)
    assert out.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(out[0, :, :, 1], [[4, 5], [6, 7]])
    np.testing.assert_array_equal(up.pixel_unshuffle(out, 2), x)


def test_transposed_conv_worked_vectors():
    # 1-D [a, b] with [w1, w2, w3], stride 2: [a w1, a w2, a w3 + b w1, b w2, b w3] (the text's
    # length-4 answer is the stride-1 result).
    a, b, w = 2.0, 3.0, np.array([5.0, 7.0, 11.0])
    x = jnp.array([a, b]).reshape(1, 1, 2, 1)
    layer = ConvTranspose(1, kernel_size=(1, 3), stride=(1, 2), use_bias=False)
    params = {"params": {"kernel": jnp.asarray(w).reshape(1, 3, 1, 1)}}
    np.testing.assert_allclose(layer.apply(params, x)[0, 0, :, 0],
                               [a * w[0], a * w[1], a * w[2] + b * w[0], b * w[1], b * w[2]])
    one = ConvTranspose(1, kernel_size=(1, 3), stride=1, use_bias=False)
    np.testing.assert_allclose(one.apply(params, x)[0, 0, :, 0],
                               [a * w[0], a * w[1] + b * w[0], a * w[2] + b * w[1], b * w[2]])
    # Output sizes: k3 s2 p0: 7 -> 15; k2 s2: 7 -> 14; k3 s2 p1: 7 -> 13; k4 s2 p1: 7 -> 14.
    for k, p, expected in ((3, 0, 15), (2, 0, 14), (3, 1, 13), (4, 1, 14)):
        layer = ConvTranspose(2, kernel_size=k, stride=2, padding=p)
        y = jax.eval_shape(lambda: layer.init_with_output(jax.random.key(0), jnp.ones((1, 7, 7, 3)))[0])
        assert y.shape == (1, expected, expected, 2)


def test_output_size_helper_and_unreachable_size():
    assert up.transposed_conv_padding(7, 14, kernel_size=3, stride=2) == (1, 1)
    assert up.transposed_conv_padding(7, 13, kernel_size=3, stride=2) == (1, 0)
    layer = ConvTranspose(1, kernel_size=3, stride=2, padding=1, output_size=(14, 14))
    out = jax.eval_shape(lambda: layer.init_with_output(jax.random.key(0), jnp.ones((1, 7, 7, 1)))[0])
    assert out.shape[1:3] == (14, 14)
    # k2 s2 p0 doubles 7 to 14 (or 15 with output padding); 13 needs padding 1.
    with pytest.raises(ValueError, match=r"not 13; padding=1 with output_padding=1 would"):
        jax.eval_shape(lambda: ConvTranspose(1, kernel_size=2, stride=2, padding=0,
                                             output_size=(13, 13)).init(
            jax.random.key(0), jnp.ones((1, 7, 7, 1))))
    with pytest.raises(ValueError, match="no padding"):
        up.transposed_conv_padding(7, 40, kernel_size=2, stride=2)


def test_layers_shapes():
    x = jnp.ones((2, 7, 7, 4))
    for layer in (ResizeConv(3), ResizeConv(3, mode="bilinear"), PixelShuffleUpsample(3),
                  ConvTranspose(3)):
        out = jax.eval_shape(lambda: layer.init_with_output(jax.random.key(0), x)[0])
        assert out.shape == (2, 14, 14, 3)
    assert Upsample(2, "bed_of_nails")(x).shape == (2, 14, 14, 4)
    with pytest.raises(ValueError, match="mode"):
        Upsample(2, "area")(x)
    with pytest.raises(ValueError, match="divisible by 4"):
        up.pixel_shuffle(jnp.ones((1, 2, 2, 6)), 2)


@pytest.mark.parametrize("kernel, strides, fast", [((2, 2), (2, 2), True), ((3, 2), (3, 2), True),
                                                   ((3, 3), (2, 2), False)])
def test_fast_conv_transpose_is_flax_conv_transpose(kernel, strides, fast):
    """Same parameters (initialised alike), outputs and gradients; a GEMM iff kernel == stride."""
    x = jax.random.normal(jax.random.key(0), (2, 5, 7, 6))
    ours, flax_layer = (cls(4, kernel, strides=strides, padding="VALID")
                        for cls in (FastConvTranspose, nn.ConvTranspose))
    variables = ours.init(jax.random.key(1), x)
    jax.tree.map(np.testing.assert_array_equal, variables, flax_layer.init(jax.random.key(1), x))
    variables = jax.tree.map(lambda v: v + 0.5, variables)  # a non-zero bias

    def run(layer):
        return jax.jit(jax.value_and_grad(lambda v, x: (layer.apply(v, x) ** 2).sum(),
                                          (0, 1)))(variables, x)

    ours_out, expected = run(ours), run(flax_layer)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
                 ours_out, expected)
    jaxpr = str(jax.make_jaxpr(ours.apply)(variables, x))
    assert ("dot_general" in jaxpr) == fast
    assert isinstance(ours, nn.ConvTranspose)  # what BatchNorm folding looks for


# ---- PyTorch parity ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(11, 16), (3, 5)])  # up and down
def test_interpolate_matches_torch(mode, align_corners, size):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 6, 8, 3), np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2), size=size, mode=mode,
        align_corners=align_corners).permute(0, 2, 3, 1).numpy()
    got = up.resize(x, size, mode=mode, align_corners=align_corners)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_nearest_and_pixel_shuffle_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).random((2, 5, 4, 18), np.float32)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)
    for r in (3,):
        expected = torch.nn.PixelShuffle(r)(tx).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(up.pixel_shuffle(x, r), expected, atol=1e-6)
        back = torch.nn.PixelUnshuffle(r)(torch.from_numpy(expected).permute(0, 3, 1, 2))
        np.testing.assert_allclose(up.pixel_unshuffle(expected, r),
                                   back.permute(0, 2, 3, 1).numpy(), atol=1e-6)
    expected = torch.nn.functional.interpolate(tx, size=(12, 9), mode="nearest")
    np.testing.assert_array_equal(up.resize(x, (12, 9), mode="nearest"),
                                  expected.permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(up.nearest_upsample(x, 2),
                                  torch.nn.functional.interpolate(tx, scale_factor=2)
                                  .permute(0, 2, 3, 1).numpy())


@pytest.mark.parametrize("k,s,p,op,d", [(3, 2, 1, 1, 1), (4, 2, 1, 0, 1), (2, 2, 0, 0, 1),
                                         (3, 3, 0, 2, 1), (3, 2, 2, 1, 2)])
def test_conv_transpose_matches_torch(k, s, p, op, d):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((2, 7, 6, 3)).astype(np.float32)
    ref = torch.nn.ConvTranspose2d(3, 5, k, stride=s, padding=p, output_padding=op, dilation=d)
    expected = ref(torch.from_numpy(x).permute(0, 3, 1, 2)).detach().permute(0, 2, 3, 1).numpy()
    layer = ConvTranspose(5, kernel_size=k, stride=s, padding=p, output_padding=op, dilation=d)
    params = {"params": {"kernel": jnp.asarray(ref.weight.detach().numpy().transpose(2, 3, 0, 1)),
                         "bias": jnp.asarray(ref.bias.detach().numpy())}}
    np.testing.assert_allclose(layer.apply(params, x), expected, atol=1e-5)


def test_checkerboard_overlap_counts():
    """A ones kernel on a ones input counts the taps landing on each output pixel: k=3, s=2
    overlaps unevenly (1, 2, 1, 2, ...: the checkerboard), k=2 and k=4 with s=2 evenly."""
    from jaxvision.ops.conv import conv_transpose2d

    ones = jnp.ones((1, 5, 5, 1))
    uneven = np.asarray(conv_transpose2d(ones, jnp.ones((3, 3, 1, 1)), stride=2))[0, :, :, 0]
    np.testing.assert_array_equal(uneven[0, :5], [1, 1, 2, 1, 2])
    np.testing.assert_array_equal(uneven[2, :5], [2, 2, 4, 2, 4])
    even = np.asarray(conv_transpose2d(ones, jnp.ones((2, 2, 1, 1)), stride=2))
    np.testing.assert_array_equal(even, 1.0)
    interior = np.asarray(conv_transpose2d(ones, jnp.ones((4, 4, 1, 1)), stride=2, padding=1))
    np.testing.assert_array_equal(interior[0, 1:-1, 1:-1, 0], 4.0)
