"""Smoke test of experiments.eval_protocols on a tiny config."""

import os

from experiments import eval_protocols


def test_protocols_and_nms_effects(tmp_path):
    config = eval_protocols.get_config()
    config.num_images = 30
    config.nms_thresholds = (0.5, 0.9)
    results = eval_protocols.main(config, str(tmp_path))
    nms, raw = results["NMS 0.50"], results["no NMS"]
    assert nms["COCO AP50"] > raw["COCO AP50"] + 0.05  # duplicates are false positives
    assert nms["detections"] < raw["detections"]
    assert nms["errors@0.5"]["duplicate"] < raw["errors@0.5"]["duplicate"] / 2
    for row in results.values():
        assert row["COCO AP50"] >= row["COCO AP"] >= row["COCO AP75"] / 2
        assert abs(row["VOC all-point mAP@0.5"] - row["COCO AP50"]) < 0.05
    for name in ("report.md", "results.json", "pr_curves.png", "nms_sweep.png"):
        assert os.path.getsize(tmp_path / name) > 0
