"""``build(config, num_classes=...)``: the augmentation hook of the training engine.

Config schema (a dict or ``ml_collections.ConfigDict``, or just a preset name)::

    {"preset": "cifar"}                        # a named preset (see PRESETS)
    {"ops": ["flip", "crop"], "crop_padding": 4}
    {"preset": "course_train", "rotate_degrees": 30}   # a preset with overrides
    {"ops": ["rotate"], "rotate": {"degrees": 30, "apply_probability": 0.5}}

``ops`` lists op names (see ``OPS``) applied in order. Options are given either flat as
``<op>_<option>`` or nested as ``<op>: {option: value}``; every op also takes
``apply_probability`` (wrap it in ``random_apply``). Per-example ops run first, vmapped with one
key per example; batch ops (mixup, cutmix) must come last.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import math
import numbers
from typing import Any, Callable

import jax

from jaxvision.augment import auto_augment, geometric, mixing, photometric, policies
from jaxvision.augment.core import apply_per_example, image_op


def _deterministic(fn):
    """Adapts a deterministic ``fn(image, **options)`` to ``(key, sample, **options)``."""

    @functools.wraps(fn)
    def op(key, image, **options):
        del key
        return fn(image, **options)

    return image_op(op)


@dataclasses.dataclass(frozen=True)
class OpSpec:
    fn: Callable
    batch: bool = False  # batch ops take (key, batch, *, num_classes, **options)


_OPS: dict[str, OpSpec] = {
    # geometric
    "flip": OpSpec(geometric.random_flip_left_right),
    "vflip": OpSpec(geometric.random_flip_up_down),
    "crop": OpSpec(geometric.random_pad_crop),
    "random_resized_crop": OpSpec(geometric.random_resized_crop),
    "center_crop": OpSpec(geometric.center_crop_resize),
    "affine": OpSpec(geometric.random_affine),
    "rotate": OpSpec(geometric.random_rotate),
    "translate": OpSpec(geometric.random_translate),
    "shear": OpSpec(geometric.random_shear),
    "zoom": OpSpec(geometric.random_zoom),
    "elastic": OpSpec(geometric.random_elastic),
    "perspective": OpSpec(geometric.random_perspective),
    # photometric
    "color_jitter": OpSpec(photometric.random_color_jitter),
    "brightness": OpSpec(photometric.random_brightness),
    "contrast": OpSpec(photometric.random_contrast),
    "saturation": OpSpec(photometric.random_saturation),
    "hue": OpSpec(photometric.random_hue),
    "grayscale": OpSpec(photometric.random_grayscale),
    "channel_permutation": OpSpec(photometric.random_channel_permutation),
    "gaussian_noise": OpSpec(photometric.random_gaussian_noise),
    "salt_and_pepper": OpSpec(photometric.random_salt_and_pepper),
    "blur": OpSpec(photometric.random_gaussian_blur),
    "sharpen": OpSpec(photometric.random_sharpen),
    "posterize": OpSpec(photometric.random_posterize),
    "solarize": OpSpec(photometric.random_solarize),
    "equalize": OpSpec(photometric.random_equalize),
    "autocontrast": OpSpec(photometric.random_autocontrast),
    "invert": OpSpec(photometric.random_invert),
    "normalize": OpSpec(_deterministic(photometric.normalize)),
    # occlusion
    "cutout": OpSpec(mixing.random_cutout),
    "random_erasing": OpSpec(mixing.random_erasing),
    # policies
    "randaugment": OpSpec(policies.randaugment),
    "trivialaugment": OpSpec(policies.trivialaugment),
    "autoaugment": OpSpec(auto_augment.autoaugment),
    # batch ops
    "mixup": OpSpec(mixing.mixup_batch, batch=True),
    "cutmix": OpSpec(mixing.cutmix_batch, batch=True),
    "mixup_or_cutmix": OpSpec(mixing.mixup_or_cutmix_batch, batch=True),
}

_CIFAR_NORMALIZE = {"normalize_mean": photometric.CIFAR10_MEAN,
                    "normalize_std": photometric.CIFAR10_STD}

_PRESETS: dict[str, dict] = {
    "none": {"ops": []},
    "flip": {"ops": ["flip"]},
    # CIFAR recipe: reflect-pad 4 and crop, flip, CIFAR-10 statistics.
    "cifar": {"ops": ["crop", "flip", "normalize"], "crop_padding": 4, **_CIFAR_NORMALIZE},
    "cifar_cutout": {"ops": ["crop", "flip", "cutout", "normalize"], **_CIFAR_NORMALIZE},
    "cifar_mixup": {"ops": ["crop", "flip", "normalize", "mixup"], **_CIFAR_NORMALIZE},
    "cifar_cutmix": {"ops": ["crop", "flip", "normalize", "cutmix"], **_CIFAR_NORMALIZE},
    "cifar_randaugment": {"ops": ["crop", "flip", "randaugment", "normalize"], **_CIFAR_NORMALIZE},
    # The course's composed training pipeline (random resized crop, flip, rotation up to 15
    # degrees, colour jitter 0.2, normalize) at the input resolution.
    "course_train": {"ops": ["random_resized_crop", "flip", "rotate", "color_jitter", "normalize"],
                     "rotate_degrees": 15.0, "color_jitter_brightness": 0.2,
                     "color_jitter_contrast": 0.2, "color_jitter_saturation": 0.2},
    # Resize(256) -> CenterCrop(224) -> Normalize, as a crop fraction of the input.
    "course_eval": {"ops": ["center_crop", "normalize"], "center_crop_crop_fraction": 224 / 256},
    "randaugment": {"ops": ["random_resized_crop", "flip", "randaugment", "normalize"]},
    "trivialaugment": {"ops": ["random_resized_crop", "flip", "trivialaugment", "normalize"]},
    # AutoAugment's learned policies (torchvision's AutoAugmentPolicy): ImageNet after the
    # crop and flip, CIFAR-10 after the CIFAR pad-crop and flip.
    "autoaugment": {"ops": ["random_resized_crop", "flip", "autoaugment", "normalize"],
                    "autoaugment_policy": "imagenet"},
    "cifar_autoaugment": {"ops": ["crop", "flip", "autoaugment", "normalize"],
                          "autoaugment_policy": "cifar10", **_CIFAR_NORMALIZE},
    # Detection/segmentation-safe geometry (boxes and masks follow).
    "detection": {"ops": ["flip", "zoom", "translate", "color_jitter"]},
}

# Read-only views: new ops and presets come in through the functions below, never by
# mutating a module-level dict that other code may have iterated already.
OPS = types.MappingProxyType(_OPS)
PRESETS = types.MappingProxyType(_PRESETS)


def register_op(name: str, fn: Callable, *, batch: bool = False) -> None:
    """Makes ``fn`` usable as ``ops=[name]``. Per-example ops take ``(key, example,
    **options)``; batch ops (``batch=True``) take ``(key, batch, *, num_classes, **options)``.
    Its keyword-only parameters become the op's options."""
    if name in _OPS:
        raise ValueError(f"augmentation op {name!r} is already registered")
    _OPS[name] = OpSpec(fn, batch=batch)


