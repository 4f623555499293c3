"""jaxvision.export: BatchNorm folding, int8 weights, and each format against the in-process
predictor on the same images."""

import functools
import os

import jax
import numpy as np
import pytest

from jaxvision import export, models

from helpers import random_variables, small_predictor


@pytest.mark.parametrize("name, options", [
    ("resnet18", dict(conv="xla")),
    ("small_cnn", dict()),
    ("cifar_resnet20", dict(conv="xla", depth=8)),
])
def test_folding_every_batch_norm_changes_logits_by_at_most_1e_5(name, options):
    model = models.create(name, num_classes=7, **options)
    x = np.asarray(jax.random.normal(jax.random.key(1), (4, 32, 32, 3)))
    variables = random_variables(model, x)
    pairs = export.batch_norm_producers(model, variables, x)
    folded = export.fold_batch_norm(model, variables, x)
    assert pairs and "batch_stats" not in folded  # every BatchNorm here follows a conv
    expected = model.apply(variables, x, train=False)
    got = jax.jit(functools.partial(export.apply_folded, model))(folded, x)
    scale = np.abs(expected).max()
    assert np.abs(got - expected).max() <= 1e-5 * max(scale, 1.0)
    bn, (conv, _) = next(iter(pairs.items()))
    flat = dict(jax.tree_util.tree_flatten_with_path(folded["params"])[0])
    names = {"/".join(k.key for k in path) for path in flat}
    assert "/".join(bn) + "/bias" in names and "/".join(bn) + "/scale" not in names
    assert "/".join(conv) + "/kernel" in names


def test_folding_leaves_a_batch_norm_without_a_linear_producer_alone():
    import flax.linen as nn

    class PreActivation(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            x = nn.BatchNorm(use_running_average=True, name="bn0")(x * 2.0)
            x = nn.Conv(4, (3, 3), name="conv")(x)
            return nn.BatchNorm(use_running_average=True, name="bn1")(x)

    model = PreActivation()
    x = np.ones((1, 8, 8, 3), np.float32)
    variables = random_variables(model, x)
    folded = export.fold_batch_norm(model, variables, x)
    assert set(folded["batch_stats"]) == {"bn0"}
    np.testing.assert_allclose(export.apply_folded(model, folded, x),
                               model.apply(variables, x), rtol=1e-5, atol=1e-5)


def test_int8_weights_are_a_quarter_of_the_bytes_and_dequantize_within_half_a_step():
    model = models.create("resnet18", num_classes=10, conv="xla")
    x = np.zeros((1, 32, 32, 3), np.float32)
    params = random_variables(model, x)["params"]
    quantized = export.quantize_int8(params)
    kernels = [leaf for leaf in jax.tree.leaves(params) if leaf.ndim >= 2]
    float_bytes = sum(np.asarray(k).nbytes for k in kernels)
    int8_bytes = sum(leaf.values.nbytes + leaf.scale.nbytes for leaf in jax.tree.leaves(
        quantized, is_leaf=lambda v: isinstance(v, export.Int8Weight))
        if isinstance(leaf, export.Int8Weight))
    assert int8_bytes / float_bytes < 0.2505  # 1 byte for 4, plus one scale per channel
    restored = export.dequantize(quantized)
    for original, back, q in zip(kernels, [r for r in jax.tree.leaves(restored) if r.ndim >= 2],
                                 [leaf for leaf in jax.tree.leaves(
                                     quantized, is_leaf=lambda v: isinstance(v, export.Int8Weight))
                                  if isinstance(leaf, export.Int8Weight)]):
        assert np.all(np.abs(np.asarray(back) - original) <= q.scale / 2 + 1e-7)


@pytest.fixture(scope="module")
def predictor():
    return small_predictor()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (256, 16, 16, 3), dtype=np.uint8)


def test_the_serving_model_equals_the_predictor(predictor, images):
    serving = export.serving_model(predictor)
    assert serving.description["batch_norms_folded"] >= 1
    np.testing.assert_allclose(np.asarray(serving(images)), predictor(images), atol=1e-5)


@pytest.mark.parametrize("fmt", [  # TensorFlow's converters take ~10 s each: slow step
    "stablehlo", pytest.param("saved_model", marks=pytest.mark.slow),
    pytest.param("tflite", marks=pytest.mark.slow), "onnx"])
