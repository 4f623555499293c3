"""``build(config, num_classes=...)``: presets, schema validation and the engine contract."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import jaxvision.augment as A


def _batch(channels=3, with_targets=False):
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.uniform(size=(4, 16, 16, channels)), jnp.float32),
             "label": jnp.asarray([0, 1, 2, 1], jnp.int32)}
    if with_targets:
        batch["boxes"] = jnp.asarray([[[2, 2, 10, 12], [0, 0, 0, 0]]] * 4, jnp.float32)
        batch["boxes_valid"] = jnp.asarray([[True, False]] * 4)
        mask = np.zeros((4, 16, 16), np.int32)
        mask[:, 2:12, 2:10] = 1
        batch["mask"] = jnp.asarray(mask)
    return batch


def test_cifar_preset_is_pad_crop_flip_normalize():
    fn = A.build("cifar", num_classes=3)
    assert fn.ops == ("crop", "flip", "normalize")
    batch = _batch()
    out = jax.jit(fn)(jax.random.key(0), batch)
    assert out["image"].shape == (4, 16, 16, 3) and out["image"].dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(out["label"]), np.asarray(batch["label"]))
    # Undoing the normalization gives pixels of the input (pad-crop and flip move, not blend).
    raw = np.asarray(out["image"]) * np.asarray(A.CIFAR10_STD) + np.asarray(A.CIFAR10_MEAN)
    values = np.asarray(batch["image"], np.float64)
    for i in range(4):
        assert np.isin(np.round(raw[i], 4), np.round(values[i], 4)).mean() > 0.99


def test_flat_and_nested_options_and_config_dict():
    ops, options = A.resolve({"ops": ["flip", "crop"], "crop_padding": 2,
                              "flip": {"probability": 1.0}})
    assert ops == ["flip", "crop"] and options == {"flip": {"probability": 1.0},
                                                   "crop": {"padding": 2}}
    config = ml_collections.ConfigDict({"preset": "course_train", "ops": (),
                                        "rotate_degrees": 30.0,
                                        "color_jitter": {"hue": 0.1}})
    ops, options = A.resolve(config)
    assert ops == ["random_resized_crop", "flip", "rotate", "color_jitter", "normalize"]
    assert options["rotate"] == {"degrees": 30.0}
    assert options["color_jitter"]["hue"] == 0.1 and options["color_jitter"]["brightness"] == 0.2
    # An op name that prefixes another: the longest match wins.
    _, options = A.resolve({"ops": ["random_resized_crop", "crop"], "random_resized_crop_scale":
                            (0.5, 1.0), "crop_padding": 1})
    assert options == {"random_resized_crop": {"scale": (0.5, 1.0)}, "crop": {"padding": 1}}


def test_flip_with_probability_one_in_build():
    fn = A.build({"ops": ["flip"], "flip_probability": 1.0}, num_classes=3)
    batch = _batch()
    out = fn(jax.random.key(0), batch)
    np.testing.assert_array_equal(np.asarray(out["image"]), np.asarray(batch["image"])[:, :, ::-1])


def test_validation_errors_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"unknown augmentation op\(s\) \['warp'\].*flip.*cutmix"):
        A.build({"ops": ["flip", "warp"]}, num_classes=3)
    with pytest.raises(ValueError, match="unknown augmentation preset 'cifar11'.*cifar"):
        A.build("cifar11", num_classes=3)
    with pytest.raises(ValueError, match="op 'crop' has no option 'pading'.*padding"):
        A.build({"ops": ["crop"], "crop_pading": 4}, num_classes=3)
    with pytest.raises(ValueError, match="'rotate_degrees' does not name an option of a listed op"):
        A.build({"ops": ["crop"], "rotate_degrees": 4}, num_classes=3)
    with pytest.raises(ValueError, match="batch op 'mixup' must come after.*flip"):
        A.build({"ops": ["mixup", "flip"]}, num_classes=3)
    with pytest.raises(ValueError, match="probability must lie in"):
        A.build({"ops": ["flip"], "flip_probability": 1.5}, num_classes=3)(
            jax.random.key(0), _batch())
    with pytest.raises(ValueError, match="needs 1 or 1 values|needs 1 or 3 values"):
        A.build("cifar", num_classes=3)(jax.random.key(0), _batch(channels=1))


def test_mixup_and_cutmix_give_soft_labels_in_build():
    for name in ("cifar_mixup", "cifar_cutmix"):
        out = jax.jit(A.build(name, num_classes=3))(jax.random.key(1), _batch())
        label = np.asarray(out["label"])
        assert label.shape == (4, 3) and label.dtype == np.float32
        np.testing.assert_allclose(label.sum(-1), 1.0, atol=1e-6)
        assert (label >= 0).all()
    with pytest.raises(ValueError, match="cannot merge box lists"):
        A.build({"ops": ["cutmix"]}, num_classes=3)(jax.random.key(0), _batch(with_targets=True))


def test_detection_targets_travel_through_build():
    fn = jax.jit(A.build({"ops": ["flip", "rotate", "crop", "color_jitter"],
                          "flip_probability": 1.0, "rotate_degrees": 0.0, "crop_padding": 0},
                         num_classes=3))
    batch = _batch(with_targets=True)
    out = fn(jax.random.key(2), batch)
    assert set(out) == set(batch)
    np.testing.assert_allclose(np.asarray(out["boxes"])[:, 0], [[6, 2, 14, 12]] * 4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(out["boxes_valid"]), np.asarray(batch["boxes_valid"]))
    np.testing.assert_array_equal(np.asarray(out["mask"]), np.asarray(batch["mask"])[:, :, ::-1])


def test_apply_probability_wraps_any_op():
    fn = A.build({"ops": ["invert"], "invert_probability": 1.0, "invert_apply_probability": 0.5},
                 num_classes=3)
    batch = {"image": jnp.full((64, 2, 2, 3), 0.25), "label": jnp.zeros(64, jnp.int32)}
    out = np.asarray(jax.jit(fn)(jax.random.key(0), batch)["image"])[:, 0, 0, 0]
    assert set(np.round(out, 5)) == {0.25, 0.75}
    assert 0.3 < (out == 0.75).mean() < 0.7


def test_every_preset_builds_and_keeps_shapes():
    batch = _batch()
    for name in A.PRESETS:  # eval_shape traces (and validates) without compiling
        out = jax.eval_shape(A.build(name, num_classes=3), jax.random.key(0), batch)
        assert out["image"].shape == batch["image"].shape, name
        soft = "mix" in name or "cutmix" in name
        assert out["label"].shape == ((4, 3) if soft else (4,)), name


def test_unknown_per_example_keys_are_an_error_naming_them():
    batch = dict(_batch(), depth=jnp.zeros((4, 16, 16)))
    for config in ("flip", {"ops": ["brightness"]}):  # geometric or not: never passed through
        with pytest.raises(ValueError, match=r"per-example key\(s\) \['depth'\]"):
            A.build(config, num_classes=3)(jax.random.key(0), batch)
    with pytest.raises(ValueError, match="'depth'"):
        A.random_rotate(jax.random.key(0), {"image": jnp.zeros((8, 8, 3)),
                                            "depth": jnp.zeros((8, 8))})
