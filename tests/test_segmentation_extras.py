"""Segmentation losses and metrics added with UNet: the smoothed binary IoU,
pixel focal loss, boundary F-score, foreground Dice; jit/vmap/eager agreement and finite-
difference gradients of the overlap losses; the task's checks of bad masks."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxvision.losses import segmentation as S
from jaxvision.metrics import segmentation as SM
from jaxvision.tasks.segmentation import (BoundaryFEvaluator, ConfusionMatrixEvaluator,
                                          SegmentationTask, check_masks)


def test_smoothed_binary_iou_and_dice_notes_c1_d13():
    pred = np.array([[[1.0, 1.0], [0.0, 0.0]]], np.float32)
    target = np.array([[[1.0, 0.0], [1.0, 0.0]]], np.float32)
    iou = S.soft_iou(pred, target)  # smooth 1e-6, one value per image, float32
    assert iou.shape == (1,)
    np.testing.assert_allclose(iou, (1 + 1e-6) / (3 + 1e-6), rtol=1e-7)
    with jax.enable_x64(True):  # the worked value's 8 digits, to within half a unit of the last one
        iou = S.soft_iou(pred.astype(np.float64), target.astype(np.float64))
        assert abs(float(iou[0]) - 0.33333356) <= 5e-9
        dice = S.soft_dice(pred.astype(np.float64), target.astype(np.float64), epsilon=1e-6,
                           per_image=True)
        assert abs(float(dice[0]) - 0.50000012) <= 5e-9
    np.testing.assert_allclose(S.iou_loss(pred, target), 1 - (1 + 1e-6) / (3 + 1e-6), rtol=1e-6)


def _binary_inputs(seed=0, shape=(3, 5, 4)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, shape), (rng.uniform(size=shape) < 0.4).astype(np.float64)


def _multiclass_inputs(seed=0, shape=(3, 4, 5), classes=3):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1.5, shape + (classes,)), rng.integers(0, classes, shape)


BINARY = {
    "dice": lambda p, g: S.dice_loss(p, g, per_image=True),
    "dice_squared": lambda p, g: S.dice_loss(p, g, squared=True, per_image=True),
    "iou": lambda p, g: S.iou_loss(p, g),
}
MULTICLASS = {
    "multiclass_dice": lambda x, y: S.multiclass_dice_loss(x, y, include_background=False),
    "tversky": lambda x, y: S.tversky_loss(x, y, alpha=0.3, beta=0.7),
    "jaccard": lambda x, y: S.jaccard_loss(x, y),
}


@pytest.mark.parametrize("name", sorted(BINARY) + sorted(MULTICLASS))
def test_overlap_losses_agree_under_jit_and_vmap_and_match_finite_differences(name):
    binary = name in BINARY
    fn = BINARY.get(name) or MULTICLASS[name]
    x, y = _binary_inputs() if binary else _multiclass_inputs()
    x32 = x.astype(np.float32)
    # One example at a time (vmap over a batch of one-example batches) vs eagerly, vs jit.
    single = lambda a, b: fn(a[None], b[None])  # noqa: E731
    eager = np.array([single(x32[i], y[i]) for i in range(len(x))])
    np.testing.assert_allclose(jax.vmap(single)(x32, y), eager, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(single))(x32, y), eager, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(fn)(x32, y), fn(x32, y), rtol=1e-6)
    # Gradient vs central differences in float64 on every input entry.
    with jax.enable_x64(True):
        loss = jax.jit(lambda a: fn(a, y))
        grad = np.asarray(jax.jit(jax.grad(loss))(x))
        h = 1e-6
        numeric = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            step = np.zeros_like(x)
            step[index] = h
            numeric[index] = (float(loss(x + step)) - float(loss(x - step))) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
        assert np.abs(grad).max() > 1e-4  # the loss does depend on its input


def test_pixel_focal_loss_against_torch_and_the_formula():
    torch = pytest.importorskip("torch")
    logits, labels = _multiclass_inputs(seed=3)
    labels[0, 0, :2] = 255
    valid = labels != 255
    with jax.enable_x64(True):
        ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits).permute(0, 3, 1, 2),
                                               torch.from_numpy(labels), ignore_index=255)
        np.testing.assert_allclose(S.pixel_focal_loss(logits, labels, gamma=0.0,
                                                      ignore_index=255), ce.item(), rtol=1e-6)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        logpt = np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0]
        alpha = np.array([0.2, 0.5, 0.3])
        expected = (-alpha[np.where(valid, labels, 0)] * (1 - np.exp(logpt)) ** 2 * logpt)[valid]
        np.testing.assert_allclose(
            S.pixel_focal_loss(logits, labels, gamma=2.0, alpha=alpha, ignore_index=255),
            expected.mean(), rtol=1e-6)  # focal_loss computes in float32
    with pytest.raises(ValueError, match="labels must have shape"):
        S.pixel_focal_loss(logits, labels[:, :2])


def _scipy_boundary_f(pred, true, tolerance):
    """Reference: boundary = mask minus its erosion (4-connected, image border inside),
    match = chessboard distance to the other boundary <= tolerance."""
    ndimage = pytest.importorskip("scipy.ndimage")
    cross = ndimage.generate_binary_structure(2, 1)

    def edge(mask):
        return mask & ~ndimage.binary_erosion(mask, cross, border_value=1)

    def near(edges):
        if not edges.any():
            return np.zeros_like(edges)
        return ndimage.distance_transform_cdt(~edges, metric="chessboard") <= tolerance

    pe, te = edge(pred), edge(true)
    precision = (pe & near(te)).sum() / pe.sum()
    recall = (te & near(pe)).sum() / te.sum()
    return 2 * precision * recall / (precision + recall)


def test_boundary_f_score_against_scipy_and_its_tolerance():
    rng = np.random.default_rng(4)
    true = np.zeros((20, 24), bool)
    true[4:14, 5:17] = True
    pred = np.roll(true, 1, axis=1)  # one pixel to the right
    assert float(SM.boundary_f_score(pred, true, tolerance=1)) == 1.0
    f0 = float(SM.boundary_f_score(pred, true, tolerance=0))
    np.testing.assert_allclose(f0, _scipy_boundary_f(pred, true, 0), rtol=1e-6)
    assert 0.3 < f0 < 0.9
    for tolerance in (0, 1, 2, 3):
        blob_true = rng.uniform(size=(20, 24)) < 0.5
        blob_pred = np.where(rng.uniform(size=(20, 24)) < 0.2, ~blob_true, blob_true)
        np.testing.assert_allclose(
            jax.jit(SM.boundary_f_score, static_argnames="tolerance")(blob_pred, blob_true,
                                                                      tolerance=tolerance),
            _scipy_boundary_f(blob_pred, blob_true, tolerance), rtol=1e-6)
    empty = np.zeros((5, 5), bool)
    assert float(SM.boundary_f_score(empty, empty)) == 1.0
    square = np.zeros((5, 5), bool)
    square[1:4, 1:4] = True
    assert float(SM.boundary_f_score(empty, square)) == 0.0  # a missed object: no recall
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        SM.boundary_f_score(pred, true, tolerance=-1)
    with pytest.raises(ValueError, match="differ in shape"):
        SM.boundary_f_score(pred[:3], true)


def test_boundary_evaluator_adds_up_over_batches_and_skips_background():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, (4, 12, 12))
    labels[:, :, :4] = 0
    preds = np.where(rng.uniform(size=labels.shape) < 0.15, rng.integers(0, 3, labels.shape),
                     labels)
    whole = BoundaryFEvaluator(3, tolerance=1)
    whole.update(preds, {"mask": labels})
    split = BoundaryFEvaluator(3, tolerance=1)
    for i in range(0, 4, 2):
        split.update(preds[i:i + 2], {"mask": labels[i:i + 2]})
    assert whole.result() == split.result()
    counts = np.stack([np.asarray(SM.boundary_counts(preds == c, labels == c, tolerance=1))
                       for c in (1, 2)])
    expected = np.mean(np.asarray(SM.boundary_f_from_counts(counts)))
    np.testing.assert_allclose(whole.result()["boundary_f"], expected, rtol=1e-6)


def test_foreground_and_per_class_dice_from_the_evaluator_match_sklearn():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 4, (3, 8, 8))
    preds = np.where(rng.uniform(size=labels.shape) < 0.7, labels, rng.integers(0, 4, labels.shape))
    evaluator = ConfusionMatrixEvaluator(4, per_class=True)
    evaluator.update(preds, {"mask": labels})
    result = evaluator.result()
    np.testing.assert_allclose(result["foreground_dice"],
                               skm.f1_score(labels.ravel() > 0, preds.ravel() > 0), rtol=1e-6)
    dice = skm.f1_score(labels.ravel(), preds.ravel(), average=None)
    iou = skm.jaccard_score(labels.ravel(), preds.ravel(), average=None)
    np.testing.assert_allclose([result[f"dice_{c}"] for c in range(4)], dice, rtol=1e-6)
    np.testing.assert_allclose([result[f"iou_{c}"] for c in range(4)], iou, rtol=1e-6)


def test_bad_masks_are_clear_errors():
    image = np.zeros((2, 8, 8, 3), np.float32)
    mask = np.zeros((2, 8, 8), np.int32)
    mask[1, 3, 3] = 5
    with pytest.raises(ValueError, match=r"class ids \[5\] outside \[0, 3\)"):
        check_masks({"image": image, "mask": mask}, num_classes=3)
    check_masks({"image": image, "mask": np.where(mask == 5, 255, mask)}, num_classes=3,
                ignore_index=255)
    with pytest.raises(ValueError, match=r"masks of shape \(2, 6, 8\) do not match images"):
        check_masks({"image": image, "mask": mask[:, :6]}, num_classes=6)
    evaluator = ConfusionMatrixEvaluator(3)
    with pytest.raises(ValueError, match=r"class ids \[5\] outside \[0, 3\)"):
        evaluator.update(np.zeros_like(mask), {"mask": mask})
    task = SegmentationTask(num_classes=6)
    logits = jnp.zeros((2, 8, 8, 6))
    with pytest.raises(ValueError, match="do not match images"):
        task.loss(logits, {"image": image, "mask": mask[:, :6]}, train=True)
    with pytest.raises(ValueError, match=r"returns 4x4 maps for 8x8 masks.*crop_labels=True"):
        task.loss(logits[:, 2:6, 2:6], {"image": image, "mask": mask}, train=True)


def test_crop_labels_scores_the_centre_of_each_mask():
    """A valid-convolution network returns the centre of its input: the task crops masks so."""
    rng = np.random.default_rng(7)
    mask = rng.integers(0, 3, (2, 10, 10))
    logits = jnp.asarray(rng.normal(size=(2, 6, 6, 3)), jnp.float32)
    batch = {"image": np.zeros((2, 10, 10, 1), np.float32), "mask": mask}
    cropped = SegmentationTask(num_classes=3, crop_labels=True, dice_weight=0.5)
    reference = SegmentationTask(num_classes=3, dice_weight=0.5)
    centre = {"image": np.zeros((2, 6, 6, 1), np.float32), "mask": mask[:, 2:8, 2:8]}
    np.testing.assert_allclose(cropped.loss(logits, batch, train=True)[0],
                               reference.loss(logits, centre, train=True)[0], rtol=1e-6)
    evaluator = cropped.evaluators()[0]
    evaluator.update(np.argmax(logits, -1), batch)
    np.testing.assert_array_equal(evaluator.confusion, SM.confusion_matrix(
        mask[:, 2:8, 2:8], np.argmax(logits, -1), num_classes=3))