def test_float_formats_equal_the_predictor_on_256_images(predictor, images, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("jax2onnx")
        pytest.importorskip("onnxruntime")
    serving = export.serving_model(predictor)
    path = export.export(serving, str(tmp_path), [fmt])[fmt]
    run = export.LOADERS[fmt](path)
    expected = predictor(images)
    got = np.concatenate([np.asarray(run(images[i:i + 64])) for i in range(0, 256, 64)])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4
    for suffix in ("metadata.json", "MODEL_CARD.md"):
        assert os.path.exists(tmp_path / f"{fmt}.{suffix}")


def test_stablehlo_runs_without_the_python_model_at_any_batch(predictor, images, tmp_path):
    path = export.export_stablehlo(export.serving_model(predictor), str(tmp_path))
    run = export.load_stablehlo(path)  # only the file: no model, no variables
    for n in (1, 3, 17):
        np.testing.assert_allclose(run(images[:n]), predictor(images[:n]), atol=1e-5)


@pytest.mark.slow
def test_saved_model_resizes_other_sizes_as_the_predictor_does(predictor, tmp_path):
    path = export.export_saved_model(export.serving_model(predictor), str(tmp_path))
    assert path.endswith(os.path.join("saved_model", "1"))  # TF Serving's layout
    big = np.random.default_rng(1).integers(0, 256, (5, 40, 28, 3), dtype=np.uint8)
    np.testing.assert_allclose(export.load_saved_model(path)(big), predictor(big), atol=1e-4)


def test_bad_export_requests_are_refused(predictor, tmp_path, capsys):
    from jaxvision.export.__main__ import main

    assert main(["--workdir", str(tmp_path / "missing")]) == 2
    assert "no workdir" in capsys.readouterr().err
    serving = export.serving_model(predictor)
    with pytest.raises(ValueError, match="unknown export format"):
        export.export(serving, str(tmp_path), ["onnx_fp8"])
    with pytest.raises(ValueError, match="representative"):
        export.export(serving, str(tmp_path), ["tflite_int8"])


@pytest.mark.slow
def test_every_format_of_a_trained_digits_model(tfds_dir, tmp_path):
    """The quickstart model, briefly trained on digits: float formats equal the predictor to
    1e-4 on 256 test images; int8 TFLite and ONNX agree on >= 99% of top-1 answers at <= 30% of
    the float file's size (calibrated on 256 training images)."""
    pytest.importorskip("jax2onnx")
    pytest.importorskip("onnxruntime")
    from experiments import quickstart
    from jaxvision import inference, train
    from jaxvision.data.builders import digits_arrays

    config = quickstart.get_config()
    config.data_dir, config.num_epochs, config.parallel = tfds_dir, 4, "none"
    workdir = str(tmp_path / "run")
    train.train_and_evaluate(config, workdir)
    predictor = inference.load(workdir)
    images = digits_arrays("test")[0][:256]
    calibration = digits_arrays("train")[0][:256]
    paths = export.export_workdir(workdir, str(tmp_path / "export"),
                                  representative=calibration)
    expected = predictor(images)
    assert (expected.argmax(1) == digits_arrays("test")[1][:256]).mean() > 0.9
    for fmt, path in paths.items():
        got = np.asarray(export.LOADERS[fmt](path)(images))
        if fmt.endswith("int8"):
            agreement = (got.argmax(1) == expected.argmax(1)).mean()
            size = export.artifact_size(path) / export.artifact_size(paths[fmt[:-5]])
            assert agreement >= 0.99 and size <= 0.30, (fmt, agreement, size)
        else:
            assert np.abs(got - expected).max() <= 1e-4, fmt
    card = (tmp_path / "export" / "onnx.MODEL_CARD.md").read_text()
    assert "digits" in card and "eval_accuracy" in card
    # The command line: int8 calibrated on the run's own training images.
    from jaxvision.export.__main__ import main

    assert main(["--workdir", workdir, "--format", "tflite_int8", "--out", str(tmp_path / "cli"),
                 "--calibration", "64"]) == 0
    got = export.load_tflite(str(tmp_path / "cli" / "model_int8.tflite"))(images)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.97
