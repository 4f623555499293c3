"""The task seam: the step and the loop take their loss and metrics from a task. The
segmentation task proves it on a dense task (per-pixel loss, pixel counts, a set-level
confusion-matrix evaluator) in every parallel mode; the state carries every mutable collection
and the RNG streams a task names."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import digits_config

from jaxvision import tasks, train
from jaxvision.losses.segmentation import dice_ce_loss, pixel_cross_entropy
from jaxvision.metrics import segmentation as seg_metrics
from jaxvision.train import (StepOptions, create_train_state, evaluate, make_parallel,
                             make_train_step, train_and_evaluate, validate_config)

NUM_CLASSES = 3


class TinySegNet(nn.Module):
    """Two 3x3 convolutions to per-pixel logits (no BatchNorm: parallel modes must agree)."""

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = nn.relu(nn.Conv(8, (3, 3), padding=1)(x))
        return nn.Conv(NUM_CLASSES, (3, 3), padding=1)(x)


def _seg_batches(num=3, size=16, seed=0):
    """Images whose bright squares are class 1 and dark squares class 2 (learnable)."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(num):
        mask = rng.integers(0, NUM_CLASSES, (size, 1, 1)).repeat(8, 1).repeat(8, 2)
        mask[:, :2] = 0
        image = np.where(mask == 1, 220, np.where(mask == 2, 30, 128)).astype(np.uint8)
        image = image + rng.integers(0, 20, image.shape).astype(np.uint8)
        batches.append({"image": image[..., None], "mask": mask.astype(np.int32)})
    return batches


def test_segmentation_loss_and_metrics_match_the_reference_functions():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(4, 5, 6, NUM_CLASSES)), jnp.float32)
    labels = rng.integers(0, NUM_CLASSES, (4, 5, 6))
    labels[0, 0, :3] = 255
    batch = {"image": jnp.zeros((4, 5, 6, 1)), "mask": jnp.asarray(labels),
             "valid": jnp.array([True, True, True, False])}
    task = tasks.SegmentationTask(num_classes=NUM_CLASSES, ignore_index=255)
    loss, aux = task.loss(logits, batch, train=True)
    np.testing.assert_allclose(loss, pixel_cross_entropy(logits, labels, ignore_index=255),
                               rtol=1e-6)
    mixed = tasks.SegmentationTask(num_classes=NUM_CLASSES, ignore_index=255, dice_weight=0.6)
    np.testing.assert_allclose(mixed.loss(logits, batch, train=True)[0],
                               dice_ce_loss(logits, labels, dice_weight=0.6, ignore_index=255),
                               rtol=1e-6)
    labelled = labels != 255
    hits = (np.argmax(logits, -1) == labels) & labelled
    np.testing.assert_allclose(aux["pixel_accuracy"], hits.sum() / labelled.sum(), rtol=1e-6)
    # Eval sums leave out the padded example and the ignored pixels.
    sums = task.batch_metrics(logits, batch)
    real = labelled[:3]
    assert float(sums["pixel_accuracy"][1]) == real.sum()
    assert float(sums["pixel_accuracy"][0]) == hits[:3].sum()
    np.testing.assert_allclose(sums["loss"][0] / sums["loss"][1],
                               pixel_cross_entropy(logits[:3], labels[:3], ignore_index=255),
                               rtol=1e-6)


def test_confusion_matrix_evaluator_equals_the_metrics_module():
    rng = np.random.default_rng(2)
    evaluator = tasks.ConfusionMatrixEvaluator(NUM_CLASSES, ignore_index=255)
    all_labels, all_predictions = [], []
    for _ in range(3):
        labels = rng.integers(0, NUM_CLASSES, (4, 6, 6))
        labels[:, 0] = 255
        predictions = rng.integers(0, NUM_CLASSES, (4, 6, 6))
        valid = np.array([True, True, True, False])
        evaluator.update(predictions, {"mask": labels, "valid": valid})
        all_labels.append(labels[valid])
        all_predictions.append(predictions[valid])
    confusion = seg_metrics.confusion_matrix(np.concatenate(all_labels),
                                             np.concatenate(all_predictions),
                                             num_classes=NUM_CLASSES, ignore_index=255)
    np.testing.assert_array_equal(evaluator.confusion, confusion)
    result = evaluator.result()
    assert result["miou"] == pytest.approx(float(seg_metrics.mean_iou(confusion)))
    assert result["mean_dice"] == pytest.approx(float(seg_metrics.mean_dice(confusion)))


