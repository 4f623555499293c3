"""COCO evaluator: parity with pycocotools on randomized cases, and hand-checked values."""

import contextlib
import copy
import io

import numpy as np
import pytest

from jaxvision.metrics import coco


def random_coco(seed, *, num_images=40, num_categories=5, crowded_image=True):
    """A randomized COCO ground truth + results list exercising the evaluator's corner cases.

    Crowd boxes, empty images, a category with no ground truth (id 7), detections of a category
    that is not in the dataset (id 99, ignored), boxes across the small/medium/large ranges and
    exactly on the 32² boundary, GT 'area' fields that differ from w*h, score ties (scores
    rounded to 0.1), and one image with more than 100 detections of one category.
    """
    rng = np.random.default_rng(seed)
    category_ids = [1, 3, 4, 7, 10][:num_categories]
    images = [{"id": int(i)} for i in rng.choice(1000, num_images, replace=False)]
    annotations, results = [], []
    ann_id = 1
    for index, img in enumerate(images):
        if index % 7 == 3:
            continue  # empty image
        for _ in range(rng.integers(0, 8)):
            category = int(rng.choice([c for c in category_ids if c != 7]))
            size = float(rng.choice([8.0, 20.0, 32.0, 50.0, 100.0, 150.0]))
            w, h = size * rng.uniform(0.5, 1.5), size * rng.uniform(0.5, 1.5)
            x, y = rng.uniform(0, 400, 2)
            area = w * h if rng.uniform() < 0.7 else w * h * rng.uniform(0.4, 1.0)
            if rng.uniform() < 0.1:
                w, h, area = 32.0, 32.0, 1024.0  # exactly on the small/medium boundary
            crowd = int(rng.uniform() < 0.1)
            annotations.append({"id": ann_id, "image_id": img["id"], "category_id": category,
                                "bbox": [x, y, w, h], "area": area, "iscrowd": crowd})
            ann_id += 1
            twin = rng.uniform()
            if twin < 0.3:  # an identical (IoU ties) or shifted overlapping twin of this box
                shift = 0.0 if twin < 0.15 else rng.uniform(0.05, 0.2) * w
                annotations.append({"id": ann_id, "image_id": img["id"], "category_id": category,
                                    "bbox": [x + shift, y, w, h], "area": w * h, "iscrowd": 0})
                ann_id += 1
            noise = rng.choice([0.01, 0.05, 0.15])
            for _ in range(rng.integers(0, 4)):  # detections near this object
                jitter = rng.normal(0, noise, 4) * [w, h, w, h]
                results.append({"image_id": img["id"],
                                "category_id": category if rng.uniform() < 0.85 else
                                int(rng.choice(category_ids + [99])),
                                "bbox": [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0),
                                         max(h + jitter[3], 1.0)],
                                "score": float(np.round(rng.uniform(), 1))})
        for _ in range(rng.integers(0, 5)):  # background detections
            x, y = rng.uniform(0, 400, 2)
            results.append({"image_id": img["id"], "category_id": int(rng.choice(category_ids)),
                            "bbox": [x, y, float(rng.uniform(4, 120)), float(rng.uniform(4, 120))],
                            "score": float(np.round(rng.uniform(), 1))})
    if crowded_image:
        img = images[0]["id"]
        for _ in range(130):
            x, y = rng.uniform(0, 300, 2)
            results.append({"image_id": img, "category_id": category_ids[0],
                            "bbox": [x, y, 40.0, 40.0], "score": float(np.round(rng.uniform(), 2))})
        annotations.append({"id": ann_id, "image_id": img, "category_id": category_ids[0],
                            "bbox": [10.0, 10.0, 40.0, 40.0], "area": 1600.0, "iscrowd": 0})
    order = rng.permutation(len(results))
    results = [results[i] for i in order]
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": c, "name": str(c)} for c in category_ids]}
    return gt, results


def run_pycocotools(gt, results):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


@pytest.mark.parametrize("seed", range(6))
def test_matches_pycocotools_on_random_cases(seed):
    gt, results = random_coco(seed, num_images=30 + 10 * seed)
    reference = run_pycocotools(gt, results)
    ours = coco.coco_evaluate_detailed(gt, results)
    np.testing.assert_allclose([ours.stats[n] for n in coco.STAT_NAMES], reference.stats,
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.precision, reference.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall, reference.eval["recall"], rtol=0, atol=1e-12)
    assert np.all(ours.precision[:, :, 3] == -1)  # category 7 has no ground truth


def test_stat_names_and_simple_api():
    gt, results = random_coco(11, num_images=10, crowded_image=False)
    stats = coco.coco_evaluate(gt, results)
    assert tuple(stats) == coco.STAT_NAMES
    reference = run_pycocotools(gt, results)
    np.testing.assert_allclose(list(stats.values()), reference.stats, atol=1e-9, rtol=0)


