"""Segmentation losses and metrics against worked vectors and scikit-learn."""

import jax
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxvision.losses import segmentation as S
from jaxvision.metrics import segmentation as SM


def test_binary_dice_notes_d13():
    g = np.array([1.0, 1, 0, 0])
    with jax.enable_x64(True):
        assert float(S.soft_dice(np.array([1.0, 0, 1, 0]), g, epsilon=0.0)) == 0.5
        p = np.array([0.9, 0.8, 0.1, 0.2])
        np.testing.assert_allclose(S.soft_dice(p, g, epsilon=0.0), 0.85, rtol=1e-15)
        np.testing.assert_allclose(S.dice_loss(p, g, epsilon=0.0), 0.15, rtol=1e-12)
        np.testing.assert_allclose(S.soft_dice(p, g, epsilon=1e-5), 0.8500003749990627, rtol=1e-15)
        np.testing.assert_allclose(S.soft_dice(p, g, squared=True, epsilon=0.0),
                                   0.9714285714285715, rtol=1e-15)
        # Both masks empty: Dice 1 with smoothing.
        assert float(S.soft_dice(np.zeros(4), np.zeros(4), epsilon=1e-5)) == 1.0


def test_multiclass_dice_notes_d13():
    labels = np.array([[0, 0, 1, 2]])
    probs = np.eye(3)[[[0, 1, 1, 2]]]  # hard predictions as one-hot probabilities
    with jax.enable_x64(True):
        per_class = S.multiclass_dice(probs, labels, from_logits=False, epsilon=0.0)
        np.testing.assert_allclose(per_class, [2 / 3, 2 / 3, 1.0], rtol=1e-15)
        loss = S.multiclass_dice_loss(probs, labels, from_logits=False, epsilon=0.0)
        np.testing.assert_allclose(1 - loss, 0.7777777777777778, rtol=1e-14)
        loss = S.multiclass_dice_loss(probs, labels, from_logits=False, epsilon=0.0,
                                      include_background=False)
        np.testing.assert_allclose(1 - loss, 0.8333333333333334, rtol=1e-14)
        weighted = S.multiclass_dice_loss(probs, labels, from_logits=False, epsilon=0.0,
                                          class_weights=[1.0, 2.0, 1.0])
        np.testing.assert_allclose(1 - weighted, (2 / 3 + 4 / 3 + 1) / 4, rtol=1e-14)
        # Dice = F1 from the confusion matrix of the same hard predictions.
        confusion = SM.confusion_matrix(labels, np.array([[0, 1, 1, 2]]), num_classes=3)
        np.testing.assert_allclose(SM.per_class_dice(confusion), per_class, rtol=1e-6)


def _random_segmentation(seed, shape=(2, 6, 5), classes=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, shape + (classes,))
    labels = rng.integers(0, classes, shape)
    return logits, labels


def _numpy_stats(logits, labels, ignore_index=None):
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    onehot = np.eye(logits.shape[-1])[np.where(labels == ignore_index, 0, labels)]
    mask = (labels != ignore_index)[..., None] if ignore_index is not None else 1.0
    probs, onehot = probs * mask, onehot * mask
    axes = tuple(range(logits.ndim - 1))
    return probs, onehot, (probs * onehot).sum(axes), probs.sum(axes), onehot.sum(axes)


