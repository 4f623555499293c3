"""Smoke tests of the training-science experiments and recipes.

The default suite checks that every experiment builds configs the engine accepts, that they
all read the engine's one digits split, and the probes that need no training; the tiny
end-to-end runs through the engine take 30-120 s each on 2 shared cores, so they are marked
slow.
"""

import importlib
import os

import numpy as np
import pytest

EXPERIMENTS = ("optimizers", "lr_schedules", "regularization", "initialization", "batchnorm", "lr_finder",
               "hparam_search", "sam", "cifar10_resnet20", "cifar10_wrn28_10_sam", "adversarial",
               "diagnostics")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_has_config_main_and_documented_result(name):
    module = importlib.import_module(f"experiments.{name}")
    doc = module.__doc__
    for part in ("Command:", "Expected:", "Runtime:", f"python -m experiments.{name}"):
        assert part in doc, (name, part)
    assert callable(module.main)
    config = module.get_config()
    assert config is not None


def test_engine_configs_validate():
    from experiments import cifar10_resnet20, cifar10_wrn28_10_sam, regularization
    from jaxvision.optim import build_optimizer
    from jaxvision.train import validate_config

    for module in (cifar10_resnet20, cifar10_wrn28_10_sam):
        config = module.get_config()
        validate_config(config, num_devices=8)
        build_optimizer(config.optimizer, total_steps=100)
    resnet = cifar10_resnet20.get_config()
    assert resnet.num_epochs * (50000 // resnet.batch_size) >= 63_960   # He et al.: 64k iterations
    for variant in regularization.VARIANTS:
        config = regularization.variant_config(variant, epochs=2, seed=0)
        validate_config(config, num_devices=1)
        build_optimizer(config.optimizer, total_steps=10)


def test_digits_datasets_are_the_engine_split():
    from experiments import _science as sci
    from jaxvision.data.builders import digits_arrays

    config = sci.engine_config(epochs=1)
    (train_x, train_y), (test_x, test_y) = digits_arrays("train"), digits_arrays("test")
    plain = sci.digits_datasets(config)
    assert plain.train.steps_per_epoch == len(train_y) // 64 and plain.eval.num_examples == len(test_y)
    noisy = sci.digits_datasets(config, train_size=256, label_noise=0.5)
    label_of = {image.tobytes(): label for image, label in zip(train_x[:256], train_y[:256])}
    streamed = [(image.tobytes(), label) for batch in noisy.train.epoch(0)
                for image, label in zip(batch["image"], batch["label"])]
    assert len(streamed) == 256 and all(image in label_of for image, _ in streamed)
    flipped = np.mean([label_of[image] != label for image, label in streamed])
    assert 0.3 < flipped < 0.6  # half drawn anew, a tenth of those land on the true class
    test_images = np.concatenate([b["image"][b["valid"]] for b in noisy.eval])
    np.testing.assert_array_equal(test_images, test_x)


def test_initialization_probe_sees_the_scale_collapse_that_batchnorm_prevents():
    import jax.numpy as jnp

    from experiments import _science as sci
    from experiments.initialization import probe_at_init
    from jaxvision.data.builders import digits_arrays

    images, labels = digits_arrays("train")
    x, y = jnp.asarray(images[:32], jnp.float32) / 255.0, jnp.asarray(labels[:32])
    small = dict(depth=4, width=4, kernel_init="normal", init_options=(("stddev", 0.01),))
    stds = {}
    for bn in (False, True):
        stats, norms = probe_at_init(sci.PlainCNN(batch_norm=bn, **small), 0, x, y)
        stds[bn] = [float(stats[f"act/act{i}/std"]) for i in range(4)]
        assert set(norms) >= {f"grad_norm/conv{i}" for i in range(4)}
    assert stds[False][-1] < 1e-3 * stds[False][0]      # N(0, 0.01): each layer shrinks ~10x
    assert 0.3 < stds[True][-1] / stds[True][0] < 3     # BatchNorm restores the scale


def _small(module, **overrides):
    config = module.get_config()
    for key, value in overrides.items():
        config[key] = value
    return config


def _assert_outputs(workdir, *pngs):
    report = open(os.path.join(workdir, "report.md")).read()
    for png in pngs:
        assert os.path.getsize(os.path.join(workdir, png)) > 1000, png
    return report


@pytest.mark.slow
def test_optimizers_and_schedules(tmp_path):
    from experiments import lr_schedules, optimizers

    result = optimizers.main(_small(optimizers, variants="sgd,adam", epochs=1), str(tmp_path / "opt"))
    assert set(result) == {"sgd", "adam"} and all(0.1 < v <= 1 for v in result.values())
    assert "| adam |" in _assert_outputs(tmp_path / "opt", "loss_curves.png", "accuracy_curves.png")
    result = lr_schedules.main(_small(lr_schedules, variants="constant,one_cycle", epochs=1), str(tmp_path / "lr"))
    assert set(result) == {"constant", "one_cycle"}
    _assert_outputs(tmp_path / "lr", "schedules.png", "schedules_log.png", "loss_curves.png")


@pytest.mark.slow
def test_regularization_and_snapshots(tmp_path):
    from experiments import regularization

    config = _small(regularization, variants="baseline,sam", epochs=1, train_size=128, snapshot_cycles=2,
                    snapshot_cycle_epochs=1)
    result = regularization.main(config, str(tmp_path))
    assert {"baseline", "sam", "snapshot_ensemble"} <= set(result)
    report = _assert_outputs(tmp_path, "test_loss_curves.png")
    assert "SGDR (restarts)" in report and "| sam |" in report


@pytest.mark.slow
def test_initialization_and_batchnorm(tmp_path):
    from experiments import batchnorm, initialization

    result = initialization.main(_small(initialization, inits="small_normal", depth=3, epochs=1),
                                 str(tmp_path / "init"))
    assert set(result) == {"small_normal", "small_normal+bn"}
    report = _assert_outputs(tmp_path / "init", "activation_std.png", "grad_norms.png")
    assert "small_normal" in report
    result = batchnorm.main(_small(batchnorm, momenta=(0.9,), epsilons=(1e-5,), mode_epochs=1,
                                   learning_rates=(0.1,), lr_epochs=1, depth=3), str(tmp_path / "bn"))
    assert len(result) == 2
    assert "-1.341635" in _assert_outputs(tmp_path / "bn", "running_stats.png")   # BN([1, 2, 3, 4])[0]


@pytest.mark.slow
def test_lr_finder_hparam_search_and_sam(tmp_path):
    from experiments import hparam_search, lr_finder, sam

    result = lr_finder.main(_small(lr_finder, num_steps=15, epochs=1, factors=(1.0,)), str(tmp_path / "lrf"))
    assert 1e-7 <= result["suggested_lr"] <= 10
    _assert_outputs(tmp_path / "lrf", "lr_finder.png")
    result = hparam_search.main(_small(hparam_search, methods="grid,bayesian", trials=1, epochs=1),
                                str(tmp_path / "hp"))
    assert set(result) == {"grid", "bayesian"}
    assert "| trial |" in _assert_outputs(tmp_path / "hp", "best_so_far.png")
    result = sam.main(_small(sam, variants="sam_m16", epochs=1), str(tmp_path / "sam"))
    report = _assert_outputs(tmp_path / "sam", "loss_curves.png", "sharpness.png")
    assert "sam_m16" in result and "| sam_m16 | 1 | 16 |" in report


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["cifar10_resnet20", "cifar10_wrn28_10_sam"])
def test_recipes_run_on_mock_cifar10(tmp_path, recipe):
    import tensorflow_datasets as tfds

    module = importlib.import_module(f"experiments.{recipe}")
    config = module.get_config()
    assert config.dataset == "cifar10"
    if recipe == "cifar10_wrn28_10_sam":
        assert config.sam.rho == 0.05 and config.sam.group_size == 32 and config.model == "wide_resnet28_10"
        config.model_kwargs = {"depth": 10, "widen_factor": 1}   # same code path, CPU-sized
        config.sam.group_size = 4
    config.batch_size = 8
    config.eval_batch_size = 8
    config.num_epochs = 1
    config.parallel = "none"
    config.tensorboard = False
    config.log_every_steps = 1
    if config.optimizer.schedule == "multistep":
        config.optimizer.milestones = (1,)
    with tfds.testing.mock_data(num_examples=16):
        summary = module.main(config, str(tmp_path))
    assert summary["step"] == 2
    assert 0.0 <= summary["eval_accuracy"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["mnist_lenet5", "mnist_modern_cnn", "imagenet_resnet50"])
def test_mnist_and_imagenet_recipes_run_on_mock_data(tmp_path, recipe):
    """The recipes' configs (data set, splits, augmentation, optimizer, schedule) run one
    epoch end to end on TFDS mock data; ImageNet's at a CPU size (ResNet-18, 64 px)."""
    import tensorflow_datasets as tfds

    module = importlib.import_module(f"experiments.{recipe}")
    config = module.get_config()
    if recipe == "imagenet_resnet50":
        assert config.model == "resnet50" and config.optimizer.learning_rate == 0.4
        assert config.optimizer.nesterov and config.compute_dtype == "bfloat16"
        config.model, config.image_size = "resnet18", (64, 64)
        config.augment.random_resized_crop = {"size": (56, 56)}
        config.num_classes = 1000
    else:
        assert config.dataset == "mnist"
    config.batch_size = config.eval_batch_size = 8
    config.num_epochs = 1
    config.parallel = "none"
    config.tensorboard = False
    config.log_every_steps = 1
    config.optimizer.warmup_steps = 0
    with tfds.testing.mock_data(num_examples=16):
        summary = module.main(config, str(tmp_path))
    assert summary["step"] == 2
    assert 0.0 <= summary["eval_accuracy"] <= 1.0
