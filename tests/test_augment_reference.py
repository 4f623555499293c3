"""Reference checks against numpy, scipy, PIL and worked values on fixed inputs."""

import colorsys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image, ImageEnhance, ImageOps

import jaxvision.augment as A

RNG = np.random.default_rng(0)
IMAGE = RNG.uniform(size=(16, 16, 3)).astype(np.float32)
UINT8 = RNG.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
BOX = np.array([[2.0, 3.0, 10.0, 12.0]], np.float32)


def _jv(fn):
    """jit(vmap(fn)): one compilation instead of many eager primitive calls."""
    return jax.jit(jax.vmap(fn))


def _sample(image=IMAGE):
    mask = np.zeros(image.shape[:2], np.int32)
    mask[3:12, 2:10] = 1
    return {"image": jnp.asarray(image), "boxes": jnp.asarray(BOX),
            "boxes_valid": jnp.array([True]), "mask": jnp.asarray(mask)}


def _pil(array_uint8):
    return Image.fromarray(array_uint8)


def _f(array_uint8):
    return jnp.asarray(array_uint8, jnp.float32) / 255.0


def _u(image):
    return np.asarray(image) * 255.0


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def test_flips_move_image_mask_and_boxes():
    s = _sample()
    lr, ud = A.flip_left_right(s), A.flip_up_down(s)
    np.testing.assert_array_equal(np.asarray(lr["image"]), IMAGE[:, ::-1])
    np.testing.assert_array_equal(np.asarray(ud["image"]), IMAGE[::-1])
    np.testing.assert_array_equal(np.asarray(lr["mask"]), np.asarray(s["mask"])[:, ::-1])
    np.testing.assert_array_equal(np.asarray(lr["boxes"]), [[16 - 10, 3, 16 - 2, 12]])
    np.testing.assert_array_equal(np.asarray(ud["boxes"]), [[2, 16 - 12, 10, 16 - 3]])
    # The random flip is either the identity or the flip, and both happen.
    keys = jax.random.split(jax.random.key(0), 16)
    outs = np.asarray(_jv(A.random_flip_left_right)(keys, jnp.stack([IMAGE] * 16)))
    flipped = [np.array_equal(o, IMAGE[:, ::-1]) for o in outs]
    same = [np.array_equal(o, IMAGE) for o in outs]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)


@pytest.mark.parametrize("with_boxes", [True, False])
def test_pad_crop_is_a_window_of_the_padded_image(with_boxes):
    """A window of the image padded by 4: reflected for an image and its semantic mask, with
    zeros once the sample has boxes (a mirrored object would have no box)."""
    s = _sample()
    if not with_boxes:
        s = {"image": s["image"], "mask": s["mask"]}
    keys = jax.random.split(jax.random.key(1), 6)
    outs = _jv(lambda k: A.random_pad_crop(k, s, padding=4))(keys)
    mode = "constant" if with_boxes else "reflect"
    padded = np.pad(IMAGE, ((4, 4), (4, 4), (0, 0)), mode=mode)
    padded_mask = np.pad(np.asarray(s["mask"]), 4, mode=mode)
    offsets = set()
    for i in range(6):
        image = np.asarray(outs["image"][i])
        hits = [(y, x) for y in range(9) for x in range(9)
                if np.array_equal(padded[y:y + 16, x:x + 16], image)]
        assert len(hits) == 1
        y, x = hits[0]
        offsets.add((y, x))
        np.testing.assert_array_equal(np.asarray(outs["mask"][i]), padded_mask[y:y + 16, x:x + 16])
        if with_boxes:
            expected = np.clip(BOX[0] + [4 - x, 4 - y, 4 - x, 4 - y], 0, 16)
            np.testing.assert_allclose(np.asarray(outs["boxes"][i, 0]), expected)
    assert len(offsets) > 1


