"""Boxes follow the image: a box drawn as a filled rectangle in the mask, transformed as an image,
agrees with the transformed box; boxes pushed out of the image become invalid. The same rectangle
as an instance mask moves exactly like the semantic mask."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import box_iou, mask_box

import jaxvision.augment as A

SIZE, BATCH = 48, 8


def _samples():
    """One box per example (random size and place) plus its filled rectangle as the semantic
    and the instance mask."""
    rng = np.random.default_rng(0)
    x1 = rng.integers(4, 20, BATCH)
    y1 = rng.integers(4, 20, BATCH)
    x2 = x1 + rng.integers(20, 28, BATCH)
    y2 = y1 + rng.integers(20, 28, BATCH)
    boxes = np.stack([x1, y1, x2, y2], -1).astype(np.float32)[:, None]
    masks = np.zeros((BATCH, SIZE, SIZE), np.int32)
    for i, (a, b, c, d) in enumerate(boxes[:, 0].astype(int)):
        masks[i, b:d, a:c] = 1
    images = rng.uniform(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32)
    return {"image": jnp.asarray(images), "boxes": jnp.asarray(boxes),
            "boxes_valid": jnp.ones((BATCH, 1), bool), "mask": jnp.asarray(masks),
            "instance_masks": jnp.asarray(masks[:, None], jnp.uint8)}




GEOMETRIC = {
    "flip": (A.random_flip_left_right, {}, 0.999),
    "vflip": (A.random_flip_up_down, {}, 0.999),
    # Constant padding: a reflected border would mirror the rectangle into the mask too.
    "crop": (A.random_pad_crop, dict(padding=6, mode="constant"), 0.999),
    "random_resized_crop": (A.random_resized_crop, dict(scale=(0.3, 1.0), min_box_size=4.0), 0.9),
    "center_crop": (A.center_crop_resize, dict(crop_fraction=0.75, size=(40, 40)), 0.9),
    "rotate": (A.random_rotate, dict(degrees=30.0), 0.9),
    "translate": (A.random_translate, dict(fraction=(0.2, 0.2)), 0.999),
    "shear": (A.random_shear, dict(shear_x=0.3, shear_y=0.3), 0.9),
    "zoom": (A.random_zoom, dict(scale=(0.8, 1.4)), 0.9),
    "affine": (A.random_affine, dict(degrees=20.0, translate=(0.1, 0.1), scale=(0.8, 1.2),
                                     shear_x=0.2), 0.9),
    "elastic": (A.random_elastic, dict(alpha=30.0, sigma=4.0), 0.999),
    # One op: composing two warps makes the box of a box, a looser (conservative) bound.
    "randaugment": (functools.partial(A.randaugment, num_ops=1, ops=("rotate", "shear_x")),
                    {}, 0.9),
}


@pytest.mark.parametrize("with_instances", [False, True])
@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_transformed_box_matches_transformed_mask(name, with_instances):
    """Without instance masks the boxes' corners are mapped (checked against the moved
    semantic mask); with them the boxes are the moved instance masks' own, exactly."""
    op, options, min_iou = GEOMETRIC[name]
    keys = jax.random.split(jax.random.key(11), BATCH)
    samples = _samples()
    if not with_instances:
        del samples["instance_masks"]
    out = jax.jit(jax.vmap(functools.partial(op, **options)))(keys, samples)
    boxes, valid = np.asarray(out["boxes"])[:, 0], np.asarray(out["boxes_valid"])[:, 0]
    masks = np.asarray(out["mask"])
    assert set(np.unique(masks)) <= {0, 1}  # nearest neighbour: labels are never blended
    if with_instances:
        instances = np.asarray(out["instance_masks"])[:, 0]
        assert instances.dtype == np.uint8
        # Instance masks move like the semantic mask; those of invalidated boxes are cleared.
        np.testing.assert_array_equal(instances, np.where(valid[:, None, None], masks, 0))
        for i in np.flatnonzero(valid):
            np.testing.assert_array_equal(boxes[i], mask_box(instances[i]))
        assert not boxes[~valid].any()
        min_iou = 1.0
    checked = 0
    for i in range(BATCH):
        reference = mask_box(masks[i])
        if not valid[i]:
            # Invalid only when the mask shows (almost) nothing left of the box.
            assert reference is None or min(reference[2:] - reference[:2]) < 6, (name, i, reference)
            continue
        assert reference is not None, (name, i, boxes[i])
        iou = box_iou(boxes[i], reference)
        assert iou >= min_iou, (name, i, boxes[i], reference, iou)
        checked += 1
    assert checked >= BATCH // 2


