"""The perspective op against torchvision's ``RandomPerspective`` semantics, without torchvision:
the homography of ``_get_perspective_coeffs`` (written here in float64 numpy), the image warp of
its ``_perspective_grid`` through ``torch.nn.functional.grid_sample`` (bilinear,
``align_corners=False``, fill by the ones-channel trick), the random corners, boxes against the
warped box rectangle, and jit/vmap against eager."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import box_iou, mask_box

import jaxvision.augment as A

RNG = np.random.default_rng(0)


def _coeffs_reference(startpoints, endpoints):
    """torchvision's ``_get_perspective_coeffs``: the 8x8 system mapping each end point to its
    start point, solved by least squares in float64."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(endpoints, startpoints)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i:2 * i + 2] = u, v
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _apply(coeffs, points):
    a, b, c, d, e, f, g, h = np.asarray(coeffs, np.float64)
    x, y = np.asarray(points, np.float64).T
    w = g * x + h * y + 1
    return np.stack([(a * x + b * y + c) / w, (d * x + e * y + f) / w], -1)


def _torch_perspective(image, coeffs, fill):
    """torchvision's tensor ``perspective``: output pixel centres (i + 0.5) through the
    coefficients, normalised by half the size minus 1, ``grid_sample`` with zeros padding of
    the image and of a ones channel (``_apply_grid_transform``). Returns torchvision's blend
    ``mask * sampled + (1 - mask) * fill`` and this library's border convention, where taps
    outside the image read ``fill``: ``sampled + (1 - mask) * fill``. The two agree wherever
    all four taps lie inside (mask 1), and differ in the one-pixel seam at the warped border
    (torchvision weights the sampled part by the mask twice)."""
    import torch

    height, width = image.shape[:2]
    a, b, c, d, e, f, g, h = (float(v) for v in coeffs)
    ys, xs = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    w = g * xs + h * ys + 1
    gx = (a * xs + b * ys + c) / w / (0.5 * width) - 1
    gy = (d * xs + e * ys + f) / w / (0.5 * height) - 1
    grid = torch.tensor(np.stack([gx, gy], -1)[None], dtype=torch.float64)
    img = torch.tensor(np.concatenate([image, np.ones(image.shape[:2] + (1,))], -1),
                       dtype=torch.float64).permute(2, 0, 1)[None]
    out = torch.nn.functional.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=False)[0].permute(1, 2, 0).numpy()
    sampled, mask = out[..., :-1], out[..., -1:]
    return mask * sampled + (1 - mask) * fill, sampled + (1 - mask) * fill, mask[..., 0]


def _corners(width, height):
    return np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])


COEFFS = jax.jit(A.perspective_coeffs)
POINTS = [
    (_corners(32, 32), np.array([[3, 2], [30, 5], [27, 29], [1, 31]])),
    (_corners(48, 40), np.array([[11, 9], [40, 0], [47, 30], [6, 39]])),
    (np.array([[2.5, 4.0], [50.0, 3.0], [55.0, 60.0], [1.0, 44.0]]),
     np.array([[0.0, 0.0], [63.0, 0.0], [63.0, 63.0], [0.0, 63.0]])),
]


@pytest.mark.parametrize("start,end", POINTS)
def test_homography_maps_the_end_points_to_the_start_points(start, end):
    coeffs = np.asarray(COEFFS(jnp.asarray(start, jnp.float32), jnp.asarray(end, jnp.float32)))
    np.testing.assert_allclose(_apply(coeffs, end), start, atol=1e-4)
    np.testing.assert_allclose(coeffs, _coeffs_reference(start, end), rtol=1e-4, atol=1e-6)
    # The inverse matrix (the forward warp of boxes) takes the start points to the end points.
    inverse = np.linalg.inv(np.append(coeffs, 1.0).reshape(3, 3))
    np.testing.assert_allclose(_apply((inverse / inverse[2, 2]).reshape(-1)[:8], start), end,
                               atol=1e-4)


def test_random_corners_follow_torchvision_bounds():
    """Corner ``k`` moves inwards by a whole number of pixels below
    ``int(distortion_scale * (size // 2)) + 1`` (here int(0.5 * 20) + 1 = 11 and
    int(0.5 * 15) + 1 = 8), every value of that range drawn."""
    keys = jax.random.split(jax.random.key(0), 400)
    start, end = jax.jit(jax.vmap(functools.partial(
        A.sample_perspective_points, height=31, width=40, distortion_scale=0.5)))(keys)
    start, end = np.asarray(start), np.asarray(end)
    np.testing.assert_array_equal(start[0], [[0, 0], [39, 0], [39, 30], [0, 30]])
    xs, ys = end[..., 0], end[..., 1]
    assert set(xs[:, 0]) == set(range(0, 11)) and set(xs[:, 3]) == set(range(0, 11))
    assert set(xs[:, 1]) == set(range(29, 40)) and set(xs[:, 2]) == set(range(29, 40))
    assert set(ys[:, 0]) == set(range(0, 8)) and set(ys[:, 1]) == set(range(0, 8))
    assert set(ys[:, 2]) == set(range(23, 31)) and set(ys[:, 3]) == set(range(23, 31))


