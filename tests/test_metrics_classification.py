"""Metrics against scikit-learn on random cases; ECE against a numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxvision import metrics


@pytest.fixture(params=[0, 1, 2])
def case(request):
    rng = np.random.default_rng(request.param)
    k = 5
    labels = rng.integers(0, k, size=200)
    logits = rng.normal(size=(200, k)) + 1.5 * np.eye(k)[labels] * rng.random((200, 1))
    if request.param == 2:       # a class never predicted and never present: zero_division=0 path
        labels = np.where(labels == 4, 0, labels)
        logits[:, 4] = -10
    return labels, logits.astype(np.float32), k


def test_confusion_and_prf_match_sklearn(case):
    labels, logits, k = case
    preds = logits.argmax(-1)
    np.testing.assert_array_equal(metrics.confusion_matrix(jnp.array(labels), jnp.array(preds), num_classes=k),
                                  skm.confusion_matrix(labels, preds, labels=range(k)))
    for average in (None, "macro", "weighted", "micro"):
        ours = metrics.precision_recall_f1(jnp.array(labels), jnp.array(preds), num_classes=k, average=average)
        p, r, f, _ = skm.precision_recall_fscore_support(labels, preds, labels=range(k), average=average,
                                                         zero_division=0)
        np.testing.assert_allclose(ours["precision"], p, rtol=1e-5, err_msg=str(average))
        np.testing.assert_allclose(ours["recall"], r, rtol=1e-5)
        np.testing.assert_allclose(ours["f1"], f, rtol=1e-5)
    np.testing.assert_allclose(metrics.accuracy(jnp.array(logits), jnp.array(labels)),
                               skm.accuracy_score(labels, preds), rtol=1e-6)
    for topk in (1, 2, 3):
        np.testing.assert_allclose(metrics.top_k_accuracy(jnp.array(logits), jnp.array(labels), k=topk),
                                   skm.top_k_accuracy_score(labels, logits, k=topk, labels=range(k)), rtol=1e-6)


def test_roc_auc_matches_sklearn_including_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=300)
    scores = np.round(rng.random(300) + 0.3 * y, 1)   # rounding makes many ties
    np.testing.assert_allclose(metrics.roc_auc(jnp.array(y), jnp.array(scores)), skm.roc_auc_score(y, scores),
                               rtol=1e-6)
    mask = (rng.random(300) < 0.6).astype(np.float32)
    np.testing.assert_allclose(metrics.binary_roc_auc(jnp.array(y), jnp.array(scores), weights=jnp.array(mask)),
                               skm.roc_auc_score(y[mask > 0], scores[mask > 0]), rtol=1e-6)
    fpr, tpr, _ = metrics.roc_curve(y, scores)
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_multiclass_ovr_roc_auc_matches_sklearn(case):
    labels, logits, k = case
    if len(np.unique(labels)) < k:
        labels = np.arange(len(labels)) % k
    probs = np.asarray(jax.nn.softmax(jnp.array(logits)), np.float64)
    probs = probs / probs.sum(1, keepdims=True)
    for average in ("macro", "weighted"):
        np.testing.assert_allclose(metrics.roc_auc(jnp.array(labels), jnp.array(probs), average=average),
                                   skm.roc_auc_score(labels, probs, multi_class="ovr", average=average),
                                   rtol=1e-5)


def _numpy_ece(probs, labels, num_bins):
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, num_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return ece


def test_ece_matches_numpy_and_temperature_scaling_helps():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, size=500)
    logits = (rng.normal(size=(500, 4)) + 2.0 * np.eye(4)[labels]) * 3.0   # over-confident
    probs = np.asarray(jax.nn.softmax(jnp.array(logits, jnp.float32)))
    for bins in (10, 15):
        np.testing.assert_allclose(metrics.expected_calibration_error(jnp.array(probs), jnp.array(labels),
                                                                      num_bins=bins),
                                   _numpy_ece(probs, labels, bins), rtol=1e-4, atol=1e-6)
    t = metrics.fit_temperature(jnp.array(logits, jnp.float32), jnp.array(labels))
    from scipy.optimize import minimize_scalar

    def nll(temp):
        z = logits / temp
        z = z - z.max(1, keepdims=True)
        return -(z[np.arange(500), labels] - np.log(np.exp(z).sum(1))).mean()

    best = minimize_scalar(nll, bounds=(0.05, 20), method="bounded").x
    np.testing.assert_allclose(t, best, rtol=2e-2)
    scaled = np.asarray(jax.nn.softmax(jnp.array(logits / float(t), jnp.float32)))
    assert _numpy_ece(scaled, labels, 15) < 0.5 * _numpy_ece(probs, labels, 15)


def test_ensemble_and_report(tmp_path):
    logits = jnp.stack([jnp.array([[2.0, 0.0]]), jnp.array([[0.0, 1.0]])])
    expected = (np.exp([2, 0]) / np.exp([2, 0]).sum() + np.exp([0, 1]) / np.exp([0, 1]).sum()) / 2
    np.testing.assert_allclose(metrics.ensemble_probabilities(logits)[0], expected, rtol=1e-6)
    report = metrics.classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), num_classes=2)
    assert "macro avg" in report and "0.6667" in report
    metrics.plot_reliability_diagram(jnp.array([[0.9, 0.1], [0.2, 0.8]]), jnp.array([0, 0]),
                                     path=str(tmp_path / "rel.png"), num_bins=5)
    assert (tmp_path / "rel.png").exists()


def test_metrics_jit():
    labels = jnp.array([0, 1, 2, 2])
    preds = jnp.array([0, 2, 2, 1])
    out = jax.jit(lambda a, b: metrics.precision_recall_f1(a, b, num_classes=3))(labels, preds)
    np.testing.assert_allclose(out["f1"], skm.f1_score(labels, preds, average="macro"), rtol=1e-6)
