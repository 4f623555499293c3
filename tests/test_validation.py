"""Bad input stops before anything is compiled, with a message naming the bad value."""

import numpy as np
import pytest

from jaxvision import data
from helpers import digits_config
from jaxvision.train import train_and_evaluate


def _config(tfds_dir, **overrides):
    return digits_config(tfds_dir, **{"num_epochs": 1, **overrides})


@pytest.mark.parametrize("overrides,message", [
    ({"model": "resnet9000"}, "unknown model 'resnet9000'"),
    ({"dataset": "no_such_dataset"}, "unknown data set 'no_such_dataset'"),
    ({"parallel": "jit", "batch_size": 60}, "batch_size=60 is not divisible by the 8 devices"),
    ({"optimizer.learning_rate": -0.1}, "learning_rate must be >= 0, got -0.1"),
    ({"parallel": "ddp"}, "parallel must be one of"),
    ({"num_classes": 5}, "num_classes=5 but the data has 10 classes"),
    ({"augment.ops": ("flip", "sparkle")}, "unknown augmentation op"),
    ({"optimizer.name": "sam_optax"}, "use config.sam.rho"),
])
def test_bad_config_stops_before_compiling(tfds_dir, tmp_path, compile_counter, overrides,
                                           message):
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(_config(tfds_dir, **overrides), str(tmp_path))
    assert compile_counter.count == 0


def test_label_outside_class_range(compile_counter):
    images = np.zeros((4, 8, 8, 1), np.uint8)
    with pytest.raises(ValueError, match=r"label 10 is outside the class range \[0, 9\]"):
        data.from_arrays(images, np.array([0, 1, 10, 2]), num_classes=10)
    with pytest.raises(ValueError, match="label -1 is outside"):
        data.from_arrays(images, np.array([0, -1, 3, 2]), num_classes=10)
    assert compile_counter.count == 0


@pytest.mark.parametrize("shape", [(4, 8), (4, 8, 8, 5), (4, 2, 8, 8, 3)])
def test_images_of_the_wrong_shape(shape, compile_counter):
    with pytest.raises(ValueError, match="images must be"):
        data.from_arrays(np.zeros(shape, np.uint8), np.zeros(4, np.int32))
    assert compile_counter.count == 0


def test_eval_images_that_differ_from_training_images(tmp_path, compile_counter):
    rng = np.random.default_rng(0)
    train = data.from_arrays(rng.integers(0, 255, (64, 8, 8, 1), dtype=np.uint8),
                             rng.integers(0, 10, 64), num_classes=10)
    test = data.from_arrays(rng.integers(0, 255, (16, 8, 8, 3), dtype=np.uint8),
                            rng.integers(0, 10, 16), num_classes=10)
    with pytest.raises(ValueError, match="differ in channels"):
        data.make_datasets(train, test, batch_size=16, eval_batch_size=16, seed=0)
    assert compile_counter.count == 0


def test_public_dataset_not_available_offline_says_how_to_prepare(tmp_path):
    with pytest.raises(data.DatasetNotAvailableError, match="TFDS_DATA_DIR.*embedded"):
        data.from_tfds("mnist", "train", data_dir=str(tmp_path), download=False)