def _sample(size=24):
    image = RNG.uniform(size=(size, size, 3)).astype(np.float32)
    mask = np.zeros((size, size), np.int32)
    mask[5:17, 4:15] = 1
    return {"image": jnp.asarray(image), "boxes": jnp.asarray([[4.0, 5.0, 15.0, 17.0]]),
            "boxes_valid": jnp.array([True]), "mask": jnp.asarray(mask)}


def test_zero_distortion_and_zero_probability_are_the_identity():
    sample = _sample()
    out = jax.jit(functools.partial(A.random_perspective, distortion_scale=0.0, probability=1.0))(
        jax.random.key(3), sample)
    np.testing.assert_allclose(np.asarray(out["image"]), np.asarray(sample["image"]), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out["mask"]), np.asarray(sample["mask"]))
    np.testing.assert_allclose(np.asarray(out["boxes"]), np.asarray(sample["boxes"]), atol=1e-3)
    assert bool(out["boxes_valid"][0])
    out = A.random_perspective(jax.random.key(3), sample, distortion_scale=0.9, probability=0.0)
    for key in sample:
        np.testing.assert_array_equal(np.asarray(out[key]), np.asarray(sample[key]))


@pytest.mark.parametrize("start,end", POINTS[:2])
def test_image_warp_matches_torch_grid_sample(start, end):
    """The warped image equals torchvision's grid (written above) sampled by torch's
    ``grid_sample`` with fill 0.3, to 1e-4 wherever the four taps lie inside the image; in the
    one-pixel seam at the warped border it follows this library's convention (outside taps
    read the fill, as the affine ops and scipy's constant mode), and outside it is the fill."""
    height, width = int(start[:, 1].max()) + 1, int(start[:, 0].max()) + 1
    image = RNG.uniform(size=(height, width, 3)).astype(np.float32)
    out = np.asarray(jax.jit(functools.partial(A.perspective, startpoints=start, endpoints=end,
                                               fill=0.3))(jnp.asarray(image)))
    torchvision, ours, mask = _torch_perspective(image.astype(np.float64),
                                                 _coeffs_reference(start, end), 0.3)
    interior = mask > 1 - 1e-9
    assert interior.mean() > 0.5 and (mask < 1e-9).any()
    np.testing.assert_allclose(out[interior], torchvision[interior], atol=1e-4)
    np.testing.assert_allclose(out, ours, atol=1e-4)
    np.testing.assert_allclose(out[mask < 1e-9], 0.3, atol=1e-6)


def _rectangles(batch=8, size=64):
    """One box per example and its filled rectangle as the semantic and the instance mask."""
    rng = np.random.default_rng(1)
    x1, y1 = rng.integers(4, 20, batch), rng.integers(4, 20, batch)
    x2, y2 = x1 + rng.integers(24, 40, batch), y1 + rng.integers(24, 40, batch)
    boxes = np.stack([x1, y1, x2, y2], -1).astype(np.float32)[:, None]
    masks = np.zeros((batch, size, size), np.int32)
    for i, (a, b, c, d) in enumerate(boxes[:, 0].astype(int)):
        masks[i, b:d, a:c] = 1
    return {"image": jnp.asarray(rng.uniform(size=(batch, size, size, 3)), jnp.float32),
            "boxes": jnp.asarray(boxes), "boxes_valid": jnp.ones((batch, 1), bool),
            "mask": jnp.asarray(masks), "instance_masks": jnp.asarray(masks[:, None], jnp.uint8)}


_RANDOM_PERSPECTIVE = jax.jit(jax.vmap(functools.partial(
    A.random_perspective, distortion_scale=0.5, probability=1.0)))


