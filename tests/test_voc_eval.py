"""VOC AP, the three interpolations, curves, F1 and the
padded-array adapter."""

import numpy as np
import pytest

from jaxvision.metrics import detection as D


def _curve(ranked, num_gt):
    tp = np.array([c == "T" for c in ranked])
    return D.precision_recall_from_ranked(tp, num_ground_truth=num_gt)


@pytest.mark.parametrize("ranked,num_gt,all_point,eleven,coco101", [
    ("TTF", 2, 1.0, 1.0, 1.0),
    ("TFTFFTF", 4, 13 / 24, 6 / 11, 0.5462046204620462),
    ("FT", 1, 0.5, 0.5, 0.5),
    ("TTFF", 3, 0.6666666666666666, 7 / 11, 67 / 101),
])
def test_notes_d9_table(ranked, num_gt, all_point, eleven, coco101):
    recall, precision = _curve(ranked, num_gt)
    np.testing.assert_allclose(D.ap_all_point(recall, precision), all_point, rtol=1e-12)
    np.testing.assert_allclose(D.ap_eleven_point(recall, precision), eleven, rtol=1e-12)
    np.testing.assert_allclose(D.ap_coco101(recall, precision), coco101, rtol=1e-12)
    for name, value in zip(D.INTERPOLATIONS, (all_point, eleven, coco101)):
        np.testing.assert_allclose(D.average_precision(recall, precision, interpolation=name),
                                   value, rtol=1e-12)


def test_interpolated_precision_row2_and_t10_with_float_pitfall():
    _, precision = _curve("TFTFFTF", 4)
    np.testing.assert_allclose(D.interpolated_precision(precision),
                               [1, 2 / 3, 2 / 3, .5, .5, .5, 3 / 7], rtol=1e-12)
    recall = [0.1, 0.2, 0.3, 0.4, 0.5]
    precision = [0.95, 0.9, 0.93, 0.85, 0.8]
    np.testing.assert_allclose(D.interpolated_precision(precision), [.95, .93, .93, .85, .8])
    np.testing.assert_allclose(D.ap_all_point(recall, precision), 0.446, rtol=1e-12)
    np.testing.assert_allclose(D.ap_eleven_point(recall, precision), 0.4918181818181818,
                               rtol=1e-12)
    np.testing.assert_allclose(D.ap_coco101(recall, precision), 0.45099009900990095, rtol=1e-12)
    # np.arange(0, 1.1, 0.1) has 0.30000000000000004 > 0.3: the 0.3 point is lost.
    np.testing.assert_allclose(D.ap_eleven_point(recall, precision, legacy_arange=True),
                               0.48454545454545456, rtol=1e-12)
    with pytest.raises(ValueError, match="interpolation"):
        D.average_precision(recall, precision, interpolation="voc")


def test_peers_toy_list():
    recall, precision = _curve("TFTTFT", 5)
    np.testing.assert_allclose(D.ap_all_point(recall, precision), 0.6333333333333333, rtol=1e-12)
    np.testing.assert_allclose(D.ap_eleven_point(recall, precision, legacy_arange=True),
                               0.659090909090909, rtol=1e-12)
    np.testing.assert_allclose(D.ap_eleven_point(recall, precision), 2 / 3, rtol=1e-12)
    np.testing.assert_allclose(D.ap_coco101(recall, precision),
                               (21 + 40 * 0.75 + 20 * 2 / 3) / 101, rtol=1e-12)


def _gt(boxes, classes, image_ids=None, difficult=None):
    image_ids = image_ids or [1] * len(boxes)
    difficult = difficult or [0] * len(boxes)
    anns = [{"id": i + 1, "image_id": im, "category_id": c, "bbox": b, "area": b[2] * b[3],
             "iscrowd": 0, "difficult": d}
            for i, (b, c, im, d) in enumerate(zip(boxes, classes, image_ids, difficult))]
    return {"images": [{"id": i} for i in sorted(set(image_ids))], "annotations": anns,
            "categories": [{"id": c} for c in sorted(set(classes))]}


def _dets(boxes, scores, classes, image=1):
    return [{"image_id": image, "category_id": c, "bbox": b, "score": s}
            for b, s, c in zip(boxes, scores, classes)]


