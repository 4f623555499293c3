"""COCO box evaluation speed: jaxvision.metrics.coco vs pycocotools, same detections, one run.

    PYTHONPATH=. python benchmarks/coco_eval.py [--images 5000] [--categories 80] [--repeats 3]

Prints one JSON object per line: the data-set size, each implementation's timings (median of
``--repeats``), the speed-up, and the largest difference among the 12 summary numbers (which
must be below 1e-9). pycocotools' time includes ``loadRes`` (its results index) plus
``evaluate``, ``accumulate`` and ``summarize``; jaxvision's includes reading the same dicts.
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

from jaxvision.metrics import coco


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


def run_pycocotools(gt, results):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        start = time.perf_counter()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        elapsed = time.perf_counter() - start
    return elapsed, np.asarray(evaluator.stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--categories", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1)
    args = parser.parse_args()
    gt, results = synthetic_coco(num_images=args.images, num_categories=args.categories)
    print(json.dumps({"images": args.images, "categories": args.categories,
                      "ground_truth": len(gt["annotations"]), "detections": len(results)}))
    ours_times, ours_stats = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours_stats = coco.coco_evaluate(gt, results)
        ours_times.append(time.perf_counter() - start)
    ours = statistics.median(ours_times)
    print(json.dumps({"impl": "jaxvision", "median_s": round(ours, 4),
                      "runs_s": [round(t, 4) for t in ours_times]}))
    try:
        import pycocotools  # noqa: F401
    except ImportError:
        print(json.dumps({"impl": "pycocotools", "skipped": "pycocotools is not installed"}))
        return
    ref_times, ref_stats = [], None
    for _ in range(args.reference_repeats):
        elapsed, ref_stats = run_pycocotools(gt, results)
        ref_times.append(elapsed)
    ref = statistics.median(ref_times)
    print(json.dumps({"impl": "pycocotools", "median_s": round(ref, 4),
                      "runs_s": [round(t, 4) for t in ref_times]}))
    difference = float(np.max(np.abs(np.asarray(list(ours_stats.values())) - ref_stats)))
    print(json.dumps({"speedup": round(ref / ours, 2), "max_abs_stat_difference": difference,
                      "AP": ours_stats["AP"], "AP_pycocotools": float(ref_stats[0])}))


if __name__ == "__main__":
    main()
