"""COCO 'segm' evaluation: RLE coding and mask IoU against pycocotools' mask API, and the 12
numbers (plus the precision, recall and score arrays) against its COCOeval on randomized
cases with crowd regions, empty images and empty masks."""

import contextlib
import copy
import io

import numpy as np
import pytest

from jaxvision.metrics import coco, coco_masks


def random_mask(rng, height, width):
    """A blob: a filled ellipse, sometimes with a hole or a second part."""
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    ry, rx = rng.uniform(2, height / 2), rng.uniform(2, width / 2)
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    if rng.uniform() < 0.3:
        mask &= ((yy - cy) / (ry / 3)) ** 2 + ((xx - cx) / (rx / 3)) ** 2 > 1
    if rng.uniform() < 0.2:
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        mask[y:y + 4, x:x + 4] = True
    return mask.astype(np.uint8)


def jitter(rng, mask, amount):
    """A detection near a mask: shifted by up to ``amount`` pixels, with some pixels flipped."""
    dy, dx = rng.integers(-amount, amount + 1, 2)
    out = np.roll(np.roll(mask, dy, 0), dx, 1)
    flip = rng.uniform(size=mask.shape) < 0.005
    return (out ^ flip).astype(np.uint8)


def random_segm_coco(seed, *, num_images=24):
    """GT as compressed RLE (crowd regions as uncompressed RLE lists, as in COCO's files), and
    results as compressed RLE or dense masks; empty images, empty detection masks, score ties,
    a category without GT (7), an unknown category (99), one image with 120 detections."""
    rng = np.random.default_rng(seed)
    category_ids = [1, 3, 7]
    images, annotations, results = [], [], []
    for index in range(num_images):
        height, width = int(rng.integers(20, 160)), int(rng.integers(20, 160))
        image_id = int(1000 - 7 * index)
        images.append({"id": image_id, "height": height, "width": width})
        if index % 6 == 2:
            continue  # an image without objects (detections below may still hit it)
        for _ in range(rng.integers(1, 5)):
            category = int(rng.choice([1, 3]))
            mask = random_mask(rng, height, width)
            crowd = int(rng.uniform() < 0.15)
            rle = coco_masks.encode(mask)
            if crowd:
                rle = {"size": rle["size"], "counts": coco_masks.mask_runs(mask).tolist()}
            area = float(mask.sum()) if rng.uniform() < 0.8 else float(mask.sum()) * 0.7
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": category, "segmentation": rle, "area": area,
                                "bbox": [0, 0, 1, 1], "iscrowd": crowd})
            for _ in range(rng.integers(0, 4)):
                det = jitter(rng, mask, int(rng.choice([0, 1, 3, 6])))
                if rng.uniform() < 0.05:
                    det[:] = 0  # an empty mask
                results.append({"image_id": image_id,
                                "category_id": category if rng.uniform() < 0.85
                                else int(rng.choice(category_ids + [99])),
                                "segmentation": det, "score": float(np.round(rng.uniform(), 1))})
        for _ in range(rng.integers(0, 3)):  # background detections
            results.append({"image_id": image_id, "category_id": int(rng.choice(category_ids)),
                            "segmentation": random_mask(rng, height, width),
                            "score": float(np.round(rng.uniform(), 1))})
    height, width = images[0]["height"], images[0]["width"]
    for _ in range(120):
        results.append({"image_id": images[0]["id"], "category_id": 1,
                        "segmentation": random_mask(rng, height, width),
                        "score": float(np.round(rng.uniform(), 2))})
    for result in results:  # half the results as compressed RLE, half dense
        if rng.uniform() < 0.5:
            result["segmentation"] = coco_masks.encode(result["segmentation"])
        if seed % 2:  # results with boxes: pycocotools then takes the box's area as theirs
            result["bbox"] = [float(v) for v in rng.uniform(1, 60, 4)]
    order = rng.permutation(len(results))
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": c, "name": str(c)} for c in category_ids]}
    return gt, [results[i] for i in order]


