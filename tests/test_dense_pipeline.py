"""Boxes and masks through the data pipeline (issue 11, item 3): TFDS decoders to the schema,
``from_arrays`` with dense targets, host resize and ``max_boxes`` padding, and on-device
augmentation that keeps every box on its instance mask."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from helpers import box_iou, mask_box

import jaxvision.augment as A
from jaxvision import data
from jaxvision.data import schema as S
from jaxvision.data.decoders import decoder_for


@pytest.fixture(scope="module")
def det64(tfds_dir):
    return data.from_tfds("shapes/det64", "test", data_dir=tfds_dir)




def _box_mask_agreement(batch):
    """Per valid box: its IoU with the box of its instance mask, whether it contains that box
    (to 1 px), and whether it touches the image border. Invalid rows must have empty masks."""
    height, width = batch[S.IMAGE].shape[1:3]
    rows = []
    for boxes, valid, masks in zip(batch[S.BOXES], batch[S.BOXES_VALID], batch[S.INSTANCE_MASKS]):
        assert not masks[~valid].any()
        for box, mask in zip(boxes[valid], masks[valid]):
            reference = mask_box(mask)
            assert reference is not None, box
            contains = (reference[:2] >= box[:2] - 1).all() and (reference[2:] <= box[2:] + 1).all()
            border = box[0] < 0.5 or box[1] < 0.5 or box[2] > width - 0.5 or box[3] > height - 0.5
            rows.append((box_iou(box, reference), contains, border))
    ious, contains, border = (np.array(column) for column in zip(*rows))
    return ious, contains, border


def test_det64_boxes_stay_on_their_instance_masks_through_host_and_device(det64):
    assert det64.keys == S.DETECTION and det64.num_classes == 5
    stream = data.TrainStream(det64, batch_size=16, seed=0, image_size=(128, 192), max_boxes=6)
    batch = next(stream.epoch(0))
    S.check_batch(batch)
    assert batch[S.BOXES].shape == (16, 6, 4) and batch[S.INSTANCE_MASKS].shape == (16, 6, 128, 192)
    assert not batch[S.BOXES_VALID][:, 4:].any()  # det64 has at most 4 objects: padding rows
    assert (_box_mask_agreement(batch)[0] > 0.999).all()  # integer host scales: exact
    augment = jax.jit(A.build({
        "ops": ["flip", "crop", "affine"], "crop_padding": 16, "crop_mode": "constant",
        "affine_degrees": 2.0, "affine_translate": (0.1, 0.1), "affine_scale": (0.9, 1.1),
        "affine_min_box_size": 3.0}, num_classes=5))
    step_input = dict(batch, image=jnp.asarray(batch[S.IMAGE], jnp.float32) / 255.0)
    out = jax.device_get(augment(jax.random.key(0), step_input))
    assert set(out) == set(batch)
    np.testing.assert_array_equal(out[S.BOX_CLASSES], batch[S.BOX_CLASSES])
    assert not out[S.BOXES_VALID][:, 4:].any()
    assert out[S.BOXES_VALID].sum() >= 0.9 * batch[S.BOXES_VALID].sum()
    # Every box agrees with its transformed instance mask, border-cut ones included: with
    # instance masks the boxes are taken from the moved masks (augment.core.mask_boxes).
    ious, contains, border = _box_mask_agreement(out)
    assert ious.min() >= 0.9, np.sort(ious)[:5]
    assert contains.all() and border.any() and (~border).any()
    # The semantic mask moved with them: each valid instance lies on its class in the mask.
    for masks, classes, valid, semantic in zip(out[S.INSTANCE_MASKS], out[S.BOX_CLASSES],
                                               out[S.BOXES_VALID], out[S.MASK]):
        for mask, cls in zip(masks[valid], classes[valid]):
            assert np.all(semantic[mask > 0] == cls + 1)


def test_seg64_decoder_keeps_image_label_and_mask(det64, tfds_dir):
    seg = decoder_for(types.SimpleNamespace(name="shapes",
                                            builder_config=types.SimpleNamespace(name="seg64")))
    source = data.from_tfds("shapes/det64", "test", data_dir=tfds_dir, decoder=seg)
    assert source.keys == S.SEGMENTATION
    batch = next(iter(data.EvalStream(source, batch_size=4, image_size=(32, 32))))
    S.check_batch(batch)
    assert batch[S.MASK].max() <= 5 and S.BOXES not in batch


# TFDS public data sets, offline: tfds.testing.mock_data with examples written here, so that the
# expected boxes are known. Features a test does not set are empty.

def _mock(examples):
    def complete(info, given):
        out = {}
        for key, spec in info.items():
            if isinstance(spec, dict):
                out[key] = complete(spec, given.get(key, {}))
            elif key in given:
                out[key] = np.asarray(given[key], spec.dtype.as_numpy_dtype)
            elif spec.dtype == tf.string:
                out[key] = b""
            else:
                shape = [0 if d is None else d for d in spec.shape]
                out[key] = np.zeros(shape, spec.dtype.as_numpy_dtype)
        return out

    def as_dataset(self, split, **kwargs):
        info = self.info.features.get_tensor_info()
        signature = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), info)
        return tf.data.Dataset.from_generator(
            lambda: (complete(info, ex) for ex in examples), output_signature=signature)

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


def _image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def _first_batch(source, image_size, max_boxes=3, batch_size=2):
    batch = next(iter(data.EvalStream(source, batch_size=batch_size, image_size=image_size,
                                      max_boxes=max_boxes)))
    S.check_batch(batch)
    return batch


@pytest.mark.parametrize("name, drop", [("voc/2007", "is_difficult"), ("coco/2017", "is_crowd")])
def test_voc_and_coco_decoders_give_absolute_xyxy_without_ignored_objects(name, drop):
    # TFDS bbox: normalized [ymin, xmin, ymax, xmax]; the image is 40 high, 60 wide.
    objects = {"bbox": [[0.1, 0.2, 0.5, 0.8], [0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.75, 1.0]],
               "label": [3, 7, 11], drop: [False, True, False]}
    examples = [{"image": _image(40, 60), "objects": objects},
                {"image": _image(30, 30, 1), "objects": {"bbox": np.zeros((0, 4)), "label": [],
                                                          drop: []}}]
    with _mock(examples):
        source = data.from_tfds(name, "train")
        assert source.keys == (S.IMAGE, S.BOXES, S.BOX_CLASSES)
        assert source.image_shape == (None, None, 3) and source.num_examples == 2
        assert source.num_classes == (20 if name.startswith("voc") else 80)
        raw = next(iter(tfds.as_numpy(source.dataset)))
        np.testing.assert_allclose(raw[S.BOXES], [[12, 4, 48, 20], [30, 20, 60, 30]])
        np.testing.assert_array_equal(raw[S.BOX_CLASSES], [3, 11])
        batch = _first_batch(source, (20, 30))  # halves every coordinate
    np.testing.assert_allclose(batch[S.BOXES][0], [[6, 2, 24, 10], [15, 10, 30, 15], [0, 0, 0, 0]])
    np.testing.assert_array_equal(batch[S.BOX_CLASSES][0], [3, 11, 0])
    np.testing.assert_array_equal(batch[S.BOXES_VALID], [[True, True, False], [False] * 3])
    np.testing.assert_array_equal(batch[S.VALID], [True, True])


def test_oxford_iiit_pet_decoder_gives_label_head_box_and_mask():
    trimap = np.full((20, 40, 1), 2, np.uint8)  # background
    trimap[5:15, 10:30] = 1  # pet
    trimap[4, 10:30] = 3  # border
    examples = [{"image": _image(20, 40), "label": 7, "segmentation_mask": trimap,
                 "head_bbox": [0.25, 0.25, 0.75, 0.5]}]
    with _mock(examples):
        source = data.from_tfds("oxford_iiit_pet", "train")
        assert source.keys == (S.IMAGE, S.LABEL, S.BOXES, S.BOX_CLASSES, S.MASK)
        assert source.num_classes == 37 and source.class_names[0] == "Abyssinian"
        batch = _first_batch(source, (40, 80), max_boxes=1, batch_size=1)
    assert batch[S.LABEL][0] == 7
    np.testing.assert_allclose(batch[S.BOXES][0], [[20, 10, 40, 30]])  # 10, 5, 20, 15 doubled
    np.testing.assert_array_equal(batch[S.BOX_CLASSES][0], [7])
    expected = np.zeros((20, 40), np.uint8)
    expected[5:15, 10:30] = 1
    expected[4, 10:30] = 2
    np.testing.assert_array_equal(batch[S.MASK][0], expected.repeat(2, 0).repeat(2, 1))


# from_arrays with dense targets, and the max_boxes contract.

def _dense_arrays():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 10, 12, 3), dtype=np.uint8)
    boxes = [np.array([[1, 2, 5, 6]]), np.zeros((0, 4)), np.array([[0, 0, 12, 10], [3, 3, 4, 4]]),
             np.array([[2, 2, 4, 4]]), np.zeros((0, 4))]
    classes = [np.array([1]), np.array([], int), np.array([0, 2]), np.array([1]), np.array([], int)]
    instances = []
    for b in boxes:
        m = np.zeros((len(b), 10, 12), bool)
        for k, (x1, y1, x2, y2) in enumerate(np.asarray(b, int)):
            m[k, y1:y2, x1:x2] = True
        instances.append(m)
    semantic = rng.integers(0, 3, (5, 10, 12))
    return images, boxes, classes, instances, semantic


def test_from_arrays_carries_boxes_and_masks_through_the_streams():
    images, boxes, classes, instances, semantic = _dense_arrays()
    source = data.from_arrays(images, boxes=boxes, box_classes=classes, instance_masks=instances,
                              mask=semantic)
    assert source.keys == (S.IMAGE, S.MASK, S.BOXES, S.BOX_CLASSES, S.INSTANCE_MASKS)
    assert source.num_classes == 3
    batches = list(data.EvalStream(source, batch_size=4, image_size=(20, 24), max_boxes=3))
    for batch in batches:
        S.check_batch(batch)
    first, last = batches
    np.testing.assert_allclose(first[S.BOXES][0, 0], [2, 4, 10, 12])
    np.testing.assert_array_equal(first[S.BOXES_VALID][:, :2],
                                  [[True, False], [False, False], [True, True], [True, False]])
    np.testing.assert_array_equal(first[S.MASK][0], semantic[0].repeat(2, 0).repeat(2, 1))
    assert (_box_mask_agreement(first)[0] == 1).all()  # 2x nearest resize of filled boxes: exact
    np.testing.assert_array_equal(last[S.VALID], [True, False, False, False])
    assert not last[S.BOXES_VALID].any()  # padding examples have no valid boxes
    # A training stream of the same source: same keys, same padded shapes.
    train = next(data.TrainStream(source, batch_size=2, seed=0, max_boxes=3).epoch(0))
    assert set(train) == set(first) - {S.VALID} and train[S.BOXES].shape == (2, 3, 4)


def test_from_arrays_rejects_inconsistent_targets():
    images, boxes, classes, instances, _ = _dense_arrays()
    with pytest.raises(ValueError, match="boxes and box_classes go together"):
        data.from_arrays(images, boxes=boxes)
    with pytest.raises(ValueError, match="example 2 has 2 boxes but 1 box_classes"):
        data.from_arrays(images, boxes=boxes, box_classes=[c[:1] for c in classes])
    flipped = [b[:, [2, 3, 0, 1]] for b in boxes]
    with pytest.raises(ValueError, match=r"example 0 has box \[5, 6, 1, 2\].*x1 <= x2"):
        data.from_arrays(images, boxes=flipped, box_classes=classes)
    with pytest.raises(ValueError, match="instance_masks need boxes"):
        data.from_arrays(images, np.zeros(5, int), instance_masks=instances)


def test_more_objects_than_max_boxes_is_an_error_naming_the_example():
    images, boxes, classes, _, _ = _dense_arrays()
    source = data.from_arrays(images, boxes=boxes, box_classes=classes)
    with pytest.raises(ValueError, match="pass max_boxes"):
        data.TrainStream(source, batch_size=2, seed=0)
    stream = data.TrainStream(source, batch_size=2, seed=0, max_boxes=1)
    with pytest.raises(ValueError, match="example 2 of the source has 2 objects, more than "
                                         "max_boxes=1"):
        next(stream.epoch(0))
    with pytest.raises(ValueError, match="example 2 of the source has 2 objects"):
        list(data.EvalStream(source, batch_size=2, max_boxes=1))


def test_classification_arrays_keep_their_two_keys():
    images, *_ = _dense_arrays()
    source = data.from_arrays(images, np.arange(5) % 2)
    assert source.keys == (S.IMAGE, S.LABEL)
    batch = next(data.TrainStream(source, batch_size=2, seed=0, max_boxes=4).epoch(0))
    assert set(batch) == {S.IMAGE, S.LABEL}
