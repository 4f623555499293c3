"""Classification metrics as pure jnp functions (jit-safe with static ``num_classes``).

Definitions follow scikit-learn: ``confusion[i, j]`` counts true class ``i`` predicted as
``j``; precision/recall/F1 of a class with no predicted (or no true) examples are 0 (sklearn's
``zero_division=0``); ``average`` is ``None`` (per class), ``"macro"``, ``"weighted"`` (by
support) or ``"micro"``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

AVERAGES = (None, "macro", "weighted", "micro")


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of examples whose arg-max prediction equals the integer label."""
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def top_k_accuracy(logits: jax.Array, labels: jax.Array, *, k: int = 5) -> jax.Array:
    """Fraction of examples whose label is among the ``k`` highest scores.

    Ties are broken against the label (a label tied with the k-th score counts only if it
    ranks within k by strict comparison), so uniform scores never give spurious hits.
    """
    if k < 1 or k > logits.shape[-1]:
        raise ValueError(f"k must be in [1, {logits.shape[-1]}], got {k}")
    label_score = jnp.take_along_axis(logits, labels[..., None], axis=-1)
    rank = jnp.sum(logits >= label_score, axis=-1)  # 1 = best; ties count against the label
    return jnp.mean(rank <= k)


def confusion_matrix(labels: jax.Array, predictions: jax.Array, *, num_classes: int,
                     weights: jax.Array | None = None) -> jax.Array:
    """``[K, K]`` counts, rows = true class, columns = predicted class (sklearn's layout)."""
    labels = jnp.asarray(labels).reshape(-1)
    predictions = jnp.asarray(predictions).reshape(-1)
    w = jnp.ones_like(labels, jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32).reshape(-1)
    flat = labels * num_classes + predictions
    return jnp.zeros(num_classes * num_classes, jnp.float32).at[flat].add(w).reshape(num_classes, num_classes)


