"""jaxvision.interpret.diagnostics: confusion, mistakes, mislabelled candidates, calibration,
embeddings and feature-class correlation of a classifier, checked against reference numbers."""

import jax
import numpy as np
import pytest

from jaxvision import inference, models, tasks
from jaxvision.interpret import diagnostics as dg
from jaxvision.metrics import calibration, classification


def probs_of(predicted, confidence, num_classes):
    """Probabilities with the given arg-max and top probability, the rest spread evenly."""
    predicted, confidence = np.asarray(predicted), np.asarray(confidence, np.float64)
    probs = np.repeat(((1 - confidence) / (num_classes - 1))[:, None], num_classes, 1)
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs.astype(np.float32)


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n" and len(f.read()) > 1000


def test_confusion_is_the_metrics_matrix_with_recall_rows(tmp_path):
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([0, 1, 0, 1, 2, 0, 0, 2, 2])
    probs = probs_of(predicted, np.full(9, 0.8), 4)  # class 3 never occurs
    out = dg.confusion(probs, labels, class_names=list("abcd"), path=tmp_path / "cm.png")
    expected = [[2, 1, 0, 0], [0, 1, 1, 0], [2, 0, 2, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(out["counts"], expected)
    np.testing.assert_array_equal(
        out["counts"], classification.confusion_matrix(labels, predicted, num_classes=4))
    np.testing.assert_allclose(out["normalized"], [[2 / 3, 1 / 3, 0, 0], [0, .5, .5, 0],
                                                   [.5, 0, .5, 0], [0, 0, 0, 0]])
    assert dg.most_confused(out["counts"]) == (2, 0, 2)
    assert_png(tmp_path / "cm.png")


@pytest.fixture(scope="module")
def planted():
    """Images whose class is the bright pixel, a model that reads it (confidently right), 3
    flipped labels, and 4 ambiguous images (two bright pixels) that it gets wrong unsurely."""
    rng = np.random.default_rng(0)
    num_classes, n = 5, 60
    labels = np.arange(n) % num_classes
    images = rng.integers(0, 30, (n, 6, 6, 1)).astype(np.uint8)
    images[np.arange(n), 0, labels, 0] = 255
    ambiguous = np.array([5, 11, 23, 50])
    images[ambiguous, 0, labels[ambiguous], 0] = 250
    images[ambiguous, 0, (labels[ambiguous] + 1) % num_classes, 0] = 255
    logits = images[:, 0, :num_classes, 0].astype(np.float64) / 10
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    flipped = np.array([3, 17, 42])
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + 2) % num_classes
    return images, probs, labels, noisy, flipped, ambiguous


def test_mislabelled_candidates_are_exactly_the_planted_flips(planted, tmp_path):
    images, probs, labels, noisy, flipped, ambiguous = planted
    assert probs[flipped].max(1).min() > 0.99 and probs[ambiguous].max(1).max() < 0.7
    found = dg.mislabelled_candidates(images, probs, noisy, threshold=0.95, top_k=2,
                                      path=tmp_path / "suspects.png")
    assert sorted(found["index"]) == flipped.tolist()
    assert np.all(np.diff(found["confidence"]) <= 0)  # most confident first
    np.testing.assert_array_equal(found["predicted"], labels[found["index"]])
    np.testing.assert_array_equal(found["label"], noisy[found["index"]])
    # Every mistake, in data order: the flips and the ambiguous images the model got wrong.
    wrong = dg.misclassified(images, probs, noisy, path=tmp_path / "wrong.png")
    assert wrong["index"].tolist() == sorted([*flipped, *ambiguous])
    none = dg.mislabelled_candidates(images, probs, noisy, threshold=1.0,
                                     path=tmp_path / "none.png")
    assert len(none["index"]) == 0
    for name in ("suspects", "wrong", "none"):
        assert_png(tmp_path / f"{name}.png")


def test_flip_labels_moves_exactly_num_labels_to_other_classes():
    labels = np.arange(50) % 4
    noisy, flipped = dg.flip_labels(labels, 7, 4, seed=1)
    assert len(set(flipped.tolist())) == 7
    np.testing.assert_array_equal(np.flatnonzero(noisy != labels), np.sort(flipped))
    assert noisy.min() >= 0 and noisy.max() < 4


def test_reliability_is_the_calibration_metric(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 200)
    probs = rng.dirichlet(np.ones(3), 200).astype(np.float32)
    out = dg.reliability(probs, labels, num_bins=10, path=tmp_path / "rel.png")
    for key, value in calibration.calibration_bins(probs, labels, num_bins=10).items():
        np.testing.assert_array_equal(out[key], value)
    assert out["ece"] == float(calibration.expected_calibration_error(probs, labels, num_bins=10))
    # 10 answers at confidence 0.9, 9 of them right: calibrated, ECE 0.
    calibrated = dg.reliability(probs_of(np.zeros(10, int), np.full(10, 0.9), 3),
                                np.r_[np.zeros(9, int), 1])
    assert calibrated["ece"] == pytest.approx(0.0, abs=1e-6)
    assert_png(tmp_path / "rel.png")


def test_pca_equals_sklearn_and_tsne_keeps_clusters_apart(tmp_path):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 20)
    plane = rng.normal(size=(60, 2)) + 8 * np.eye(3, 2)[labels]  # 3 clusters in a 2-D plane
    basis, _ = np.linalg.qr(rng.normal(size=(16, 2)))
    features = plane @ basis.T + 5.0  # embedded in 16-D
    points = dg.embeddings(features, labels, path=tmp_path / "emb.png")
    np.testing.assert_allclose(points["pca"], PCA(n_components=2).fit_transform(features),
                               atol=1e-9)
    distances = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(distances(points["pca"]), distances(plane), atol=1e-9)
    d = distances(points["tsne"]) + np.diag(np.full(60, np.inf))
    assert np.array_equal(labels[d.argmin(1)], labels)  # nearest neighbour is of the same class
    assert_png(tmp_path / "emb.png")