def test_golden_value_one_category():
    # 5 GT, detections in score order TP, FP, TP, TP, FP, TP -> AP@t = 0.636964 (worked by hand).
    gts = [[i * 100.0, 0, 50, 50] for i in range(5)]
    tp_boxes = iter(gts[:4])
    dets = []
    for rank, kind in enumerate("TFTTFT"):
        box = next(tp_boxes) if kind == "T" else [1000.0 + rank * 100, 500, 50, 50]
        dets.append({"image_id": 1, "category_id": 1, "bbox": box, "score": 1.0 - rank * 0.1})
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b,
                           "area": 2500.0, "iscrowd": 0} for i, b in enumerate(gts)]}
    result = coco.coco_evaluate_detailed(gt, dets)
    expected = (21 * 1 + 40 * 0.75 + 20 * 2 / 3) / 101
    np.testing.assert_allclose(result.precision[:, :, 0, 0, 2].mean(axis=1), expected, rtol=1e-12)
    np.testing.assert_allclose(result.stats["AR100"], 0.8, rtol=1e-12)
    assert result.stats["APs"] == -1 and result.stats["APl"] == -1  # no small/large GT


def test_crowd_iou_and_boundary_area_and_ar_threshold():
    # Crowd GT: IoU = intersection / detection area; a detection inside a crowd box is ignored.
    iou = coco.bbox_iou_xywh(np.array([[0.0, 0, 10, 10]]), np.array([[0.0, 0, 100, 100]]),
                             np.array([True]))
    assert iou[0] == 1.0
    # AR with one GT whose best detection has IoU exactly 0.75 is 0.6 under the >= rule (pycocotools').
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0.0, 0, 100, 100],
                           "area": 32.0 ** 2, "iscrowd": 0}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0.0, 0, 100, 75], "score": 0.9}]
    stats = coco.coco_evaluate(gt, dets)
    assert stats["AR100"] == pytest.approx(0.6, abs=1e-12)
    # area exactly 32² counts as both small and medium (inclusive bounds).
    assert stats["ARs"] == pytest.approx(0.6) and stats["ARm"] == pytest.approx(0.6)


def test_empty_results_and_bad_image_ids():
    gt, _ = random_coco(3, num_images=5, crowded_image=False)
    stats = coco.coco_evaluate(gt, [])
    assert stats["AP"] == 0.0 and stats["AR100"] == 0.0
    with pytest.raises(ValueError, match="image ids"):
        coco.coco_evaluate(gt, [{"image_id": -5, "category_id": 1, "bbox": [0, 0, 1, 1],
                                 "score": 1.0}])
    with pytest.raises(ValueError, match="categories"):
        coco.coco_evaluate({"images": [], "annotations": []}, [])


def test_custom_area_ranges_and_max_detections_match_pycocotools():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt, results = random_coco(21, num_images=25)
    area_ranges = [[0, 1e10], [0, 20.0 ** 2], [20.0 ** 2, 60.0 ** 2], [60.0 ** 2, 1e10]]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "bbox")
        evaluator.params.areaRng = area_ranges
        evaluator.params.maxDets = [1, 5, 20]
        evaluator.params.iouThrs = np.array([0.3, 0.5, 0.7])
        evaluator.evaluate()
        evaluator.accumulate()
    ours = coco.coco_evaluate_detailed(gt, results, area_ranges=area_ranges,
                                       max_detections=(1, 5, 20), iou_thresholds=[0.3, 0.5, 0.7])
    np.testing.assert_allclose(ours.precision, evaluator.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall, evaluator.eval["recall"], rtol=0, atol=1e-12)
    # Per-category AP is the mean over IoU thresholds and recall points of the 'all' range.
    reference = evaluator.eval["precision"][:, :, :, 0, -1]
    for k, (category, ap) in enumerate(ours.per_category_ap().items()):
        values = reference[:, :, k][reference[:, :, k] > -1]
        assert ap == (np.mean(values) if values.size else -1.0)
    assert ours.per_category_ap(iou_threshold=0.5)[1] == pytest.approx(
        np.mean(evaluator.eval["precision"][1, :, 0, 0, -1]), abs=1e-12)


def test_unsorted_recall_thresholds_and_equivalent_max_detections_match_pycocotools():
    # Recall points are found on true-positive counts, not by searchsorted: any order works,
    # and as in pycocotools the points after the first one never reached stay 0.
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt, results = random_coco(8, num_images=30)
    recall_thresholds = np.array([0.5, 0.0, 1.0, 0.25, 0.5, 0.013, 1.2])
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "bbox")
        evaluator.params.recThrs = recall_thresholds
        evaluator.params.maxDets = [3, 200, 1000]  # 200 and 1000 keep the same detections
        evaluator.evaluate()
        evaluator.accumulate()
    ours = coco.coco_evaluate_detailed(gt, results, recall_thresholds=recall_thresholds,
                                       max_detections=(3, 200, 1000))
    np.testing.assert_array_equal(ours.precision, evaluator.eval["precision"])
    np.testing.assert_array_equal(ours.scores, evaluator.eval["scores"])
    np.testing.assert_array_equal(ours.recall, evaluator.eval["recall"])
