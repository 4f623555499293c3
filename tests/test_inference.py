"""The inference contract (issue 11, item 4): InputSpec, one preprocess, a predictor restored
without its optimizer, and ``python -m jaxvision.predict``.

One tiny digits run is trained per module (one epoch, normalized inputs so that the spec is not
the identity); a segmentation workdir is written by hand (no training) for the dense path.
"""

import functools
import json
import os
import shutil
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from helpers import digits_config

from jaxvision import augment, inference, models, predict, tasks, train
from jaxvision.data import build_datasets
from jaxvision.train.checkpoint import Checkpointer
from jaxvision.train.loop import build_task
from jaxvision.train.workdir import config_as_json

MEAN, STD = (0.3,), (0.4,)


@pytest.fixture(scope="module")
def run(tfds_dir, tmp_path_factory):
    # Warmup: load_state must rebuild an optimizer whose schedule checks its length.
    config = digits_config(tfds_dir, num_epochs=1, **{"augment.ops": ("normalize",),
                                                      "augment.normalize_mean": MEAN,
                                                      "augment.normalize_std": STD,
                                                      "optimizer.warmup_steps": 5})
    config.tensorboard = False
    workdir = str(tmp_path_factory.mktemp("inference_run"))
    train.train_and_evaluate(config, workdir)
    return config, workdir


@pytest.fixture(scope="module")
def predictor(run):
    return inference.load(run[1])


@pytest.fixture(scope="module")
def reference(run):
    """One eval batch through the eval step of the engine (with predictions)."""
    config, workdir = run
    state = train.load_state(workdir, config)
    batch = next(iter(build_datasets(config).eval))
    options = train.StepOptions(learning_rate_fn=lambda step: 0.0, task=build_task(config, 10))
    step = jax.jit(train.make_eval_step(options, augment.build_eval(config.augment),
                                        with_predictions=True))
    _, probabilities = step(state, batch)
    valid = np.asarray(batch["valid"], bool)
    return np.asarray(batch["image"])[valid], np.asarray(probabilities)[valid]


def test_input_spec_saved_with_the_run(run):
    config, workdir = run
    spec = inference.InputSpec.load(os.path.join(workdir, inference.INPUT_SPEC_FILE))
    assert spec == inference.InputSpec(image_size=(8, 8), channels=1, mean=MEAN, std=STD)
    assert spec.value_range == (0.0, 1.0)
    assert (spec.resize_method, spec.resize_antialias, spec.resize_round) == ("bilinear", True,
                                                                               True)
    assert spec == inference.InputSpec.from_config(config, (8, 8, 1))
    with open(os.path.join(workdir, inference.INPUT_SPEC_FILE)) as f:
        assert inference.InputSpec.from_json(json.load(f)) == spec
    with open(os.path.join(workdir, inference.CLASS_NAMES_FILE)) as f:
        assert json.load(f) == [str(k) for k in range(10)]


def test_input_spec_derived_for_older_workdirs(run, tmp_path):
    config, workdir = run
    for name in ("config.json", "model_input.json"):  # what an older run wrote
        shutil.copy(os.path.join(workdir, name), tmp_path / name)
    assert not os.path.exists(tmp_path / inference.INPUT_SPEC_FILE)
    assert inference.InputSpec.from_workdir(str(tmp_path)) == inference.InputSpec.from_config(
        config, (8, 8, 1))


def test_input_spec_from_configs():
    identity = inference.InputSpec.from_config(train.default_config(), (28, 28, 1))
    assert (identity.mean, identity.std, identity.normalizes) == ((0.0,), (1.0,), False)
    cifar = inference.InputSpec.from_config({"augment": {"preset": "cifar"}}, (32, 32, 3))
    np.testing.assert_allclose(cifar.mean, augment.CIFAR10_MEAN)
    np.testing.assert_allclose(cifar.std, augment.CIFAR10_STD)
    default = inference.InputSpec.from_config({"augment": {"ops": ["flip", "normalize"]}},
                                              (4, 4, 3))  # normalize's defaults: ImageNet
    np.testing.assert_allclose(default.mean, augment.IMAGENET_MEAN)
    scalar = inference.InputSpec.from_config(
        {"augment": {"ops": ["normalize"], "normalize_mean": 0.5, "normalize_std": 0.25}},
        (4, 4, 3))
    assert scalar.mean == (0.5,) * 3 and scalar.std == (0.25,) * 3
    with pytest.raises(ValueError, match="one value per channel"):
        inference.InputSpec(image_size=(4, 4), channels=3, mean=(0.0,), std=(1.0,) * 3)