@pytest.mark.parametrize("box,size", [((2, 3, 10, 8), (16, 16)), ((0, 0, 16, 16), (6, 6))])
def test_crop_and_resize_matches_pil_bilinear(box, size):
    left, top, right, bottom = box
    out = A.crop_and_resize(jnp.asarray(IMAGE), top=top, left=left, crop_height=bottom - top,
                            crop_width=right - left, size=size)
    ref = np.stack([np.asarray(Image.fromarray(IMAGE[..., c], mode="F").resize(
        size[::-1], Image.BILINEAR, box=box)) for c in range(3)], -1)
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


def test_crop_and_resize_moves_boxes_and_masks():
    s = _sample()
    out = A.crop_and_resize(s, top=2, left=1, crop_height=8, crop_width=8, size=(16, 16))
    # x -> (x - 1) * 2, y -> (y - 2) * 2, clipped to 16.
    np.testing.assert_allclose(np.asarray(out["boxes"]), [[2, 2, 16, 16]])
    mask = np.asarray(s["mask"])[2:10, 1:9].repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(np.asarray(out["mask"]), mask)


def test_random_resized_crop_boxes_respect_scale_and_ratio():
    keys = jax.random.split(jax.random.key(2), 512)
    top, left, h, w = _jv(lambda k: A.sample_crop_box(k, height=64, width=48))(keys)
    top, left, h, w = (np.asarray(v) for v in (top, left, h, w))
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 64).all() and (left + w <= 48).all()
    area = h * w / (64 * 48)
    # Rounding of w and h allows a little slack around scale=(0.08, 1) and ratio=(3/4, 4/3).
    assert area.min() > 0.06 and area.max() <= 1.0
    ratio = w / h
    assert ratio.min() > 0.7 and ratio.max() < 1.45
    assert area.std() > 0.1  # areas spread over the range


def test_rotation_by_90_matches_rot90_for_image_mask_and_box():
    s = _sample()
    out = A.affine(s, angle_degrees=90.0)
    np.testing.assert_allclose(np.asarray(out["image"]), np.rot90(IMAGE), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out["mask"]), np.rot90(np.asarray(s["mask"])))
    # Counter-clockwise: (x, y) -> (y, W - x).
    np.testing.assert_allclose(np.asarray(out["boxes"]), [[3, 16 - 10, 12, 16 - 2]], atol=1e-4)


@pytest.mark.parametrize("angle", [17.0, -33.0])
def test_rotation_matches_scipy(angle):
    out = A.affine(jnp.asarray(IMAGE), angle_degrees=angle)
    ref = ndi.rotate(IMAGE, angle, reshape=False, order=1, mode="grid-constant")
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


def test_shear_and_zoom_match_scipy_affine_transform():
    c = 8.0  # centre of a 16-pixel side in continuous coordinates
    shear = 0.3
    out = A.affine(jnp.asarray(IMAGE), shear_x=shear)
    # Output index (r, c) reads input index (r, c - s (r + 0.5 - centre)).
    matrix = np.array([[1.0, 0.0, 0.0], [-shear, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ref = ndi.affine_transform(IMAGE, matrix, offset=(0.0, shear * (c - 0.5), 0.0), order=1,
                               mode="grid-constant")
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)
    zoom = 1.25
    out = A.affine(jnp.asarray(IMAGE), scale=zoom)
    o = (c - 0.5) * (1 - 1 / zoom)
    ref = ndi.affine_transform(IMAGE, np.diag([1 / zoom, 1 / zoom, 1.0]), offset=(o, o, 0.0),
                               order=1, mode="grid-constant")
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


def test_translation_shifts_by_whole_pixels():
    s = _sample()
    out = A.affine(s, translate_x=3.0, translate_y=-2.0)
    expected = np.zeros_like(IMAGE)
    expected[:14, 3:] = IMAGE[2:, :13]
    np.testing.assert_allclose(np.asarray(out["image"]), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out["boxes"]), [[5, 1, 13, 10]])


def test_elastic_with_zero_alpha_is_identity():
    s = _sample()
    out = A.random_elastic(jax.random.key(0), s, alpha=0.0, sigma=3.0)
    np.testing.assert_allclose(np.asarray(out["image"]), IMAGE, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out["mask"]), np.asarray(s["mask"]))
    np.testing.assert_allclose(np.asarray(out["boxes"]), BOX)


