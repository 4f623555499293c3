"""Silent wrong data and garbage runs (issue 10, item 7): every bad input stops with one clear
message naming the bad value, before anything is compiled."""

import io
import logging
import math

import numpy as np
import pytest

import jaxvision.augment as A
from helpers import digits_config
from jaxvision import data
from jaxvision.train import default_config, train_and_evaluate, validate_config


def _save(path, size=(10, 14), fmt=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path, fmt)


def _folder(root, classes, per_class=4):
    for name in classes:
        for i in range(per_class):
            _save(root / name / f"{i}.png")


def _folder_config(root):
    config = default_config()
    config.dataset = f"folder:{root}"
    config.image_size = (8, 8)
    config.batch_size = 4
    config.eval_batch_size = 4
    return config


def _arrays(n=16, size=8, channels=1):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 255, (n, size, size, channels), dtype=np.uint8),
            rng.integers(0, 4, n))


# 1. One class-name-to-id mapping, taken from the training folder.

def test_eval_folder_with_unknown_class_names_is_an_error(tmp_path, compile_counter):
    _folder(tmp_path / "train", ("0", "1", "2"))
    _folder(tmp_path / "test", ("a_zero", "1", "2"))
    with pytest.raises(ValueError, match=r"\['a_zero'\].*known classes.*'0', '1', '2'"):
        data.build_datasets(_folder_config(tmp_path))
    assert compile_counter.count == 0


def test_eval_folder_with_a_subset_of_the_classes_keeps_the_training_ids(tmp_path):
    _folder(tmp_path / "train", ("cat", "dog", "eel"))
    _folder(tmp_path / "test", ("cat", "eel"), per_class=1)
    (tmp_path / "test" / ".ipynb_checkpoints").mkdir()  # hidden: no class
    datasets = data.build_datasets(_folder_config(tmp_path))
    assert datasets.num_classes == 3 and datasets.class_names == ("cat", "dog", "eel")
    labels = [int(label) for batch in datasets.eval for label in batch["label"][batch["valid"]]]
    assert labels == [0, 2]


# 2. Non-finite float pixels.

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_from_arrays_rejects_non_finite_pixels(bad, compile_counter):
    images = np.full((6, 8, 8, 1), 0.5, np.float32)
    images[3, 2, 5, 0] = bad
    with pytest.raises(ValueError, match=rf"image 3 .*non-finite.*{bad}"):
        data.from_arrays(images, np.zeros(6, np.int32), num_classes=2)
    assert compile_counter.count == 0


# 3. Non-finite config values anywhere in the tree.

@pytest.mark.parametrize("key,value", [
    ("optimizer.learning_rate", math.nan), ("optimizer.learning_rate", math.inf),
    ("sam.rho", math.nan), ("early_stopping.min_delta", -math.inf), ("label_smoothing", math.nan),
])
def test_non_finite_config_values_are_rejected(tfds_dir, key, value):
    with pytest.raises(ValueError, match=rf"^config\.{key} must be finite, got {value}$"):
        validate_config(digits_config(tfds_dir, **{key: value}), num_devices=1)


def test_non_finite_values_inside_tuples_are_rejected(tfds_dir):
    config = digits_config(tfds_dir)
    config.model_kwargs.widths = (16, math.nan)
    with pytest.raises(ValueError, match=r"config\.model_kwargs\.widths\[1\] must be finite"):
        validate_config(config, num_devices=1)


def test_nan_learning_rate_stops_before_compiling(tfds_dir, tmp_path, compile_counter):
    config = digits_config(tfds_dir, **{"optimizer.learning_rate": math.nan, "num_epochs": 1})
    with pytest.raises(ValueError, match="config.optimizer.learning_rate must be finite, got nan"):
        train_and_evaluate(config, str(tmp_path))
    assert compile_counter.count == 0


# 4. Out-of-range values.

@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_momentum_outside_0_1_is_rejected(tfds_dir, momentum):
    config = digits_config(tfds_dir, **{"optimizer.name": "sgd", "optimizer.momentum": momentum})
    with pytest.raises(ValueError, match=rf"config.optimizer.momentum must lie in \[0, 1\), got "
                                         rf"{momentum}"):
        validate_config(config, num_devices=1)


@pytest.mark.parametrize("spec,message", [
    ({"ops": ["rotate"], "rotate_degrees": 1e9},
     r"'rotate_degrees': degrees must lie in \[0, 180\]; got 1000000000.0"),
    ({"ops": ["rotate"], "rotate_degrees": -5}, r"'rotate_degrees'.*\[0, 180\]; got -5"),
    ({"ops": ["rotate"], "rotate_degrees": (-10, 200)}, r"'rotate_degrees'.*\(-10, 200\)"),
    ({"ops": ["affine"], "affine": {"degrees": 720}}, "'affine.degrees'.*720"),
    ({"ops": ["translate"], "translate_fraction": (0.1, 3.0)}, "'translate_fraction'"),
    ({"ops": ["color_jitter"], "color_jitter_hue": 0.9}, "'color_jitter_hue'.*0.9"),
    ({"ops": ["crop"], "crop_padding": -2}, "'crop_padding': padding must be >= 0; got -2"),
    ({"ops": ["solarize"], "solarize_probability": 2.0}, "'solarize_probability'.*2.0"),
])
def test_out_of_range_augmentation_magnitudes_are_rejected_at_build(spec, message):
    with pytest.raises(ValueError, match=message):
        A.build(spec, num_classes=3)  # build, not the traced call: nothing compiled yet