def pycocotools_segm(gt, results):
    pytest.importorskip("pycocotools")
    from pycocotools import mask as mask_api
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    as_rle = []
    for result in copy.deepcopy(results):
        segmentation = result["segmentation"]
        if isinstance(segmentation, np.ndarray):
            segmentation = mask_api.encode(np.asfortranarray(segmentation))
        as_rle.append({**result, "segmentation": segmentation})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(as_rle)
        evaluator = COCOeval(coco_gt, coco_dt, "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def test_rle_coding_and_mask_iou_equal_pycocotools():
    mask_api = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(0)
    masks = [random_mask(rng, 37, 53) for _ in range(8)] + [np.zeros((37, 53), np.uint8),
                                                           np.ones((37, 53), np.uint8)]
    big = np.zeros((300, 300), np.uint8)
    big[10:290, 5] = 1
    big[0:3, 200:] = 1  # long runs: multi-group values and negative differences
    for mask in masks + [big]:
        reference = mask_api.encode(np.asfortranarray(mask))
        assert coco_masks.encode(mask)["counts"] == reference["counts"].decode()
        np.testing.assert_array_equal(coco_masks.decode(reference), mask)
        assert coco_masks.MaskSet.from_segmentations([reference]).areas[0] == mask.sum()
    crowd = np.array([0, 1, 0, 0, 1], bool)
    dt, gt = masks[:5], masks[5:]
    ours = coco_masks.pair_iou(coco_masks.MaskSet.from_segmentations(dt),
                               coco_masks.MaskSet.from_segmentations(gt),
                               np.repeat(np.arange(5), 5), np.tile(np.arange(5), 5),
                               np.tile(crowd, 5))
    reference = mask_api.iou([mask_api.encode(np.asfortranarray(m)) for m in dt],
                             [mask_api.encode(np.asfortranarray(m)) for m in gt], crowd.tolist())
    np.testing.assert_array_equal(ours, reference.ravel())


def test_chunked_decoding_and_iou_equal_pycocotools(monkeypatch):
    # Tiny chunks, so that masks and pairs cross many chunk boundaries.
    mask_api = pytest.importorskip("pycocotools.mask")
    monkeypatch.setattr(coco_masks, "_MASKS_PER_CHUNK", 7)
    monkeypatch.setattr(coco_masks, "_INTERVALS_PER_CHUNK", 40)
    rng = np.random.default_rng(5)
    masks = [random_mask(rng, 23, 31) for _ in range(40)] + [np.zeros((23, 31), np.uint8)]
    rles = [mask_api.encode(np.asfortranarray(m)) for m in masks]
    mask_set = coco_masks.MaskSet.from_segmentations(rles)
    np.testing.assert_array_equal(mask_set.areas, mask_api.area(rles))
    dt, gt = rng.integers(0, len(masks), 300), rng.integers(0, len(masks), 300)
    crowd = rng.uniform(size=300) < 0.3
    reference = [mask_api.iou([rles[d]], [rles[g]], [bool(c)])[0, 0]
                 for d, g, c in zip(dt, gt, crowd)]
    np.testing.assert_array_equal(coco_masks.pair_iou(mask_set, mask_set, dt, gt, crowd),
                                  reference)
    np.testing.assert_array_equal(coco_masks.segmentation_iou(rles, rles, dt, gt, crowd),
                                  reference)


@pytest.mark.skipif(coco.HUGEPAGE_SWITCH is None, reason="this numpy has no huge page switch")
def test_numpy_huge_page_setting_is_restored():
    switch = coco.HUGEPAGE_SWITCH
    gt, results = random_segm_coco(1, num_images=4)
    for setting in (True, False):
        switch(setting)
        coco.coco_evaluate(gt, results, iou_type="segm")
        assert switch(True) is setting


@pytest.mark.parametrize("seed", range(4))
def test_segm_matches_pycocotools_on_random_cases(seed):
    gt, results = random_segm_coco(seed)
    reference = pycocotools_segm(gt, results)
    ours = coco.coco_evaluate_detailed(gt, results, iou_type="segm")
    np.testing.assert_allclose([ours.stats[n] for n in coco.STAT_NAMES], reference.stats,
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.precision, reference.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall, reference.eval["recall"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.scores, reference.eval["scores"])


def test_bbox_scores_equal_pycocotools():
    from test_coco_eval import random_coco, run_pycocotools
    gt, results = random_coco(3)
    reference = run_pycocotools(gt, results)
    np.testing.assert_array_equal(coco.coco_evaluate_detailed(gt, results).scores,
                                  reference.eval["scores"])


def test_per_category_threshold_is_the_best_f1_point():
    mask = np.zeros((10, 10), np.uint8)
    gt_masks = [mask.copy(), mask.copy()]
    gt_masks[0][0:4, 0:4] = 1
    gt_masks[1][5:9, 5:9] = 1
    far = mask.copy()
    far[0:3, 6:9] = 1
    gt = {"images": [{"id": 1, "height": 10, "width": 10}], "categories": [{"id": 1}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                           "segmentation": coco_masks.encode(m), "area": float(m.sum())}
                          for i, m in enumerate(gt_masks)]}
    results = [{"image_id": 1, "category_id": 1, "segmentation": m, "score": s}
               for m, s in ((gt_masks[0], 0.9), (far, 0.8), (gt_masks[1], 0.7))]
    evaluation = coco.coco_evaluate_detailed(gt, results, iou_type="segm")
    # Recall 0.5 at precision 1 (F1 2/3), then recall 1 at precision 2/3 (F1 0.8): keep 0.7.
    best = evaluation.per_category_thresholds(iou_threshold=0.5)[1]
    assert best["threshold"] == 0.7 and best["recall"] == 1.0
    assert best["precision"] == pytest.approx(2 / 3) and best["f1"] == pytest.approx(0.8)


def test_segm_bad_input_is_refused_with_a_reason():
    gt, results = random_segm_coco(0, num_images=4)
    with pytest.raises(ValueError, match="segmentation"):
        coco.coco_evaluate(gt, [{k: v for k, v in r.items() if k != "segmentation"}
                                for r in results], iou_type="segm")
    polygon = copy.deepcopy(gt)
    polygon["annotations"][0]["segmentation"] = [[0, 0, 5, 0, 5, 5]]
    with pytest.raises(ValueError, match="polygon"):
        coco.coco_evaluate(polygon, results, iou_type="segm")
    wrong = [dict(r, segmentation=np.zeros((3, 3), np.uint8)) for r in results]
    with pytest.raises(ValueError, match="same size|share its size"):
        coco.coco_evaluate(gt, wrong, iou_type="segm")
    with pytest.raises(ValueError, match="sum to"):
        coco_masks.decode({"size": [4, 4], "counts": [3, 2]})
    with pytest.raises(ValueError, match="iou_type"):
        coco.coco_evaluate(gt, results, iou_type="keypoints")