# --------------------------------------------------------------------------------------------
# Normalization and colour
# --------------------------------------------------------------------------------------------


def test_normalize_matches_course_values():
    pixels = jnp.asarray([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]])  # uint8 255 and 0 over 255
    out = np.asarray(A.normalize(pixels, mean=A.IMAGENET_MEAN, std=A.IMAGENET_STD))
    np.testing.assert_allclose(out[0, 0], [2.248908, 2.428571, 2.640000], atol=1e-5)
    np.testing.assert_allclose(out[0, 1], [-2.117904, -2.035714, -1.804444], atol=1e-5)
    android = np.asarray(A.normalize(pixels, mean=0.5, std=0.5))  # (p - 127.5) / 127.5
    np.testing.assert_allclose(android[0, :, 0], [1.0, -1.0])
    with pytest.raises(ValueError, match="needs 1 or 3 values"):
        A.normalize(pixels, mean=(0.5, 0.5), std=0.5)


@pytest.mark.parametrize("name,enhance,factor,tol", [
    ("brightness", ImageEnhance.Brightness, 1.3, 1.0),
    ("brightness", ImageEnhance.Brightness, 0.6, 1.0),
    ("saturation", ImageEnhance.Color, 1.6, 2.0),
    ("saturation", ImageEnhance.Color, 0.3, 2.0),
    ("contrast", ImageEnhance.Contrast, 1.4, 2.0),
    ("contrast", ImageEnhance.Contrast, 0.5, 2.0),
    ("sharpness", ImageEnhance.Sharpness, 1.8, 2.0),
    ("sharpness", ImageEnhance.Sharpness, 0.4, 2.0),
])
def test_enhance_ops_match_pil(name, enhance, factor, tol):
    fn = {"brightness": A.adjust_brightness, "saturation": A.adjust_saturation,
          "contrast": A.adjust_contrast, "sharpness": A.adjust_sharpness}[name]
    ref = np.asarray(enhance(_pil(UINT8)).enhance(factor), np.float32)
    np.testing.assert_allclose(_u(fn(_f(UINT8), factor)), ref, atol=tol)


def test_hue_and_grayscale_match_colorsys_and_luma():
    image = IMAGE[:6, :6]
    out = np.asarray(A.adjust_hue(jnp.asarray(image), 0.15))
    ref = np.array([[colorsys.hsv_to_rgb((h + 0.15) % 1.0, s, v) for h, s, v in
                     (colorsys.rgb_to_hsv(*px) for px in row)] for row in image])
    np.testing.assert_allclose(out, ref, atol=1e-5)
    gray = np.asarray(A.to_grayscale(jnp.asarray(image)))
    np.testing.assert_allclose(gray[..., 1], image @ [0.299, 0.587, 0.114], atol=1e-6)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


def test_color_jitter_with_pinned_factors_chains_the_four_adjustments():
    # torchvision's formulas in float numpy: blend with black, with the mean grey, with the
    # grey image, then a hue rotation (colorsys), in this fixed order.
    image = IMAGE[:6, :6].astype(np.float64)
    out = A.random_color_jitter(jax.random.key(0), jnp.asarray(IMAGE[:6, :6]),
                                brightness=(1.2, 1.2), contrast=(0.7, 0.7),
                                saturation=(1.5, 1.5), hue=(0.1, 0.1))
    luma = lambda im: im @ [0.299, 0.587, 0.114]  # noqa: E731
    im = np.clip(image * 1.2, 0, 1)
    im = np.clip(luma(im).mean() + 0.7 * (im - luma(im).mean()), 0, 1)
    im = np.clip(luma(im)[..., None] + 1.5 * (im - luma(im)[..., None]), 0, 1)
    ref = np.array([[colorsys.hsv_to_rgb((h + 0.1) % 1.0, s, v) for h, s, v in
                     (colorsys.rgb_to_hsv(*px) for px in row)] for row in im])
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


