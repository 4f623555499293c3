"""Reference convolution: worked examples (a 5x5 image with an edge kernel, a colour example
whose printed result has an arithmetic slip) and agreement with lax.conv_general_dilated,
scipy, numpy loops and torch."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from scipy import signal

from jaxvision.ops.conv import (conv2d, conv2d_reference, conv_transpose2d, convolve2d,
                                extract_patches)
from jaxvision.ops.geometry import conv_transpose_output_size

# The worked 5x5 image and 3x3 edge kernel (top-left output 152).
IMAGE = np.array([[10, 20, 15, 25, 30], [40, 50, 60, 32, 18], [25, 33, 45, 60, 80],
                  [15, 20, 30, 40, 50], [40, 30, 25, 15, 10]], np.float32)
EDGE = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32)


def nhwc(image):
    return jnp.asarray(image)[None, :, :, None]


def hwio(kernel):
    return jnp.asarray(kernel)[:, :, None, None]


def as_map(out):
    return np.asarray(out)[0, :, :, 0]


def test_worked_example_152():
    out = as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE)))
    assert out[0, 0] == 152.0
    # The whole valid map.
    np.testing.assert_array_equal(out, [[152, 200, -77], [-21, 35, 125], [-83, -28, 5]])


def test_same_and_strided_maps():
    # Zero pad 1, stride 1.
    np.testing.assert_array_equal(as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE), padding=1)), [
        [-30, -15, -67, 45, 165], [182, 152, 200, -77, -83], [42, -21, 35, 125, 440],
        [-28, -83, -28, 5, 195], [255, 110, 65, -35, -25]])
    np.testing.assert_array_equal(
        as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE), padding="same")),
        as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE), padding=1)))
    # Pad 1 stride 2; valid stride 2.
    np.testing.assert_array_equal(
        as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE), padding=1, stride=2)),
        [[-30, -67, 165], [42, 35, 440], [255, 65, -25]])
    np.testing.assert_array_equal(as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE), stride=2)),
                                  [[152, -77], [-83, 5]])


def test_other_course_kernels_and_true_convolution():
    sobel_vertical = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    sobel_horizontal = sobel_vertical.T.copy()
    gaussian = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 16
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)
    want = {  # worked by hand
        "v": [[65, -4, -34], [75, 56, 48], [35, 52, 60]],
        "h": [[71, 108, 150], [-115, -82, 18], [-11, -88, -180]],
        "g": [[37.5625, 41.375, 39.0], [34.8125, 43.0, 49.5], [26.9375, 32.375, 39.375]],
        "s": [[97, 158, -3], [25, 42, 103], [-8, 20, 45]],
    }
    for key, kernel in [("v", sobel_vertical), ("h", sobel_horizontal), ("g", gaussian),
                        ("s", sharpen)]:
        np.testing.assert_allclose(as_map(conv2d_reference(nhwc(IMAGE), hwio(kernel))),
                                   want[key], rtol=0, atol=1e-5)
    # The usual "convolution" formula is cross-correlation; true convolution flips the kernel,
    # so Sobel's sign flips.
    flipped = as_map(convolve2d(nhwc(IMAGE), hwio(sobel_vertical)))
    np.testing.assert_array_equal(flipped, -np.asarray(want["v"]))
    np.testing.assert_array_equal(flipped, signal.convolve2d(IMAGE, sobel_vertical, mode="valid"))
    np.testing.assert_array_equal(as_map(conv2d(nhwc(IMAGE), hwio(sobel_vertical))),
                                  signal.correlate2d(IMAGE, sobel_vertical, mode="valid"))


def test_padding_modes_d5():
    want = {
        "reflect": [[-240, -165, -209, -65, 26], [79, 152, 200, -77, -200],
                    [-61, -21, 35, 125, 308], [-111, -83, -28, 5, 80],
                    [150, 45, -25, -155, -210]],
        "symmetric": [[-120, -60, -127, -25, 32], [107, 152, 200, -77, -211],
                      [-38, -21, 35, 125, 292], [-108, -83, -28, 5, 55], [90, 15, -5, -85, -120]],
        "circular": [[-158, -110, -137, -5, 50], [54, 152, 200, -77, -158],
                     [-106, -21, 35, 125, 360], [-168, -83, -28, 5, 115],
                     [135, 65, 5, -105, -145]],
    }
    want["replicate"] = want["symmetric"]  # identical for a pad of 1
    for mode, expected in want.items():
        for fn in (conv2d, conv2d_reference):
            out = as_map(fn(nhwc(IMAGE), hwio(EDGE), padding=1, padding_mode=mode))
            np.testing.assert_array_equal(out, expected, err_msg=f"{fn.__name__} {mode}")
            # Only the border differs from the valid map.
            np.testing.assert_array_equal(out[1:-1, 1:-1], as_map(conv2d(nhwc(IMAGE), hwio(EDGE))))


def test_dilation_d6():
    assert as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE), dilation=2)).tolist() == [[125]]
    np.testing.assert_array_equal(
        as_map(conv2d_reference(nhwc(IMAGE), hwio(EDGE), dilation=2, padding=2)),
        [[-5, 42, -70, 87, 100], [215, 308, 327, 146, 4], [65, 114, 125, 357, 515],
         [-10, 38, 57, 218, 292], [225, 132, 0, -3, -70]])


def test_colour_convolution_is_62_not_86_5():
    # A worked colour example: 71 + 24 - 33 = 62; a printed result of 86.5 is an arithmetic slip.
    red = [[120, 150, 130], [100, 140, 160], [110, 120, 150]]
    green = [[50, 70, 90], [60, 80, 100], [70, 90, 110]]
    blue = [[30, 20, 40], [50, 40, 30], [60, 50, 40]]
    k_red = [[0.1, 0.2, 0.1], [0.0, 0.3, 0.0], [-0.1, 0.0, -0.1]]
    k_green = [[-0.1, 0.0, -0.1], [0.2, 0.3, 0.2], [-0.1, 0.0, -0.1]]
    k_blue = [[-0.2, -0.1, -0.2], [-0.1, 0.4, -0.1], [-0.2, -0.1, -0.2]]
    image = np.stack([red, green, blue], axis=-1).astype(np.float32)[None]   # (1, 3, 3, 3)
    kernel = np.stack([k_red, k_green, k_blue], axis=-1).astype(np.float32)[..., None]
    out = conv2d_reference(image, kernel)
    assert out.shape == (1, 1, 1, 1)
    np.testing.assert_allclose(float(out[0, 0, 0, 0]), 62.0, atol=1e-4)
    # Per-channel contributions 71, 24, -33.
    per_channel = [float(conv2d_reference(image[..., c:c + 1], kernel[:, :, c:c + 1])[0, 0, 0, 0])
                   for c in range(3)]
    np.testing.assert_allclose(per_channel, [71.0, 24.0, -33.0], atol=1e-4)
    # 224x224x3 with 64 valid 3x3x3 filters -> 222x222x64.
    assert jax.eval_shape(lambda x, k: conv2d_reference(x, k), jnp.zeros((1, 224, 224, 3)),
                          jnp.zeros((3, 3, 3, 64))).shape == (1, 222, 222, 64)


COMBOS = [
    # stride, dilation, groups, padding
    (1, 1, 1, 0), (2, 1, 1, 1), ((2, 1), 1, 1, ((1, 0), (2, 1))), (1, 2, 1, "same"),
    (2, (2, 1), 2, 1), (3, 1, 4, ((0, 2), (1, 1))), (1, 1, 4, "valid"), (2, 3, 2, 3),
]


@pytest.mark.parametrize("stride,dilation,groups,padding", COMBOS)
def test_reference_equals_lax(stride, dilation, groups, padding):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 11, 10, 4)).astype(np.float32)
    kernel = rng.normal(size=(3, 2, 4 // groups, 8)).astype(np.float32)
    bias = rng.normal(size=(8,)).astype(np.float32)
    ours = conv2d_reference(images, kernel, stride=stride, dilation=dilation, groups=groups,
                            padding=padding, bias=bias)
    from jaxvision.ops.conv import resolve_padding
    pairs = resolve_padding(padding, kernel_size=(3, 2), dilation=dilation)
    dil = (dilation, dilation) if isinstance(dilation, int) else dilation
    want = lax.conv_general_dilated(
        images, kernel, (stride, stride) if isinstance(stride, int) else stride, pairs,
        rhs_dilation=dil, feature_group_count=groups,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=lax.Precision.HIGHEST) + bias
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5)


def test_reference_equals_numpy_loops_depthwise():
    # An independent, literal loop over output positions (groups = channels: depthwise).
    rng = np.random.default_rng(2)
    images = rng.normal(size=(1, 7, 6, 3))
    kernel = rng.normal(size=(3, 3, 1, 3))
    stride, dilation = 2, 2
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out_h = (padded.shape[1] - dilation * 2 - 1) // stride + 1
    out_w = (padded.shape[2] - dilation * 2 - 1) // stride + 1
    want = np.zeros((1, out_h, out_w, 3))
    for i, j, c in itertools.product(range(out_h), range(out_w), range(3)):
        for m, l in itertools.product(range(3), range(3)):
            want[0, i, j, c] += (padded[0, i * stride + m * dilation, j * stride + l * dilation, c]
                                 * kernel[m, l, 0, c])
    ours = conv2d_reference(images.astype(np.float32), kernel.astype(np.float32), stride=stride,
                            dilation=dilation, groups=3, padding=1)
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5)


def test_im2col_matmul_equals_conv():
    rng = np.random.default_rng(3)
    images = rng.normal(size=(2, 8, 7, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
    patches = extract_patches(images, kernel_size=3, stride=2, padding=1, dilation=1)
    np.testing.assert_allclose(patches @ kernel.reshape(-1, 5),
                               conv2d(images, kernel, stride=2, padding=1), rtol=1e-5, atol=1e-5)


def test_flax_conv_agrees_with_explicit_padding_not_same_at_stride_2():
    # A porting trap: Flax 'SAME' at stride 2 on even sizes pads (0, 1); PyTorch padding=1 is (1, 1).
    rng = np.random.default_rng(4)
    images = rng.normal(size=(1, 8, 8, 2)).astype(np.float32)
    layer = nn.Conv(3, (3, 3), strides=2, padding=((1, 1), (1, 1)), use_bias=False,
                    precision=lax.Precision.HIGHEST)
    variables = layer.init(jax.random.key(0), images)
    kernel = variables["params"]["kernel"]
    ours = conv2d_reference(images, kernel, stride=2, padding=1)
    np.testing.assert_allclose(layer.apply(variables, images), ours, rtol=1e-5, atol=1e-5)
    same = nn.Conv(3, (3, 3), strides=2, padding="SAME", use_bias=False,
                   precision=lax.Precision.HIGHEST).apply(variables, images)
    assert same.shape == ours.shape and not np.allclose(same, ours, atol=1e-3)
    np.testing.assert_allclose(same, conv2d_reference(images, kernel, stride=2,
                                                      padding=((0, 1), (0, 1))), atol=1e-5)
    # Flax's CIRCULAR padding is our circular mode.
    circ = nn.Conv(3, (3, 3), padding="CIRCULAR", use_bias=False,
                   precision=lax.Precision.HIGHEST).apply(variables, images)
    np.testing.assert_allclose(circ, conv2d_reference(images, kernel, padding=1,
                                                      padding_mode="circular"), atol=1e-5)


def test_translation_equivariance_with_circular_padding():
    # Equivariance, often miscalled invariance: conv commutes with shifts (exactly, with circular
    # padding at stride 1).
    rng = np.random.default_rng(5)
    images = rng.normal(size=(1, 9, 9, 2)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)

    def conv(x):
        return conv2d(x, kernel, padding=1, padding_mode="circular")

    shifted = np.roll(images, (2, -3), axis=(1, 2))
    np.testing.assert_allclose(conv(shifted), np.roll(conv(images), (2, -3), axis=(1, 2)),
                               atol=1e-5)
    # With zero padding only the interior is equivariant.
    zero = conv2d(images, kernel, padding=1)
    zero_shifted = conv2d(np.roll(images, 1, axis=2), kernel, padding=1)
    np.testing.assert_allclose(zero_shifted[:, 1:-1, 2:-1], zero[:, 1:-1, 1:-2], atol=1e-5)
    assert not np.allclose(zero_shifted[:, :, 1], zero[:, :, 0], atol=1e-3)


def _transpose_loop(images, kernel, stride, padding, output_padding):
    n, h, w, _ = images.shape
    kh, kw, _, cout = kernel.shape
    out_h = conv_transpose_output_size(h, kernel_size=kh, stride=stride, padding=padding,
                                       output_padding=output_padding)
    out_w = conv_transpose_output_size(w, kernel_size=kw, stride=stride, padding=padding,
                                       output_padding=output_padding)
    full = np.zeros((n, (h - 1) * stride + kh + output_padding, (w - 1) * stride + kw
                     + output_padding, cout))
    for i, j, m, l in itertools.product(range(h), range(w), range(kh), range(kw)):
        full[:, i * stride + m, j * stride + l] += images[:, i, j] @ kernel[m, l]
    return full[:, padding:padding + out_h, padding:padding + out_w]


@pytest.mark.parametrize("stride,padding,output_padding", [(2, 0, 0), (2, 1, 1), (3, 1, 0),
                                                           (1, 1, 0)])
def test_conv_transpose_scatter_definition(stride, padding, output_padding):
    rng = np.random.default_rng(6)
    images = rng.normal(size=(1, 4, 3, 2))
    kernel = rng.normal(size=(3, 3, 2, 5))
    ours = conv_transpose2d(images.astype(np.float32), kernel.astype(np.float32), stride=stride,
                            padding=padding, output_padding=output_padding)
    np.testing.assert_allclose(ours, _transpose_loop(images, kernel, stride, padding,
                                                     output_padding), rtol=1e-5, atol=1e-5)


def test_conv_transpose_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    images = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    weight = rng.normal(size=(3, 6, 3, 2)).astype(np.float32)  # torch (C_in, C_out, kh, kw)
    want = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(images.transpose(0, 3, 1, 2)), torch.from_numpy(weight), stride=2,
        padding=1, output_padding=1, dilation=2).numpy().transpose(0, 2, 3, 1)
    ours = conv_transpose2d(images, weight.transpose(2, 3, 0, 1), stride=2, padding=1,
                            output_padding=1, dilation=2)
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)


def test_conv2d_matches_torch_grouped_dilated():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    images = rng.normal(size=(2, 9, 8, 6)).astype(np.float32)
    weight = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)  # (C_out, C_in/groups, kh, kw)
    want = torch.nn.functional.conv2d(torch.from_numpy(images.transpose(0, 3, 1, 2)),
                                      torch.from_numpy(weight), stride=2, padding=2, dilation=2,
                                      groups=2).numpy().transpose(0, 2, 3, 1)
    ours = conv2d_reference(images, weight.transpose(2, 3, 1, 0), stride=2, padding=2,
                            dilation=2, groups=2)
    np.testing.assert_allclose(ours, want, rtol=1e-4, atol=1e-4)


def test_jit_and_vmap_safe():
    rng = np.random.default_rng(9)
    images = rng.normal(size=(3, 6, 6, 2)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 2, 2)).astype(np.float32)
    fn = jax.jit(jax.vmap(lambda x: conv2d_reference(x[None], kernel, padding=1,
                                                     padding_mode="reflect")[0]))
    np.testing.assert_allclose(fn(images), conv2d(images, kernel, padding=1,
                                                  padding_mode="reflect"), atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="NHWC"):
        conv2d_reference(IMAGE, hwio(EDGE))
    with pytest.raises(ValueError, match="groups=3"):
        conv2d_reference(np.zeros((1, 4, 4, 4)), np.zeros((3, 3, 4, 4)), groups=3)
    with pytest.raises(ValueError, match="needs 2"):
        conv2d(np.zeros((1, 4, 4, 4)), np.zeros((3, 3, 4, 4)), groups=2)
    with pytest.raises(ValueError, match="padding='full'"):
        conv2d(nhwc(IMAGE), hwio(EDGE), padding="full")
