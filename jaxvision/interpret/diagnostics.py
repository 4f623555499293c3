"""Diagnostics of a trained classifier on a labelled eval set.

Accuracy says how often a model is wrong; these say between which classes (confusion matrix),
on what (misclassified grid), whether the label rather than the model may be wrong (confident
mistakes: mislabelled candidates), whether its confidence can be trusted (reliability) and
what its penultimate layer separates (PCA / t-SNE embeddings, feature-class correlation).

Input: a :class:`jaxvision.inference.Predictor` (``inference.load(workdir)``, or built from a
model and its variables) and the eval set as uint8 images ``[N, H, W, C]`` with integer labels
``[N]``, the form the predictor takes, so any source works (``digits_arrays``, files read with
``inference.read_image``). Only :func:`predictions` and :func:`penultimate_features` run the
model; the rest is host-side numpy on ``(probs, labels)`` or ``(features, labels)``.

Each figure function returns the numbers it plots and, given ``path``, writes a PNG
(matplotlib's object API through :mod:`jaxvision.plots`).
"""

from __future__ import annotations

import functools
import os
from typing import Sequence

import jax
import numpy as np

from jaxvision import plots
from jaxvision.metrics import calibration, classification

# A mistake made with confidence > 0.95 is a likely mislabelled example; the top 20 of them are a
# review one can read through; 25 mistakes fill a 5x5 grid; seed 42 makes t-SNE reproducible.
THRESHOLD, TOP_K, MAX_IMAGES, TSNE_SEED = 0.95, 20, 25, 42
TITLES = {"pca": "PCA", "tsne": "t-SNE"}


# --------------------------------------------------------------------------------------------
# Running the model
# --------------------------------------------------------------------------------------------