def test_huge_rotation_stops_before_compiling(tfds_dir, tmp_path, compile_counter):
    config = digits_config(tfds_dir, **{"num_epochs": 1, "augment.ops": ("rotate",)})
    config.augment.rotate_degrees = 1e9
    with pytest.raises(ValueError, match="rotate_degrees"):
        train_and_evaluate(config, str(tmp_path))
    assert compile_counter.count == 0


@pytest.mark.parametrize("size", [(0, 0), (8, -1), (8,), (8.5, 8), (8, 8, 3)])
def test_image_size_must_be_two_positive_integers(tfds_dir, tmp_path, size, compile_counter):
    with pytest.raises(ValueError, match=r"config.image_size must be two positive integers"):
        validate_config(digits_config(tfds_dir, image_size=size), num_devices=1)
    _folder(tmp_path, ("a", "b"), per_class=1)
    with pytest.raises(ValueError, match=r"image_size must be two positive integers.*got"):
        data.from_image_folder(tmp_path, image_size=size)
    images, labels = _arrays()
    source = data.from_arrays(images, labels, num_classes=4)
    with pytest.raises(ValueError, match=r"image_size must be two positive integers.*got"):
        data.make_datasets(source, source, batch_size=4, eval_batch_size=4, seed=0,
                           image_size=size)
    assert compile_counter.count == 0


def test_eval_images_of_another_size_log_one_warning(caplog):
    images, labels = _arrays(size=8)
    train = data.from_arrays(images, labels, num_classes=4)
    images, labels = _arrays(n=4, size=12)
    test = data.from_arrays(images, labels, num_classes=4)
    with caplog.at_level(logging.WARNING, logger="jaxvision.data"):
        datasets = data.make_datasets(train, test, batch_size=4, eval_batch_size=4, seed=0)
    warnings = [r for r in caplog.records if r.name == "jaxvision.data"]
    assert len(warnings) == 1
    assert "12x12" in warnings[0].getMessage() and "8x8" in warnings[0].getMessage()
    assert next(iter(datasets.eval))["image"].shape == (4, 8, 8, 1)  # still resized
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jaxvision.data"):
        data.make_datasets(train, train, batch_size=4, eval_batch_size=4, seed=0)
    assert not [r for r in caplog.records if r.name == "jaxvision.data"]


# 5. Corrupt or truncated image files.

def _truncated(fmt):
    from PIL import Image

    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, fmt)
    whole = buffer.getvalue()
    return whole[:int(len(whole) * 0.9)]


@pytest.mark.parametrize("name,content", [
    ("garbage.png", b"this is not an image" * 8),
    ("truncated.png", _truncated("PNG")),
    ("truncated.jpg", _truncated("JPEG")),
])
def test_corrupt_or_truncated_image_file_is_named(tmp_path, name, content, compile_counter):
    _folder(tmp_path, ("a", "b"), per_class=2)
    _save(tmp_path / "b" / "fine.jpg", fmt="JPEG")
    bad = tmp_path / "b" / name
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=f"image file '{bad}' is corrupt or truncated"):
        data.from_image_folder(tmp_path, image_size=(8, 8))
    assert compile_counter.count == 0


# 6. Unknown data set names.

def test_unknown_dataset_suggests_close_names_briefly(tmp_path):
    with pytest.raises(ValueError) as error:
        data.from_tfds("mnsit", "train", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    assert "unknown data set 'mnsit'" in message and "'mnist'" in message
    assert len(message) < 600 and message.count("\n") == 0
    with pytest.raises(ValueError, match="'digits'"):
        data.from_tfds("digitz", "train", data_dir=str(tmp_path), download=False)


# 7. An empty eval set.

def test_empty_eval_set_is_rejected_before_training(compile_counter):
    images, labels = _arrays()
    train = data.from_arrays(images, labels, num_classes=4)
    empty = data.from_arrays(np.zeros((0, 8, 8, 1), np.float32), np.zeros(0, np.int32),
                             num_classes=4)
    with pytest.raises(ValueError, match="the eval set is empty"):
        data.make_datasets(train, empty, batch_size=4, eval_batch_size=4, seed=0)
    assert compile_counter.count == 0


def test_empty_tfds_split_stops_before_compiling(tfds_dir, tmp_path, compile_counter):
    config = digits_config(tfds_dir, num_epochs=1, eval_split="test[:0]")
    with pytest.raises(ValueError, match=r"digits split 'test\[:0\]' selects no examples"):
        train_and_evaluate(config, str(tmp_path))
    assert compile_counter.count == 0