def test_boxes_that_leave_the_image_become_invalid():
    sample = {"image": jnp.zeros((32, 32, 3)),
              "boxes": jnp.array([[1.0, 1.0, 5.0, 5.0], [10.0, 10.0, 30.0, 30.0], [0, 0, 0, 0]]),
              "boxes_valid": jnp.array([True, True, False]), "mask": jnp.zeros((32, 32), jnp.int32)}
    out = A.affine(sample, translate_x=-8.0, translate_y=-8.0, min_box_size=1.0)
    np.testing.assert_array_equal(np.asarray(out["boxes_valid"]), [False, True, False])
    np.testing.assert_allclose(np.asarray(out["boxes"][1]), [2, 2, 22, 22])
    np.testing.assert_allclose(np.asarray(out["boxes"][0]), [0, 0, 0, 0])
    # A box clipped to a sliver thinner than min_box_size is dropped too.
    out = A.affine(sample, translate_x=-9.0, min_box_size=2.0)
    assert not bool(out["boxes_valid"][0])
    out = A.crop_and_resize(sample, top=0, left=0, crop_height=16, crop_width=16, size=(32, 32),
                            min_box_size=1.0)
    np.testing.assert_array_equal(np.asarray(out["boxes_valid"]), [True, True, False])
    np.testing.assert_allclose(np.asarray(out["boxes"][:2]), [[2, 2, 10, 10], [20, 20, 32, 32]])


def test_box_aware_pad_crop_leaves_no_visible_object_without_a_box():
    """``shapes`` images whose objects touch the border, with their boxes and instance masks:
    after a reflect pad-crop (the default mode) every visible object pixel lies in a valid
    instance mask and inside that object's box. The image is the objects' indicator, so a
    mirrored copy of an object would show as an object pixel that no mask or box covers."""
    from jaxvision.data import shapes

    spec = shapes.ShapesSpec(image_size=24, min_objects=2, max_objects=3, min_radius_frac=0.2,
                             max_radius_frac=0.35)
    data = shapes.generate(spec, "train", 16)
    objects = data["semantic_mask"] > 0
    assert objects[:, :, :3].any() and objects[:, :, -3:].any()  # objects at the borders
    batch = {"image": jnp.asarray(np.repeat(objects[..., None], 3, -1), jnp.float32),
             "mask": jnp.asarray(data["semantic_mask"], jnp.int32),
             "instance_masks": jnp.asarray(data["instance_masks"], jnp.uint8),
             "boxes": jnp.asarray(data["boxes"]), "boxes_valid": jnp.asarray(data["valid"])}
    for seed in range(4):
        keys = jax.random.split(jax.random.key(seed), 16)
        out = jax.device_get(jax.vmap(functools.partial(A.random_pad_crop, padding=8))(keys, batch))
        visible = out["image"][..., 0] > 0.5
        valid = out["boxes_valid"]
        instances = out["instance_masks"].astype(bool) & valid[:, :, None, None]
        assert (visible == instances.any(1)).all()  # no pixel of an object without its mask
        assert (visible == (out["mask"] > 0)).all()
        ys, xs = np.mgrid[:24, :24] + 0.5
        for i, k in zip(*np.nonzero(valid)):
            x1, y1, x2, y2 = out["boxes"][i, k]
            inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
            assert not (instances[i, k] & ~inside).any()  # each object within its box
    # Without boxes or instance masks (classification), reflect still mirrors the border.
    image_only = jax.vmap(functools.partial(A.random_pad_crop, padding=8))(
        jax.random.split(jax.random.key(0), 16), batch["image"])
    assert (np.asarray(image_only[..., 0]) > 0.5).sum() > objects.sum()
