"""Anchors (worked grids and sizes), box coder, matcher (torchvision semantics) and coverage."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import anchors as A
from jaxvision.ops import box_coder as C
from jaxvision.ops import matcher as M


def test_retinanet_cell_sizes_notes_d7():
    cell = A.cell_anchors(32.0)
    widths, heights = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    # ratio-major order: r = 0.5 (landscape), 1, 2 (portrait); scales 2^0, 2^(1/3), 2^(2/3).
    np.testing.assert_allclose(widths[[0, 3, 6]], [45.2548, 32, 22.6274], atol=1e-4)
    np.testing.assert_allclose(heights[[0, 3, 6]], [22.6274, 32, 45.2548], atol=1e-4)
    np.testing.assert_allclose(np.sqrt(widths * heights)[3:6], [32, 40.3175, 50.7968], atol=1e-4)
    top = A.cell_anchors(512.0)
    np.testing.assert_allclose(np.sqrt((top[:, 2] - top[:, 0]) * (top[:, 3] - top[:, 1]))[5],
                               812.7493, atol=1e-4)
    np.testing.assert_allclose((cell[:, :2] + cell[:, 2:]) / 2, 0, atol=1e-12)


@pytest.mark.parametrize("size,count", [((128, 128), 3069), ((256, 256), 12276),
                                        ((512, 512), 49104), ((640, 640), 76725),
                                        ((600, 1000), 113193), ((800, 1333), 200700),
                                        ((1024, 1024), 196416)])
def test_anchor_counts_notes_d8(size, count):
    assert A.generate_anchors(size).shape == (count, 4)


def test_per_level_counts_and_single_map_t1():
    levels = A.pyramid_anchors((512, 512))
    assert [len(x) for x in levels] == [36864, 9216, 2304, 576, 144]
    cell = A.cell_anchors(32.0, aspect_ratios=(0.5, 1, 2), octave_scales=(1, 3, 9))
    assert A.grid_anchors((50, 50), stride=16, cell=cell).shape == (22500, 4)


def test_grid_layout_against_explicit_loops():
    sizes, strides = (16.0, 32.0), (8, 16)
    got = A.generate_anchors((20, 36), strides=strides, sizes=sizes, aspect_ratios=(0.5, 2.0),
                             octave_scales=(1.0, 1.5), offset=0.5)
    expected = []
    for stride, size in zip(strides, sizes):
        for row in range(math.ceil(20 / stride)):
            for col in range(math.ceil(36 / stride)):
                for ratio in (0.5, 2.0):
                    for scale in (1.0, 1.5):
                        s = size * scale
                        w, h = s / math.sqrt(ratio), s * math.sqrt(ratio)
                        cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
                        expected.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-6)
    # torchvision's grid: offset 0 and rounded cell anchors, e.g. (32, 40, 50) on P3.
    tv = A.pyramid_anchors((64, 64), strides=(8,), sizes=(32.0,), octave_scales=(1.0, 1.25, 1.5625),
                           offset=0.0, round_to_integer=True)[0]
    h_ratios = np.sqrt(np.array([0.5, 1.0, 2.0]))  # torchvision generate_anchors, transcribed
    ws = (1 / h_ratios[:, None] * np.array([32.0, 40.0, 50.0])[None]).reshape(-1)
    hs = (h_ratios[:, None] * np.array([32.0, 40.0, 50.0])[None]).reshape(-1)
    np.testing.assert_array_equal(tv[:9], np.round(np.stack([-ws, -hs, ws, hs], 1) / 2))
    np.testing.assert_array_equal(tv[9, :2] - tv[0, :2], [8, 0])


def test_box_coder_notes_vector_and_round_trip():
    anchor = np.array([34.0, 18.0, 66.0, 82.0])  # centre (50, 50), size 32 x 64
    deltas = np.array([0.5, -0.25, math.log(2), 0.0])
    with jax.enable_x64(True):
        box = C.decode_boxes(deltas, anchor)
        np.testing.assert_allclose(box, [34, 2, 98, 66], rtol=1e-15)
        np.testing.assert_allclose(C.encode_boxes(box, anchor), deltas, atol=1e-15)
        rng = np.random.default_rng(0)
        xy = rng.uniform(0, 100, (50, 2))
        anchors = np.concatenate([xy, xy + rng.uniform(5, 80, (50, 2))], 1)
        xy = rng.uniform(0, 100, (50, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 80, (50, 2))], 1)
        for weights in [(1, 1, 1, 1), (10, 10, 5, 5)]:
            enc = C.encode_boxes(boxes, anchors, weights=weights)
            np.testing.assert_allclose(C.decode_boxes(enc, anchors, weights=weights), boxes,
                                       rtol=1e-12)
        enc = C.encode_boxes(boxes, anchors, weights=(10, 10, 5, 5))
        aw = anchors[:, 2] - anchors[:, 0]
        np.testing.assert_allclose(enc[:, 2], 5 * np.log((boxes[:, 2] - boxes[:, 0]) / aw))
    # The exp clamp at log(1000/16): a huge delta decodes to 1000/16 times the anchor size.
    huge = C.decode_boxes(np.array([0, 0, 50.0, 50.0], np.float32), np.float32(anchor))
    np.testing.assert_allclose(huge[2] - huge[0], 32 * 1000 / 16, rtol=1e-5)
    assert C.DEFAULT_DELTA_CLIP == pytest.approx(4.135166556742356, abs=1e-15)


def _np_iou(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def _torchvision_matcher(quality, high, low, allow_low_quality):
    """torchvision.models.detection._utils.Matcher.__call__, transcribed."""
    torch = pytest.importorskip("torch")
    q = torch.from_numpy(quality)
    matched_vals, matches = q.max(dim=0)
    all_matches = matches.clone()
    below, between = matched_vals < low, (matched_vals >= low) & (matched_vals < high)
    matches[below] = -1
    matches[between] = -2
    if allow_low_quality:
        highest, _ = q.max(dim=1)
        pred = torch.where(q == highest[:, None])[1]
        matches[pred] = all_matches[pred]
    return matches.numpy()


@pytest.mark.parametrize("thresholds", [(0.5, 0.4), (0.7, 0.3)])
@pytest.mark.parametrize("low_quality", [True, False])
def test_matcher_matches_torchvision(thresholds, low_quality):
    rng = np.random.default_rng(1)
    anchors = A.generate_anchors((64, 64), strides=(8, 16), sizes=(16.0, 32.0)).astype(np.float64)
    xy = rng.uniform(0, 48, (6, 2))
    gt = np.concatenate([xy, xy + rng.uniform(6, 30, (6, 2))], 1)
    gt_padded = np.concatenate([gt, np.zeros((2, 4))])
    valid = np.array([True] * 6 + [False] * 2)
    with jax.enable_x64(True):
        matched, labels = M.match_anchors(anchors, gt_padded, valid, positive_threshold=thresholds[0],
                                          negative_threshold=thresholds[1],
                                          allow_low_quality_matches=low_quality)
    expected = _torchvision_matcher(_np_iou(gt, anchors), *thresholds, low_quality)
    np.testing.assert_array_equal(labels, np.where(expected >= 0, 1, np.where(expected == -1, 0, -1)))
    np.testing.assert_array_equal(np.asarray(matched)[expected >= 0], expected[expected >= 0])
    assert (labels == -1).any() and (labels == 1).any()


def test_matcher_threshold_boundaries_and_empty():
    anchors = np.array([[0, 0, 2, 1], [0, 0, 1, 1], [0, 0, 8, 8]], np.float32)
    gt = np.array([[1, 0, 3, 1]], np.float32)  # IoU 1/3 with anchor 0, 0 with 1 and 2
    _, labels = M.match_anchors(anchors, gt, positive_threshold=0.5, negative_threshold=1 / 3,
                                allow_low_quality_matches=False)
    np.testing.assert_array_equal(labels, [M.IGNORE, M.NEGATIVE, M.NEGATIVE])  # >= low: ignore
    _, labels = M.match_anchors(anchors, gt, positive_threshold=1 / 3, negative_threshold=0.2,
                                allow_low_quality_matches=False)
    np.testing.assert_array_equal(labels, [M.POSITIVE, M.NEGATIVE, M.NEGATIVE])  # >= high
    _, labels = M.match_anchors(anchors, gt, positive_threshold=0.9, negative_threshold=0.8)
    np.testing.assert_array_equal(labels, [M.POSITIVE, M.NEGATIVE, M.NEGATIVE])  # low quality
    for boxes, valid in ((gt, np.array([False])), (np.zeros((0, 4), np.float32), None)):
        matched, labels = M.match_anchors(anchors, boxes, valid)
        np.testing.assert_array_equal(labels, M.NEGATIVE)
        np.testing.assert_array_equal(matched, 0)
    with pytest.raises(ValueError, match="negative_threshold"):
        M.match_anchors(anchors, gt, positive_threshold=0.3, negative_threshold=0.4)


def test_matcher_coder_coverage_jit_vmap():
    rng = np.random.default_rng(2)
    anchors = A.generate_anchors((32, 32), strides=(8, 16), sizes=(12.0, 24.0))
    xy = rng.uniform(0, 20, (2, 5, 2))
    gt = np.concatenate([xy, xy + rng.uniform(4, 12, (2, 5, 2))], -1).astype(np.float32)
    valid = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)

    def targets(gt_boxes, gt_valid):
        matched, labels = M.match_anchors(anchors, gt_boxes, gt_valid)
        deltas = C.encode_boxes(gt_boxes[matched], anchors)
        deltas = jnp.where((labels == 1)[:, None], deltas, 0.0)
        return matched, labels, deltas, A.anchor_coverage(anchors, gt_boxes, gt_valid)

    eager = [targets(gt[i], valid[i]) for i in range(2)]
    batched = jax.jit(jax.vmap(targets))(gt, valid)
    for i in range(2):
        for got, want in zip(batched, eager[i]):
            np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-6)
    coverage = eager[0][3]
    np.testing.assert_allclose(coverage[:3], _np_iou(gt[0, :3], anchors).max(1), rtol=1e-6)
    np.testing.assert_array_equal(coverage[3:], 0)
    decoded = C.decode_boxes(batched[2][0], anchors)
    positive = np.asarray(batched[1][0]) == 1
    np.testing.assert_allclose(decoded[positive], gt[0][np.asarray(batched[0][0])[positive]],
                               rtol=1e-5, atol=1e-4)
