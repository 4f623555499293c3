"""AutoAugment (Cubuk et al. 2019): the learned ImageNet, CIFAR-10 and SVHN policies, on device.

Each policy is 25 sub-policies of two ``(op, probability, magnitude bin)`` steps, as torchvision's
``AutoAugment`` (``AutoAugmentPolicy.IMAGENET``, ``CIFAR10``, ``SVHN``). Per image, one
sub-policy is drawn uniformly; each of its two steps runs with its probability, at the magnitude
of its bin on torchvision's 10-bin scale (``magnitudes``), negated with probability 1/2 for
signed ops. Everything is drawn from the key and chosen with ``lax.switch``, so the op jits and
vmaps over a batch inside the train step (under ``vmap`` every op of the policy is computed
and one result selected per image).

Ops follow torchvision's ``_apply_image_or_video_transform``: shears about the top-left corner
(``x' = x - m y``), translations by whole pixels (``int(m)``), rotation about the centre
(counter-clockwise), enhancements at factor ``1 + m``, posterize to ``int(m)`` bits, solarize
at threshold ``m`` (of 1.0), and nearest interpolation by default. The photometric ops are the
ones of ``photometric`` (8-bit semantics on float images in [0, 1]). Unlike torchvision, whose
AutoAugment rejects boxes and masks, samples may carry them: the geometric steps move boxes,
masks and instance masks like every other geometric op (two geometric steps give the box of a
box, a looser bound); photometric steps leave them alone.
"""

from __future__ import annotations

import types
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.augment import photometric
from jaxvision.augment.core import check_interpolation, from_dict, to_dict, warp_affine
from jaxvision.augment.geometric import affine_matrix

# The op names of the sub-policies (torchvision's ShearX, ..., Invert in snake case).
AUTOAUGMENT_OPS = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness",
                   "color", "contrast", "sharpness", "posterize", "solarize", "auto_contrast",
                   "equalize", "invert")
NUM_BINS = 10

# (op, probability, magnitude bin or None) pairs, in the order of torchvision's tables.
_IMAGENET = (
    (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
    (("solarize", 0.6, 5), ("auto_contrast", 0.6, None)),
    (("equalize", 0.8, None), ("equalize", 0.6, None)),
    (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
    (("equalize", 0.4, None), ("solarize", 0.2, 4)),
    (("equalize", 0.4, None), ("rotate", 0.8, 8)),
    (("solarize", 0.6, 3), ("equalize", 0.6, None)),
    (("posterize", 0.8, 5), ("equalize", 1.0, None)),
    (("rotate", 0.2, 3), ("solarize", 0.6, 8)),
    (("equalize", 0.6, None), ("posterize", 0.4, 6)),
    (("rotate", 0.8, 8), ("color", 0.4, 0)),
    (("rotate", 0.4, 9), ("equalize", 0.6, None)),
    (("equalize", 0.0, None), ("equalize", 0.8, None)),
    (("invert", 0.6, None), ("equalize", 1.0, None)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("rotate", 0.8, 8), ("color", 1.0, 2)),
    (("color", 0.8, 8), ("solarize", 0.8, 7)),
    (("sharpness", 0.4, 7), ("invert", 0.6, None)),
    (("shear_x", 0.6, 5), ("equalize", 1.0, None)),
    (("color", 0.4, 0), ("equalize", 0.6, None)),
    (("equalize", 0.4, None), ("solarize", 0.2, 4)),
    (("solarize", 0.6, 5), ("auto_contrast", 0.6, None)),
    (("invert", 0.6, None), ("equalize", 1.0, None)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("equalize", 0.8, None), ("equalize", 0.6, None)),
)
_CIFAR10 = (
    (("invert", 0.1, None), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("auto_contrast", 0.5, None), ("equalize", 0.9, None)),
    (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, None), ("equalize", 0.5, None)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)),
    (("equalize", 0.3, None), ("auto_contrast", 0.4, None)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, None)),
    (("equalize", 0.2, None), ("auto_contrast", 0.6, None)),
    (("equalize", 0.2, None), ("equalize", 0.6, None)),
    (("color", 0.9, 9), ("equalize", 0.6, None)),
    (("auto_contrast", 0.8, None), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("auto_contrast", 0.9, None)),
    (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("auto_contrast", 0.9, None), ("solarize", 0.8, 3)),
    (("equalize", 0.8, None), ("invert", 0.1, None)),
    (("translate_y", 0.7, 9), ("auto_contrast", 0.9, None)),
)
_SVHN = (
    (("shear_x", 0.9, 4), ("invert", 0.2, None)),
    (("shear_y", 0.9, 8), ("invert", 0.7, None)),
    (("equalize", 0.6, None), ("solarize", 0.6, 6)),
    (("invert", 0.9, None), ("equalize", 0.6, None)),
    (("equalize", 0.6, None), ("rotate", 0.9, 3)),
    (("shear_x", 0.9, 4), ("auto_contrast", 0.8, None)),
    (("shear_y", 0.9, 8), ("invert", 0.4, None)),
    (("shear_y", 0.9, 5), ("solarize", 0.2, 6)),
    (("invert", 0.9, None), ("auto_contrast", 0.8, None)),
    (("equalize", 0.6, None), ("rotate", 0.9, 3)),
    (("shear_x", 0.9, 4), ("solarize", 0.3, 3)),
    (("shear_y", 0.8, 8), ("invert", 0.7, None)),
    (("equalize", 0.9, None), ("translate_y", 0.6, 6)),
    (("invert", 0.9, None), ("equalize", 0.6, None)),
    (("contrast", 0.3, 3), ("rotate", 0.8, 4)),
    (("invert", 0.8, None), ("translate_y", 0.0, 2)),
    (("shear_y", 0.7, 6), ("solarize", 0.4, 8)),
    (("invert", 0.6, None), ("rotate", 0.8, 4)),
    (("shear_y", 0.3, 7), ("translate_x", 0.9, 3)),
    (("shear_x", 0.1, 6), ("invert", 0.6, None)),
    (("solarize", 0.7, 2), ("translate_y", 0.6, 7)),
    (("shear_y", 0.8, 4), ("invert", 0.8, None)),
    (("shear_x", 0.7, 9), ("translate_y", 0.8, 3)),
    (("shear_y", 0.8, 5), ("auto_contrast", 0.7, None)),
    (("shear_x", 0.7, 2), ("invert", 0.1, None)),
)
AUTOAUGMENT_POLICIES = types.MappingProxyType(
    {"imagenet": _IMAGENET, "cifar10": _CIFAR10, "svhn": _SVHN})