@pytest.mark.parametrize("bits", [1, 3, 6])
def test_posterize_matches_pil(bits):
    ref = np.asarray(ImageOps.posterize(_pil(UINT8), bits), np.float32)
    np.testing.assert_allclose(_u(A.posterize(_f(UINT8), bits)), ref, atol=1e-3)


def test_solarize_invert_equalize_autocontrast_match_pil():
    f = _f(UINT8)
    np.testing.assert_allclose(_u(A.solarize(f, 128 / 255)),
                               np.asarray(ImageOps.solarize(_pil(UINT8), 128), np.float32), atol=1e-3)
    np.testing.assert_allclose(_u(A.invert(f)), np.asarray(ImageOps.invert(_pil(UINT8)), np.float32),
                               atol=1e-3)
    np.testing.assert_allclose(_u(jax.jit(A.equalize)(f)),
                               np.asarray(ImageOps.equalize(_pil(UINT8)), np.float32), atol=1e-3)
    low = (UINT8 // 3 + 40).astype(np.uint8)  # a low-contrast image
    np.testing.assert_allclose(_u(A.autocontrast(_f(low))),
                               np.asarray(ImageOps.autocontrast(_pil(low)), np.float32), atol=1.0)
    # A constant channel is left alone, as in PIL.
    flat = np.full((4, 4, 3), 51 / 255, np.float32)
    np.testing.assert_allclose(np.asarray(A.autocontrast(jnp.asarray(flat))), flat)
    np.testing.assert_allclose(np.asarray(A.equalize(jnp.asarray(flat))), flat, atol=1e-6)


def test_gaussian_blur_matches_scipy_mirror():
    out = A.gaussian_blur(jnp.asarray(IMAGE), sigma=1.3, kernel_size=7)
    ref = ndi.gaussian_filter1d(IMAGE, 1.3, axis=0, mode="mirror", truncate=3 / 1.3)
    ref = ndi.gaussian_filter1d(ref, 1.3, axis=1, mode="mirror", truncate=3 / 1.3)
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


def test_noise_and_channel_ops_statistics():
    flat = jnp.full((64, 64, 3), 0.5)
    noisy = np.asarray(A.random_gaussian_noise(jax.random.key(0), flat, std=0.1)) - 0.5
    assert abs(noisy.std() - 0.1) < 0.005 and abs(noisy.mean()) < 0.005
    sp = np.asarray(A.random_salt_and_pepper(jax.random.key(1), flat, amount=0.2))
    hit = sp[..., 0] != 0.5
    assert abs(hit.mean() - 0.2) < 0.02
    assert set(np.unique(sp[hit])) <= {0.0, 1.0} and (sp[hit] == sp[hit][:, :1]).all()
    perm = np.asarray(A.random_channel_permutation(jax.random.key(2), jnp.asarray(IMAGE)))
    order = [int(np.argmin([np.abs(perm[..., c] - IMAGE[..., k]).max() for k in range(3)]))
             for c in range(3)]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(perm, IMAGE[..., order])


# --------------------------------------------------------------------------------------------
# Occlusion and mixing
# --------------------------------------------------------------------------------------------


def test_cutout_holes_match_course_vectors():
    assert int(A.cutout_mask(16, 16, height=32, width=32, length=16).sum()) == 256
    corner = np.asarray(A.cutout_mask(0, 0, height=32, width=32, length=16))
    assert corner.sum() == 64 and corner[:8, :8].all()
    centre = np.asarray(A.cutout_mask(16, 16, height=32, width=32, length=16))
    assert centre[8:24, 8:24].all()
    out = np.asarray(A.random_cutout(jax.random.key(0), jnp.ones((32, 32, 3))))
    zeros = out[..., 0] == 0
    rows, cols = np.nonzero(zeros)
    assert zeros.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1) <= 256  # one rectangle