def register_preset(name: str, spec: dict) -> None:
    """A named augmentation config (``{"ops": [...], "<op>_<option>": value}``); checked now."""
    if name in _PRESETS:
        raise ValueError(f"augmentation preset {name!r} is already registered")
    resolve(dict(spec))
    _PRESETS[name] = dict(spec)


# Ranges of the magnitudes that would otherwise run without error and give garbage (a 1e9-degree
# rotation, a shift of three image widths). Checked by ``resolve``, so a bad value stops at build
# time, before anything is traced or compiled. Keys are '<op>.<option>' or an option of any op;
# a number, or each end of a (low, high) pair, must lie in the range.
_RANGES: dict[str, tuple[float, float]] = {
    "probability": (0, 1), "apply_probability": (0, 1),
    "rotate.degrees": (-180, 180), "affine.degrees": (-180, 180),
    "translate.fraction": (0, 1), "affine.translate": (0, 1),
    "random_resized_crop.scale": (0, 1), "random_erasing.scale": (0, 1),
    "crop.padding": (0, math.inf),
    "color_jitter.hue": (-0.5, 0.5), "hue.delta": (-0.5, 0.5),
    **{f"color_jitter.{name}": (0, math.inf) for name in ("brightness", "contrast", "saturation")},
    **{f"{name}.factor": (0, math.inf) for name in ("brightness", "contrast", "saturation")},
    "posterize.bits": (1, 8), "solarize.threshold": (0, 1),
    "salt_and_pepper.amount": (0, 1), "salt_and_pepper.salt_fraction": (0, 1),
    "gaussian_noise.std": (0, math.inf),
    "cutout.num_holes": (0, math.inf), "cutout.length": (0, math.inf),
    "perspective.distortion_scale": (0, 1),
}
# Options that take one of a few names (a string outside them stops at build time too).
_CHOICES: dict[str, tuple[str, ...]] = {
    "autoaugment.policy": tuple(auto_augment.AUTOAUGMENT_POLICIES),
    "interpolation": ("bilinear", "nearest"),
}
# Options where a single number v means the range (-v, v): that number must be >= 0.
_SYMMETRIC = ("rotate.degrees", "affine.degrees", "color_jitter.hue", "hue.delta")


