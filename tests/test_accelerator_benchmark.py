"""benchmarks/accelerator.py runs unchanged on CPU at a tiny size (its smoke test)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import accelerator  # noqa: E402


def test_peak_table_matches_device_kinds():
    assert accelerator.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert accelerator.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert accelerator.peak_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert accelerator.peak_tflops("TPU v5 lite") == 197.0
    assert accelerator.peak_tflops("TPU v4") == 275.0
    assert accelerator.peak_tflops("cpu") is None


@pytest.mark.slow
def test_resnet50_smoke_on_cpu():
    """ResNet-50 at 32x32 (every feature map 1/7 of the 224 one per side): XLA counts about
    3 x 8.2 / 49 GFLOPs per image for a train step; the figures are consistent."""
    lines = []
    result = accelerator.run(image_size=32, batch_per_device=2, steps=2, warmup=1,
                             peak=1.0, num_devices=1, emit=lines.append)
    records = [json.loads(line) for line in lines]
    assert records[0]["devices"] == 1 and records[0]["batch"] == 2
    assert records[0]["compute_dtype"] == "bfloat16" and records[1]["compile_s"] > 0
    per_image = result["step_gflops"] / result["batch"]
    assert 0.7 * 3 * 8.2 / 49 < per_image < 1.5 * 3 * 8.2 / 49, per_image
    assert result["images_per_s"] == pytest.approx(2 / result["step_s"], rel=1e-2)
    assert result["mfu"] == pytest.approx(
        result["step_gflops"] / result["step_s"] / (1.0 * 1e3), rel=1e-2)
    assert result["imagenet_epoch_min"] == pytest.approx(
        accelerator.IMAGENET_TRAIN / result["images_per_s"] / 60, rel=1e-2)
    assert result["loss"] == result["loss"]  # finite, not NaN
