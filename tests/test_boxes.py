"""Box formats and box utilities against worked vectors and torchvision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import boxes as B


def test_conversion_vector_from_notes():
    xyxy = np.array([10.0, 20.0, 50.0, 80.0])
    np.testing.assert_array_equal(B.xyxy_to_cxcywh(xyxy), [30, 50, 40, 60])
    np.testing.assert_array_equal(B.cxcywh_to_xyxy(np.array([30.0, 50, 40, 60])), xyxy)
    np.testing.assert_array_equal(B.xyxy_to_xywh(xyxy), [10, 20, 40, 60])
    np.testing.assert_array_equal(B.xyxy_to_yxyx(xyxy), [20, 10, 80, 50])
    # Image-relative normalization (W=100, H=200) of the centre format: [0.3, 0.25, 0.4, 0.3].
    normalized = B.normalize_boxes(np.array([30.0, 50, 40, 60]), height=200, width=100,
                                   box_format="cxcywh")
    np.testing.assert_allclose(normalized, [0.3, 0.25, 0.4, 0.3], rtol=1e-7)


def test_all_round_trips_and_tfds_normalized_yxyx():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (7, 2))
    xyxy = np.concatenate([xy, xy + rng.uniform(1, 30, (7, 2))], axis=1).astype(np.float32)
    for fmt in B.BOX_FORMATS:
        there = B.convert_boxes(xyxy, source="xyxy", target=fmt)
        back = B.convert_boxes(there, source=fmt, target="xyxy")
        np.testing.assert_allclose(back, xyxy, atol=1e-5)
    # TFDS: normalized yxyx -> pixel xyxy.
    height, width = 80.0, 120.0
    tfds_boxes = np.stack([xyxy[:, 1] / height, xyxy[:, 0] / width,
                           xyxy[:, 3] / height, xyxy[:, 2] / width], axis=1)
    pixels = B.yxyx_to_xyxy(B.denormalize_boxes(tfds_boxes, height=height, width=width,
                                                box_format="yxyx"))
    np.testing.assert_allclose(pixels, xyxy, rtol=1e-5)
    with pytest.raises(ValueError, match="xyxy"):
        B.convert_boxes(xyxy, source="xyxy", target="ltrb")


def test_area_clip_small_and_ordering():
    boxes = np.array([[-5.0, 2, 30, 40], [0, 0, 1, 3], [4, 4, 4.5, 9]], np.float32)
    np.testing.assert_allclose(B.box_area(boxes), [35 * 38, 3, 2.5])
    np.testing.assert_array_equal(B.clip_boxes(boxes, height=20, width=25),
                                  [[0, 2, 25, 20], [0, 0, 1, 3], [4, 4, 4.5, 9]])
    np.testing.assert_array_equal(B.remove_small_boxes(boxes, min_size=1.0), [True, True, False])
    np.testing.assert_array_equal(B.order_box_corners(np.array([5.0, 9, 1, 2])), [1, 2, 5, 9])


def test_masks_to_boxes_matches_numpy_and_jit_vmap():
    rng = np.random.default_rng(1)
    masks = np.zeros((4, 9, 11), bool)
    for i in range(3):
        masks[i] = rng.uniform(size=(9, 11)) < 0.08
        masks[i, rng.integers(0, 9), rng.integers(0, 11)] = True
    boxes, valid = jax.jit(B.masks_to_boxes)(masks)
    for i in range(3):  # torchvision's convention: indices of the first/last foreground pixel
        ys, xs = np.nonzero(masks[i])
        np.testing.assert_array_equal(boxes[i], [xs.min(), ys.min(), xs.max(), ys.max()])
    np.testing.assert_array_equal(valid, [True, True, True, False])
    np.testing.assert_array_equal(boxes[3], 0)
    vboxes, _ = jax.vmap(B.masks_to_boxes)(masks[None])
    np.testing.assert_array_equal(vboxes[0], boxes)


def test_masks_to_boxes_single_mask():
    mask = jnp.zeros((6, 8), bool).at[2:4, 1:6].set(True)
    boxes, valid = B.masks_to_boxes(mask)
    np.testing.assert_array_equal(boxes, [1, 2, 5, 3])
    assert bool(valid)