def _check_range(op_name: str, option: str, value, key: str) -> None:
    name = f"{op_name}.{option}"
    choices = _CHOICES.get(name, _CHOICES.get(option))
    if choices is not None and isinstance(value, str) and value not in choices:
        raise ValueError(f"config key {key!r}: {option} must be one of {', '.join(choices)}; "
                         f"got {value!r}")
    bounds = _RANGES.get(name, _RANGES.get(option))
    if bounds is None:
        return
    low, high = bounds
    is_pair = isinstance(value, (tuple, list))
    if name in _SYMMETRIC and not is_pair:
        low = 0
    values = value if is_pair else (value,)
    if not all(isinstance(v, numbers.Real) and low <= v <= high for v in values):
        where = f"be >= {low}" if high == math.inf else f"lie in [{low}, {high}]"
        raise ValueError(f"config key {key!r}: {option} must {where}; got {value!r}")


def _options_of(fn) -> dict[str, inspect.Parameter]:
    params = inspect.signature(fn).parameters
    return {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
            and n != "num_classes"}


def _as_dict(config) -> dict:
    if config is None:
        return {"ops": []}
    if isinstance(config, str):
        return {"preset": config}
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, dict):
        raise ValueError(f"augmentation config must be a dict, ConfigDict or preset name; "
                         f"got {type(config).__name__}")
    return {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in config.items()}