def test_losses_against_numpy_with_ignore_index():
    logits, labels = _random_segmentation(0)
    labels[0, :2] = 255
    probs, onehot, inter, psum, gsum = _numpy_stats(logits, labels, ignore_index=255)
    eps = 1e-5
    dice = (2 * inter + eps) / (psum + gsum + eps)
    sq = (2 * inter + eps) / ((probs ** 2).sum((0, 1, 2)) + (onehot ** 2).sum((0, 1, 2)) + eps)
    jac = (inter + eps) / (psum + gsum - inter + eps)
    fp, fn = psum - inter, gsum - inter
    tv = (inter + eps) / (inter + 0.3 * fp + 0.7 * fn + eps)
    valid = labels != 255
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], -1)[..., 0][valid].mean()
    with jax.enable_x64(True):
        kw = dict(ignore_index=255)
        np.testing.assert_allclose(S.multiclass_dice_loss(logits, labels, **kw), 1 - dice.mean(),
                                   rtol=1e-12)
        np.testing.assert_allclose(S.multiclass_dice_loss(logits, labels, squared=True, **kw),
                                   1 - sq.mean(), rtol=1e-12)
        np.testing.assert_allclose(S.jaccard_loss(logits, labels, **kw), 1 - jac.mean(), rtol=1e-12)
        np.testing.assert_allclose(S.tversky_loss(logits, labels, alpha=0.3, beta=0.7, **kw),
                                   1 - tv.mean(), rtol=1e-12)
        np.testing.assert_allclose(S.tversky_loss(logits, labels, epsilon=0.0, **kw),
                                   S.multiclass_dice_loss(logits, labels, epsilon=0.0, **kw),
                                   rtol=1e-12)
        np.testing.assert_allclose(S.pixel_cross_entropy(logits, labels, **kw), ce, rtol=1e-12)
        np.testing.assert_allclose(S.dice_ce_loss(logits, labels, dice_weight=0.7, **kw),
                                   0.7 * (1 - dice.mean()) + 0.3 * ce, rtol=1e-12)
        torch = pytest.importorskip("torch")
        ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits).permute(0, 3, 1, 2),
                                                torch.from_numpy(labels), ignore_index=255)
        np.testing.assert_allclose(S.pixel_cross_entropy(logits, labels, **kw), ref.item(),
                                   rtol=1e-12)


def test_losses_jit_vmap_per_image_and_errors():
    logits, labels = _random_segmentation(1)
    logits = logits.astype(np.float32)
    fn = lambda x, y: S.dice_ce_loss(x[None], y[None], include_background=False)
    eager = np.array([fn(logits[i], labels[i]) for i in range(2)])
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(logits, labels), eager, rtol=1e-6)
    loss = jax.jit(S.multiclass_dice_loss, static_argnames="per_image")
    per_image = loss(logits, labels, per_image=True)
    singles = [loss(logits[i:i + 1], labels[i:i + 1]) for i in range(2)]
    np.testing.assert_allclose(per_image, np.mean(singles), rtol=1e-6)
    grads = jax.jit(jax.grad(lambda x: S.multiclass_dice_loss(x, labels)))(logits)
    assert np.all(np.isfinite(grads))
    with pytest.raises(ValueError, match="labels must have shape"):
        S.multiclass_dice_loss(logits, labels[:, :3])
    with pytest.raises(ValueError, match="class_weights"):
        S.multiclass_dice_loss(logits, labels, class_weights=[1.0, 2.0])


def test_metrics_against_sklearn():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, (3, 7, 9))
    preds = np.where(rng.uniform(size=labels.shape) < 0.6, labels, rng.integers(0, 5, labels.shape))
    labels[0, 0] = 255
    valid = labels != 255
    m = jax.jit(lambda l, p: SM.segmentation_metrics(l, p, num_classes=5, ignore_index=255))(
        labels, preds)
    np.testing.assert_array_equal(m["confusion"], skm.confusion_matrix(labels[valid], preds[valid],
                                                                       labels=range(5)))
    iou = skm.jaccard_score(labels[valid], preds[valid], average=None, labels=range(5))
    np.testing.assert_allclose(m["per_class_iou"], iou, rtol=1e-6)
    np.testing.assert_allclose(m["mean_iou"], iou.mean(), rtol=1e-6)
    np.testing.assert_allclose(m["per_class_dice"], skm.f1_score(labels[valid], preds[valid],
                                                                 average=None, labels=range(5)),
                               rtol=1e-6)
    np.testing.assert_allclose(m["pixel_accuracy"], skm.accuracy_score(labels[valid], preds[valid]),
                               rtol=1e-6)
    np.testing.assert_allclose(SM.mean_iou(m["confusion"], include_background=False),
                               iou[1:].mean(), rtol=1e-6)


def test_tiny_tumor_t15_and_absent_class():
    labels = np.zeros((512, 512), np.int32)
    labels[:10, :10] = 1  # 100 tumour pixels
    preds = np.zeros_like(labels)
    m = SM.segmentation_metrics(labels, preds, num_classes=3)
    assert float(m["pixel_accuracy"]) == 262044 / 262144 == 0.9996185302734375
    assert float(m["per_class_dice"][1]) == 0.0
    assert np.isnan(m["per_class_iou"][2])  # class 2 absent everywhere: undefined, not 0
    np.testing.assert_allclose(m["mean_iou"], (262044 / 262144 + 0.0) / 2, rtol=1e-6)
