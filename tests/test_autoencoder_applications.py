"""Autoencoder applications: anomaly thresholds and ROC-AUC (sklearn parity), compression
arithmetic and JPEG at matched bits per pixel, latent interpolation and principal angles."""

import numpy as np
import pytest

from jaxvision.autoencoders import anomaly, compression, latent


def test_anomaly_thresholds_and_report():
    rng = np.random.default_rng(0)
    normal, odd = rng.normal(1.0, 0.1, 900), rng.normal(1.6, 0.2, 100)
    scores = np.concatenate([normal, odd])
    labels = np.r_[np.zeros(900), np.ones(100)]
    t95 = anomaly.percentile_threshold(normal, 95)
    assert (normal >= t95).mean() == pytest.approx(0.05, abs=0.002)
    assert anomaly.mean_std_threshold(normal, 3) == pytest.approx(normal.mean() + 3 * normal.std())
    t_roc = anomaly.roc_optimal_threshold(labels, scores)
    report = anomaly.detection_report(labels, scores, t_roc)
    j = report["recall"] - report["false_positive_rate"]
    for t in np.quantile(scores, np.linspace(0.01, 0.99, 50)):  # no threshold does better
        r = anomaly.detection_report(labels, scores, t)
        assert r["recall"] - r["false_positive_rate"] <= j + 1e-12
    tp = ((scores >= t_roc) & (labels == 1)).sum()
    assert report["precision"] == pytest.approx(tp / (scores >= t_roc).sum())
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert anomaly.roc_auc(labels, scores) == pytest.approx(
        sklearn_metrics.roc_auc_score(labels, scores), abs=1e-6)
    with pytest.raises(ValueError, match="both normal and anomalous"):
        anomaly.roc_optimal_threshold(np.zeros(5), np.arange(5.0))
    with pytest.raises(ValueError, match="differ in shape"):
        anomaly.reconstruction_scores(np.zeros((2, 4)), np.zeros((2, 5)))
    x = np.zeros((2, 2, 2, 1))
    r = x.copy()
    r[1, 0, 0, 0] = 2.0
    np.testing.assert_allclose(anomaly.reconstruction_scores(r, x), [0.0, 1.0])
    assert anomaly.error_maps(r, x)[1, 0, 0] == 4.0


def test_compression_arithmetic():
    assert compression.compression_ratio((28, 28), 32) == 24.5
    assert compression.compression_ratio((28, 28), 16) == 49.0
    assert compression.compression_ratio((256, 256, 3), 512) == 384.0
    q = compression.quantize(np.array([-2.0, 0.1, 0.49, 3.0]), bits=2, low=-1.0, high=2.0)
    np.testing.assert_allclose(q, [-1.0, 0.0, 0.0, 2.0])
    assert compression.latent_bits_per_pixel(16, 4, (8, 8)) == 1.0


def test_jpeg_rate_and_quality():
    rng = np.random.default_rng(0)
    images = np.clip(rng.random((64, 8, 8, 1)) * 0.3 + np.linspace(0, 0.6, 8)[None, :, None, None], 0, 1)
    low, bpp_low = compression.jpeg_roundtrip(images, 10)
    high, bpp_high = compression.jpeg_roundtrip(images, 90)
    assert low.shape == images.shape and bpp_low < bpp_high
    assert np.mean((high - images) ** 2) < np.mean((low - images) ** 2)
    decoded, bpp, quality = compression.jpeg_at_bpp(images, bpp_high * 0.8)
    assert bpp <= bpp_high * 0.8 and quality < 90


def test_latent_tools():
    np.testing.assert_allclose(latent.interpolate([0, 0], [2, 4], 5)[1], [0.5, 1.0])
    np.testing.assert_allclose(latent.traverse(np.zeros(2), [1.0, 0.0], [-1, 2]), [[-1, 0], [2, 0]])
    assert latent.attribute_vector([[1.0], [3.0], [0.0]], [True, True, False])[0] == 2.0
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((10, 3))
    mixed = basis @ rng.standard_normal((3, 3))  # the same subspace, another basis
    np.testing.assert_allclose(latent.principal_angles(basis, mixed), 0.0, atol=1e-5)
    e = np.eye(4)
    np.testing.assert_allclose(latent.principal_angles(e[:, :1], e[:, 1:2]), [90.0])
    data = rng.standard_normal((200, 5)) * [5, 3, 1, 0.1, 0.1]
    mean, components, variance = latent.pca(data, 2)
    np.testing.assert_allclose(np.abs(components), np.eye(5)[:2], atol=0.1)
    with pytest.raises(ValueError, match="k must"):
        latent.pca(data, 6)
