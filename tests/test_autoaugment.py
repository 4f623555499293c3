"""AutoAugment against torchvision's ``AutoAugment`` without torchvision: the policy tables
(rows and op counts written out by hand from torchvision's ``_get_policies``), the magnitude
space of its ``_AUGMENTATION_SPACE``, every sub-policy with its probabilities at 1 against the
composition of its two ops built from this library's single ops with torchvision's formulas,
the geometric ops with nearest interpolation against torchvision's affine grid sampled by
torch's ``grid_sample``, jit/vmap/eager, boxes and the config."""

import collections
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import box_iou, mask_box

import jaxvision.augment as A
from jaxvision.augment import auto_augment

RNG = np.random.default_rng(0)
IMAGE = (RNG.integers(0, 256, size=(16, 16, 3)) / 255.0).astype(np.float32)  # 8-bit levels


# --------------------------------------------------------------------------------------------
# Tables and magnitudes
# --------------------------------------------------------------------------------------------

# Op counts over the 50 steps of each policy, counted by hand from torchvision's tables.
HISTOGRAMS = {
    "imagenet": {"equalize": 17, "solarize": 7, "rotate": 6, "color": 6, "posterize": 5,
                 "invert": 3, "auto_contrast": 2, "contrast": 2, "sharpness": 1, "shear_x": 1},
    "cifar10": {"equalize": 9, "auto_contrast": 7, "sharpness": 5, "translate_y": 5, "color": 5,
                "brightness": 4, "solarize": 4, "invert": 3, "contrast": 2, "translate_x": 2,
                "shear_y": 2, "rotate": 1, "posterize": 1},
    "svhn": {"invert": 12, "shear_y": 8, "shear_x": 6, "equalize": 6, "solarize": 5,
             "rotate": 4, "translate_y": 4, "auto_contrast": 3, "contrast": 1,
             "translate_x": 1},
}
ROWS = {  # (policy, index): torchvision's row, in this library's op names
    ("imagenet", 0): (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
    ("imagenet", 12): (("equalize", 0.0, None), ("equalize", 0.8, None)),
    ("imagenet", 18): (("shear_x", 0.6, 5), ("equalize", 1.0, None)),
    ("imagenet", 24): (("equalize", 0.8, None), ("equalize", 0.6, None)),
    ("cifar10", 0): (("invert", 0.1, None), ("contrast", 0.2, 6)),
    ("cifar10", 3): (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    ("cifar10", 14): (("solarize", 0.5, 2), ("invert", 0.0, None)),
    ("cifar10", 21): (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    ("svhn", 0): (("shear_x", 0.9, 4), ("invert", 0.2, None)),
    ("svhn", 15): (("invert", 0.8, None), ("translate_y", 0.0, 2)),
    ("svhn", 18): (("shear_y", 0.3, 7), ("translate_x", 0.9, 3)),
    ("svhn", 24): (("shear_x", 0.7, 2), ("invert", 0.1, None)),
}


@pytest.mark.parametrize("policy", ["imagenet", "cifar10", "svhn"])
def test_tables_have_the_published_sub_policies(policy):
    table = A.AUTOAUGMENT_POLICIES[policy]
    assert len(table) == 25 and all(len(sub) == 2 for sub in table)
    counts = collections.Counter(name for sub in table for name, _, _ in sub)
    assert dict(counts) == HISTOGRAMS[policy]
    for (name, index), row in ROWS.items():
        if name == policy:
            assert table[index] == row
    for sub in table:
        for name, probability, bin_ in sub:
            assert 0.0 <= probability <= 1.0
            takes_bin = name not in ("auto_contrast", "equalize", "invert")
            assert (bin_ is not None) == takes_bin and (bin_ is None or 0 <= bin_ <= 9)


def test_magnitude_space_is_torchvisions():
    """10 bins from 0: shears to 0.3, translations to 150/331 of the size, rotation to 30
    degrees, enhancements to 0.9 (signed); posterize 8 -> 4 bits, solarize 1 -> 0 (not)."""
    space = auto_augment.magnitudes(height=32, width=331)
    values = {name: v for name, (v, _) in space.items()}
    signed = {name for name, (_, s) in space.items() if s}
    assert signed == {"shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness",
                      "color", "contrast", "sharpness"}
    np.testing.assert_allclose(values["rotate"][[0, 3, 8, 9]], [0, 10, 80 / 3, 30], rtol=1e-6)
    np.testing.assert_allclose(values["shear_x"][[5, 9]], [0.3 * 5 / 9, 0.3], rtol=1e-6)
    np.testing.assert_allclose(values["translate_x"][[3, 9]], [50.0, 150.0], rtol=1e-6)
    np.testing.assert_allclose(values["translate_y"][9], 150 / 331 * 32, rtol=1e-6)
    for name in ("brightness", "color", "contrast", "sharpness"):
        np.testing.assert_allclose(values[name][[0, 9]], [0.0, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(values["posterize"], [8, 8, 7, 7, 6, 6, 5, 5, 4, 4])
    np.testing.assert_allclose(values["solarize"][[0, 5, 9]], [1.0, 4 / 9, 0.0], atol=1e-7)
    assert values["equalize"] is None and values["invert"] is None


# --------------------------------------------------------------------------------------------
# Sub-policies against their ops
# --------------------------------------------------------------------------------------------

_AFFINE = jax.jit(lambda im, angle, tx, ty, shx, shy: A.affine(
    im, angle_degrees=angle, translate_x=tx, translate_y=ty, shear_x=shx, shear_y=shy))
_ENHANCE = {"brightness": jax.jit(A.adjust_brightness), "color": jax.jit(A.adjust_saturation),
            "contrast": jax.jit(A.adjust_contrast), "sharpness": jax.jit(A.adjust_sharpness)}
_PLAIN = {"auto_contrast": jax.jit(A.autocontrast), "equalize": jax.jit(A.equalize),
          "invert": jax.jit(A.invert)}
_POSTERIZE, _SOLARIZE = jax.jit(A.posterize), jax.jit(A.solarize)


def _reference_op(image, name, bin_, sign):
    """torchvision's op ``name`` at ``bin_`` of 10 (sign -1 negates signed ops), built from
    this library's single ops with the formulas written out here."""
    height, width = image.shape[:2]
    if name in _PLAIN:
        return _PLAIN[name](image)
    if name == "posterize":
        return _POSTERIZE(image, 8 - round(bin_ * 4 / 9))
    if name == "solarize":
        return _SOLARIZE(image, 1.0 - bin_ / 9)
    if name in _ENHANCE:
        return _ENHANCE[name](image, 1.0 + sign * 0.9 * bin_ / 9)
    if name == "rotate":
        return _AFFINE(image, sign * 30.0 * bin_ / 9, 0.0, 0.0, 0.0, 0.0)
    if name in ("translate_x", "translate_y"):
        size = width if name == "translate_x" else height
        shift = float(math.trunc(sign * 150.0 / 331.0 * size * bin_ / 9))  # int(): whole pixels
        return _AFFINE(image, 0.0, *((shift, 0.0) if name == "translate_x" else (0.0, shift)),
                       0.0, 0.0)
    # Shears about the top-left corner, x' = x - m y: about the centre, a shear of -m and a
    # shift of -m times the centre's other coordinate.
    m = sign * 0.3 * bin_ / 9
    if name == "shear_x":
        return _AFFINE(image, 0.0, -m * height / 2, 0.0, -m, 0.0)
    return _AFFINE(image, 0.0, 0.0, -m * width / 2, 0.0, -m)


def _candidates(image, sub):
    """The composition of the two steps of ``sub`` for every choice of signs."""
    out = []
    for signs in itertools.product((1.0, -1.0), repeat=len(sub)):
        x = jnp.asarray(image)
        for (name, _, bin_), sign in zip(sub, signs):
            x = _reference_op(x, name, bin_, sign)
        out.append(np.asarray(x))
    return out


def _check_compositions(table, num_keys):
    """Runs ``table`` (probabilities 1, bilinear, to compare with ``affine``) on one image
    with ``num_keys`` keys: each output is the composition of the two ops of one sub-policy
    with some signs, and every sub-policy is seen."""
    keys = jax.random.split(jax.random.key(1), num_keys)
    outs = np.asarray(jax.jit(jax.vmap(functools.partial(
        A.autoaugment, policy=table, interpolation="bilinear"), in_axes=(0, None)))(
        keys, jnp.asarray(IMAGE)))
    candidates = [(i, c) for i, sub in enumerate(table) for c in _candidates(IMAGE, sub)]
    stack = np.stack([c for _, c in candidates])
    seen = set()
    for out in outs:
        errors = np.abs(stack - out).reshape(len(stack), -1)
        # A warp blends 8-bit levels into exact half levels, where a quantising op after it
        # (equalize, posterize) may round either way in the two float paths: a few values may
        # differ, by a few levels at most (equalize's table moves with one level's count).
        score = np.where(errors.max(-1) <= 3 / 255 + 1e-5, (errors > 1e-4).mean(-1), 1.0)
        best = int(np.argmin(score))
        assert score[best] < 0.05, (score[best], table[candidates[best][0]])
        seen |= {table[i] for (i, _), s in zip(candidates, score) if s < 0.05}
    assert seen == set(table)


def test_sub_policies_at_probability_one_are_the_compositions_of_their_ops():
    """Four CIFAR-10 sub-policies (signed rotation, translations and shear, posterize after a
    warp, colour and brightness) with their probabilities set to 1."""
    rows = [A.AUTOAUGMENT_POLICIES["cifar10"][i] for i in (1, 3, 5, 6)]
    assert rows[0] == (("rotate", 0.7, 2), ("translate_x", 0.3, 9))
    _check_compositions(tuple(tuple((n, 1.0, b) for n, _, b in sub) for sub in rows), 24)


@pytest.mark.slow  # one compilation of each whole policy: about 10-20 s each on 2 loaded cores
@pytest.mark.parametrize("policy", ["imagenet", "cifar10", "svhn"])
def test_every_sub_policy_at_probability_one_is_the_composition_of_its_ops(policy):
    """All 25 sub-policies, over 160 keys."""
    _check_compositions(tuple(tuple((name, 1.0, bin_) for name, _, bin_ in sub)
                              for sub in A.AUTOAUGMENT_POLICIES[policy]), 160)


def _tv_affine_grid(height, width, *, angle=0.0, translate=(0.0, 0.0), shear=(0.0, 0.0),
                    center=None):
    """torchvision's ``_get_inverse_affine_matrix`` and ``_affine_grid`` (the tensor path of
    ``F.affine``; ``F.rotate`` passes ``-angle``), as a ``grid_sample`` grid."""
    rot, sx, sy = (math.radians(v) for v in (angle, *shear))
    cx, cy = (0.0, 0.0) if center is None else (center[0] - width * 0.5, center[1] - height * 0.5)
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    xs = np.arange(width) + 0.5 - width * 0.5
    ys = np.arange(height) + 0.5 - height * 0.5
    gx, gy = np.meshgrid(xs, ys)
    u = (m[0] * gx + m[1] * gy + m[2]) / (0.5 * width)
    v = (m[3] * gx + m[4] * gy + m[5]) / (0.5 * height)
    return np.stack([u, v], -1)[None]


def _tv_apply(image, name, magnitude, fill):
    """torchvision's ``_apply_image_or_video_transform`` for the geometric ops, nearest."""
    import torch

    height, width = image.shape[:2]
    if name == "shear_x":
        grid = _tv_affine_grid(height, width, shear=(math.degrees(math.atan(magnitude)), 0.0),
                               center=(0, 0))
    elif name == "shear_y":
        grid = _tv_affine_grid(height, width, shear=(0.0, math.degrees(math.atan(magnitude))),
                               center=(0, 0))
    elif name == "translate_x":
        grid = _tv_affine_grid(height, width, translate=(int(magnitude), 0))
    elif name == "translate_y":
        grid = _tv_affine_grid(height, width, translate=(0, int(magnitude)))
    else:
        grid = _tv_affine_grid(height, width, angle=-magnitude)
    img = torch.tensor(np.concatenate([image, np.ones(image.shape[:2] + (1,))], -1),
                       dtype=torch.float64).permute(2, 0, 1)[None]
    out = torch.nn.functional.grid_sample(img, torch.tensor(grid), mode="nearest",
                                          padding_mode="zeros", align_corners=False)
    out = out[0].permute(1, 2, 0).numpy()
    return np.where(out[..., -1:] < 0.5, fill, out[..., :-1])


@pytest.mark.parametrize("name,magnitude", [
    ("shear_x", 0.3 * 5 / 9), ("shear_x", -0.3 * 4 / 9), ("shear_y", 0.3 * 8 / 9),
    ("translate_x", 150 / 331 * 20 * 9 / 9), ("translate_y", -150 / 331 * 16 * 3 / 9),
    ("rotate", 30 * 8 / 9), ("rotate", -10.0)])
def test_geometric_ops_match_torchvision_nearest(name, magnitude):
    """With torchvision's default nearest interpolation, each geometric op equals torch's
    ``grid_sample`` on torchvision's affine grid (shears about the top-left corner,
    translations by ``int(m)`` pixels, counter-clockwise rotation about the centre), fill 0.2;
    all but a few pixels whose source lies on a pixel edge (ties round differently)."""
    image = RNG.uniform(size=(16, 20, 3)).astype(np.float32)
    out = np.asarray(auto_augment.apply_op(jnp.asarray(image), name, magnitude, fill=0.2))
    ref = _tv_apply(image.astype(np.float64), name, magnitude, 0.2)
    same = np.isclose(out, ref, atol=1e-6).all(-1)
    assert same.mean() > 0.97, (name, magnitude, same.mean())


# --------------------------------------------------------------------------------------------
# Randomness, jit, range, boxes and config
# --------------------------------------------------------------------------------------------

_AUTO = {policy: jax.jit(jax.vmap(functools.partial(A.autoaugment, policy=policy)))
         for policy in ("imagenet", "cifar10", "svhn")}


def test_cifar10_policy_is_deterministic_per_key_and_stays_in_range():
    """The same keys give the same images, different keys different ones, and every value
    stays in [0, 1] (the 8-bit range over 255). jit/vmap against the per-image and eager calls
    is checked for every op, this one included, in test_augment_consistency.py."""
    images = jnp.asarray(np.stack([IMAGE] * 8))
    keys = jax.random.split(jax.random.key(2), 8)
    first = np.asarray(_AUTO["cifar10"](keys, images))
    np.testing.assert_array_equal(first, np.asarray(_AUTO["cifar10"](keys, images)))
    assert len({o.tobytes() for o in first}) >= 4  # keys choose different sub-policies
    assert first.min() >= 0.0 and first.max() <= 1.0 and np.isfinite(first).all()


@pytest.mark.slow  # eager runs op by op (every branch of the switch): about 10 s
def test_jit_equals_eager():
    images = jnp.asarray(np.stack([IMAGE] * 8))
    keys = jax.random.split(jax.random.key(2), 8)
    first = np.asarray(_AUTO["cifar10"](keys, images))
    for i in range(2):
        eager = np.asarray(A.autoaugment(keys[i], images[i], policy="cifar10"))
        np.testing.assert_allclose(first[i], eager, atol=1e-6)


@pytest.mark.slow  # two more policy compilations: about 10 s on 2 loaded cores
@pytest.mark.parametrize("policy", ["imagenet", "svhn"])
def test_other_policies_are_deterministic_and_stay_in_range(policy):
    images = jnp.asarray(RNG.uniform(size=(16, 16, 16, 3)), jnp.float32)
    keys = jax.random.split(jax.random.key(4), 16)
    first = np.asarray(_AUTO[policy](keys, images))
    np.testing.assert_array_equal(first, np.asarray(_AUTO[policy](keys, images)))
    assert first.min() >= 0.0 and first.max() <= 1.0 and np.isfinite(first).all()
    assert not np.allclose(first, np.asarray(images))


def _rectangle(size=40):
    mask = np.zeros((size, size), np.int32)
    mask[8:30, 10:32] = 1
    return {"image": jnp.asarray(RNG.uniform(size=(size, size, 3)), jnp.float32),
            "boxes": jnp.asarray([[10.0, 8.0, 32.0, 30.0], [0.0, 0.0, 0.0, 0.0]]),
            "boxes_valid": jnp.array([True, False]), "mask": jnp.asarray(mask)}


def test_boxes_and_masks_follow_the_geometric_steps():
    """Boxes move with the geometric steps like every geometric op (a rotation then a
    photometric step: the box agrees with the moved rectangle, IoU >= 0.9); with two geometric
    steps the box of a box still encloses the moved rectangle; padding rows stay invalid."""
    sample = _rectangle()
    table = ((("rotate", 1.0, 9), ("brightness", 1.0, 5)),
             (("shear_y", 1.0, 8), ("translate_y", 1.0, 9)))
    keys = jax.random.split(jax.random.key(6), 8)
    op = jax.jit(jax.vmap(functools.partial(A.autoaugment, policy=table), in_axes=(0, None)))
    out = jax.device_get(op(keys, sample))
    kinds = set()
    for i in range(8):
        reference = mask_box(out["mask"][i])
        assert set(np.unique(out["mask"][i])) <= {0, 1} and not out["boxes_valid"][i, 1]
        assert out["boxes_valid"][i, 0] and reference is not None
        box = out["boxes"][i, 0]
        if np.abs(out["image"][i] - np.asarray(sample["image"])).max() > 0.05 and \
                box_iou(box, reference) >= 0.9:
            kinds.add("tight")
        # The box always encloses the moved rectangle (to a pixel).
        assert (box[:2] <= reference[:2] + 1).all() and (box[2:] >= reference[2:] - 1).all()
    assert "tight" in kinds


def test_config_reaches_the_policies():
    fn = A.build({"ops": ("autoaugment",), "autoaugment": {"policy": "svhn"}}, num_classes=3)
    assert fn.options["autoaugment"] == {"policy": "svhn"}
    ops, options = A.resolve("cifar_autoaugment")
    assert ops == ["crop", "flip", "autoaugment", "normalize"]
    assert options["autoaugment"]["policy"] == "cifar10"
    assert A.resolve("autoaugment")[1]["autoaugment"]["policy"] == "imagenet"
    with pytest.raises(ValueError, match="policy must be one of imagenet, cifar10, svhn"):
        A.resolve({"ops": ["autoaugment"], "autoaugment_policy": "cifar100"})
    with pytest.raises(ValueError, match="unknown AutoAugment op 'warp'"):
        A.autoaugment(jax.random.key(0), jnp.asarray(IMAGE), policy=((("warp", 0.5, 1),),))
    with pytest.raises(ValueError, match="takes no magnitude bin"):
        A.autoaugment(jax.random.key(0), jnp.asarray(IMAGE), policy=((("invert", 0.5, 3),),))
    from jaxvision import cli
    from jaxvision.train import config as C
    from experiments import quickstart

    assert C.augment_options()["autoaugment.policy"].kind is str
    config, _, _ = cli.parse_args(["--config.augment.ops=autoaugment",
                                   "--config.augment.autoaugment.policy=cifar10"],
                                  quickstart.get_config, name="t")
    fn = A.build(config.augment.to_dict(), num_classes=10)
    assert fn.ops == ("autoaugment",) and fn.options["autoaugment"] == {"policy": "cifar10"}
