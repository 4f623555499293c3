"""Data: embedded builders, user sources, deterministic streams, and TFDS mock data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxvision import data
from jaxvision.data.builders import digits_arrays
from jaxvision.data.shapes import CLASS_NAMES, ShapesSpec, generate, render_example


def test_digits_builder_matches_scikit_learn(tfds_dir):
    from sklearn.datasets import load_digits

    train = data.from_tfds("digits", "train", data_dir=tfds_dir)
    test = data.from_tfds("digits", "test", data_dir=tfds_dir)
    assert (train.num_examples, test.num_examples) == (1438, 359)
    assert train.num_classes == 10 and train.image_shape == (8, 8, 1)
    # TFDS stores examples in its own (deterministic) order: compare as sorted collections.
    stored = sorted((int(ex["label"]), ex["image"].tobytes()) for ex in tfds.as_numpy(test.dataset))
    expected_images, expected_labels = digits_arrays("test")
    assert stored == sorted(zip(expected_labels.tolist(), (im.tobytes() for im in expected_images)))
    # pixels: scikit-learn's 0..16 scaled to 0..255 and rounded
    raw = load_digits().images
    scaled = {np.rint(raw * 255 / 16).astype(np.uint8)[i].tobytes() for i in range(len(raw))}
    assert all(image[..., 0].tobytes() in scaled for image in expected_images)


def test_shapes_are_deterministic_and_consistent():
    spec = ShapesSpec(image_size=48, min_objects=2, max_objects=4, num_train=6, num_test=2, seed=3)
    first, again = generate(spec, "train"), generate(spec, "train")
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["image"], generate(ShapesSpec(image_size=48, seed=4), "train", 6)["image"])
    for i in range(6):
        valid = first["valid"][i]
        assert 1 <= valid.sum() <= 4
        for box, cls, mask in zip(first["boxes"][i][valid], first["classes"][i][valid],
                                  first["instance_masks"][i][valid]):
            ys, xs = np.nonzero(mask)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            assert np.all(first["semantic_mask"][i][mask] == cls + 1)
        # instance masks are disjoint and cover exactly the non-background pixels
        assert first["instance_masks"][i].sum(axis=0).max() <= 1
        np.testing.assert_array_equal(first["instance_masks"][i].any(axis=0),
                                      first["semantic_mask"][i] > 0)
        areas = first["instance_masks"][i][valid].sum(axis=(1, 2))
        assert first["label"][i] == first["classes"][i][valid][np.argmax(areas)]
    example = render_example(spec, "test", 0)
    assert example["image"].dtype == np.uint8 and example["image"].shape == (48, 48, 3)
    assert len(CLASS_NAMES) == 5


def test_shapes_tfds_builder_writes_boxes_and_masks(tmp_path):
    from jaxvision.data.builders import ShapesConfig

    spec = ShapesSpec(image_size=16, max_objects=2, num_train=3, num_test=2, seed=1)
    builder = tfds.builder("shapes", config=ShapesConfig(name="tiny16", spec=spec),
                           data_dir=str(tmp_path))
    builder.download_and_prepare()
    example = next(iter(tfds.as_numpy(builder.as_dataset(split="test"))))
    rendered = [render_example(spec, "test", i) for i in range(2)]
    (expected,) = [r for r in rendered if np.array_equal(r["image"], example["image"])]
    assert example["label"] == expected["label"]
    yxyx = example["objects"]["bbox"] * 16
    np.testing.assert_allclose(yxyx[:, [1, 0, 3, 2]], expected["boxes"], atol=1e-5)
    np.testing.assert_array_equal(example["objects"]["mask"][..., 0].astype(bool),
                                  expected["instance_masks"])


def _arrays(n=40, size=6, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8),
            rng.integers(0, 4, n))


def test_train_stream_order_depends_only_on_seed_and_epoch():
    images, labels = _arrays()
    source = data.from_arrays(images, labels, num_classes=4)
    stream = data.TrainStream(source, batch_size=8, seed=5)
    assert stream.steps_per_epoch == 5
    epoch0 = [b["label"] for b in stream.epoch(0)]
    assert all(np.array_equal(a, b["label"]) for a, b in zip(epoch0, stream.epoch(0)))
    resumed = [b["label"] for b in stream.epoch(0, start_step=3)]
    assert len(resumed) == 2 and all(np.array_equal(a, b) for a, b in zip(epoch0[3:], resumed))
    epoch1 = [b["label"] for b in stream.epoch(1)]
    assert not all(np.array_equal(a, b) for a, b in zip(epoch0, epoch1))
    # an epoch is a permutation of the data (minus the dropped remainder)
    seen = np.concatenate([b["image"] for b in stream.epoch(2)])
    assert len({im.tobytes() for im in seen}) == 40
    other_seed = data.TrainStream(source, batch_size=8, seed=6)
    assert not np.array_equal(next(other_seed.epoch(0))["label"], epoch0[0])


def test_eval_stream_pads_the_last_batch_with_a_mask():
    images, labels = _arrays(n=21)
    stream = data.EvalStream(data.from_arrays(images, labels, num_classes=4), batch_size=8)
    batches = list(stream)
    assert len(batches) == len(stream) == 3
    assert [b["valid"].sum() for b in batches] == [8, 8, 5]
    np.testing.assert_array_equal(np.concatenate([b["label"][b["valid"]] for b in batches]), labels)


def test_streams_split_the_data_between_processes():
    images, labels = _arrays(n=32)
    source = data.from_arrays(images, labels, num_classes=4)
    shards = [data.TrainStream(source, batch_size=8, seed=0, process_index=i, process_count=2)
              for i in range(2)]
    assert all(s.local_batch_size == 4 for s in shards)
    seen = [np.concatenate([b["image"] for b in s.epoch(0)]) for s in shards]
    assert not {im.tobytes() for im in seen[0]} & {im.tobytes() for im in seen[1]}


def test_resize_to_a_fixed_size_on_the_host():
    images, labels = _arrays(size=6, channels=3)
    source = data.from_arrays(images, labels, num_classes=4)
    batch = next(data.TrainStream(source, batch_size=8, seed=0, image_size=(12, 10)).epoch(0))
    assert batch["image"].shape == (8, 12, 10, 3) and batch["image"].dtype == np.uint8


def test_float_arrays_and_tf_datasets_are_accepted():
    images, labels = _arrays(n=8)
    as_float = data.from_arrays(images / 255.0, labels, num_classes=4)
    first = next(iter(tfds.as_numpy(as_float.dataset)))
    np.testing.assert_array_equal(first["image"], images[0])
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    source = data.from_tf_dataset(ds, num_classes=4)
    assert source.num_examples == 8 and source.image_shape == (6, 6, 1)
    bad = data.from_tf_dataset(tf.data.Dataset.from_tensor_slices((images, labels + 4)),
                               num_classes=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label outside the class range"):
        list(tfds.as_numpy(bad.dataset))


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (10, 14, 3), dtype=np.uint8)).save(
                tmp_path / name / f"{i}.png")
    source = data.from_image_folder(tmp_path, image_size=(8, 8))
    assert source.class_names == ("cat", "dog") and source.num_examples == 6
    labels = [int(ex["label"]) for ex in tfds.as_numpy(source.dataset)]
    assert labels == [0, 0, 0, 1, 1, 1]
    assert next(iter(tfds.as_numpy(source.dataset)))["image"].shape == (8, 8, 3)


def test_named_dataset_through_tfds_mock_data(tmp_path):
    """A public TFDS name runs end to end offline with ``tfds.testing.mock_data``."""
    from jaxvision.train import default_config, train_and_evaluate

    config = default_config()
    config.dataset = "mnist"
    config.parallel = "none"
    config.batch_size = 16
    config.eval_batch_size = 16
    config.num_epochs = 1
    config.tensorboard = False
    config.model = "mlp"
    config.model_kwargs = {"hidden": (16,)}
    with tfds.testing.mock_data(num_examples=48):
        summary = train_and_evaluate(config, str(tmp_path))
    assert summary["step"] == 3
    assert 0.0 <= summary["eval_accuracy"] <= 1.0