@pytest.mark.parametrize("preset,shape", [(None, (8, 8, 1)), ("cifar", (6, 5, 3)),
                                          ("course_train", (7, 7, 3))])
def test_preprocess_equals_eval_preprocessing(run, preset, shape):
    config = run[0] if preset is None else {"augment": {"preset": preset}}
    augment_config = run[0].augment if preset is None else config["augment"]
    spec = inference.InputSpec.from_config(config, shape)
    images = np.random.default_rng(0).integers(0, 256, (5, *shape), dtype=np.uint8)
    eval_preprocess = augment.build_eval(augment_config)
    expected = eval_preprocess({"image": jax.numpy.asarray(images, jax.numpy.float32) / 255.0})
    got = inference.preprocess(spec, images)
    assert got.dtype == np.float32 and got.shape == images.shape
    np.testing.assert_allclose(got, expected["image"], rtol=0, atol=1e-6)


def test_predictions_equal_the_eval_step(predictor, reference):
    images, probabilities = reference
    assert predictor.step == 22 and predictor.num_classes == 10
    got = predictor(images)
    assert got.shape == (len(images), 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, probabilities, rtol=0, atol=1e-6)
    np.testing.assert_allclose(predictor(images[3]), probabilities[3:4], rtol=0, atol=1e-6)


