"""NMS against a worked example and a plain-Python greedy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import suppression as N

BOXES = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
SCORES = np.array([0.9, 0.8, 0.7], np.float32)


def test_hard_nms_notes_vector():
    np.testing.assert_array_equal(N.nms(BOXES, SCORES, iou_threshold=0.5), [0, 2])
    np.testing.assert_array_equal(N.nms(BOXES, SCORES, iou_threshold=0.7), [0, 1, 2])
    # Per-class: A and B in different classes both survive.
    np.testing.assert_array_equal(
        N.batched_nms(BOXES, SCORES, np.array([0, 1, 0]), iou_threshold=0.5), [0, 1, 2])


def test_iou_exactly_at_threshold_survives_and_ties_keep_lower_index():
    boxes = np.array([[0, 0, 2, 1], [1, 0, 3, 1]], np.float32)  # IoU exactly 1/3
    scores = np.array([0.5, 0.5], np.float32)
    np.testing.assert_array_equal(N.nms(boxes, scores, iou_threshold=1 / 3), [0, 1])
    np.testing.assert_array_equal(N.nms(boxes, scores, iou_threshold=0.3), [0])
    np.testing.assert_array_equal(N.nms(boxes[::-1], scores, iou_threshold=0.3), [0])


def test_soft_nms_notes_vector():
    with jax.enable_x64(True):
        b = jnp.asarray(BOXES, jnp.float64)
        s = jnp.asarray([0.9, 0.8, 0.7], jnp.float64)
        idx, sc, valid = N.soft_nms(b, s, max_output_size=4, method="gaussian", sigma=0.5)
        np.testing.assert_array_equal(idx, [0, 2, 1, -1])
        np.testing.assert_array_equal(valid, [True, True, True, False])
        np.testing.assert_allclose(sc[:3], [0.9, 0.7, 0.31670864564916884], rtol=1e-14)
        idx, sc, _ = N.soft_nms(b, s, max_output_size=3, method="linear", iou_threshold=0.3)
        np.testing.assert_array_equal(idx, [0, 2, 1])
        np.testing.assert_allclose(sc, [0.9, 0.7, 0.25546218487394956], rtol=1e-14)
        # Per-class soft-NMS: no decay across classes.
        _, sc, _ = N.soft_nms(b, s, max_output_size=3, class_ids=jnp.array([0, 1, 0]))
        np.testing.assert_allclose(sc, [0.9, 0.8, 0.7], rtol=1e-14)
    with pytest.raises(ValueError, match="gaussian"):
        N.soft_nms(BOXES, SCORES, max_output_size=2, method="exp")


def _reference_nms(boxes, scores, thr, classes=None):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        ok = True
        for j in keep:
            if classes is not None and classes[i] != classes[j]:
                continue
            xx1, yy1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            xx2, yy2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(xx2 - xx1, 0) * max(yy2 - yy1, 0)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])
            if inter / (area(boxes[i]) + area(boxes[j]) - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def _random_scene(seed, n=60):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 40, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(4, 20, (n, 2))], 1)
    scores = np.round(rng.uniform(0, 1, n), 2)  # rounding makes score ties
    return boxes, scores, rng.integers(0, 3, n)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_python_greedy_reference_with_ties(seed):
    boxes, scores, classes = _random_scene(seed)
    with jax.enable_x64(True):
        np.testing.assert_array_equal(N.nms(boxes, scores, iou_threshold=0.4),
                                      _reference_nms(boxes, scores, 0.4))
        np.testing.assert_array_equal(N.batched_nms(boxes, scores, classes, iou_threshold=0.4),
                                      _reference_nms(boxes, scores, 0.4, classes))


def test_padded_nms_options_eager_jit_and_vmap_agree():
    boxes, scores, classes = _random_scene(3)
    boxes, scores = boxes.astype(np.float32), scores.astype(np.float32)
    fn = lambda b, s: N.nms_padded(b, s, iou_threshold=0.5, max_output_size=8,
                                   score_threshold=0.3, pre_nms_top_k=40)
    idx, valid = jax.jit(fn)(boxes, scores)
    order = sorted(range(60), key=lambda i: (-scores[i], i))[:40]
    sub = [i for i in order if scores[i] > 0.3]
    expected = [sub[k] for k in _reference_nms(boxes[sub], scores[sub], 0.5)][:8]
    np.testing.assert_array_equal(np.asarray(idx)[np.asarray(valid)], expected)
    with jax.disable_jit():  # truly eager: the fori_loop runs in Python
        eager_idx, eager_valid = fn(boxes, scores)
    np.testing.assert_array_equal(eager_idx, idx)
    np.testing.assert_array_equal(eager_valid, valid)
    vidx, vvalid = jax.vmap(fn)(np.stack([boxes, boxes[::-1]]), np.stack([scores, scores[::-1]]))
    np.testing.assert_array_equal(vidx[0], idx)
    np.testing.assert_array_equal(vvalid[0], valid)
    ridx, _ = fn(boxes[::-1], scores[::-1])
    np.testing.assert_array_equal(vidx[1], ridx)
    # Fewer survivors than max_output_size pad with -1.
    idx, valid = N.nms_padded(BOXES, SCORES, iou_threshold=0.5, max_output_size=4)
    np.testing.assert_array_equal(idx, [0, 2, -1, -1])
    np.testing.assert_array_equal(valid, [True, True, False, False])


def test_multiclass_nms_and_soft_nms_under_jit():
    boxes, _, _ = _random_scene(4, n=30)
    rng = np.random.default_rng(4)
    class_scores = rng.uniform(0, 1, (30, 3)).astype(np.float32)
    out = jax.jit(lambda b, s: N.multiclass_nms(b, s, iou_threshold=0.5, score_threshold=0.2,
                                                pre_nms_top_k=50, max_detections=10))(
        boxes.astype(np.float32), class_scores)
    flat = class_scores.reshape(-1)
    order = sorted(range(90), key=lambda i: (-flat[i], i))[:50]
    sub = [i for i in order if flat[i] > 0.2]
    kept = [sub[k] for k in _reference_nms(boxes[[i // 3 for i in sub]], flat[sub], 0.5,
                                           [i % 3 for i in sub])][:10]
    np.testing.assert_array_equal(out["classes"], [i % 3 for i in kept])
    np.testing.assert_allclose(out["scores"], flat[kept])
    np.testing.assert_allclose(out["boxes"], boxes[[i // 3 for i in kept]], rtol=1e-6)
    soft = lambda b, s: N.soft_nms(b, s, max_output_size=5)
    with jax.disable_jit():
        eager = soft(boxes.astype(np.float32), flat[:30])
    for got, want in zip(soft(boxes.astype(np.float32), flat[:30]), eager):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, want in zip(jax.vmap(soft)(boxes[None].astype(np.float32), flat[None, :30]), eager):
        np.testing.assert_allclose(got[0], want, rtol=1e-6)


def test_empty_inputs_give_padding():
    empty_boxes, empty_scores = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    assert N.nms(empty_boxes, empty_scores, iou_threshold=0.5).shape == (0,)
    idx, valid = N.nms_padded(empty_boxes, empty_scores, iou_threshold=0.5, max_output_size=3)
    np.testing.assert_array_equal(idx, -1)
    assert not np.asarray(valid).any()
    idx, scores, valid = N.soft_nms(empty_boxes, empty_scores, max_output_size=2)
    np.testing.assert_array_equal(idx, -1)
    assert not np.asarray(valid).any()
    out = N.multiclass_nms(np.zeros((0, 4), np.float32), np.zeros((0, 3), np.float32),
                           max_detections=4)
    np.testing.assert_array_equal(out["classes"], -1)


def test_torchvision_names_on_the_ops_package():
    """``ops.nms(boxes, scores, 0.5)`` as in torchvision: functions (not modules) named
    ``nms``, ``batched_nms`` and ``box_iou``, thresholds positional, int64 indices."""
    import types

    from jaxvision import ops

    for name in ("nms", "batched_nms", "box_iou"):
        assert callable(getattr(ops, name)) and not isinstance(getattr(ops, name), types.ModuleType)
    boxes, scores, classes = _random_scene(4)
    boxes, scores = boxes.astype(np.float32), scores.astype(np.float32)
    keep = ops.nms(boxes, scores, 0.5)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, _reference_nms(boxes, scores, 0.5))
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, classes, 0.5),
                                  _reference_nms(boxes, scores, 0.5, classes))
    np.testing.assert_array_equal(ops.nms(BOXES, SCORES, 0.5), [0, 2])  # IoU 0.68 > 0.5
    np.testing.assert_allclose(ops.box_iou(BOXES[:1], BOXES[1:2]), [[81 / 119]], rtol=1e-6)
