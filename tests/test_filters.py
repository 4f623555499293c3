"""Filter bank and apply_filter: the classic kernels, scipy.ndimage agreement for
every padding mode, and the orientation behaviour of Sobel/Gabor filters."""

import math

import jax
import numpy as np
import pytest
from scipy import ndimage
from scipy.signal.windows import gaussian as gaussian_window

from jaxvision.ops import filters

IMAGE = np.array([[10, 20, 15, 25, 30], [40, 50, 60, 32, 18], [25, 33, 45, 60, 80],
                  [15, 20, 30, 40, 50], [40, 30, 25, 15, 10]], np.float32)


def test_bank_matches_course_matrices():
    np.testing.assert_array_equal(filters.edge_kernel(), [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    np.testing.assert_array_equal(filters.sobel_y(), [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    np.testing.assert_array_equal(filters.sobel_x(), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(filters.binomial_kernel(3),
                                  [[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8],
                                   [1 / 16, 1 / 8, 1 / 16]])
    np.testing.assert_array_equal(filters.sharpen_kernel(), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    np.testing.assert_array_equal(filters.prewitt_y(), [[-1, -1, -1], [0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(filters.prewitt_x(), [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
    np.testing.assert_array_equal(filters.diagonal_edge_kernel(),
                                  [[-1, -1, 0], [-1, 0, 1], [0, 1, 1]])
    # Sums: edge detectors 0, smoothing and sharpening 1 (brightness kept).
    for name, kernel in filters.filter_bank().items():
        want = 1.0 if ("blur" in name or name == "sharpen") else 0.0
        assert float(kernel.sum()) == pytest.approx(want), name
    # Sharpen = identity + the 4-neighbour edge kernel.
    identity = np.zeros((3, 3), np.float32)
    identity[1, 1] = 1.0
    np.testing.assert_array_equal(filters.sharpen_kernel() - identity,
                                  filters.edge_kernel(diagonals=False))


def test_apply_filter_worked_values():
    # The worked edge and Sobel maps through the 2-D filter path.
    np.testing.assert_array_equal(filters.apply_filter(IMAGE, filters.edge_kernel(),
                                                       padding="valid"),
                                  [[152, 200, -77], [-21, 35, 125], [-83, -28, 5]])
    np.testing.assert_array_equal(filters.apply_filter(IMAGE, filters.sobel_x(), padding="valid"),
                                  [[65, -4, -34], [75, 56, 48], [35, 52, 60]])
    np.testing.assert_allclose(filters.apply_filter(IMAGE, filters.binomial_kernel(),
                                                    padding="valid"),
                               [[37.5625, 41.375, 39.0], [34.8125, 43.0, 49.5],
                                [26.9375, 32.375, 39.375]])
    assert filters.apply_filter(IMAGE, filters.edge_kernel()).shape == (5, 5)  # 'same' default


# numpy/jnp mode -> scipy.ndimage mode (scipy's "reflect" is numpy's "symmetric").
SCIPY_MODES = [("zeros", "constant"), ("reflect", "mirror"), ("symmetric", "reflect"),
               ("replicate", "nearest"), ("circular", "wrap")]


@pytest.mark.parametrize("mode,scipy_mode", SCIPY_MODES)
def test_same_padding_modes_match_scipy_ndimage(mode, scipy_mode):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(7, 6, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 3)).astype(np.float32)
    ours = filters.apply_filter(image, kernel, padding_mode=mode)
    want = np.stack([ndimage.correlate(image[..., c], kernel, mode=scipy_mode, cval=0.0)
                     for c in range(3)], axis=-1)
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5)


def test_kernel_ranks_decide_channel_mixing():
    rng = np.random.default_rng(1)
    batch = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    k2 = rng.normal(size=(3, 3)).astype(np.float32)
    k3 = rng.normal(size=(3, 3, 3)).astype(np.float32)
    k4 = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    out2 = filters.apply_filter(batch, k2, padding="valid")
    assert out2.shape == (2, 4, 3, 3)
    np.testing.assert_allclose(out2[1, ..., 2], ndimage.correlate(batch[1, ..., 2], k2)[1:-1, 1:-1],
                               rtol=1e-5, atol=1e-5)
    out3 = filters.apply_filter(batch[0], k3, padding="valid")
    assert out3.shape == (4, 3, 1)
    want3 = sum(ndimage.correlate(batch[0, ..., c], k3[..., c])[1:-1, 1:-1] for c in range(3))
    np.testing.assert_allclose(out3[..., 0], want3, rtol=1e-5, atol=1e-5)
    out4 = filters.apply_filter(batch, k4, padding=1, stride=2)
    assert out4.shape == (2, 3, 3, 4)
    # Integer images are promoted to float.
    assert filters.apply_filter(IMAGE.astype(np.uint8), filters.box_kernel()).dtype == np.float32
    with pytest.raises(ValueError, match="channels"):
        filters.apply_filter(batch, k3[..., :2])


def test_sobel_orientation():
    # Dark left, bright right: a vertical edge. sobel_x fires, sobel_y does not.
    step = np.zeros((6, 6), np.float32)
    step[:, 3:] = 1.0
    gx = filters.apply_filter(step, filters.sobel_x(), padding="valid")
    gy = filters.apply_filter(step, filters.sobel_y(), padding="valid")
    assert float(gx.max()) == 4.0 and float(abs(gy).max()) == 0.0
    gy_t = filters.apply_filter(step.T, filters.sobel_y(), padding="valid")
    assert float(gy_t.max()) == 4.0


def test_gaussian_matches_scipy_window_and_binomial_limit():
    kernel = filters.gaussian_kernel(size=7, sigma=1.5)
    window = gaussian_window(7, std=1.5)
    np.testing.assert_allclose(kernel, np.outer(window, window) / window.sum() ** 2, rtol=1e-6)
    assert float(kernel.sum()) == pytest.approx(1.0)
    np.testing.assert_allclose(filters.binomial_kernel(5).sum(), 1.0)
    np.testing.assert_array_equal(filters.binomial_kernel(5)[0], np.array([1, 4, 6, 4, 1]) / 256)


def test_gabor_orientation_selectivity():
    size, wavelength = 15, 5.0
    vertical = filters.gabor_kernel(size=size, sigma=3.0, theta=0.0, wavelength=wavelength)
    horizontal = filters.gabor_kernel(size=size, sigma=3.0, theta=math.pi / 2,
                                      wavelength=wavelength)
    np.testing.assert_allclose(horizontal, np.asarray(vertical).T, atol=1e-6)
    # Centre value is the envelope peak times cos(phase).
    assert float(vertical[7, 7]) == pytest.approx(1.0)
    odd = filters.gabor_kernel(size=size, sigma=3.0, theta=0.0, wavelength=wavelength,
                               phase=math.pi / 2)
    assert float(odd[7, 7]) == pytest.approx(0.0, abs=1e-6)
    # Response to a vertical-stripe grating of the same wavelength: strong for theta=0, weak
    # for theta=90 degrees.
    cols = np.arange(31, dtype=np.float32)
    grating = np.tile(np.cos(2 * math.pi * cols / wavelength), (31, 1)).astype(np.float32)
    r_v = float(abs(filters.apply_filter(grating, vertical, padding="valid")).max())
    r_h = float(abs(filters.apply_filter(grating, horizontal, padding="valid")).max())
    assert r_v > 10 * r_h


def test_jit_safe():
    out = jax.jit(lambda im: filters.apply_filter(im, filters.sobel_x(), padding_mode="reflect"))(
        IMAGE)
    np.testing.assert_allclose(out, ndimage.correlate(IMAGE, np.asarray(filters.sobel_x()),
                                                      mode="mirror"), atol=1e-4)


def test_errors():
    with pytest.raises(ValueError, match="sigma"):
        filters.gaussian_kernel(size=3, sigma=0.0)
    with pytest.raises(ValueError, match="rank 2, 3 or 4"):
        filters.apply_filter(IMAGE, np.zeros((1, 1, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        filters.apply_filter(np.zeros(5), filters.sobel_x())