def resolve(config) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Expands presets and validates a config into ``(ops, {op: options})``."""
    config = _as_dict(config)
    preset = config.pop("preset", None)
    if preset:
        if preset not in PRESETS:
            raise ValueError(f"unknown augmentation preset {preset!r}; valid presets: "
                             f"{', '.join(sorted(PRESETS))}")
        base = dict(_PRESETS[preset])
        if not config.get("ops"):  # an empty op list keeps the preset's ops
            config.pop("ops", None)
        config = {**base, **config}
    ops = list(config.pop("ops", []))
    unknown = [name for name in ops if name not in OPS]
    if unknown:
        raise ValueError(f"unknown augmentation op(s) {unknown}; valid ops: {', '.join(OPS)}")
    seen_batch = [name for name in ops if _OPS[name].batch]
    if seen_batch:
        first = ops.index(seen_batch[0])
        late = [n for n in ops[first:] if not _OPS[n].batch]
        if late:
            raise ValueError(f"batch op {seen_batch[0]!r} must come after every per-example op; "
                             f"move {late} before it")

    options: dict[str, dict[str, Any]] = {name: {} for name in ops}

    def set_option(op_name, option, value, key):
        allowed = set(_options_of(_OPS[op_name].fn)) | {"apply_probability"}
        if option not in allowed:
            raise ValueError(f"config key {key!r}: op {op_name!r} has no option {option!r}; "
                             f"its options: {sorted(allowed)}")
        _check_range(op_name, option, value, key)
        options[op_name][option] = value

    for key, value in config.items():
        if key in options and isinstance(value, dict):
            for option, v in value.items():
                set_option(key, option, v, f"{key}.{option}")
            continue
        matches = [n for n in ops if key.startswith(n + "_")]
        if not matches:
            raise ValueError(
                f"config key {key!r} does not name an option of a listed op ({ops}); write "
                f"'<op>_<option>' (e.g. 'crop_padding') or add the op to 'ops'")
        op_name = max(matches, key=len)
        set_option(op_name, key[len(op_name) + 1:], value, key)
    return ops, options


def _bind(name: str, opts: dict[str, Any]) -> Callable:
    opts = dict(opts)
    probability = opts.pop("apply_probability", None)
    op = functools.partial(_OPS[name].fn, **opts)
    if probability is not None:
        op = policies.random_apply(op, float(probability))
    return op


def build(config, *, num_classes: int) -> Callable:
    """Builds ``augment_fn(key, batch) -> batch`` from a config (see the module docstring).

    ``batch`` holds ``"image"`` float32 ``[B, H, W, C]`` in [0, 1] and other schema keys
    (``"label"`` int32 ``[B]``, ``"boxes"``/``"boxes_valid"``, ``"box_classes"``, ``"mask"``,
    ``"instance_masks"``); any other key is an error. Mixup/cutmix replace ``"label"`` by soft
    targets ``[B, num_classes]``. The returned function is pure and jit-safe.
    """
    ops, options = resolve(config)
    example_ops = [_bind(n, options[n]) for n in ops if not _OPS[n].batch]
    batch_ops = []
    for name in ops:
        if _OPS[name].batch:
            opts = dict(options[name])
            if "apply_probability" in opts:
                raise ValueError(f"{name} does not take apply_probability; set its alpha instead")
            batch_ops.append(functools.partial(_OPS[name].fn, num_classes=num_classes, **opts))
    per_example = policies.compose(*example_ops)

    def augment_fn(key, batch):
        if not isinstance(batch, dict) or "image" not in batch:
            raise ValueError("augment_fn expects a batch dict with an 'image' entry [B, H, W, C]")
        if batch["image"].ndim != 4:
            raise ValueError(f"batch['image'] must be [B, H, W, C]; got {batch['image'].shape}")
        key_examples, key_batch = jax.random.split(key)
        if example_ops:
            batch = apply_per_example(per_example, key_examples, batch)
        for i, op in enumerate(batch_ops):
            batch = op(jax.random.fold_in(key_batch, i), batch)
        return batch

    augment_fn.ops = tuple(ops)
    augment_fn.options = options
    return augment_fn


# Ops that are preprocessing rather than augmentation: evaluation must apply them too.
EVAL_OPS = ("normalize",)


def build_eval(config) -> Callable | None:
    """``preprocess_fn(batch) -> batch`` applying the config's deterministic preprocessing
    (``EVAL_OPS``, with the training options) at evaluation, or None when it has none. Without
    it a model trained on normalized images would be evaluated on raw ones."""
    ops, options = resolve(config)
    names = [n for n in ops if n in EVAL_OPS]
    if not names:
        return None
    preprocess = policies.compose(*[functools.partial(_OPS[n].fn, **{
        k: v for k, v in options[n].items() if k != "apply_probability"}) for n in names])

    def preprocess_fn(batch):
        key = jax.random.key(0)  # unused: the eval ops are deterministic
        images = apply_per_example(preprocess, key, batch["image"])
        return dict(batch, image=images)

    return preprocess_fn