def test_notes_d10_greedy_matching_duplicates_and_class_mismatch():
    gt = _gt([[0, 0, 10, 10], [20, 0, 10, 10]], [1, 1])  # xywh of [0,0,10,10], [20,0,30,10]
    dets = _dets([[0, 0, 10, 8], [20, 0, 10, 8], [0, 0, 10, 3]], [0.9, 0.8, 0.3], [1, 1, 1])
    result = D.voc_evaluate(gt, dets)
    recall, precision = result["curves"][1]
    np.testing.assert_allclose(recall, [0.5, 1, 1])
    np.testing.assert_allclose(precision, [1, 1, 2 / 3])
    assert result["mAP"] == 1.0
    assert D.best_f1(precision[-1:], recall[-1:], [0.3])[0] == pytest.approx(0.8)
    dup = _dets([[0, 0, 10, 8], [0, 0, 10, 9]], [0.9, 0.8], [1, 1])
    recall, precision = D.voc_evaluate(gt, dup)["curves"][1]
    np.testing.assert_allclose(precision, [1, 0.5])  # second hit on car1 is a false positive
    gt2 = _gt([[0, 0, 10, 10], [50, 50, 10, 10]], [1, 2])
    wrong = _dets([[0, 0, 10, 10]], [0.9], [2])
    result = D.voc_evaluate(gt2, wrong)
    assert result["per_class_ap"] == {1: 0.0, 2: 0.0}


