"""train_and_evaluate end to end on the embedded digits data set (parallel='none', 1 device)."""

import glob
import json
import logging
import os

import numpy as np
import pytest

from helpers import digits_config

from jaxvision import train
from jaxvision.train import NonFiniteError, read_metrics, train_and_evaluate


@pytest.fixture(scope="module")
def finished_run(tfds_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run"))
    logger = logging.getLogger("jaxvision.train")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        summary = train_and_evaluate(digits_config(tfds_dir), workdir)
    finally:
        logger.removeHandler(handler)
    return workdir, summary, [r.getMessage() for r in records]


def test_run_trains_and_writes_its_outputs(finished_run):
    workdir, summary, log_lines = finished_run
    steps_per_epoch = 1438 // 64
    assert summary["step"] == 2 * steps_per_epoch
    assert summary["eval_accuracy"] > 0.85  # two epochs of a small CNN on digits
    records = read_metrics(workdir)
    train_records = [r for r in records if r["split"] == "train"]
    eval_records = [r for r in records if r["split"] == "eval"]
    assert [r["epoch"] for r in eval_records] == [1, 2]  # numbered from 1, as the log lines
    assert (summary["epoch"], summary["best_epoch"]) == (2, summary["best_step"] // steps_per_epoch)
    assert train_records[-1]["loss"] < train_records[0]["loss"]
    assert eval_records[-1]["accuracy"] == pytest.approx(summary["eval_accuracy"])
    assert os.path.getsize(os.path.join(workdir, "curves.png")) > 10_000
    assert glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
    with open(os.path.join(workdir, "summary.json")) as f:
        assert json.load(f)["step"] == summary["step"]
    # Plain progress lines (no terminal here) carry the rate and the ETA.
    assert any("steps/s" in line and "eta" in line for line in log_lines)


def test_latest_and_best_checkpoints_are_kept(finished_run):
    workdir, summary, _ = finished_run
    checkpointer = train.Checkpointer(os.path.join(workdir, "checkpoints"),
                                      best_metric="eval_accuracy")
    steps = checkpointer.all_steps()
    assert summary["step"] in steps and summary["best_step"] in steps
    assert len(steps) <= 3  # 2 latest + 1 best


def test_rerun_of_finished_workdir_resumes_without_training(finished_run, tfds_dir):
    workdir, summary, _ = finished_run
    again = train_and_evaluate(digits_config(tfds_dir), workdir)
    assert again["step"] == summary["step"]
    assert again["eval_accuracy"] == pytest.approx(summary["eval_accuracy"])
    state = train.load_state(workdir, digits_config(tfds_dir))
    assert int(state.step) == summary["step"]


def test_early_stopping_stops_when_the_metric_stalls(tfds_dir, tmp_path):
    config = digits_config(tfds_dir, num_epochs=6, **{"optimizer.learning_rate": 0.0,
                                                "early_stopping.patience": 2})
    summary = train_and_evaluate(config, str(tmp_path))
    steps_per_epoch = 1438 // 64
    # eval_loss never improves with lr 0: epoch 1 sets the best, epochs 2 and 3 are bad.
    assert summary["step"] == 3 * steps_per_epoch


@pytest.fixture(scope="module")
def one_epoch_workdir(tfds_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("good"))
    train_and_evaluate(digits_config(tfds_dir, num_epochs=1), workdir)
    return workdir


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return str(dst)


def test_nonfinite_stops_naming_the_step_and_keeps_last_good_checkpoint(
        one_epoch_workdir, tfds_dir, tmp_path):
    workdir = _copy(one_epoch_workdir, tmp_path / "w")
    good = train.load_state(workdir, digits_config(tfds_dir))
    steps_per_epoch = 1438 // 64
    config = digits_config(tfds_dir, resume="force", **{"optimizer.learning_rate": 1e38,
                                                        "optimizer.schedule": "constant"})
    with pytest.raises(NonFiniteError, match=f"step {steps_per_epoch + 1}: .*intact"):
        train_and_evaluate(config, workdir)
    (kept,) = glob.glob(os.path.join(workdir, "config.until-*.json"))  # forced: the old record
    with open(kept) as f:
        assert json.load(f)["optimizer"]["learning_rate"] == 3e-3
    after = train.load_state(workdir, digits_config(tfds_dir))
    assert int(after.step) == steps_per_epoch
    np.testing.assert_array_equal(np.asarray(after.params["head"]["kernel"]),
                                  np.asarray(good.params["head"]["kernel"]))


def test_resuming_with_another_optimizer_is_refused_clearly(one_epoch_workdir, tfds_dir, tmp_path):
    workdir = _copy(one_epoch_workdir, tmp_path / "w")
    config = digits_config(tfds_dir, **{"optimizer.name": "sgd"})
    with pytest.raises(train.ConfigChangedError, match="optimizer.name: 'adamw' -> 'sgd'"):
        train_and_evaluate(config, workdir)
    # Forced, the checkpoint's layout still has to fit the new optimizer.
    config.resume = "force"
    with pytest.raises(train.CheckpointMismatchError, match="different train state.*config.json"):
        train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["optimizer"]["name"] == "adamw"  # the saved config is kept


def test_nonfinite_skip_mode_skips_updates(one_epoch_workdir, tfds_dir, tmp_path):
    workdir = _copy(one_epoch_workdir, tmp_path / "w")
    good = train.load_state(workdir, digits_config(tfds_dir))
    # Two more epochs, with mid-epoch checkpoints: every skipped step is counted once.
    config = digits_config(tfds_dir, nonfinite="skip", num_epochs=3, checkpoint_every_steps=5,
                           max_consecutive_skips=100, resume="force",
                           **{"optimizer.learning_rate": 1e38, "optimizer.schedule": "constant"})
    summary = train_and_evaluate(config, workdir)
    assert summary["skipped_steps"] == 2 * (1438 // 64)
    after = train.load_state(workdir, digits_config(tfds_dir))
    np.testing.assert_array_equal(np.asarray(after.params["head"]["kernel"]),
                                  np.asarray(good.params["head"]["kernel"]))


def test_augmentation_from_config_runs_in_the_step(tfds_dir, tmp_path):
    config = digits_config(tfds_dir, num_epochs=1)
    config.augment.ops = ("crop",)
    config.augment.crop_padding = 1
    with_aug = train_and_evaluate(config, str(tmp_path / "aug"))
    train_and_evaluate(digits_config(tfds_dir, num_epochs=1), str(tmp_path / "plain"))
    first_loss = lambda workdir: read_metrics(workdir)[0]["loss"]  # noqa: E731
    assert np.isfinite(with_aug["eval_loss"])
    assert first_loss(str(tmp_path / "aug")) != first_loss(str(tmp_path / "plain"))
    assert with_aug["eval_accuracy"] > 0.7


def test_augment_hook_sees_each_batch_inside_the_step():
    """A deterministic augmentation in the hook equals training on pre-augmented images."""
    import jax
    import optax

    from jaxvision import models
    from jaxvision.train import StepOptions, create_train_state, make_train_step

    rng = np.random.default_rng(1)
    batch = {"image": rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8),
             "label": rng.integers(0, 10, (16,), dtype=np.int32)}
    model = models.create("mlp", num_classes=10, hidden=(32,))
    options = StepOptions(learning_rate_fn=lambda s: 0.1)

    def run(augment_fn, images):
        state = create_train_state(model, optax.sgd(0.1), seed=0, input_shape=(1, 8, 8, 1))
        step = jax.jit(make_train_step(options, augment_fn))
        state, _ = step(state, dict(batch, image=images))
        return np.asarray(state.params["head"]["kernel"])

    flip = lambda key, b: dict(b, image=b["image"][:, :, ::-1])  # noqa: E731
    hooked = run(flip, batch["image"])
    preflipped = run(None, batch["image"][:, :, ::-1])
    plain = run(None, batch["image"])
    np.testing.assert_allclose(hooked, preflipped, atol=1e-7)
    assert np.abs(hooked - plain).max() > 1e-4


def test_eval_applies_the_training_normalization(tfds_dir, tmp_path):
    """A model trained on normalized images is evaluated on normalized images too."""
    import jax.numpy as jnp

    from jaxvision import augment
    from jaxvision.train.step import StepOptions, make_eval_step

    spec = {"ops": ["flip", "normalize"], "normalize_mean": 0.5, "normalize_std": 0.25}
    preprocess = augment.build_eval(spec)
    assert augment.build_eval({"ops": ["flip"]}) is None
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    batch = {"image": images, "label": np.zeros(2, np.int32), "valid": np.ones(2, bool)}
    seen = {}

    def apply_fn(variables, x, train):
        seen["x"] = x
        return jnp.zeros((x.shape[0], 3))

    state = type("S", (), {"apply_fn": staticmethod(apply_fn), "variables": lambda self: {}})()
    make_eval_step(StepOptions(learning_rate_fn=lambda s: 0.0), preprocess)(state, batch)
    np.testing.assert_allclose(seen["x"], (images / 255.0 - 0.5) / 0.25, rtol=1e-6)