def _train(mode, task, batches, steps=4):
    parallel = make_parallel(mode)
    state = parallel.place_state(create_train_state(TinySegNet(), optax.sgd(0.5), seed=0,
                                                    input_shape=(1, 8, 8, 1)))
    step = parallel.compile_train_step(make_train_step(StepOptions(
        learning_rate_fn=lambda s: 0.5, task=task, axis_name=parallel.axis_name)))
    losses = []
    for batch in batches[:steps]:
        state, metrics = step(state, parallel.place_batch(batch))
        losses.append(float(metrics["loss"]))
    return parallel, state, losses


@pytest.fixture(scope="module")
def segmentation_single_device():
    """Per dice_weight: the task and (parallel, state, losses) of a one-device run."""
    runs = {}
    for dice_weight in (0.0, 0.5):
        task = tasks.SegmentationTask(num_classes=NUM_CLASSES, dice_weight=dice_weight)
        runs[dice_weight] = task, _train("none", task, _seg_batches(num=1) * 4)
    return runs


# Dice does not add up over devices: under pmap each device's Dice is averaged (like
# per-device BatchNorm), so only jit, which sees the global batch, equals one device with it.
@pytest.mark.parametrize("mode,dice_weight", [("jit", 0.0), ("pmap", 0.0), ("jit", 0.5)])
def test_segmentation_trains_alike_on_one_and_eight_devices(segmentation_single_device, mode,
                                                            dice_weight):
    task, (_, reference, ref_losses) = segmentation_single_device[dice_weight]
    _, state, losses = _train(mode, task, _seg_batches(num=1) * 4)
    assert ref_losses[-1] < ref_losses[0]
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for x, y in zip(jax.tree.leaves(state.params), jax.tree.leaves(reference.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


@pytest.mark.parametrize("mode", ["none", "pmap"])
def test_evaluate_sums_over_batches_and_devices_and_runs_the_evaluators(
        segmentation_single_device, mode):
    task, (_, state, _) = segmentation_single_device[0.5]
    batches = _seg_batches(num=3, seed=5)
    for batch in batches:
        batch["valid"] = np.ones(len(batch["mask"]), bool)
    batches[-1]["valid"][-5:] = False  # padding of the last batch
    parallel = make_parallel(mode)
    results = evaluate(parallel.place_state(state), batches, task=task, parallel=parallel)
    # The same numbers from the whole set at once.
    images = np.concatenate([b["image"][b["valid"]] for b in batches])
    labels = np.concatenate([b["mask"][b["valid"]] for b in batches])
    logits = TinySegNet().apply({"params": state.params}, images / 255.0, train=False)
    predictions = np.asarray(np.argmax(logits, -1))
    assert results["pixel_accuracy"] == pytest.approx(float(np.mean(predictions == labels)), rel=1e-6)
    assert results["loss"] == pytest.approx(float(pixel_cross_entropy(logits, labels)), rel=1e-5)
    confusion = seg_metrics.confusion_matrix(labels, predictions, num_classes=NUM_CLASSES)
    assert results["miou"] == pytest.approx(float(seg_metrics.mean_iou(confusion)), rel=1e-6)


def test_best_metric_must_be_offered_by_the_task(compile_counter, tfds_dir, tmp_path):
    config = digits_config(tfds_dir, task="segmentation", best_metric="eval_accuracy")
    with pytest.raises(ValueError, match="best_metric must be one of .*'eval_miou'"):
        validate_config(config, num_devices=1)
    config = digits_config(tfds_dir, best_metric="eval_miou")
    with pytest.raises(ValueError, match=r"best_metric must be one of \('eval_loss', "
                                         r"'eval_accuracy'\), got 'eval_miou'"):
        train_and_evaluate(config, str(tmp_path))
    with pytest.raises(ValueError, match="task must be one of"):
        validate_config(digits_config(tfds_dir, task="captioning"), num_devices=1)
    assert compile_counter.count == 0


class CountingNoisyNet(nn.Module):
    """Keeps a counter in its own collection and draws from a 'sample' stream in training."""

    @nn.compact
    def __call__(self, x, *, train: bool):
        counter = self.variable("counters", "seen", lambda: jnp.zeros((), jnp.int32))
        if train:
            counter.value += x.shape[0]
            x = x + jax.random.normal(self.make_rng("sample"), x.shape)
        return nn.Dense(2)(x.reshape((x.shape[0], -1)))


class NoisyClassification(tasks.ClassificationTask):
    rng_streams = ("dropout", "sample")


def test_the_state_carries_every_collection_and_the_task_names_the_streams():
    state = create_train_state(CountingNoisyNet(), optax.sgd(0.1), seed=0, input_shape=(1, 4))
    assert set(state.model_state) == {"counters"}
    step = jax.jit(make_train_step(StepOptions(learning_rate_fn=lambda s: 0.1,
                                               task=NoisyClassification())))
    batch = {"image": np.ones((6, 4), np.float32), "label": np.zeros(6, np.int32)}
    state, first = step(state, batch)
    state, second = step(state, batch)
    assert int(state.model_state["counters"]["seen"]) == 12
    assert float(first["loss"]) != float(second["loss"])  # fresh noise each step


def test_objects_replace_config_names_and_callbacks_see_each_evaluation(tfds_dir, tmp_path):
    from jaxvision import models

    seen = []
    config = digits_config(tfds_dir, num_epochs=2, model="small_cnn")
    summary = train_and_evaluate(
        config, str(tmp_path), model=models.create("mlp", num_classes=10, hidden=(16,)),
        task=tasks.ClassificationTask(label_smoothing=0.1),
        callbacks=[lambda step, state, metrics: seen.append((step, sorted(state.params),
                                                             metrics["eval_accuracy"]))])
    steps_per_epoch = 1438 // 64
    assert [(step, names) for step, names, _ in seen] == [
        (steps_per_epoch, ["dense0", "head"]), (2 * steps_per_epoch, ["dense0", "head"])]
    assert seen[-1][2] == summary["eval_accuracy"] > 0.2  # above chance (0.1)


@pytest.mark.slow  # ~40-60 s: moved out of the 20-minute default suite
def test_a_segmentation_network_trains_on_embedded_shapes_masks(tfds_dir, tmp_path):
    """tiny_fcn on shapes/seg64 (background = mask 0, each shape class + 1) through the one
    engine: the eval set's mIoU from the confusion-matrix evaluator. One epoch at a constant
    rate here (mIoU 0.51; predicting background everywhere gives about 0.16); three epochs
    with a cosine schedule reach 0.85."""
    from jaxvision.data import build_datasets

    config = digits_config(tfds_dir, dataset="shapes/seg64", task="segmentation",
                           model="tiny_fcn", num_epochs=1, batch_size=32, eval_batch_size=100,
                           best_metric="eval_miou", **{"optimizer.learning_rate": 1e-2,
                                                       "optimizer.schedule": "constant"})
    datasets = build_datasets(config)
    config.num_classes = datasets.num_classes + 1  # the background
    summary = train_and_evaluate(config, str(tmp_path), datasets=datasets)
    records = [r for r in train.read_metrics(str(tmp_path)) if r["split"] == "eval"]
    assert [sorted(r) for r in records][0] == ["epoch", "loss", "mean_dice", "miou",
                                               "pixel_accuracy", "split", "step"]
    print("shapes/seg64 tiny_fcn:", summary)
    assert summary["eval_miou"] > 0.35
    assert summary["eval_pixel_accuracy"] > 0.85


def test_a_validation_split_judges_the_run_and_the_test_split_is_scored_once(tfds_dir, tmp_path):
    from jaxvision.data import build_datasets

    config = digits_config(tfds_dir, num_epochs=2, validation_fraction=0.1,
                           best_metric="eval_loss", best_mode="min")
    datasets = build_datasets(config)
    assert datasets.eval.num_examples + datasets.train.steps_per_epoch * 64 <= 1438
    assert datasets.test.num_examples == 359  # digits' test split, untouched
    summary = train_and_evaluate(config, str(tmp_path), datasets=datasets)
    assert summary["test_step"] == summary["best_step"]
    state = train.load_state(str(tmp_path), config, step=summary["best_step"])
    expected = evaluate(state, datasets.test, task=tasks.ClassificationTask())
    assert summary["test_accuracy"] == pytest.approx(expected["accuracy"], abs=1e-7)
    assert summary["test_loss"] == pytest.approx(expected["loss"], rel=1e-6)
    with pytest.raises(ValueError, match="whole percentage"):
        build_datasets(digits_config(tfds_dir, validation_fraction=0.123))


class BatchNormNoAxis(nn.Module):
    """A model with BatchNorm that cannot sync it (no injectable `norm` field)."""

    num_classes: int = 10

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = nn.BatchNorm(use_running_average=not train)(x.reshape((x.shape[0], -1)))
        return nn.Dense(self.num_classes)(x)


def test_synced_batchnorm_on_a_model_that_cannot_sync_is_an_error(tfds_dir, tmp_path,
                                                                 compile_counter):
    config = digits_config(tfds_dir, parallel="pmap", bn_mode="sync", num_epochs=1)
    with pytest.raises(ValueError, match="bn_mode='sync' but BatchNormNoAxis has no BatchNorm `norm`"):
        train_and_evaluate(config, str(tmp_path), model=BatchNormNoAxis())
    assert compile_counter.count == 0


@pytest.mark.slow  # three short runs; keeps the default suite under its time budget
def test_a_segmentation_run_stopped_on_eight_devices_resumes_on_one(tfds_dir, tmp_path):
    """The engine's resume and its 8 -> 1 restore hold for the dense task too: a run stopped
    (SIGINT, at its first evaluation) under jit on 8 devices and resumed on one device ends
    where an uninterrupted one-device run ends, metrics and parameters to 1e-5 (no BatchNorm,
    so the modes agree)."""
    import os
    import signal

    from jaxvision import data

    images, masks = [], []
    for batch in _seg_batches(num=4, seed=3):
        images.append(batch["image"])
        masks.append(batch["mask"])
    images, masks = np.concatenate(images), np.concatenate(masks)
    train_source = data.from_arrays(images[:48], mask=masks[:48], num_classes=NUM_CLASSES)
    eval_source = data.from_arrays(images[48:], mask=masks[48:], num_classes=NUM_CLASSES)

    def run(workdir, parallel, callbacks=()):
        config = digits_config(tfds_dir, task="segmentation", num_epochs=3, batch_size=16,
                               parallel=parallel, tensorboard=False, log_every_steps=1,
                               best_metric="eval_miou",
                               **{"optimizer.learning_rate": 0.3, "optimizer.name": "momentum",
                                  "optimizer.schedule": "constant"})
        datasets = data.make_datasets(train_source, eval_source, batch_size=16,
                                      eval_batch_size=16, seed=0)
        return train_and_evaluate(config, str(workdir), model=TinySegNet(), datasets=datasets,
                                  callbacks=callbacks)

    reference = run(tmp_path / "reference", "none")

    def stop_at_first_evaluation(step, state, metrics):
        os.kill(os.getpid(), signal.SIGINT)  # the loop saves this step, then stops

    with pytest.raises(train.Interrupted):
        run(tmp_path / "resumed", "jit", callbacks=[stop_at_first_evaluation])
    assert [r["split"] for r in train.read_metrics(str(tmp_path / "resumed"))].count("eval") == 1
    resumed = run(tmp_path / "resumed", "none")
    for key in ("eval_loss", "eval_miou", "eval_pixel_accuracy"):
        assert resumed[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), key
    ours = train.read_metrics(str(tmp_path / "resumed"))
    theirs = train.read_metrics(str(tmp_path / "reference"))
    assert [(r["split"], r["step"]) for r in ours] == [(r["split"], r["step"]) for r in theirs]
    for a, b in zip(ours, theirs):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert reference["eval_miou"] > 0.4  # background everywhere: 0.21
