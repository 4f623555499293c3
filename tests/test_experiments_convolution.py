"""Smoke tests of the convolution, receptive-field and pooling experiments (tiny settings)."""

import os

import pytest


def test_convolution_basics_smoke(tmp_path):
    from experiments import convolution_basics

    config = convolution_basics.get_config()
    config.crop = 48
    config.gabor_orientations = 2
    results = convolution_basics.main(config, str(tmp_path))
    assert results["worked_152"] == 152.0
    assert results["colour_conv"] == pytest.approx(62.0)
    assert (results["bottleneck_params"], results["group32_params"]) == (69_632, 18_432)
    assert results["reference_vs_lax_max_diff"] < 1e-4
    for name in ("report.md", "filters.png", "gabor.png", "padding.png", "stride_dilation.png"):
        assert os.path.getsize(tmp_path / name) > 0
    assert "62.0" in (tmp_path / "report.md").read_text()
