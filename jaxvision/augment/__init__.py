"""On-device augmentation: pure, jit- and vmap-safe ops driven by a PRNG key.

Per-sample ops are ``op(key, sample, **options) -> sample`` where a sample is an image
``[H, W, C]`` (float, [0, 1]) or a dict of ``jaxvision.data.schema`` keys (``"image"`` plus
``"boxes"``/``"boxes_valid"``, ``"mask"``, ``"instance_masks"``...); geometric ops move every
key with the image through one rule table (``core.RULES``), and an unknown key is an error.
Policies: RandAugment, TrivialAugment and AutoAugment (``autoaugment``: the ImageNet, CIFAR-10
and SVHN policies). ``apply_per_example`` vmaps an op over a batch with one key per example;
``build(config, num_classes=...)`` gives the training engine's ``augment_fn(key, batch) -> batch``.
"""

from jaxvision.augment.auto_augment import (AUTOAUGMENT_OPS, AUTOAUGMENT_POLICIES, autoaugment)
from jaxvision.augment.core import apply_per_example
from jaxvision.augment.geometric import (
    affine, affine_matrix, center_crop_resize, crop_and_resize, flip_left_right, flip_up_down,
    perspective, perspective_coeffs, random_affine, random_elastic, random_flip_left_right,
    random_flip_up_down, random_pad_crop, random_perspective, random_resized_crop, random_rotate,
    random_shear, random_translate, random_zoom, sample_crop_box, sample_perspective_points)
from jaxvision.augment.mixing import (
    MixedBatch, cutmix, cutmix_batch, cutmix_box, cutout_mask, mix_targets, mixed_cross_entropy,
    mixup, mixup_batch, mixup_or_cutmix_batch, random_cutout, random_erasing, sample_lambda)
from jaxvision.augment.photometric import (
    CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, adjust_brightness, adjust_contrast,
    adjust_hue, adjust_saturation, adjust_sharpness, autocontrast, equalize, gaussian_blur,
    invert, normalize, posterize, random_autocontrast, random_brightness,
    random_channel_permutation, random_color_jitter, random_contrast, random_equalize,
    random_gaussian_blur, random_gaussian_noise, random_grayscale, random_hue, random_invert,
    random_posterize, random_salt_and_pepper, random_saturation, random_sharpen, random_solarize,
    solarize, to_grayscale)
from jaxvision.augment.pipeline import (EVAL_OPS, OPS, PRESETS, build, build_eval, register_op,
                                        register_preset, resolve)
from jaxvision.augment.policies import (
    RANDAUGMENT_OPS, TRIVIALAUGMENT_OPS, compose, randaugment, random_apply, random_choice,
    trivialaugment)

__all__ = [
    "AUTOAUGMENT_OPS", "AUTOAUGMENT_POLICIES", "autoaugment", "perspective", "perspective_coeffs",
    "random_perspective", "sample_perspective_points",
    "CIFAR10_MEAN", "CIFAR10_STD", "EVAL_OPS", "build_eval", "IMAGENET_MEAN", "IMAGENET_STD", "MixedBatch", "OPS",
    "PRESETS", "RANDAUGMENT_OPS", "register_op", "register_preset", "TRIVIALAUGMENT_OPS", "adjust_brightness", "adjust_contrast",
    "adjust_hue", "adjust_saturation", "adjust_sharpness", "affine", "affine_matrix",
    "apply_per_example", "autocontrast", "build", "center_crop_resize", "compose",
    "crop_and_resize", "cutmix", "cutmix_batch", "cutmix_box", "cutout_mask", "equalize",
    "flip_left_right", "flip_up_down", "gaussian_blur", "invert", "mix_targets",
    "mixed_cross_entropy", "mixup", "mixup_batch", "mixup_or_cutmix_batch", "normalize",
    "posterize", "randaugment", "random_affine", "random_apply", "random_autocontrast",
    "random_brightness", "random_channel_permutation", "random_choice", "random_color_jitter",
    "random_contrast", "random_cutout", "random_elastic", "random_equalize", "random_erasing",
    "random_flip_left_right", "random_flip_up_down", "random_gaussian_blur",
    "random_gaussian_noise", "random_grayscale", "random_hue", "random_invert", "random_pad_crop",
    "random_posterize", "random_resized_crop", "random_rotate", "random_salt_and_pepper",
    "random_saturation", "random_sharpen", "random_shear", "random_solarize", "random_translate",
    "random_zoom", "resolve", "sample_crop_box", "sample_lambda", "solarize", "to_grayscale",
    "trivialaugment",
]
