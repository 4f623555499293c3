"""jaxvision.production: the production checks give the numbers their definitions say."""

import numpy as np
import pytest

from jaxvision import production

from helpers import small_predictor


@pytest.fixture(scope="module")
def predictor():
    return small_predictor(size=12, channels=1, num_classes=4)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (32, 12, 12, 1), dtype=np.uint8)


def test_golden_outputs_are_written_once_then_compared(predictor, images, tmp_path):
    path = tmp_path / "golden.json"
    assert production.golden_check(predictor, images, path)["written"]
    again = production.golden_check(predictor, images, path)
    assert not again["written"] and again["ok"] and again["max_abs_diff"] < 1e-6
    with pytest.raises(ValueError, match="golden file"):
        production.golden_check(predictor, images[:3], path)


def test_edge_cases_all_give_probabilities(predictor):
    assert production.edge_cases(predictor) == dict.fromkeys(
        ["blank", "saturated", "noise", "tiny", "huge", "non_square"], True)


def test_consistency_rates_are_fractions_and_exact_for_symmetric_images(predictor, images):
    rates = production.consistency(predictor, images)
    assert 0 <= rates["flip"] <= 1 and 0 <= rates["resize"] <= 1
    symmetric = np.concatenate([images[:, :, :6], images[:, :, :6][:, :, ::-1]], axis=2)
    assert production.consistency(predictor, symmetric)["flip"] == 1.0


def test_fgsm_accuracy_at_zero_is_clean_accuracy_and_falls(predictor, images):
    labels = np.asarray(predictor(images)).argmax(-1)  # the model is right on every image
    accuracy = production.fgsm_robustness(predictor, images, labels, (0.0, 0.05, 0.3))
    assert accuracy[0.0] == 1.0 and accuracy[0.3] < accuracy[0.0]


@pytest.mark.parametrize("kind", production.CORRUPTIONS)
def test_corruptions_grow_with_severity(images, kind):
    distances = [np.abs(production.corrupt(images, kind, s).astype(float) - images).mean()
                 for s in range(1, 6)]
    assert distances[0] > 0 and distances[-1] > distances[0]
    assert production.corrupt(images, kind, 3).dtype == np.uint8


def test_corruption_robustness_reports_every_severity(predictor, images):
    labels = np.asarray(predictor(images)).argmax(-1)
    result = production.corruption_robustness(predictor, images, labels, kinds=("noise",))
    assert result["clean"] == [1.0] and len(result["noise"]) == 5
    with pytest.raises(ValueError, match="unknown corruption"):
        production.corrupt(images, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        production.corrupt(images, "noise", 6)
