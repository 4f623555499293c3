"""Smoke test of experiments.augmentation_gallery on tiny settings."""

import os

import pytest

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


@pytest.mark.slow  # compiles mixup and cutmix, renders a shapes image: over 3 s on 2 cores
def test_mixing_panels_mix_the_photo_with_the_other_image():
    """Every mixup and cutmix panel mixes two different images: the photo with the shapes
    image (a random permutation of two paired the photo with itself in most columns)."""
    import numpy as np

    config = augmentation_gallery.get_config()
    config.photo_size, config.num_keys = 32, 4
    photo = augmentation_gallery._photo(config.photo, config.photo_size)
    panels = augmentation_gallery.mixing_panels(config, photo)
    source, other = (np.asarray(image) for image in panels["sources"])
    assert not np.allclose(source, other)
    for image, lam, label in panels["mixup"]:
        assert label == 1 and 0 < lam < 1
        np.testing.assert_allclose(image, lam * source + (1 - lam) * other, atol=1e-6)
    for image, lam, label in panels["cutmix"]:
        pasted = np.all(image == other, axis=-1) & ~np.all(image == source, axis=-1)
        assert label == 1 and np.all((image == source) | (image == other))
        np.testing.assert_allclose(pasted.mean(), 1 - lam, atol=0.05)  # equal pixels count as kept
        assert pasted.any()
