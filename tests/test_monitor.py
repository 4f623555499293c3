"""jaxvision.monitor against the course's deployment vectors, and drift that fires on a
shifted stream but not on fresh images from the same source."""

import numpy as np
import pytest

from jaxvision import monitor as M


def test_the_course_percentile_convention():
    latencies = list(range(1, 101))
    assert [M.percentile(latencies, q) for q in (0.5, 0.95, 0.99)] == [51, 96, 100]
    assert np.percentile(latencies, 95) == pytest.approx(95.05)  # why the convention matters
    tracker = M.PerformanceTracker()
    for seconds in latencies:
        tracker.record(seconds / 1000, batch_size=4)
    summary = tracker.summary()
    assert summary["p95"] == pytest.approx(0.096)
    assert summary["images_per_second"] == pytest.approx(400 / 5.05)


@pytest.mark.parametrize("classes, bits", [
    ([0, 0, 1, 1], 1.0), ([0, 1, 2, 3], 2.0), ([0, 0, 0, 1], 0.811278), ([3, 3, 3], 0.0)])
def test_prediction_entropy_in_bits(classes, bits):
    assert M.entropy_bits(classes) == pytest.approx(bits, abs=1e-6)
    tracked = M.PredictionMonitor(4)
    tracked.update(np.eye(4)[classes] * 0.7 + 0.075)
    assert tracked.summary()["entropy_bits"] == pytest.approx(bits, abs=1e-6)
    assert tracked.summary()["mean_confidence"] == pytest.approx(0.775)


def test_validation_alert_threshold():
    assert 0.95 * 0.90 == pytest.approx(0.855)
    assert M.validation_alert(0.85, 0.90) and not M.validation_alert(0.86, 0.90)


@pytest.mark.parametrize("request_id, arm", [("req-1", "B"), ("user-42", "A"), ("abc", "B")])
def test_ab_routes_by_md5(request_id, arm):
    assert M.ab_route(request_id) == arm
    assert M.ab_route(request_id, split=1.0) == "A" and M.ab_route(request_id, split=0.0) == "B"


def test_drift_fires_on_a_shifted_stream_only():
    rng = np.random.default_rng(0)

    def batch(n, brightness=0.0, contrast=1.0):
        base = rng.normal(120, 30, (n, 1, 1, 3)) + rng.normal(0, 20, (n, 16, 16, 3))
        return np.clip((base - 128) * contrast + 128 + brightness, 0, 255).astype(np.uint8)

    drift = M.DriftMonitor.from_images(batch(2000))
    same = drift.check(batch(64))
    assert not same["drift"] and max(same["psi"]) < 0.1  # sampling noise, well under 0.2
    darker = drift.check(batch(64, brightness=-40))
    assert darker["drift"] and min(darker["z"]) < -3
    flat = drift.check(batch(64, contrast=0.3))  # same mean, narrower histogram
    assert flat["drift"] and max(flat["psi"]) > 0.2 and max(map(abs, flat["z"])) < 3
    with pytest.raises(ValueError, match="3 channels"):
        drift.check(np.zeros((1, 4, 4, 1), np.uint8))


def test_psi_of_identical_samples_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, 10_000)
    assert M.psi(x, x) == 0.0
    shifts = [M.psi(x, np.clip(x + s, 0, 255)) for s in (10, 40, 80)]
    assert shifts == sorted(shifts) and shifts[0] > 0
