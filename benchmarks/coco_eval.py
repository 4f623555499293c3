"""COCO evaluation speed: jaxvision.metrics.coco vs pycocotools and faster-coco-eval, same
ground truth and detections, one run, for boxes ('bbox') and instance masks ('segm').

    PYTHONPATH=. python benchmarks/coco_eval.py [--iou-types bbox segm] [--images 5000]
        [--categories 80] [--repeats 3] [--reference-repeats 1]

Prints one JSON object per line: the data-set size, each implementation's timings (median of
the repeats), the speed-ups, and the largest difference among the 12 summary numbers (which
must be below 1e-9). The references' times include ``loadRes`` (their results index) plus
``evaluate``, ``accumulate`` and ``summarize``; jaxvision's includes reading the same dicts.
For 'segm', every box becomes the ellipse inscribed in it, as a compressed RLE.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import statistics
import time

import numpy as np

from jaxvision.metrics import coco, coco_masks


def synthetic_coco(*, num_images: int, num_categories: int, seed: int = 0):
    """COCO-like ground truth (~7 objects per image, 5% crowd) and noisy detections."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(num_images)]
    categories = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(num_categories)]
    annotations, results = [], []
    for img in images:
        count = rng.poisson(7)
        sizes = np.exp(rng.uniform(np.log(6), np.log(250), count))
        aspect = np.exp(np.clip(rng.normal(0, 0.4, count), -0.6, 0.6))
        widths, heights = sizes * np.sqrt(aspect), sizes / np.sqrt(aspect)
        xs, ys = rng.uniform(0, 640 - widths), rng.uniform(0, 480 - heights)
        cats = rng.integers(1, num_categories + 1, count)
        crowd = rng.uniform(size=count) < 0.05
        for x, y, w, h, c, cr in zip(xs, ys, widths, heights, cats, crowd):
            annotations.append({"id": len(annotations) + 1, "image_id": img["id"],
                                "category_id": int(c), "bbox": [x, y, w, h],
                                "area": w * h * 0.8, "iscrowd": int(cr)})
            for _ in range(rng.integers(0, 3)):
                jx, jy, jw, jh = rng.normal(0, 0.1, 4) * [w, h, w, h]
                results.append({"image_id": img["id"],
                                "category_id": int(c) if rng.uniform() < 0.9 else
                                int(rng.integers(1, num_categories + 1)),
                                "bbox": [x + jx, y + jy, max(w + jw, 1.0), max(h + jh, 1.0)],
                                "score": round(float(rng.uniform()), 3)})
        for _ in range(rng.poisson(3)):
            w, h = rng.uniform(5, 200, 2)
            results.append({"image_id": img["id"], "category_id": int(rng.integers(1, num_categories + 1)),
                            "bbox": [float(rng.uniform(0, 500)), float(rng.uniform(0, 400)), w, h],
                            "score": round(float(rng.uniform()), 3)})
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, results


def ellipse_rle(box, height: int, width: int) -> dict:
    """The compressed RLE of the ellipse inscribed in an xywh box, built column by column."""
    x, y, w, h = box
    cols = np.arange(max(int(np.floor(x)), 0), min(int(np.ceil(x + w)), width))
    half = (h / 2) * np.sqrt(np.clip(1 - ((cols + 0.5 - x - w / 2) / (w / 2)) ** 2, 0, 1))
    top = np.clip(np.round(y + h / 2 - half), 0, height).astype(np.int64)
    bottom = np.clip(np.round(y + h / 2 + half), 0, height).astype(np.int64)
    cols, top, bottom = cols[bottom > top], top[bottom > top], bottom[bottom > top]
    starts, ends = cols * height + top, cols * height + bottom
    # Merge intervals that touch across a column boundary; no zero-length runs in the RLE.
    first = np.concatenate([[True], starts[1:] != ends[:-1]])
    last = np.concatenate([starts[1:] != ends[:-1], [True]])
    bounds = np.concatenate([[0], np.stack([starts[first], ends[last]], 1).ravel()])
    if len(bounds) == 1 or bounds[-1] < height * width:
        bounds = np.concatenate([bounds, [height * width]])
    return {"size": [height, width], "counts": coco_masks.encode_counts(np.diff(bounds))}


def to_segm(gt, results):
    """The same data set with every box replaced by its inscribed ellipse's RLE."""
    sizes = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    annotations = [dict(a, segmentation=ellipse_rle(a["bbox"], *sizes[a["image_id"]]))
                   for a in gt["annotations"]]
    results = [dict(r, segmentation=ellipse_rle(r["bbox"], *sizes[r["image_id"]]))
               for r in results]
    return dict(gt, annotations=annotations), results


def run_reference(name: str, iou_type: str, gt, results):
    """(seconds, 12 stats) of pycocotools or faster-coco-eval on deep copies of the dicts."""
    if name == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Evaluator
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Evaluator
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        results = copy.deepcopy(results)
        start = time.perf_counter()
        coco_dt = coco_gt.loadRes(results)
        evaluator = Evaluator(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        elapsed = time.perf_counter() - start
    return elapsed, np.asarray(evaluator.stats[:12])


def median_time(run, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        elapsed, value = run()
        times.append(elapsed)
    return statistics.median(times), times, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iou-types", nargs="+", default=["bbox", "segm"],
                        choices=["bbox", "segm"])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--categories", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1)
    args = parser.parse_args()
    box_gt, box_results = synthetic_coco(num_images=args.images, num_categories=args.categories)
    for iou_type in args.iou_types:
        gt, results = (box_gt, box_results) if iou_type == "bbox" else to_segm(box_gt, box_results)
        print(json.dumps({"iou_type": iou_type, "images": args.images,
                          "categories": args.categories, "ground_truth": len(gt["annotations"]),
                          "detections": len(results)}))

        def ours():
            start = time.perf_counter()
            stats = coco.coco_evaluate(gt, results, iou_type=iou_type)
            return time.perf_counter() - start, np.asarray([stats[n] for n in coco.STAT_NAMES])

        ours_s, ours_times, ours_stats = median_time(ours, args.repeats)
        print(json.dumps({"iou_type": iou_type, "impl": "jaxvision", "median_s": round(ours_s, 4),
                          "runs_s": [round(t, 4) for t in ours_times], "AP": ours_stats[0]}))
        for name, module in (("pycocotools", "pycocotools"),
                             ("faster-coco-eval", "faster_coco_eval")):
            try:
                __import__(module)
            except ImportError:
                print(json.dumps({"iou_type": iou_type, "impl": name,
                                  "skipped": f"{module} is not installed"}))
                continue
            ref_s, ref_times, ref_stats = median_time(
                lambda: run_reference(name, iou_type, gt, results), args.reference_repeats)
            print(json.dumps({"iou_type": iou_type, "impl": name, "median_s": round(ref_s, 4),
                              "runs_s": [round(t, 4) for t in ref_times],
                              "speedup_of_jaxvision": round(ref_s / ours_s, 2),
                              "max_abs_stat_difference": float(np.max(np.abs(ours_stats
                                                                              - ref_stats)))}))


if __name__ == "__main__":
    main()
