"""Smoke tests of the convolution, receptive-field and pooling experiments (tiny settings)."""

import os

import numpy as np
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


def test_receptive_fields_smoke(tmp_path):
    from experiments import receptive_fields

    config = receptive_fields.get_config()
    config.models = "small_cnn,mlp,not_a_model"
    config.image_size = 16
    config.erf_batch = 2
    config.depths = "2,3"
    results = receptive_fields.main(config, str(tmp_path))
    assert results["course_stride2"] == [3, 5, 9]
    small = results["models"]["small_cnn"]
    assert small["theoretical"]["stage0"] == 3 and small["theoretical"]["stage1"] == 8
    assert small["theoretical"]["output"] is None          # global
    assert results["models"]["mlp"]["theoretical"]["output"] is None
    assert results["depths"][3]["theoretical"] == 7
    report = (tmp_path / "report.md").read_text()
    assert "not_a_model`: not registered" in report
    for name in ("erf_models.png", "erf_depth.png"):
        assert os.path.getsize(tmp_path / name) > 0


@pytest.mark.slow
@pytest.mark.long  # 55 s: out of CI's hour (the pooling ops have their own tests)
def test_pooling_experiment_smoke(tmp_path):
    from experiments import pooling

    config = pooling.get_config()
    config.photo_size = 32
    config.variants = "mixed,stochastic"
    config.epochs = 1
    config.batch_size = 64
    config.seeds = "0"
    config.width = 4
    results = pooling.main(config, str(tmp_path))
    assert results["course"]["gap"] == pytest.approx(3.58125)
    np.testing.assert_allclose(results["course"]["max"], [[8.2, 7.4], [5.1, 9.3]], rtol=1e-6)
    assert set(results["training"]) == {"mixed", "stochastic"}
    for run in results["training"].values():
        assert 0.0 <= run["test_accuracy"] <= 1.0 and 0.0 <= run["shifted_accuracy"] <= 1.0
    assert results["training"]["mixed"]["params"] == results["training"]["stochastic"]["params"] + 2
    for name in ("report.md", "pooling_photo.png", "pooling_stats.png"):
        assert os.path.getsize(tmp_path / name) > 0
    config.variants = "median"
    with pytest.raises(ValueError, match="unknown pooling variants"):
        pooling.training_section(config, str(tmp_path))