def test_random_erasing_erases_one_rectangle_within_scale_and_ratio():
    keys = jax.random.split(jax.random.key(3), 64)
    outs = np.asarray(_jv(lambda k: A.random_erasing(k, jnp.ones((32, 32, 1)),
                                                          probability=1.0))(keys))[..., 0]
    for out in outs:
        rows, cols = np.nonzero(out == 0)
        h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert (out == 0).sum() == h * w
        assert 0.015 <= h * w / 1024 <= 0.35 and 0.25 <= h / w <= 4.0
    assert (np.asarray(A.random_erasing(jax.random.key(0), jnp.ones((8, 8, 1)),
                                        probability=0.0)) == 1).all()


def test_mixup_matches_numpy_and_soft_target_identity():
    images = RNG.uniform(size=(6, 4, 4, 3)).astype(np.float32)
    labels = jnp.arange(6)
    mixed = jax.jit(A.mixup)(jax.random.key(5), jnp.asarray(images), labels)
    lam, perm = float(mixed.lam), np.asarray(mixed.labels_b)
    assert sorted(perm) == list(range(6)) and 0 < lam < 1
    np.testing.assert_allclose(np.asarray(mixed.images), lam * images + (1 - lam) * images[perm],
                               atol=1e-6)
    # lam * CE(a) + (1 - lam) * CE(b) == CE(soft target), computed in numpy.
    logits = RNG.normal(size=(6, 6)).astype(np.float32)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(lam * logp[np.arange(6), np.arange(6)] + (1 - lam) * logp[np.arange(6), perm])
    loss = A.mixed_cross_entropy(jnp.asarray(logits), labels, mixed.labels_b, mixed.lam)
    np.testing.assert_allclose(float(loss), expected.mean(), rtol=1e-5)
    soft = A.mix_targets(labels, mixed.labels_b, mixed.lam, num_classes=6)
    from jaxvision.losses import cross_entropy
    np.testing.assert_allclose(float(cross_entropy(jnp.asarray(logits), soft)), expected.mean(),
                               rtol=1e-5)
    # lam ~ Beta(1, 1) is uniform: mean 1/2, variance 1/12.
    lams = np.asarray(_jv(lambda k: A.sample_lambda(k, 1.0))(
        jax.random.split(jax.random.key(0), 4000)))
    assert abs(lams.mean() - 0.5) < 0.02 and abs(lams.var() - 1 / 12) < 0.01
    assert float(A.sample_lambda(jax.random.key(0), 0.0)) == 1.0


def test_cutmix_box_matches_course_vectors():
    y1, y2, x1, x2, lam = A.cutmix_box(0.75, 16, 16, height=32, width=32)
    assert (int(y2 - y1), int(x2 - x1)) == (16, 16) and float(lam) == pytest.approx(0.75)
    y1, y2, x1, x2, lam = A.cutmix_box(0.75, 0, 0, height=32, width=32)
    assert (int(y1), int(y2), int(x1), int(x2)) == (0, 8, 0, 8)
    assert float(lam) == pytest.approx(0.9375)


