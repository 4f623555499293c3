"""Padding modes: equal to numpy.pad, and worked padding diagrams (a reflect diagram that pads
one side only, and a replication diagram of the wrong shape, corrected)."""

import jax
import numpy as np
import pytest

from jaxvision.ops.padding import numpy_pad_mode, pad_images, padding_pairs

MODES = [("zeros", "constant"), ("reflect", "reflect"), ("symmetric", "symmetric"),
         ("replicate", "edge"), ("circular", "wrap")]


@pytest.mark.parametrize("mode,np_mode", MODES)
@pytest.mark.parametrize("pads", [1, (2, 1), ((0, 2), (3, 1))])
def test_modes_equal_numpy_pad(mode, np_mode, pads):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    (top, bottom), (left, right) = padding_pairs(pads)
    want = np.pad(images, ((0, 0), (top, bottom), (left, right), (0, 0)), mode=np_mode)
    np.testing.assert_array_equal(pad_images(images, pads, mode=mode), want)
    np.testing.assert_array_equal(pad_images(images, pads, mode=np_mode), want)
    # HW and HWC inputs pad the same two axes.
    np.testing.assert_array_equal(pad_images(images[0], pads, mode=mode), want[0])
    np.testing.assert_array_equal(pad_images(images[0, ..., 0], pads, mode=mode), want[0, ..., 0])


def test_circular_and_symmetric_wider_than_image_follow_numpy():
    image = np.arange(6, dtype=np.float32).reshape(2, 3)
    for mode in ("circular", "symmetric", "replicate"):
        np.testing.assert_array_equal(pad_images(image, 4, mode=mode),
                                      np.pad(image, 4, mode=numpy_pad_mode(mode)))


def test_constant_value():
    image = np.ones((2, 2), np.float32)
    out = np.asarray(pad_images(image, 1, value=-np.inf))
    assert np.isneginf(out[0]).all() and (out[1:3, 1:3] == 1).all()


# A worked 3x3 image P1..P9, row-major, encoded as 1..9.
P = np.arange(1, 10, dtype=np.float32).reshape(3, 3)


def test_c1_reflection_diagram_is_symmetric_mode():
    # The text's "reflection" rows [P2 P1 P1 P2 P3] repeat the edge pixel: mode symmetric,
    # two columns on the left only (the diagram pads one side). PyTorch-style reflect would give
    # P3 P2 P1 P2 P3.
    want = [[2, 1, 1, 2, 3], [5, 4, 4, 5, 6], [8, 7, 7, 8, 9]]
    np.testing.assert_array_equal(pad_images(P, ((0, 0), (2, 0)), mode="symmetric"), want)
    assert not np.array_equal(pad_images(P, ((0, 0), (2, 0)), mode="reflect"), want)


def test_c1_replication_diagram_is_edge_mode():
    # The text shows 3 of the 4 rows of top=1, left=2 edge padding.
    out = np.asarray(pad_images(P, ((1, 0), (2, 0)), mode="replicate"))
    np.testing.assert_array_equal(out[:3], [[1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [4, 4, 4, 5, 6]])
    np.testing.assert_array_equal(out[3], [7, 7, 7, 8, 9])  # the row the text omits


def test_c1_circular_diagram_is_wrap_mode():
    out = np.asarray(pad_images(P, 1, mode="circular"))
    np.testing.assert_array_equal(out[:3], [[9, 7, 8, 9, 7], [3, 1, 2, 3, 1], [6, 4, 5, 6, 4]])
    np.testing.assert_array_equal(out[3:], [[9, 7, 8, 9, 7], [3, 1, 2, 3, 1]])


# A worked 4x4 image: A..P = 1..16 in a 4x4 grid, pad 1.
A = np.arange(1, 17, dtype=np.float32).reshape(4, 4)


def test_c2_zero_padding_diagram():
    want = [[0, 0, 0, 0, 0, 0], [0, 1, 2, 3, 4, 0], [0, 5, 6, 7, 8, 0], [0, 9, 10, 11, 12, 0],
            [0, 13, 14, 15, 16, 0], [0, 0, 0, 0, 0, 0]]
    np.testing.assert_array_equal(pad_images(A, 1, mode="zeros"), want)


def test_c2_reflection_diagram():
    want = [[6, 5, 6, 7, 8, 7], [2, 1, 2, 3, 4, 3], [6, 5, 6, 7, 8, 7], [10, 9, 10, 11, 12, 11],
            [14, 13, 14, 15, 16, 15], [10, 9, 10, 11, 12, 11]]
    np.testing.assert_array_equal(pad_images(A, 1, mode="reflect"), want)


def test_c2_replication_diagram_corrected_to_6x6():
    # The text draws 6 rows x 8 columns ("A A A B C D D D"); pad 1 gives 6 x 6.
    want = [[1, 1, 2, 3, 4, 4], [1, 1, 2, 3, 4, 4], [5, 5, 6, 7, 8, 8], [9, 9, 10, 11, 12, 12],
            [13, 13, 14, 15, 16, 16], [13, 13, 14, 15, 16, 16]]
    out = pad_images(A, 1, mode="replicate")
    assert out.shape == (6, 6)
    np.testing.assert_array_equal(out, want)


def test_c2_circular_diagram():
    want = [[16, 13, 14, 15, 16, 13], [4, 1, 2, 3, 4, 1], [8, 5, 6, 7, 8, 5],
            [12, 9, 10, 11, 12, 9], [16, 13, 14, 15, 16, 13], [4, 1, 2, 3, 4, 1]]
    np.testing.assert_array_equal(pad_images(A, 1, mode="circular"), want)


def test_jit_and_vmap():
    batch = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    padded = jax.jit(jax.vmap(lambda im: pad_images(im, 1, mode="reflect")))(batch)
    np.testing.assert_array_equal(padded, np.pad(batch, ((0, 0), (1, 1), (1, 1)), mode="reflect"))


def test_errors_name_the_value_and_fix():
    with pytest.raises(ValueError, match="'mirror'.*'reflect'"):
        pad_images(A, 1, mode="mirror")
    with pytest.raises(ValueError, match="ReflectionPad2d"):
        pad_images(A, 4, mode="reflect")
    with pytest.raises(ValueError, match="rank 5"):
        pad_images(np.zeros((1, 1, 2, 2, 1)), 1)
    with pytest.raises(ValueError, match="non-negative"):
        pad_images(A, ((1, -1), (0, 0)))
    with pytest.raises(ValueError, match="same_padding"):
        pad_images(A, "same")