def _py_faster_rcnn_voc_eval(gt_by_image, dets, ovthresh, use_07_metric):
    """py-faster-rcnn voc_eval.py (one class, +1 pixel convention), transcribed."""
    class_recs, npos = {}, 0
    for image, (bbox, difficult) in gt_by_image.items():
        npos += int(np.sum(~difficult))
        class_recs[image] = {"bbox": bbox, "difficult": difficult, "det": [False] * len(bbox)}
    image_ids = [d[0] for d in dets]
    confidence = np.array([d[1] for d in dets])
    BB = np.array([d[2] for d in dets])
    sorted_ind = np.argsort(-confidence)
    BB = BB[sorted_ind, :]
    image_ids = [image_ids[x] for x in sorted_ind]
    nd = len(image_ids)
    tp, fp = np.zeros(nd), np.zeros(nd)
    for d in range(nd):
        R = class_recs.get(image_ids[d], {"bbox": np.zeros((0, 4)), "difficult": np.zeros(0, bool),
                                           "det": []})
        bb = BB[d, :].astype(float)
        ovmax = -np.inf
        BBGT = R["bbox"].astype(float)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0]); iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2]); iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + 1., 0.); ih = np.maximum(iymax - iymin + 1., 0.)
            inters = iw * ih
            uni = ((bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) +
                   (BBGT[:, 2] - BBGT[:, 0] + 1.) * (BBGT[:, 3] - BBGT[:, 1] + 1.) - inters)
            overlaps = inters / uni
            ovmax = np.max(overlaps); jmax = np.argmax(overlaps)
        if ovmax > ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.; R["det"][jmax] = 1
                else:
                    fp[d] = 1.
        else:
            fp[d] = 1.
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    if use_07_metric:
        ap = 0.
        for t in np.arange(0., 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.
    else:
        mrec = np.concatenate(([0.], rec, [1.])); mpre = np.concatenate(([0.], prec, [0.]))
        for i in range(mpre.size - 1, 0, -1):
            mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return rec, prec, ap


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_py_faster_rcnn_reference(seed):
    rng = np.random.default_rng(seed)
    gt_by_image, dets, gt_boxes, gt_images, gt_difficult = {}, [], [], [], []
    for image in range(12):
        n = rng.integers(0, 5)
        xy = rng.integers(0, 200, (n, 2)).astype(float)
        boxes = np.concatenate([xy, xy + rng.integers(10, 80, (n, 2))], 1)
        difficult = rng.uniform(size=n) < 0.2
        if n:
            gt_by_image[image] = (boxes, difficult)
        for b, d in zip(boxes, difficult):
            gt_boxes.append(b); gt_images.append(image); gt_difficult.append(bool(d))
            for _ in range(rng.integers(0, 3)):
                dets.append((image, float(rng.uniform()), b + rng.normal(0, 6, 4)))
        for _ in range(rng.integers(0, 3)):
            xy = rng.integers(0, 200, 2).astype(float)
            dets.append((image, float(rng.uniform()), np.r_[xy, xy + rng.integers(10, 80, 2)]))
    for use_07 in (False, True):
        rec, prec, ap = _py_faster_rcnn_voc_eval(gt_by_image, dets, 0.5, use_07)
        tp, fp, _ = D.match_voc_class(
            np.array([d[0] for d in dets]), np.array([d[2] for d in dets]),
            np.array([d[1] for d in dets]), np.array(gt_images), np.array(gt_boxes),
            np.array(gt_difficult), iou_threshold=0.5, plus_one=True)
        recall, precision = D.precision_recall_from_ranked(
            tp, num_ground_truth=int((~np.array(gt_difficult)).sum()), false_positive=fp)
        np.testing.assert_allclose(recall, rec, rtol=1e-12)
        np.testing.assert_allclose(precision, prec, rtol=1e-12)
        ours = (D.ap_eleven_point(recall, precision, legacy_arange=True) if use_07
                else D.ap_all_point(recall, precision))
        np.testing.assert_allclose(ours, ap, rtol=1e-12)
    assert 0.05 < ap < 0.95


def test_pr_curve_f1_and_plot(tmp_path):
    recall, precision, thresholds = D.precision_recall_curve(
        [0.3, 0.9, 0.8], [False, True, True], num_ground_truth=2)
    np.testing.assert_allclose(recall, [0.5, 1, 1])
    np.testing.assert_allclose(precision, [1, 1, 2 / 3])
    np.testing.assert_allclose(thresholds, [0.9, 0.8, 0.3])
    np.testing.assert_allclose(D.f1_scores(precision, recall), [2 / 3, 1.0, 0.8])
    assert D.best_f1(precision, recall, thresholds) == (1.0, 0.8)
    assert D.f1_scores(0.0, 0.0) == 0.0
    path = tmp_path / "pr.png"
    D.plot_precision_recall({"a": (recall, precision)}, path=str(path))
    assert path.stat().st_size > 1000


def test_ar_one_box_notes_d11_and_padded_adapter():
    gt_boxes = np.zeros((2, 3, 4), np.float32)
    gt_boxes[0, 0] = [0, 0, 100, 100]
    gt_valid = np.array([[True, False, False], [False, False, False]])
    det_boxes = np.zeros((2, 2, 4), np.float32)
    det_boxes[0, 0] = [0, 0, 100, 72]  # IoU 0.72
    det_valid = np.array([[True, False], [False, False]])
    stats = D.coco_evaluate_padded(num_classes=1, gt_boxes=gt_boxes, gt_classes=np.zeros((2, 3)),
                                   gt_valid=gt_valid, det_boxes=det_boxes,
                                   det_scores=np.ones((2, 2)), det_classes=np.zeros((2, 2)),
                                   det_valid=det_valid)
    assert stats["AR100"] == pytest.approx(0.5, abs=1e-12)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == 0.0


def _pycocotools_stats(gt, results):
    pytest.importorskip("pycocotools")
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def test_padded_adapter_matches_pycocotools():
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 100, (4, 6, 2))
    gt = np.concatenate([xy, xy + rng.uniform(5, 60, (4, 6, 2))], -1)
    det = np.concatenate([gt, gt[:, :2]], 1) + rng.normal(0, 3, (4, 8, 4))
    kwargs = dict(gt_boxes=gt, gt_classes=rng.integers(0, 3, (4, 6)),
                  gt_valid=rng.uniform(size=(4, 6)) < 0.8, det_boxes=det,
                  det_scores=rng.uniform(size=(4, 8)), det_classes=rng.integers(0, 3, (4, 8)),
                  det_valid=rng.uniform(size=(4, 8)) < 0.9)
    ground_truth, results = D.padded_to_coco(num_classes=3, **kwargs)
    stats = D.coco_evaluate_padded(num_classes=3, **kwargs)
    np.testing.assert_allclose(list(stats.values()), _pycocotools_stats(ground_truth, results),
                               atol=1e-9, rtol=0)
    via_dicts = D.coco_evaluate_detailed(ground_truth, results)
    direct = D.coco_evaluate_padded(num_classes=3, detailed=True, **kwargs)
    np.testing.assert_array_equal(direct.precision, via_dicts.precision)
    np.testing.assert_array_equal(direct.recall, via_dicts.recall)
    yxyx = D.coco_evaluate_padded(num_classes=3, box_format="yxyx", **{
        **kwargs, "gt_boxes": gt[..., [1, 0, 3, 2]], "det_boxes": det[..., [1, 0, 3, 2]]})
    np.testing.assert_allclose(list(yxyx.values()), list(stats.values()), atol=1e-12)


def test_error_breakdown_kinds():
    gt = _gt([[0, 0, 10, 10], [20, 0, 10, 10], [50, 50, 10, 10], [80, 80, 10, 10]], [1, 1, 2, 1])
    dets = _dets([[0, 0, 10, 10],      # TP (car 1)
                  [0, 0, 10, 9],       # duplicate of car 1
                  [20, 0, 10, 3],      # localization: IoU 0.3 with car 2
                  [50, 50, 10, 10],    # classification: class 1 on the class-2 box
                  [200, 200, 5, 5]],   # background
                 [0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 1, 1, 1])
    counts = D.error_breakdown(gt, dets)
    assert counts == {"true_positive": 1, "duplicate": 1, "localization": 1,
                      "classification": 1, "background": 1, "missed": 3}