def test_cutmix_pastes_one_box_and_adjusts_lambda_to_its_area():
    # Example i is the constant image i, so pasted pixels reveal the partner's index.
    images = jnp.broadcast_to(jnp.arange(8, dtype=jnp.float32)[:, None, None, None], (8, 32, 32, 3))
    labels = jnp.arange(8)
    for seed in range(3):
        mixed = jax.jit(A.cutmix)(jax.random.key(seed), images, labels)
        out, perm = np.asarray(mixed.images)[..., 0], np.asarray(mixed.labels_b)
        for i in np.nonzero(perm != np.arange(8))[0]:
            pasted = out[i] == perm[i]
            assert (out[i][~pasted] == i).all()
            assert float(mixed.lam) == pytest.approx(1 - pasted.sum() / 1024)
        soft = np.asarray(A.mix_targets(labels, mixed.labels_b, mixed.lam, num_classes=8))
        np.testing.assert_allclose(soft.sum(-1), 1.0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def test_randaugment_single_op_tables():
    x = jnp.asarray(IMAGE)
    key = jax.random.key(0)
    np.testing.assert_allclose(np.asarray(A.randaugment(key, x, num_ops=1, ops=("invert",))),
                               1 - IMAGE, atol=1e-6)
    np.testing.assert_allclose(np.asarray(A.randaugment(key, x, num_ops=2, ops=("invert",))),
                               IMAGE, atol=1e-6)
    rotated = np.asarray(A.randaugment(key, x, num_ops=1, magnitude=10, ops=("rotate",)))
    candidates = [np.asarray(A.affine(x, angle_degrees=a)) for a in (30.0, -30.0)]
    assert min(np.abs(rotated - c).max() for c in candidates) < 1e-5
    posterized = np.asarray(A.randaugment(key, x, num_ops=1, magnitude=10, ops=("posterize",)))
    np.testing.assert_allclose(posterized, np.asarray(A.posterize(x, 4)))
    solar = np.asarray(A.randaugment(key, x, num_ops=1, magnitude=5, ops=("solarize",)))
    np.testing.assert_allclose(solar, np.where(IMAGE < 0.5, IMAGE, 1 - IMAGE), atol=1e-6)
    # The course's randint(1, M) magnitudes: thresholds 1 - m/10 for m in 1..9.
    keys = jax.random.split(key, 32)
    outs = np.asarray(_jv(lambda k: A.randaugment(
        k, x, num_ops=1, magnitude=9, sample_magnitude=True, ops=("solarize",)))(keys))
    allowed = [np.where(IMAGE < 1 - m / 10, IMAGE, 1 - IMAGE) for m in range(1, 10)]
    used = {int(np.argmin([np.abs(o - a).max() for a in allowed])) for o in outs}
    assert all(min(np.abs(o - a).max() for a in allowed) < 1e-6 for o in outs) and len(used) > 3
    with pytest.raises(ValueError, match="randaugment ops"):
        A.randaugment(key, x, ops=("warp",))


def test_compose_random_apply_random_choice():
    x = jnp.asarray(IMAGE)
    inv = lambda k, s: A.invert(s)  # noqa: E731
    flip = lambda k, s: A.flip_left_right(s)  # noqa: E731
    np.testing.assert_allclose(np.asarray(A.compose(inv, flip)(jax.random.key(0), x)),
                               1 - IMAGE[:, ::-1], atol=1e-6)
    keys = jax.random.split(jax.random.key(1), 200)
    outs = np.asarray(_jv(lambda k: A.random_apply(inv, 0.3)(k, x))(keys))
    applied = np.array([np.allclose(o, 1 - IMAGE) for o in outs])
    assert all(a or np.allclose(o, IMAGE) for a, o in zip(applied, outs))
    assert abs(applied.mean() - 0.3) < 0.1
    outs = np.asarray(_jv(lambda k: A.random_choice([inv, flip], [0.8, 0.2])(k, x))(keys))
    chose_inv = np.array([np.allclose(o, 1 - IMAGE) for o in outs])
    chose_flip = np.array([np.allclose(o, IMAGE[:, ::-1]) for o in outs])
    assert (chose_inv ^ chose_flip).all() and abs(chose_inv.mean() - 0.8) < 0.1


def test_course_eval_center_crop_is_the_central_224_of_256():
    image = RNG.uniform(size=(256, 256, 3)).astype(np.float32)
    out = A.center_crop_resize(jax.random.key(0), jnp.asarray(image), crop_fraction=224 / 256,
                               size=224)
    np.testing.assert_allclose(np.asarray(out), image[16:240, 16:240], atol=1e-6)
    fn = A.build({"preset": "course_eval", "center_crop_size": 224}, num_classes=2)
    batch = fn(jax.random.key(0), {"image": jnp.asarray(image)[None], "label": jnp.zeros(1, jnp.int32)})
    expected = (image[16:240, 16:240] - np.asarray(A.IMAGENET_MEAN)) / np.asarray(A.IMAGENET_STD)
    np.testing.assert_allclose(np.asarray(batch["image"][0]), expected, atol=1e-5)