def _safe_div(num, den):
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def precision_recall_f1(labels: jax.Array, predictions: jax.Array, *, num_classes: int,
                        average: str | None = "macro") -> dict[str, jax.Array]:
    """Precision, recall, F1 and support from integer labels and predictions.

    Per class with ``average=None`` (arrays ``[K]``), else scalars. ``"macro"`` is the
    unweighted mean over all ``num_classes`` classes, ``"weighted"`` weights by true support,
    ``"micro"`` pools all decisions (equals accuracy for single-label data).
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    cm = confusion_matrix(labels, predictions, num_classes=num_classes)
    tp = jnp.diag(cm)
    predicted = cm.sum(0)
    support = cm.sum(1)
    if average == "micro":
        precision = _safe_div(tp.sum(), predicted.sum())
        recall = _safe_div(tp.sum(), support.sum())
        f1 = _safe_div(2 * precision * recall, precision + recall)
        return {"precision": precision, "recall": recall, "f1": f1, "support": support.sum()}
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    if average is None:
        return {"precision": precision, "recall": recall, "f1": f1, "support": support}
    weights = (jnp.full((num_classes,), 1.0 / num_classes) if average == "macro"
               else _safe_div(support, support.sum()))
    return {"precision": jnp.sum(precision * weights), "recall": jnp.sum(recall * weights),
            "f1": jnp.sum(f1 * weights), "support": support.sum()}


def _average_ranks(scores: jax.Array) -> jax.Array:
    """1-based ranks with ties given their average rank (as ``scipy.stats.rankdata``)."""
    ordered = jnp.sort(scores)
    below = jnp.searchsorted(ordered, scores, side="left")
    at_or_below = jnp.searchsorted(ordered, scores, side="right")
    return below + (at_or_below - below + 1) / 2.0


def binary_roc_auc(labels: jax.Array, scores: jax.Array, *, weights: jax.Array | None = None) -> jax.Array:
    """Area under the ROC curve via the Mann-Whitney statistic (ties count one half).

    Equals ``sklearn.metrics.roc_auc_score``; NaN when only one class is present. ``weights``
    (0/1 masks for padded batches) select the examples that count.
    """
    labels = jnp.asarray(labels).reshape(-1).astype(bool)
    scores = jnp.asarray(scores, jnp.float32).reshape(-1)
    if weights is None:
        ranks = _average_ranks(scores)
        n_pos = labels.sum()
        n_neg = labels.size - n_pos
        rank_sum = jnp.sum(jnp.where(labels, ranks, 0.0))
        return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    w = jnp.asarray(weights, jnp.float32).reshape(-1)
    pos = w * labels
    neg = w * (~labels)
    # O(n^2) pairwise form, only for masked (small, padded) evaluation batches.
    greater = (scores[:, None] > scores[None, :]) + 0.5 * (scores[:, None] == scores[None, :])
    return jnp.sum(pos[:, None] * neg[None, :] * greater) / (pos.sum() * neg.sum())


def roc_auc(labels: jax.Array, scores: jax.Array, *, average: str | None = "macro") -> jax.Array:
    """ROC-AUC: binary when ``scores`` is ``[N]``; one-vs-rest per class when it is ``[N, K]``.

    With ``[N, K]`` scores (probabilities), ``average`` is ``None`` (per class), ``"macro"`` or
    ``"weighted"`` (by support), as ``roc_auc_score(..., multi_class="ovr")``.
    """
    scores = jnp.asarray(scores)
    if scores.ndim == 1:
        return binary_roc_auc(labels, scores)
    num_classes = scores.shape[-1]
    labels = jnp.asarray(labels).reshape(-1)
    per_class = jax.vmap(lambda k: binary_roc_auc(labels == k, scores[:, k]))(jnp.arange(num_classes))
    if average is None:
        return per_class
    if average == "macro":
        return per_class.mean()
    if average == "weighted":
        support = jnp.bincount(labels, length=num_classes)
        return jnp.sum(per_class * support) / support.sum()
    raise ValueError(f"average must be None, 'macro' or 'weighted', got {average!r}")


def roc_curve(labels, scores):
    """False- and true-positive rates at every distinct threshold (host-side numpy), for plots."""
    import numpy as np

    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    distinct = np.r_[np.where(np.diff(scores))[0], labels.size - 1]
    tps = np.cumsum(labels)[distinct]
    fps = 1 + distinct - tps
    tpr = np.r_[0.0, tps / max(tps[-1], 1)]
    fpr = np.r_[0.0, fps / max(fps[-1], 1)]
    return fpr, tpr, np.r_[np.inf, scores[distinct]]


def classification_report(labels, predictions, *, num_classes: int,
                          class_names: list[str] | None = None) -> str:
    """Per-class precision/recall/F1/support table plus accuracy and macro/weighted averages."""
    import numpy as np

    names = class_names or [str(k) for k in range(num_classes)]
    per = {k: np.asarray(v) for k, v in precision_recall_f1(labels, predictions, num_classes=num_classes,
                                                            average=None).items()}
    lines = [f"{'class':>12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for i, name in enumerate(names):
        lines.append(f"{name:>12} {per['precision'][i]:9.4f} {per['recall'][i]:9.4f} "
                     f"{per['f1'][i]:9.4f} {int(per['support'][i]):8d}")
    acc = float(np.mean(np.asarray(labels) == np.asarray(predictions)))
    lines.append(f"{'accuracy':>12} {'':>9} {'':>9} {acc:9.4f} {int(per['support'].sum()):8d}")
    for avg in ("macro", "weighted"):
        r = precision_recall_f1(labels, predictions, num_classes=num_classes, average=avg)
        lines.append(f"{avg + ' avg':>12} {float(r['precision']):9.4f} {float(r['recall']):9.4f} "
                     f"{float(r['f1']):9.4f} {int(r['support']):8d}")
    return "\n".join(lines)


def ensemble_probabilities(logits_per_model: jax.Array) -> jax.Array:
    """Averages the softmax of ``[M, N, K]`` logits over the M models (an ensemble's prediction)."""
    return jax.nn.softmax(logits_per_model.astype(jnp.float32), axis=-1).mean(0)