def test_feature_class_correlation_is_corrcoef(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 100)
    features = rng.normal(size=(100, 6))
    features[:, 2] = 0.0  # a dead ReLU: constant, no correlation
    features[:, 4] = labels == 1  # a detector of class 1
    out = dg.feature_class_correlation(features, labels, top=3, path=tmp_path / "corr.png")
    onehot = np.eye(4)[labels]
    live = [0, 1, 3, 4, 5]
    expected = np.corrcoef(np.c_[features[:, live], onehot].T)[:5, 5:]
    np.testing.assert_allclose(out["correlation"][live], expected, atol=1e-12)
    np.testing.assert_array_equal(out["correlation"][2], 0.0)
    assert out["top_units"][0] == 4 and out["correlation"][4, 1] == pytest.approx(1.0)
    assert len(out["top_units"]) == 3
    assert_png(tmp_path / "corr.png")


def test_bad_inputs_are_clear_errors(planted):
    images, probs, labels, *_ = planted
    with pytest.raises(ValueError, match=r"labels have shape \(59,\), expected \(60,\)"):
        dg.confusion(probs, labels[:-1])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 5\)"):
        dg.reliability(probs, labels + 1)
    with pytest.raises(ValueError, match="integer class ids"):
        dg.confusion(probs, labels.astype(float))
    for threshold in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"threshold is a probability in \[0, 1\]"):
            dg.mislabelled_candidates(images, probs, labels, threshold=threshold)
    with pytest.raises(ValueError, match="59 images but 60 labels"):
        dg.misclassified(images[:-1], probs, labels)
    with pytest.raises(ValueError, match="features must be"):
        dg.feature_class_correlation(images, labels)
    with pytest.raises(ValueError, match=r"unknown embedding methods \['umap'\]"):
        dg.embeddings(probs, labels, methods=("pca", "umap"))


@pytest.fixture(scope="module")
def predictor():
    model = models.create("small_cnn", num_classes=3, widths=(4,), hidden=8)
    variables = model.init(jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32), train=False)
    spec = inference.InputSpec(image_size=(8, 8), channels=1, mean=(0.5,), std=(0.25,))
    return inference.Predictor(model=model, variables=variables, task=tasks.ClassificationTask(),
                               spec=spec, num_classes=3, class_names=("x", "y", "z"),
                               batch_size=4)


def test_predictions_and_features_are_the_models(predictor, tmp_path):
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (10, 8, 8, 1)).astype(np.uint8)
    labels = rng.integers(0, 3, 10)
    logits = predictor.model.apply(predictor.variables, predictor.preprocess(images), train=False)
    probs, checked = dg.predictions(predictor, images, labels)
    np.testing.assert_allclose(probs, jax.nn.softmax(logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(checked, labels)
    features = dg.penultimate_features(predictor, images)  # 3 chunks of batch_size 4
    head = predictor.variables["params"]["head"]
    assert features.shape == (10, 8)
    np.testing.assert_allclose(features @ head["kernel"] + head["bias"], logits, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        dg.predictions(predictor, images, labels[:-1])

    summary = dg.diagnose(predictor, images, labels, str(tmp_path), threshold=0.0)
    correct = probs.argmax(1) == labels
    assert summary["accuracy"] == pytest.approx(correct.mean())
    assert summary["num_misclassified"] == summary["num_mislabelled"] == (~correct).sum()
    assert summary["ece"] == pytest.approx(float(calibration.expected_calibration_error(
        probs, labels)))
    assert summary["most_confused"][0] in ("x", "y", "z")
    for path in summary["figures"].values():
        assert_png(path)


@pytest.mark.slow
def test_experiment_reports_every_figure(tfds_dir, tmp_path):
    import json

    from experiments import diagnostics as experiment

    config = experiment.get_config()
    config.train.num_epochs = 2
    config.train.data_dir = tfds_dir
    results = experiment.main(config, str(tmp_path))
    assert results["accuracy"] == pytest.approx(results["engine_eval_accuracy"], abs=1e-6)
    assert results["accuracy"] > 0.8
    assert 0 <= results["planted_flips"]["recovered"] <= config.num_flipped
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    report = (tmp_path / "report.md").read_text()
    for name in ("confusion", "misclassified", "mislabelled", "reliability", "embeddings",
                 "feature_class_correlation", "planted_flips"):
        assert f"({name}.png)" in report
        assert_png(tmp_path / f"{name}.png")
    assert f"ECE (15 bins): **{results['ece']:.4f}**" in report