def magnitudes(height: int, width: int, num_bins: int = NUM_BINS) -> dict:
    """torchvision's AutoAugment magnitude space: ``{op: (values per bin or None, signed)}``.

    Shears 0..0.3, translations 0..150/331 of the width (height), rotation 0..30 degrees, the
    four enhancements 0..0.9 (applied as factor ``1 + m``), all signed; posterize 8 down to 4
    bits and solarize thresholds 1.0 down to 0.0, unsigned; the other ops take no magnitude.
    """
    def linear(high):
        return np.linspace(0.0, high, num_bins).astype(np.float32)

    bits = (8 - np.round(np.arange(num_bins) / ((num_bins - 1) / 4))).astype(np.int32)
    return {
        "shear_x": (linear(0.3), True), "shear_y": (linear(0.3), True),
        "translate_x": (linear(150.0 / 331.0 * width), True),
        "translate_y": (linear(150.0 / 331.0 * height), True),
        "rotate": (linear(30.0), True),
        "brightness": (linear(0.9), True), "color": (linear(0.9), True),
        "contrast": (linear(0.9), True), "sharpness": (linear(0.9), True),
        "posterize": (bits, False),
        "solarize": (np.linspace(1.0, 0.0, num_bins).astype(np.float32), False),
        "auto_contrast": (None, False), "equalize": (None, False), "invert": (None, False),
    }


def check_policy(policy) -> tuple:
    """The sub-policy table of a policy name, or a custom table checked step by step."""
    if isinstance(policy, str):
        if policy not in AUTOAUGMENT_POLICIES:
            raise ValueError(f"unknown AutoAugment policy {policy!r}; valid policies: "
                             f"{', '.join(AUTOAUGMENT_POLICIES)}")
        return AUTOAUGMENT_POLICIES[policy]
    table = tuple(tuple(tuple(step) for step in sub) for sub in policy)
    if not table:
        raise ValueError("an AutoAugment policy needs at least one sub-policy")
    space = magnitudes(32, 32)
    for sub in table:
        for step in sub:
            if len(step) != 3:
                raise ValueError(f"each AutoAugment step is (op, probability, bin); got {step!r}")
            name, probability, bin_ = step
            if name not in space:
                raise ValueError(f"unknown AutoAugment op {name!r}; valid ops: "
                                 f"{', '.join(AUTOAUGMENT_OPS)}")
            if not 0.0 <= float(probability) <= 1.0:
                raise ValueError(f"step {step!r}: probability must lie in [0, 1]")
            if (space[name][0] is None) != (bin_ is None) or (
                    bin_ is not None and not 0 <= int(bin_) < NUM_BINS):
                raise ValueError(f"step {step!r}: {name} takes "
                                 + ("no magnitude bin (None)" if space[name][0] is None
                                    else f"a magnitude bin in 0..{NUM_BINS - 1}"))
    if len({len(sub) for sub in table}) != 1:
        raise ValueError("every sub-policy needs the same number of steps")
    return table


