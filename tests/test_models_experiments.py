"""Smoke tests of the issue-4 experiments: tiny configs, real numbers checked."""

import json
import os

import numpy as np
import pytest


@pytest.mark.slow
@pytest.mark.long  # 80 s: out of CI's hour (the counts and FLOPs have unit tests)
def test_architectures_counts_flops_and_latency(tmp_path):
    from experiments import architectures

    config = architectures.get_config()
    config.models = "lenet5,cifar_resnet20,vit_t16"
    config.image_size = 32
    config.latency_repeats = 2
    rows = {r["model"]: r for r in architectures.main(config, str(tmp_path))}
    assert rows["lenet5"]["params"] == 61_706
    assert rows["cifar_resnet20"]["params"] == 269_722
    # LeNet-5 forward MACs by hand: C1 28*28*6*25, C3 10*10*16*150, F5-F7 400*120+120*84+84*10.
    macs = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    # XLA counts 2 FLOPs per MAC, skipping taps that land on zero padding (C1 pads by 2).
    assert 0.97 * 2 * macs <= rows["lenet5"]["gflops"] * 1e9 <= 1.1 * 2 * macs
    assert all(r["latency_ms"] > 0 for r in rows.values())
    assert os.path.exists(tmp_path / "report.md") and os.path.exists(tmp_path / "latency.png")


@pytest.mark.slow
@pytest.mark.long  # 2 min: out of CI's hour
def test_gap_vs_flatten_smoke(tmp_path):
    from experiments import gap_vs_flatten

    config = gap_vs_flatten.get_config()
    config.num_epochs = 1
    config.num_train = 128
    config.num_test = 64
    config.param_sizes = (32, 64)
    config.variable_sizes = (24, 32)
    config.num_cam_images = 2
    results = gap_vs_flatten.main(config, str(tmp_path))
    # Flatten head on a 4x4x128 map (32 px) / 8x8x128 (64 px); GAP head 128*10 + 10.
    assert results["head_params"][32] == {"gap": 1_290, "flatten": 4 * 4 * 128 * 10 + 10}
    assert results["head_params"][64]["flatten"] == 8 * 8 * 128 * 10 + 10
    assert results["resnet50_head"] == {"flatten": 100_353_000, "gap": 2_049_000}
    assert results["variable_sizes"]["gap"][24].startswith("ok")
    assert results["variable_sizes"]["flatten"][24].startswith("error")
    assert 0.0 <= results["cam"]["pointing_accuracy"] <= 1.0
    for name in ("report.md", "params.png", "cam.png"):
        assert os.path.exists(tmp_path / name)


@pytest.mark.slow  # keeps the default suite under its time budget
def test_mlp_vs_cnn_smoke(tmp_path):
    from experiments import mlp_vs_cnn

    config = mlp_vs_cnn.get_config()
    config.models = ("mlp", "cnn_gap")
    config.num_epochs = 1
    config.max_train_examples = 128
    config.max_eval_examples = 64
    config.shifts = (0, 1)
    results = mlp_vs_cnn.main(config, str(tmp_path))
    assert results["mlp"]["params"] == 64 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    # SimpleCNN (32, 64) on 8x8x1: conv 320 + BN 64 + conv 18,496 + BN 128 + head 650.
    assert results["cnn_gap"]["params"] == 320 + 64 + 18_496 + 128 + 650
    for r in results.values():
        assert 0.0 <= r["permuted_accuracy"] <= 1.0
        assert set(r["accuracy_vs_shift"]) == {0, 1}
    with open(tmp_path / "results.json") as f:
        assert set(json.load(f)) == {"mlp", "cnn_gap"}
    assert os.path.exists(tmp_path / "accuracy_vs_shift.png")


def test_translate_and_permute_helpers():
    from experiments.mlp_vs_cnn import permute_pixels, translate

    x = np.arange(2 * 3 * 4 * 1).reshape(2, 3, 4, 1)
    shifted = translate(x, 1, -1)
    np.testing.assert_array_equal(shifted[:, 1:, :-1], x[:, :-1, 1:])
    assert (shifted[:, 0] == 0).all() and (shifted[:, :, -1] == 0).all()
    perm = np.random.default_rng(0).permutation(12)
    y = permute_pixels(x, perm)
    np.testing.assert_array_equal(np.sort(y.reshape(2, -1), 1), np.sort(x.reshape(2, -1), 1))
    np.testing.assert_array_equal(y.reshape(2, 12)[:, 0], x.reshape(2, 12)[:, perm[0]])


@pytest.mark.slow
@pytest.mark.long  # 50 s: out of CI's hour
def test_train_step_benchmark_smoke(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "train_step.py"
    spec = importlib.util.spec_from_file_location("train_step_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--batch", "4", "--image-size", "8", "--width", "4", "--steps", "1",
                          "--warmup", "0", "--matmul-size", "128"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["what"] == "matmul_peak" and lines[0]["peak_gflops"] > 0
    step = results["jaxvision[auto]"]  # the default: the model as models.create builds it
    assert step["images_per_s"] > 0 and step["xla_gflops_per_step"] > 0
    if "torch_eager" in results:
        assert results["ratio[jaxvision[auto]]"]["images_per_s_over_torch"] > 0


def test_conv_benchmark_smoke(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "conv.py"
    spec = importlib.util.spec_from_file_location("conv_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    records = bench.main(["--batch", "2", "--shapes", "8x16", "--repeats", "1"])
    assert {r["impl"] for r in records} >= {"xla", "fast"}
    assert all(r["median_ms"] > 0 and r["gflops"] > 0 for r in records)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["impl"] for line in lines] == [r["impl"] for r in records]
