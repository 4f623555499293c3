"""Smoke test of experiments.iou_losses on a tiny config (two losses, one start)."""

import os

from experiments import iou_losses


def test_iou_loss_stalls_and_diou_converges(tmp_path):
    config = iou_losses.get_config()
    config.steps = 200
    config.losses = ("iou", "diou")
    config.starts = {"disjoint": (0.0, 0.0, 3.0, 2.0)}
    results = iou_losses.main(config, str(tmp_path))
    assert results["iou/disjoint"]["initial_grad_norm"] == 0.0
    assert results["iou/disjoint"]["final_iou"] == 0.0
    assert results["diou/disjoint"]["final_iou"] > 0.9
    for name in ("report.md", "results.json", "iou_curves.png", "trajectories.png"):
        assert os.path.getsize(tmp_path / name) > 0