def test_fresh_process_loads_without_an_optimizer(run, reference, tmp_path):
    images, probabilities = reference
    np.save(tmp_path / "images.npy", images[:40])
    script = f"""
import numpy as np, optax
import jaxvision.optim, jaxvision.optim.factory, jaxvision.train.loop, jaxvision.train.state

def refuse(*args, **kwargs):
    raise AssertionError("inference built an optimizer or a train state")

for module, name in [(jaxvision.optim, "build_optimizer"), (jaxvision.optim.factory,
                     "build_optimizer"), (jaxvision.train.loop, "build_optimizer"),
                     (jaxvision.train.loop, "_build_tx"), (jaxvision.train.loop, "load_state"),
                     (jaxvision.train.loop, "create_train_state"),
                     (jaxvision.train.state, "create_train_state"), (optax, "adamw"),
                     (optax, "sgd")]:
    assert hasattr(module, name), name
    setattr(module, name, refuse)
from jaxvision import inference
predictor = inference.load({run[1]!r})
np.save({str(tmp_path / "out.npy")!r}, predictor(np.load({str(tmp_path / "images.npy")!r})))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), probabilities[:40], rtol=0,
                               atol=1e-6)


def _resize_by_hand(image, size):
    import tensorflow as tf

    resized = tf.image.resize(image, size, method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0, 255)), tf.uint8).numpy()


def test_images_of_another_size_are_resized_per_the_spec(predictor):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, shape, dtype=np.uint8)
              for shape in [(13, 11, 1), (5, 6, 1), (8, 8, 1), (32, 32, 1), (13, 11, 1)]]
    by_hand = np.stack([image if image.shape[:2] == (8, 8) else _resize_by_hand(image, (8, 8))
                        for image in images])
    np.testing.assert_array_equal(inference.resize_images(predictor.spec, images), by_hand)
    np.testing.assert_allclose(predictor(images), predictor(by_hand), rtol=0, atol=1e-6)


def test_bad_inputs_name_the_shape_and_the_expected_input(predictor):
    expected = r"uint8 images \[H, W, 1\] or \[N, H, W, 1\] .*resized to 8x8"
    with pytest.raises(ValueError, match=r"of shape \(2, 8, 8, 3\): 3 channels.*" + expected):
        predictor(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"image 1 of the list \(shape \(9, 9, 3\)\)"):
        predictor([np.zeros((8, 8, 1), np.uint8), np.zeros((9, 9, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"shape \(8, 8\).*channel axis"):
        predictor(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="dtype float32"):
        predictor(np.zeros((8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="no images"):
        predictor([])


def _write_pngs(folder, images):
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(os.path.join(folder, f"{i:02d}.png"))
        Image.fromarray(image[..., 0]).save(paths[-1])
    return paths


def test_cli_on_a_folder_writes_json_lines(run, predictor, reference, tmp_path):
    digits, _ = reference
    folder = tmp_path / "images"
    paths = _write_pngs(folder, digits[:5])
    paths += _write_pngs(folder / "sub", [_resize_by_hand(d, (16, 12)) for d in digits[5:7]])
    (folder / "notes.txt").write_text("not an image, and not an image suffix: skipped")
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "jaxvision.predict", "--workdir", run[1], str(folder),
         "--output", str(out), "--top_k", "3"], capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == ""
    assert "7/7" in done.stderr  # the progress bar
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["path"] for line in lines] == paths
    expected = predictor([digits[i] for i in range(5)]
                         + [_resize_by_hand(d, (16, 12)) for d in digits[5:7]])
    for line, probabilities in zip(lines, expected):
        top = np.argsort(-probabilities, kind="stable")[:3]
        assert [entry["class"] for entry in line["top_k"]] == top.tolist()
        assert [entry["name"] for entry in line["top_k"]] == [str(c) for c in top]
        np.testing.assert_allclose([entry["probability"] for entry in line["top_k"]],
                                   probabilities[top], rtol=0, atol=1e-6)


def test_cli_stops_on_a_bad_file_naming_it(run, tmp_path):
    not_an_image = tmp_path / "scan.png"
    not_an_image.write_text("hello")
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(rgb)
    good = _write_pngs(tmp_path / "good", [np.zeros((8, 8, 1), np.uint8)])
    out = tmp_path / "out.jsonl"
    parse = predict._parser().parse_args
    with pytest.raises(ValueError, match=f"{str(not_an_image)!r} is not an image file.*"
                                         r"grayscale \(1-channel\) image files"):
        predict.predict(parse(["--workdir", run[1], "--output", str(out), *good,
                               str(not_an_image)]))
    with pytest.raises(ValueError, match=f"{str(rgb)!r} is a PNG image of mode 'RGB' "
                                         r"\(3 channels\).*grayscale \(1-channel\)"):
        predict.predict(parse(["--workdir", run[1], "--output", str(out), *good, str(rgb)]))
    with pytest.raises(ValueError, match="no such image file or folder"):
        predict.predict(parse(["--workdir", run[1], str(tmp_path / "missing.png")]))
    assert not [name for name in os.listdir(tmp_path) if name.startswith("out.jsonl")]


def test_batch_prediction_resumes_after_a_stop_and_writes_csv(run, reference, tmp_path):
    digits, _ = reference
    paths = _write_pngs(tmp_path / "images", digits[:6])
    parse = predict._parser().parse_args
    out = tmp_path / "out.jsonl"
    assert predict.predict(parse(["--workdir", run[1], "--output", str(out),
                                  "--batch_size", "2", *paths[:3]])) == 3
    with open(out, "a") as f:  # a run killed in the middle of a line
        f.write('{"path": "' + paths[3] + '", "top_')
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(paths) + "\n")
    assert predict.predict(parse(["--workdir", run[1], "--output", str(out),
                                  "--file_list", str(listing)])) == 3  # only the rest
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["path"] for line in lines] == paths
    csv_out = tmp_path / "out.csv"
    predict.predict(parse(["--workdir", run[1], "--output", str(csv_out), "--top_k", "2",
                           *paths[:4]]))
    assert predict.predict(parse(["--workdir", run[1], "--output", str(csv_out), "--top_k",
                                  "2", *paths])) == 2
    rows = csv_out.read_text().splitlines()
    assert rows[0] == "path,class_1,name_1,probability_1,class_2,name_2,probability_2"
    assert [row.split(",")[0] for row in rows[1:]] == paths
    assert [int(row.split(",")[1]) for row in rows[1:]] == [
        line["top_k"][0]["class"] for line in lines]


@pytest.fixture(scope="module")
def segmentation_workdir(tmp_path_factory):
    """A segmentation run's files written by hand: config, model input and one checkpoint
    (no input_spec.json, as an older run)."""
    config = train.default_config()
    config.task, config.model, config.num_classes = "segmentation", "tiny_fcn", 3
    config.augment.ops = ("normalize",)  # ImageNet statistics by default
    workdir = str(tmp_path_factory.mktemp("segmentation_run"))
    model = models.create("tiny_fcn", num_classes=3)
    abstract = jax.eval_shape(functools.partial(train.create_train_state, model, optax.sgd(0.1),
                                                seed=0, input_shape=(1, 16, 16, 3)))
    rng = np.random.default_rng(0)

    def fill(path, leaf):  # random weights and statistics (compiling the init takes seconds)
        if "var" in jax.tree_util.keystr(path):
            return rng.uniform(0.5, 1.5, leaf.shape).astype(leaf.dtype)
        return (0.3 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

    state = abstract.replace(step=np.int32(7), rng=np.zeros(abstract.rng.shape, np.uint32),
                             params=jax.tree_util.tree_map_with_path(fill, abstract.params),
                             model_state=jax.tree_util.tree_map_with_path(
                                 fill, abstract.model_state))
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), async_save=False)
    checkpointer.save(6, state.checkpoint_items())
    checkpointer.save(7, state.checkpoint_items())
    checkpointer.close()
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(config_as_json(config), f)
    with open(os.path.join(workdir, "model_input.json"), "w") as f:
        json.dump({"num_classes": 3, "input_shape": [1, 16, 16, 3]}, f)
    return config, workdir, state


def test_segmentation_masks_equal_the_eval_step(segmentation_workdir):
    config, workdir, state = segmentation_workdir
    predictor = inference.load(os.path.join(workdir, "checkpoints", "7"))  # a step's folder
    assert predictor.step == 7 and predictor.class_names is None
    np.testing.assert_allclose(predictor.spec.mean, augment.IMAGENET_MEAN)
    images = np.random.default_rng(2).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    options = train.StepOptions(learning_rate_fn=lambda step: 0.0,
                                task=tasks.SegmentationTask(num_classes=3))
    step = jax.jit(train.make_eval_step(options, augment.build_eval(config.augment),
                                        with_predictions=True))
    batch = {"image": images, "mask": np.zeros((6, 16, 16), np.int32), "valid": np.ones(6, bool)}
    _, masks = step(state, batch)
    got = predictor(images)
    assert got.shape == (6, 16, 16)
    np.testing.assert_array_equal(got, masks)
    other = [np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)]
    assert predictor(other).shape == (1, 16, 16)


def test_a_checkpoint_of_another_model_is_refused(segmentation_workdir, tmp_path):
    _, workdir, _ = segmentation_workdir
    shutil.copytree(workdir, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    saved["model_kwargs"] = {"widths": [8, 16]}  # the checkpoint holds widths (16, 32)
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    with pytest.raises(train.CheckpointMismatchError,
                       match=r"holds another model than its config.json.*:\[16\].*:\[8\]"):
        inference.load(str(tmp_path / "run"))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        inference.load(str(tmp_path))


def test_a_damaged_checkpoint_is_skipped(segmentation_workdir, tmp_path, caplog):
    _, workdir, _ = segmentation_workdir
    shutil.copytree(workdir, tmp_path / "run")
    data_files = [os.path.join(root, name) for root, _, names in
                  os.walk(tmp_path / "run" / "checkpoints" / "7" / "state")
                  for name in names if f"{os.sep}d{os.sep}" in os.path.join(root, name)]
    assert data_files
    for path in data_files:
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:len(data) // 3])
    with caplog.at_level("WARNING", logger="jaxvision.inference"):
        assert inference.load(str(tmp_path / "run")).step == 6
    assert any("step 7" in record.getMessage() for record in caplog.records)
    with pytest.raises(train.CheckpointError, match="step 7"):
        inference.load(str(tmp_path / "run"), step=7)


class _BrightBoxModel(nn.Module):
    """A parameter-free 'detector': the tight box of the pixels above 0.5 in its input."""

    @nn.compact
    def __call__(self, x, *, train: bool):
        bright = x[..., 0] > 0.5
        rows, cols = bright.any(axis=2), bright.any(axis=1)

        def extent(line):
            index = jnp.arange(line.shape[-1])
            return (jnp.where(line, index, line.shape[-1]).min(-1),
                    jnp.where(line, index + 1, 0).max(-1))
        (y1, y2), (x1, x2) = extent(rows), extent(cols)
        return jnp.stack([x1, y1, x2, y2], -1).astype(jnp.float32)


class _PaddedDetections(tasks.Task):
    def predict(self, outputs):
        pad = jnp.zeros((outputs.shape[0], 2, 4))
        boxes = jnp.concatenate([outputs[:, None], pad], axis=1)
        valid = jnp.array([True, False, False])
        return {"boxes": boxes, "scores": jnp.where(valid, 0.9, 0.0)[None].repeat(len(outputs), 0),
                "box_classes": jnp.zeros((len(outputs), 3), jnp.int32),
                "boxes_valid": jnp.broadcast_to(valid, (len(outputs), 3))}


def test_detections_come_back_padded_and_in_each_images_own_pixels():
    spec = inference.InputSpec(image_size=(32, 32), channels=1, mean=(0.0,), std=(1.0,))
    predictor = inference.Predictor(model=_BrightBoxModel(), variables={},
                                    task=_PaddedDetections(), spec=spec, num_classes=1)
    wide = np.zeros((64, 96, 1), np.uint8)
    wide[16:40, 24:48] = 255           # at model size: rows 8..20, cols 8..16
    small = np.zeros((32, 32, 1), np.uint8)
    small[2:10, 20:30] = 255
    out = predictor([wide, small])
    assert out["boxes"].shape == (2, 3, 4) and out["boxes_valid"].tolist() == [[True, False, False]] * 2
    np.testing.assert_allclose(out["boxes"][0, 0], [24, 16, 48, 40], atol=3)  # original pixels
    np.testing.assert_array_equal(out["boxes"][1, 0], [20, 2, 30, 10])        # not resized
    assert not out["boxes"][:, 1:].any() and (out["scores"][:, 1:] == 0).all()


def test_predict_cli_lists_and_draws_detections(monkeypatch, tmp_path):
    """Detection through ``jaxvision.predict``: boxes in each image's own pixels in JSONL and
    CSV, and ``--draw`` saves each image with its box drawn."""
    import ml_collections

    spec = inference.InputSpec(image_size=(32, 32), channels=1, mean=(0.0,), std=(1.0,))
    predictor = inference.Predictor(model=_BrightBoxModel(), variables={},
                                    task=_PaddedDetections(), spec=spec, num_classes=1,
                                    class_names=["square"],
                                    config=ml_collections.ConfigDict({"task": "detection"}))
    monkeypatch.setattr(inference, "load", lambda *args, **kwargs: predictor)
    paths = []
    for name, (y1, y2, x1, x2) in {"a": (16, 40, 24, 48), "b": (4, 20, 40, 60)}.items():
        image = np.zeros((64, 96), np.uint8)
        image[y1:y2, x1:x2] = 255
        Image.fromarray(image).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    parse = predict._parser().parse_args
    out, drawn = tmp_path / "out.jsonl", tmp_path / "drawn"
    assert predict.predict(parse(["--workdir", "unused", "--output", str(out), "--draw",
                                  str(drawn), *paths])) == 2
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in records] == paths
    assert [len(r["detections"]) for r in records] == [1, 1]  # padding left out
    first = records[0]["detections"][0]
    assert first["name"] == "square" and first["class"] == 0 and first["score"] == pytest.approx(0.9)
    np.testing.assert_allclose(first["box"], [24, 16, 48, 40], atol=3)
    np.testing.assert_allclose(records[1]["detections"][0]["box"], [40, 4, 60, 20], atol=3)
    pictures = sorted(os.listdir(drawn))
    assert len(pictures) == 2 and all(p.endswith(".png") for p in pictures)
    pixels = np.asarray(Image.open(drawn / pictures[0]).convert("RGB")).astype(int)
    lime = (pixels[..., 1] > 150) & (pixels[..., 0] < 100) & (pixels[..., 2] < 100)
    assert lime.sum() > 50  # the box's outline
    csv_out = tmp_path / "out.csv"
    predict.predict(parse(["--workdir", "unused", "--output", str(csv_out), "--min_score",
                           "0.95", paths[0]]))
    assert csv_out.read_text().splitlines() == ["path,class,name,score,x1,y1,x2,y2"]