def predictions(predictor, images, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(probs [N, K] float32, labels [N] int64)`` of a classifier on a labelled set; the
    labels are checked against the images and the classes."""
    _check_images(images, np.asarray(labels).reshape(-1))  # before the model runs
    probs = np.asarray(predictor(images), np.float32)
    if probs.ndim != 2:
        raise ValueError(f"the predictor returns {probs.shape}, not class probabilities "
                         "[N, K]: diagnostics need a classification model")
    return probs, _check(probs, labels)


def penultimate_features(predictor, images) -> np.ndarray:
    """``[N, D]`` float32: the vector the classifier's ``head`` reads (``pre_logits``).

    Every zoo model (a ``models.backbone.Classifier``) returns it by name with
    ``num_classes=None``; that clone runs on the trained variables (the head's unused)."""
    backbone = predictor.model.clone(num_classes=None)
    x = predictor.preprocess(images)
    chunks = []
    for start in range(0, len(x), predictor.batch_size):
        out = _features(backbone, predictor.variables, x[start:start + predictor.batch_size])
        if not isinstance(out, dict) or "pre_logits" not in out:
            raise ValueError(f"{type(predictor.model).__name__} with num_classes=None returns "
                             "no 'pre_logits': it is not a jaxvision Classifier")
        pre_logits = np.asarray(out["pre_logits"], np.float32)
        chunks.append(pre_logits.reshape(len(pre_logits), -1))
    return np.concatenate(chunks)


@functools.partial(jax.jit, static_argnums=0)  # modules hash by their fields: compiled once
def _features(backbone, variables, x):
    return backbone.apply(variables, x, train=False)


def _check(probs: np.ndarray, labels) -> np.ndarray:
    """``labels`` as int64 ``[N]``, or a ValueError saying what is wrong with them."""
    labels = np.asarray(labels)
    if probs.ndim != 2:
        raise ValueError(f"probs must be [N, K], got shape {probs.shape}")
    if labels.shape != (len(probs),):
        raise ValueError(f"labels have shape {labels.shape}, expected ({len(probs)},): one per "
                         "example")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must be in [0, {probs.shape[1]}), got "
                         f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def _names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    return list(class_names) if class_names else [str(k) for k in range(num_classes)]


# --------------------------------------------------------------------------------------------
# Where the model is wrong
# --------------------------------------------------------------------------------------------


def confusion(probs, labels, *, class_names: Sequence[str] | None = None,
              path: str | None = None) -> dict[str, np.ndarray]:
    """``counts`` ``[K, K]`` (rows true, columns predicted: ``metrics.confusion_matrix``) and
    ``normalized`` (each row divided by its support, so it reads as per-class recall and
    error rates; rows of absent classes are 0). The figure shows both, annotated."""
    probs = np.asarray(probs)
    labels = _check(probs, labels)
    num_classes = probs.shape[1]
    counts = np.asarray(classification.confusion_matrix(labels, probs.argmax(1),
                                                        num_classes=num_classes)).astype(np.int64)
    support = counts.sum(1, keepdims=True)
    normalized = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
    if path:
        names = _names(class_names, num_classes)
        size = 2.5 + 0.45 * num_classes
        fig, axes = plots.figure((2 * size + 1, size), ncols=2)
        for ax, matrix, fmt, title in ((axes[0, 0], counts, "{:.0f}", "counts"),
                                       (axes[0, 1], normalized, "{:.2f}", "row-normalized")):
            image = ax.imshow(matrix, cmap="Blues")
            fig.colorbar(image, ax=ax, fraction=0.046)
            if num_classes <= 20:
                for (i, j), value in np.ndenumerate(matrix):
                    ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=7,
                            color="white" if value > matrix.max() / 2 else "black")
            ax.set_xticks(range(num_classes), names, rotation=45, ha="right")
            ax.set_yticks(range(num_classes), names)
            ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix ({title})")
        plots.save(fig, path)
    return {"counts": counts, "normalized": normalized}


def most_confused(counts) -> tuple[int, int, int]:
    """``(true class, predicted class, count)`` of the largest off-diagonal confusion count
    (ties: the first in row-major order)."""
    off = np.array(counts, dtype=np.float64)
    np.fill_diagonal(off, -1)
    true, predicted = np.unravel_index(np.argmax(off), off.shape)
    return int(true), int(predicted), int(off[true, predicted])


def _mistakes(probs, labels, order: np.ndarray) -> dict[str, np.ndarray]:
    return {"index": order, "label": labels[order], "predicted": probs[order].argmax(1),
            "confidence": probs[order].max(1)}


def misclassified(images, probs, labels, *, max_images: int = MAX_IMAGES,
                  class_names: Sequence[str] | None = None,
                  path: str | None = None) -> dict[str, np.ndarray]:
    """Every wrong prediction in data order (a fair sample of the errors): ``index``,
    ``label``, ``predicted`` and ``confidence`` (top-class probability). The figure shows
    the first ``max_images`` with their labels and predicted classes."""
    probs = np.asarray(probs)
    labels = _check(probs, labels)
    _check_images(images, labels)
    wrong = _mistakes(probs, labels, np.flatnonzero(probs.argmax(1) != labels))
    if path:
        _review_grid(images, wrong, max_images, _names(class_names, probs.shape[1]), path,
                     "misclassified")
    return wrong


def mislabelled_candidates(images, probs, labels, *, threshold: float = THRESHOLD,
                           top_k: int = TOP_K, class_names: Sequence[str] | None = None,
                           path: str | None = None) -> dict[str, np.ndarray]:
    """Wrong predictions with confidence ``> threshold``, most confident first (as
    :func:`misclassified`): where a good model is sure of another class, the label is the
    likelier culprit (dataset cleaning), so these are reviewed first. The review
    figure shows the ``top_k``."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a probability in [0, 1], got {threshold}")
    probs = np.asarray(probs)
    labels = _check(probs, labels)
    _check_images(images, labels)
    confidence = probs.max(1)
    suspect = np.flatnonzero((probs.argmax(1) != labels) & (confidence > threshold))
    found = _mistakes(probs, labels, suspect[np.argsort(-confidence[suspect], kind="stable")])
    if path:
        _review_grid(images, found, top_k, _names(class_names, probs.shape[1]), path,
                     f"mislabelled candidates (confidence > {threshold:g})")
    return found


def flip_labels(labels, num: int, num_classes: int, *, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(labels with ``num`` of them moved to another class at random, their indices)``: known
    label noise, to measure how many of the flips :func:`mislabelled_candidates` recovers."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), num, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, num)) % num_classes
    return noisy, flipped


def _check_images(images, labels: np.ndarray) -> None:
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")


def _review_grid(images, found: dict, limit: int, names: list[str], path: str, title: str):
    shown = found["index"][:limit]
    cols = max(1, min(5, len(shown)))
    rows = max(1, -(-len(shown) // cols))
    fig, axes = plots.figure((max(6.0, 2.2 * cols), 2.8 * rows + 0.4), nrows=rows, ncols=cols)
    axes = np.atleast_1d(axes).reshape(-1)
    for ax in axes:
        ax.set_axis_off()
    for ax, k, label, predicted, confidence in zip(axes, shown, found["label"],
                                                    found["predicted"], found["confidence"]):
        image = np.asarray(images[k])
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0,
                  vmax=255, interpolation="nearest")
        ax.set_title(f"#{k} label {names[label]}\npred {names[predicted]} ({confidence:.2f})",
                     fontsize=8, color="red")
    if not len(shown):
        axes[0].text(0.5, 0.5, "none", ha="center", va="center")
    fig.suptitle(f"{title}: {len(found['index'])}")
    plots.save(fig, path)


# --------------------------------------------------------------------------------------------
# Can the confidence be trusted
# --------------------------------------------------------------------------------------------


def reliability(probs, labels, *, num_bins: int = 15, path: str | None = None
                ) -> dict[str, np.ndarray | float]:
    """``metrics.calibration``'s equal-width confidence bins (``count``, ``confidence``,
    ``accuracy``) and its ``ece``; the figure is its reliability diagram."""
    probs = np.asarray(probs)
    labels = _check(probs, labels)
    bins = {k: np.asarray(v) for k, v in
            calibration.calibration_bins(probs, labels, num_bins=num_bins).items()}
    bins["ece"] = float(calibration.expected_calibration_error(probs, labels, num_bins=num_bins))
    if path:
        calibration.plot_reliability_diagram(probs, labels, path=path, num_bins=num_bins)
    return bins


# --------------------------------------------------------------------------------------------
# What the penultimate layer separates
# --------------------------------------------------------------------------------------------


def embeddings(features, labels, *, methods: Sequence[str] = ("pca", "tsne"),
               seed: int = TSNE_SEED, class_names: Sequence[str] | None = None,
               path: str | None = None) -> dict[str, np.ndarray]:
    """``{method: [N, 2]}``: features projected by scikit-learn's PCA (linear: how much of the
    class structure two directions hold) and t-SNE (local neighbourhoods: whether classes
    form clusters at all); the figure has one scatter per method, coloured by class."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features = _check_features(features, labels)
    labels = np.asarray(labels)
    project = {
        "pca": lambda: PCA(n_components=2).fit_transform(features),
        # Perplexity stays below the number of points (small sets). Exact t-SNE is about 3x
        # faster than Barnes-Hut on small sets (359 digits: 6-9 s against 25-40 s, 2 busy cores).
        "tsne": lambda: TSNE(n_components=2, random_state=seed, init="pca",
                             perplexity=min(30.0, (len(features) - 1) / 3),
                             method="exact" if len(features) <= 1000 else "barnes_hut",
                             ).fit_transform(features),
    }
    unknown = sorted(set(methods) - set(project))
    if unknown:
        raise ValueError(f"unknown embedding methods {unknown}; known: {sorted(project)}")
    points = {method: project[method]() for method in methods}
    if path:
        names = _names(class_names, int(labels.max()) + 1)
        fig, axes = plots.figure((5.5 * len(points) + 1.5, 5), ncols=len(points))
        colors = _class_colors(len(names))
        for ax, (method, xy) in zip(np.atleast_1d(axes).reshape(-1), points.items()):
            for k, name in enumerate(names):
                mask = labels == k
                ax.scatter(xy[mask, 0], xy[mask, 1], s=8, color=colors(k), label=name, alpha=0.7)
            ax.set(title=f"penultimate features: {TITLES[method]}", xticks=[], yticks=[])
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2)
        plots.save(fig, path)
    return points


