"""Anomaly detection by reconstruction error: train on normal data
only, score each sample by how badly the autoencoder reconstructs it, and flag scores above a
threshold. The text gives no threshold rule; the three here are the library's additions:

* :func:`percentile_threshold`: the ``q``-th percentile of normal (validation) scores, i.e. a
  false-positive rate of about ``1 - q/100`` by construction;
* :func:`mean_std_threshold`: ``mean + k std`` of normal scores;
* :func:`roc_optimal_threshold`: the point of a labelled validation set's ROC curve that
  maximises Youden's ``J = TPR - FPR``.
"""

from __future__ import annotations

import numpy as np

from jaxvision.metrics.classification import binary_roc_auc, roc_curve


def reconstruction_scores(reconstructions, images) -> np.ndarray:
    """Per-sample anomaly score: the mean squared error over pixels and channels."""
    r, x = np.asarray(reconstructions, np.float64), np.asarray(images, np.float64)
    if r.shape != x.shape:
        raise ValueError(f"reconstructions {r.shape} and images {x.shape} differ in shape")
    return ((r - x) ** 2).reshape(len(x), -1).mean(axis=1)


def error_maps(reconstructions, images) -> np.ndarray:
    """Per-pixel squared error (N, H, W), averaged over channels: where a sample is anomalous."""
    r, x = np.asarray(reconstructions, np.float64), np.asarray(images, np.float64)
    return ((r - x) ** 2).mean(axis=-1)


def percentile_threshold(normal_scores, q: float = 95.0) -> float:
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must lie in [0, 100], got {q}")
    return float(np.percentile(np.asarray(normal_scores, np.float64), q))


def mean_std_threshold(normal_scores, k: float = 3.0) -> float:
    s = np.asarray(normal_scores, np.float64)
    return float(s.mean() + k * s.std())


def roc_optimal_threshold(labels, scores) -> float:
    """The score threshold (flag ``score >= t``) maximising ``TPR - FPR`` (labels 1: anomaly)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    if labels.all() or not labels.any():
        raise ValueError("roc_optimal_threshold needs both normal and anomalous labelled samples")
    candidates = np.unique(scores)
    tpr = np.array([(scores[labels] >= t).mean() for t in candidates])
    fpr = np.array([(scores[~labels] >= t).mean() for t in candidates])
    return float(candidates[np.argmax(tpr - fpr)])


def detection_report(labels, scores, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 and false-positive rate of flagging ``score >= threshold``."""
    labels = np.asarray(labels).astype(bool)
    flagged = np.asarray(scores) >= threshold
    tp, fp = int((flagged & labels).sum()), int((flagged & ~labels).sum())
    fn = int((~flagged & labels).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1,
            "false_positive_rate": fp / max(int((~labels).sum()), 1)}


def roc_auc(labels, scores) -> float:
    """ROC-AUC of anomaly scores (labels 1: anomaly), equal to sklearn's ``roc_auc_score``."""
    return float(binary_roc_auc(np.asarray(labels), np.asarray(scores, np.float32)))


def plot_scores(ax, labels, scores, thresholds: dict[str, float] | None = None, bins: int = 40):
    """A histogram of normal and anomalous scores with vertical lines at ``thresholds``."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores)
    edges = np.histogram_bin_edges(scores, bins)
    ax.hist(scores[~labels], edges, alpha=0.6, label="normal", density=True)
    ax.hist(scores[labels], edges, alpha=0.6, label="anomaly", density=True)
    for (name, value), style in zip((thresholds or {}).items(), ("--", ":", "-.")):
        ax.axvline(value, color="k", linestyle=style, label=name)
    ax.set_xlabel("reconstruction MSE")
    ax.legend()


__all__ = ["reconstruction_scores", "error_maps", "percentile_threshold", "mean_std_threshold",
           "roc_optimal_threshold", "detection_report", "roc_auc", "roc_curve", "plot_scores"]