def _op(name: str, *, height: int, width: int, interpolation: str, fill: float, mask_fill: int,
        min_box_size: float):
    """``fn(sample_dict, magnitude) -> sample_dict`` for one op (magnitude already signed)."""

    def warp(forward_of):
        def fn(d, m):
            forward = forward_of(m)
            return warp_affine(d, jnp.linalg.inv(forward), out_height=height, out_width=width,
                               fill=fill, mask_fill=mask_fill, min_box_size=min_box_size,
                               interpolation=interpolation)
        return fn

    def on_image(adjust):
        def fn(d, m):
            return dict(d, image=adjust(d["image"], m))
        return fn

    one, zero = jnp.float32(1.0), jnp.float32(0.0)
    table = {
        # torchvision shears with shear angle atan(m) about the corner (0, 0): x' = x - m y.
        "shear_x": warp(lambda m: jnp.stack([jnp.stack([one, -m, zero]),
                                             jnp.stack([zero, one, zero]),
                                             jnp.stack([zero, zero, one])])),
        "shear_y": warp(lambda m: jnp.stack([jnp.stack([one, zero, zero]),
                                             jnp.stack([-m, one, zero]),
                                             jnp.stack([zero, zero, one])])),
        "translate_x": warp(lambda m: affine_matrix(height=height, width=width,
                                                    translate_x=jnp.trunc(m))),
        "translate_y": warp(lambda m: affine_matrix(height=height, width=width,
                                                    translate_y=jnp.trunc(m))),
        "rotate": warp(lambda m: affine_matrix(height=height, width=width, angle_degrees=m)),
        "brightness": on_image(lambda im, m: photometric.adjust_brightness(im, 1.0 + m)),
        "color": on_image(lambda im, m: photometric.adjust_saturation(im, 1.0 + m)),
        "contrast": on_image(lambda im, m: photometric.adjust_contrast(im, 1.0 + m)),
        "sharpness": on_image(lambda im, m: photometric.adjust_sharpness(im, 1.0 + m)),
        "posterize": on_image(lambda im, m: photometric.posterize(im, m.astype(jnp.int32))),
        "solarize": on_image(lambda im, m: photometric.solarize(im, m)),
        "auto_contrast": on_image(lambda im, m: photometric.autocontrast(im)),
        "equalize": on_image(lambda im, m: photometric.equalize(im)),
        "invert": on_image(lambda im, m: photometric.invert(im)),
    }
    return table[name]


def apply_op(sample, name: str, magnitude, *, interpolation: str = "nearest",
             fill: float = 0.0, mask_fill: int = 0, min_box_size: float = 1.0):
    """One AutoAugment op at a given (signed) magnitude, in torchvision's units."""
    check_interpolation(interpolation)
    if name not in AUTOAUGMENT_OPS:
        raise ValueError(f"unknown AutoAugment op {name!r}; valid ops: "
                         f"{', '.join(AUTOAUGMENT_OPS)}")
    d, was_array = to_dict(sample)
    height, width = d["image"].shape[:2]
    fn = _op(name, height=height, width=width, interpolation=interpolation, fill=fill,
             mask_fill=mask_fill, min_box_size=min_box_size)
    return from_dict(fn(d, jnp.asarray(magnitude, jnp.float32)), was_array)


def autoaugment(key, sample, *, policy="imagenet", interpolation: str = "nearest",
                fill: float = 0.0, mask_fill: int = 0, min_box_size: float = 1.0):
    """AutoAugment: one sub-policy of ``policy`` drawn uniformly per image (see the module).

    ``policy`` is ``"imagenet"``, ``"cifar10"``, ``"svhn"`` or a custom table of sub-policies
    (each a tuple of ``(op, probability, bin or None)`` steps). ``interpolation`` is
    ``"nearest"`` (torchvision's default) or ``"bilinear"``; ``fill`` fills the image where a
    geometric step leaves it, ``mask_fill`` the semantic mask; boxes thinner than
    ``min_box_size`` after a geometric step become invalid.
    """
    table = check_policy(policy)
    check_interpolation(interpolation)
    d, was_array = to_dict(sample)
    height, width = d["image"].shape[:2]
    space = magnitudes(height, width)
    used = sorted({name for sub in table for name, _, _ in sub}, key=AUTOAUGMENT_OPS.index)
    options = dict(height=height, width=width, interpolation=interpolation, fill=fill,
                   mask_fill=mask_fill, min_box_size=min_box_size)
    branches = [lambda d, m: d] + [_op(name, **options) for name in used]
    index = np.array([[1 + used.index(name) for name, _, _ in sub] for sub in table], np.int32)
    probability = np.array([[p for _, p, _ in sub] for sub in table], np.float32)
    value = np.array([[0.0 if b is None else float(space[name][0][b]) for name, _, b in sub]
                      for sub in table], np.float32)
    signed = np.array([[space[name][1] for name, _, _ in sub] for sub in table], bool)
    steps = index.shape[1]

    key_policy, key_apply, key_sign = jax.random.split(key, 3)
    chosen = jax.random.randint(key_policy, (), 0, len(table))
    applied = jax.random.uniform(key_apply, (steps,)) <= jnp.asarray(probability)[chosen]
    negate = (jax.random.uniform(key_sign, (steps,)) <= 0.5) & jnp.asarray(signed)[chosen]
    branch = jnp.where(applied, jnp.asarray(index)[chosen], 0)
    m = jnp.asarray(value)[chosen]
    m = jnp.where(negate, -m, m)

    def step(d, inputs):  # one compiled body for both steps (scan, as RandAugment)
        return jax.lax.switch(inputs[0], branches, d, inputs[1]), None

    d, _ = jax.lax.scan(step, d, (branch, m))
    return from_dict(d, was_array)