def test_boxes_follow_the_warped_rectangle():
    """The moved box of a rendered rectangle (its 4 corners through the homography, their
    extent) agrees with the extent of the warped rectangle mask: IoU >= 0.9 and each side
    within a pixel; the mask is resampled by nearest neighbour (labels never blended)."""
    samples = _rectangles()
    del samples["instance_masks"]
    out = jax.device_get(_RANDOM_PERSPECTIVE(jax.random.split(jax.random.key(5), 8), samples))
    for i in range(8):
        assert set(np.unique(out["mask"][i])) <= {0, 1}
        reference = mask_box(out["mask"][i])
        assert out["boxes_valid"][i, 0] and reference is not None
        assert box_iou(out["boxes"][i, 0], reference) >= 0.9, (i, out["boxes"][i, 0], reference)
        np.testing.assert_allclose(out["boxes"][i, 0], reference, atol=1.0)
    assert not np.allclose(out["boxes"][:, 0], np.asarray(samples["boxes"])[:, 0], atol=1.0)


@pytest.mark.slow  # a second compilation of the warp at 64 px: about 10 s on 2 loaded cores
def test_instance_masks_move_like_the_mask_and_give_the_boxes():
    """With instance masks, the boxes are the moved masks' own (as after every geometric op)
    and the instance masks move exactly like the semantic mask."""
    samples = _rectangles()
    out = jax.device_get(_RANDOM_PERSPECTIVE(jax.random.split(jax.random.key(5), 8), samples))
    np.testing.assert_array_equal(out["instance_masks"][:, 0], out["mask"])
    for i in range(8):
        np.testing.assert_array_equal(out["boxes"][i, 0], mask_box(out["instance_masks"][i, 0]))


def test_boxes_pushed_out_of_the_image_become_invalid():
    """A corner box that the warp moves off the image is dropped, as by the affine ops."""
    sample = {"image": jnp.zeros((32, 32, 3)), "boxes": jnp.asarray([[0.0, 0.0, 2.0, 2.0],
                                                                     [8.0, 8.0, 24.0, 24.0]]),
              "boxes_valid": jnp.array([True, True])}
    # The image shrinks towards its bottom-right: the top-left 2x2 box ends at 1 pixel or less.
    out = jax.jit(functools.partial(
        A.perspective, startpoints=_corners(32, 32),
        endpoints=[[15, 15], [31, 15], [31, 31], [15, 31]], min_box_size=1.5))(sample)
    np.testing.assert_array_equal(np.asarray(out["boxes_valid"]), [False, True])
    np.testing.assert_allclose(np.asarray(out["boxes"][0]), 0.0)
    x1, y1, x2, y2 = np.asarray(out["boxes"][1])
    assert 18 < x1 < x2 < 28 and 18 < y1 < y2 < 28


@pytest.mark.slow  # three compilations and an eager run: over 10 s on 2 loaded cores; the
# default suite checks the same for every op in test_augment_consistency.py
def test_jit_and_vmap_equal_eager():
    """jit(vmap) over a batch equals jit of each example with its key, and the eager call of
    the first example (eager runs op by op: slow, so once)."""
    samples = _rectangles(batch=3, size=24)
    del samples["instance_masks"]
    keys = jax.random.split(jax.random.key(9), 3)
    op = functools.partial(A.random_perspective, distortion_scale=0.5, probability=0.7)
    batched = jax.jit(jax.vmap(op))(keys, samples)
    single = jax.jit(op)
    for i in range(3):
        one = single(keys[i], jax.tree.map(lambda v: v[i], samples))
        for key in samples:
            np.testing.assert_allclose(np.asarray(batched[key][i]), np.asarray(one[key]),
                                       atol=1e-5, err_msg=key)
    eager = op(keys[0], jax.tree.map(lambda v: v[0], samples))
    for key in samples:
        np.testing.assert_allclose(np.asarray(batched[key][0]), np.asarray(eager[key]),
                                   atol=1e-5, err_msg=key)
    # Same key, same output; an array image gives an array back.
    again = jax.jit(jax.vmap(op))(keys, samples)
    np.testing.assert_array_equal(np.asarray(again["image"]), np.asarray(batched["image"]))
    assert single(keys[0], samples["image"][0]).shape == (24, 24, 3)


def test_perspective_is_a_config_op_with_checked_options():
    ops, options = A.resolve({"ops": ["perspective"],
                              "perspective": {"distortion_scale": 0.3, "probability": 1.0}})
    assert ops == ["perspective"] and options["perspective"]["distortion_scale"] == 0.3
    with pytest.raises(ValueError, match="distortion_scale must lie in"):
        A.resolve({"ops": ["perspective"], "perspective_distortion_scale": 1.5})
    with pytest.raises(ValueError, match="interpolation must be one of"):
        A.resolve({"ops": ["perspective"], "perspective_interpolation": "cubic"})
    from jaxvision.train import config as C

    assert "perspective.distortion_scale" in C.augment_options()
