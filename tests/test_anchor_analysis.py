"""Anchor analysis: coverage, k-means anchor shapes (1 - IoU distance), per-level use."""

import numpy as np
import pytest

from jaxvision.ops.anchor_analysis import (anchor_coverage_stats, kmeans_anchor_shapes,
                                           level_assignment)


def test_coverage_counts_boxes_matched_at_threshold():
    anchors = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    boxes = [np.array([[0, 0, 10, 10], [0, 0, 10, 20]], np.float32),  # IoU 1 and 0.5
             np.zeros((0, 4), np.float32),  # an image without objects
             np.array([[20, 20, 30, 30]], np.float32)]  # IoU 0.25
    stats = anchor_coverage_stats(boxes, anchors)
    np.testing.assert_allclose(stats["best_iou"], [1.0, 0.5, 0.25], rtol=1e-6)
    assert stats["matched_fraction"] == pytest.approx(2 / 3)
    assert stats["histogram"].sum() == 3
    with pytest.raises(ValueError, match="x2 < x1"):
        anchor_coverage_stats([np.array([[5, 0, 1, 1]], np.float32)], anchors)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        anchor_coverage_stats(boxes, anchors[:, :3])


def test_kmeans_recovers_two_box_shapes():
    rng = np.random.default_rng(0)
    wh = np.concatenate([rng.normal([10, 20], 0.5, (50, 2)), rng.normal([40, 12], 0.5, (50, 2))])
    xy = rng.uniform(0, 100, (100, 2))
    shapes, mean_iou = kmeans_anchor_shapes(np.concatenate([xy, xy + wh], 1), 2)
    np.testing.assert_allclose(shapes, [[10, 20], [40, 12]], atol=0.5)
    assert mean_iou > 0.9
    with pytest.raises(ValueError, match="k must"):
        kmeans_anchor_shapes(np.concatenate([xy, xy + wh], 1), 101)


def test_level_assignment_puts_boxes_on_the_level_of_their_size():
    small = np.array([[0, 0, 8, 8], [8, 0, 16, 8]], np.float32)
    large = np.array([[0, 0, 32, 32]], np.float32)
    boxes = [np.array([[0, 0, 8, 8]], np.float32), np.array([[0, 0, 30, 32]], np.float32)]
    out = level_assignment([small, large], boxes)
    assert out["best_level_counts"].tolist() == [1, 1]
    assert out["positives_per_level"].tolist() == [1, 1]