def _class_colors(num_classes: int):
    """A qualitative colormap with a distinct colour per class (up to 20)."""
    from matplotlib import colormaps

    return colormaps["tab10" if num_classes <= 10 else "tab20"]


def feature_class_correlation(features, labels, *, num_classes: int | None = None,
                              top: int = 16, class_names: Sequence[str] | None = None,
                              path: str | None = None) -> dict[str, np.ndarray]:
    """``correlation`` ``[D, K]``: Pearson correlation of each unit with each class indicator
    (the features x one-hot block of ``corrcoef``), 0 for constant units such as
    dead ReLUs; ``top_units``: the ``top`` units with the largest ``|correlation|`` with any
    class. A unit strongly tied to one class is a class detector; many weak ones mean the
    code is distributed. The figure is a heatmap of the top units."""
    features = _check_features(features, labels)
    labels = np.asarray(labels)
    num_classes = num_classes or int(labels.max()) + 1
    onehot = (labels[:, None] == np.arange(num_classes)).astype(np.float64)

    def standardized(a):
        a = a - a.mean(0)
        norm = np.linalg.norm(a, axis=0)
        return np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)

    correlation = standardized(features).T @ standardized(onehot)
    top_units = np.argsort(-np.abs(correlation).max(1), kind="stable")[:top]
    if path:
        names = _names(class_names, num_classes)
        fig, ax = plots.figure((max(5.0, 1.5 + 0.45 * num_classes), 1.5 + 0.3 * len(top_units)))
        image = ax.imshow(correlation[top_units], cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        fig.colorbar(image, ax=ax, label="correlation")
        ax.set_xticks(range(num_classes), names)
        ax.set_yticks(range(len(top_units)), [str(u) for u in top_units])
        ax.set(xlabel="class", ylabel="penultimate unit",
               title=f"feature-class correlation (top {len(top_units)} units)")
        plots.save(fig, path)
    return {"correlation": correlation, "top_units": top_units}


def _check_features(features, labels) -> np.ndarray:
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {features.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(features),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids of shape ({len(features)},), got "
                         f"{labels.dtype} {labels.shape}")
    return features


# --------------------------------------------------------------------------------------------
# All of it
# --------------------------------------------------------------------------------------------


def diagnose(predictor, images, labels, out_dir: str, *, threshold: float = THRESHOLD,
             top_k: int = TOP_K, num_bins: int = 15) -> dict:
    """Every figure above into ``out_dir`` and the numbers a report needs: ``accuracy``,
    ``most_confused`` ``(true name, predicted name, count)``, ``num_mislabelled`` (above
    ``threshold``), ``ece``, ``num_misclassified`` and ``figures`` ``{name: path}``."""
    os.makedirs(out_dir, exist_ok=True)
    figures = {name: os.path.join(out_dir, f"{name}.png") for name in (
        "confusion", "misclassified", "mislabelled", "reliability", "embeddings",
        "feature_class_correlation")}
    probs, labels = predictions(predictor, images, labels)
    names = _names(predictor.class_names, probs.shape[1])
    matrix = confusion(probs, labels, class_names=names, path=figures["confusion"])
    wrong = misclassified(images, probs, labels, class_names=names,
                          path=figures["misclassified"])
    suspects = mislabelled_candidates(images, probs, labels, threshold=threshold, top_k=top_k,
                                      class_names=names, path=figures["mislabelled"])
    bins = reliability(probs, labels, num_bins=num_bins, path=figures["reliability"])
    features = penultimate_features(predictor, images)
    embeddings(features, labels, class_names=names, path=figures["embeddings"])
    feature_class_correlation(features, labels, num_classes=probs.shape[1], class_names=names,
                              path=figures["feature_class_correlation"])
    true, predicted, count = most_confused(matrix["counts"])
    return {"accuracy": float(np.mean(probs.argmax(1) == labels)),
            "most_confused": (names[true], names[predicted], count),
            "num_misclassified": len(wrong["index"]), "num_mislabelled": len(suspects["index"]),
            "ece": bins["ece"], "figures": figures}


__all__ = ["confusion", "diagnose", "embeddings", "feature_class_correlation", "flip_labels",
           "misclassified", "mislabelled_candidates", "most_confused", "penultimate_features",
           "predictions", "reliability"]
