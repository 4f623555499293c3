"""Smoke test of experiments.augmentation_gallery on tiny settings."""

import os

from experiments import augmentation_gallery


def test_gallery_writes_figures_and_report(tmp_path):
    config = augmentation_gallery.get_config()
    config.photo_size = 32
    config.photo_ops = "flip,color_jitter"
    config.shapes_ops = "flip,rotate"
    config.shapes_size = 32
    config.num_keys = 2
    config.num_iou_images = 4
    result = augmentation_gallery.main(config, str(tmp_path))
    for name in ("gallery_photo.png", "gallery_shapes.png", "gallery_mixing.png", "report.md"):
        assert os.path.getsize(tmp_path / name) > 0, name
    assert result["iou_flip"] == 1.0  # a flipped box matches its flipped rectangle exactly
    assert result["iou_rotate"] >= 0.85
    assert "| rotate |" in (tmp_path / "report.md").read_text()
