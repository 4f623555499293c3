"""UNet through the one engine (``train_and_evaluate``) on embedded ``shapes`` masks: a short
run with a floor in the default suite, the full run to foreground Dice >= 0.90 (slow), the
tiny-object variant, bad masks stopped by the engine, and the experiment and notebook (slow)."""

import json

import numpy as np
import pytest

from experiments import unet_segmentation as E


def _config(**overrides):
    config = E.get_config()
    config.num_train, config.num_test = 256, 100
    config.model_kwargs.depth, config.model_kwargs.base_width = 2, 8
    config.num_epochs = 1
    config.log_every_steps = 4
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def test_tiny_shapes_have_under_two_percent_foreground():
    data = E.shapes_arrays("tiny64", "test", 200, binary=True)
    per_image = data["mask"].reshape(200, -1).mean(1)
    assert 0 < per_image.min() and per_image.max() < 0.02
    assert set(np.unique(data["mask"])) == {0, 1}
    print("tiny64 foreground fraction:", per_image.mean())


@pytest.mark.slow
def test_short_unet_run_learns_the_shapes(tmp_path):
    """One epoch of a depth-2, width-8 UNet on 256 images (8 steps), scored on 100 held-out
    images: foreground Dice above 0.45 (the objects cover 22% of the pixels, so
    predicting "object" everywhere gives 0.36, and background everywhere 0)."""
    summary = E.run(_config(), str(tmp_path))
    print("short UNet run:", {k: v for k, v in summary.items() if k.startswith("eval_")})
    assert summary["eval_foreground_dice"] > 0.45
    assert 0 < summary["eval_boundary_f"] <= 1
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert any("foreground_dice" in r for r in records if r.get("split") == "eval")


@pytest.mark.slow
def test_the_engine_stops_on_bad_masks(tmp_path):
    """A source that claims 3 classes over masks holding ids 0..5: the host check before the
    first step names the ids (on the device they would silently one-hot to nothing)."""
    config = _config()
    data = E.shapes_arrays("seg64", "train", 64)
    source = E.from_arrays(data["image"], mask=data["mask"], num_classes=3)
    datasets = E.make_datasets(source, source, batch_size=32, eval_batch_size=32, seed=0)
    config.num_classes = 3
    with pytest.raises(ValueError, match=r"class ids \[.*\] outside \[0, 3\)"):
        E.train.train_and_evaluate(config, str(tmp_path / "ids"), datasets=datasets)


@pytest.mark.slow
@pytest.mark.long
def test_unet_reaches_foreground_dice_090_on_held_out_shapes(tmp_path):
    """The experiment's default padded UNet (depth 3, width 16, BatchNorm) on 640 seg64 images,
    3 epochs (60 steps of 32): foreground Dice >= 0.90 on 200 held-out images. Measured
    2026-12-01: 0.920 after a single epoch of 1000 images (31 steps; 8.5 min wall on 2 CPU
    cores at load 10, mostly compilation)."""
    config = E.get_config()
    summary = E.run(config, str(tmp_path))
    print("UNet seg64:", {k: v for k, v in summary.items() if k.startswith("eval_")})
    assert summary["eval_foreground_dice"] >= 0.90


@pytest.mark.slow
@pytest.mark.long
def test_unet_segmentation_experiment_quick(tmp_path):
    config = E.get_config()
    config.quick = True
    results = E.main(config, str(tmp_path))
    assert set(results) >= {"skips", "losses", "valid"}
    assert (tmp_path / "report.md").exists()
    assert sorted(p.name for p in tmp_path.glob("overlays_*.png")) == [
        "overlays_losses_tiny64.png", "overlays_skips.png", "overlays_valid.png"]
    assert sorted(p.name for p in tmp_path.glob("*.png") if not p.name.startswith("overlays_")) == [
        "curves_losses_tiny64.png", "curves_skips.png", "seeds_losses_tiny64.png",
        "seeds_skips.png"]
    assert len(results["skips"]["unet_noskip"]["boundary_f"]) == config.seeds == 1
