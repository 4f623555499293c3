"""Policies: compose, random-apply, random-choice, RandAugment and TrivialAugment
(AutoAugment's learned policies are in ``auto_augment``).

Policies combine per-sample ops ``op(key, sample) -> sample`` (bind options with
``functools.partial``) into another such op, so they nest and vmap like any single op. Branch
choices use ``lax.switch``/``lax.cond``; under ``vmap`` those become selects that compute every
branch, which is the price of running per-example choices inside one compiled step.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxvision.augment import geometric, photometric
from jaxvision.augment.core import check_probability, maybe, to_dict

Op = Callable  # (key, sample) -> sample


def compose(*ops: Op) -> Op:
    """Applies ``ops`` in order, each with its own key (``split(key, len(ops))``)."""
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = tuple(ops[0])

    def composed(key, sample):
        if not ops:
            return sample
        for op_key, op in zip(jax.random.split(key, len(ops)), ops):
            sample = op(op_key, sample)
        return sample

    return composed


def random_apply(op: Op, probability: float) -> Op:
    """Applies ``op`` with ``probability`` (torchvision ``RandomApply``)."""
    check_probability(probability)

    def applied(key, sample):
        key_coin, key_op = jax.random.split(key)
        return maybe(key_coin, probability, lambda s: op(key_op, s), sample)

    return applied


def random_choice(ops: Sequence[Op], probabilities: Sequence[float] | None = None) -> Op:
    """Applies one of ``ops``, chosen uniformly or with ``probabilities``."""
    ops = tuple(ops)
    if not ops:
        raise ValueError("random_choice needs at least one op")
    if probabilities is not None:
        if len(probabilities) != len(ops) or min(probabilities) < 0 or sum(probabilities) <= 0:
            raise ValueError(f"probabilities must be {len(ops)} non-negative weights; "
                             f"got {probabilities!r}")
        logits = jnp.log(jnp.asarray(probabilities, jnp.float32))

    def chosen(key, sample):
        key_choice, key_op = jax.random.split(key)
        if probabilities is None:
            index = jax.random.randint(key_choice, (), 0, len(ops))
        else:
            index = jax.random.categorical(key_choice, logits)
        return jax.lax.switch(index, [lambda s, op=op: op(key_op, s) for op in ops], sample)

    return chosen


# --------------------------------------------------------------------------------------------
# RandAugment / TrivialAugment
# --------------------------------------------------------------------------------------------

# The course's twelve RandAugment ops, in the order its text lists them.
RANDAUGMENT_OPS = ("auto_contrast", "equalize", "invert", "rotate", "posterize", "solarize",
                   "shear_x", "shear_y", "color", "contrast", "brightness", "sharpness")
# torchvision's TrivialAugmentWide op set.
TRIVIALAUGMENT_OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate",
                      "brightness", "color", "contrast", "sharpness", "posterize", "solarize",
                      "auto_contrast", "equalize")


def _on_image(fn):
    def op(sample, level, sign):
        del level, sign
        d, was_array = to_dict(sample)
        d["image"] = fn(d["image"])
        return d["image"] if was_array else d
    return op


def _enhance(adjust, max_delta):
    def op(sample, level, sign):
        d, was_array = to_dict(sample)
        d["image"] = adjust(d["image"], 1.0 + sign * max_delta * level)
        return d["image"] if was_array else d
    return op


def _level_ops(*, wide: bool, fill: float) -> dict:
    """Each op maps ``(sample, level in [0, 1], sign in {-1, 1})`` to a sample.

    Standard ranges follow torchvision's RandAugment (rotate 30 deg, shear 0.3, enhance 0.9,
    posterize 8 -> 4 bits); ``wide`` uses TrivialAugmentWide's (135 deg, 0.99, 0.99, 8 -> 2,
    translate 32 px).
    """
    max_rotate, max_shear, max_enhance, min_bits = (135.0, 0.99, 0.99, 2) if wide else (30.0, 0.3, 0.9, 4)

    def geometric_op(**make):
        def op(sample, level, sign):
            params = {name: sign * value * level for name, value in make.items()}
            return geometric.affine(sample, fill=fill, **params)
        return op

    def posterize(sample, level, sign):
        del sign
        bits = 8 - jnp.round((8 - min_bits) * level).astype(jnp.int32)
        return _on_image(lambda im: photometric.posterize(im, bits))(sample, level, 1.0)

    def solarize(sample, level, sign):
        del sign
        return _on_image(lambda im: photometric.solarize(im, 1.0 - level))(sample, level, 1.0)

    return {
        "identity": _on_image(lambda im: im),
        "auto_contrast": _on_image(photometric.autocontrast),
        "equalize": _on_image(photometric.equalize),
        "invert": _on_image(photometric.invert),
        "rotate": geometric_op(angle_degrees=max_rotate),
        "posterize": posterize,
        "solarize": solarize,
        "shear_x": geometric_op(shear_x=max_shear),
        "shear_y": geometric_op(shear_y=max_shear),
        "translate_x": geometric_op(translate_x=32.0),
        "translate_y": geometric_op(translate_y=32.0),
        "color": _enhance(photometric.adjust_saturation, max_enhance),
        "contrast": _enhance(photometric.adjust_contrast, max_enhance),
        "brightness": _enhance(photometric.adjust_brightness, max_enhance),
        "sharpness": _enhance(photometric.adjust_sharpness, max_enhance),
    }


def _check_names(names, allowed, what):
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise ValueError(f"{what} ops must be a non-empty subset of {sorted(allowed)}; "
                         f"got unknown {unknown}")


def randaugment(key, sample, *, num_ops: int = 2, magnitude: float = 9.0,
                max_magnitude: float = 10.0, sample_magnitude: bool = False, fill: float = 0.0,
                ops: Sequence[str] = RANDAUGMENT_OPS):
    """RandAugment (Cubuk et al.): ``num_ops`` ops, each uniform over ``ops``, at ``magnitude``.

    Defaults follow the course: 2 ops, magnitude 9 on a 0..10 scale, its twelve ops.
    ``sample_magnitude=True`` reproduces the course code's ``randint(1, magnitude)``; the paper
    (and the default) use the fixed magnitude. Signed ops get a random sign.
    """
    table = _level_ops(wide=False, fill=fill)
    _check_names(ops, table, "randaugment")
    if not 0 <= magnitude <= max_magnitude:
        raise ValueError(f"magnitude must lie in [0, {max_magnitude}]; got {magnitude!r}")
    branches = [table[name] for name in ops]

    def one(sample, op_key):
        key_op, key_mag, key_sign = jax.random.split(op_key, 3)
        if sample_magnitude:
            level = jax.random.randint(key_mag, (), 1, int(magnitude) + 1) / max_magnitude
        else:
            level = jnp.float32(magnitude / max_magnitude)
        sign = jnp.where(jax.random.bernoulli(key_sign), 1.0, -1.0)
        index = jax.random.randint(key_op, (), 0, len(branches))
        return jax.lax.switch(index, branches, sample, level, sign), None

    sample, _ = jax.lax.scan(one, sample, jax.random.split(key, num_ops))
    return sample


def trivialaugment(key, sample, *, num_bins: int = 31, fill: float = 0.0,
                   ops: Sequence[str] = TRIVIALAUGMENT_OPS):
    """TrivialAugment (Muller & Hutter), torchvision's Wide ranges: one op, random strength."""
    table = _level_ops(wide=True, fill=fill)
    _check_names(ops, table, "trivialaugment")
    branches = [table[name] for name in ops]
    key_op, key_mag, key_sign = jax.random.split(key, 3)
    level = jax.random.randint(key_mag, (), 0, num_bins) / (num_bins - 1)
    sign = jnp.where(jax.random.bernoulli(key_sign), 1.0, -1.0)
    index = jax.random.randint(key_op, (), 0, len(branches))
    return jax.lax.switch(index, branches, sample, level, sign)
