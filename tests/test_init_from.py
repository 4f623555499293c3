"""Starting from other weights (config.init_from, init_dont_load) and fine-tuning a frozen
backbone: a jaxvision run's weights, and a torchvision ResNet-18 .pth file."""

import jax
import numpy as np
import optax
import pytest
from flax import traverse_util

from helpers import digits_config

from jaxvision import data, models, train
from jaxvision.train import create_train_state, train_and_evaluate
from jaxvision.train.init_from import load_initial_variables

STEPS_PER_EPOCH = 1438 // 64


def _flat(tree):
    return traverse_util.flatten_dict(tree, sep="/")


@pytest.fixture(scope="module")
def source(tfds_dir, tmp_path_factory):
    """A 10-class small_cnn trained one epoch on digits: (workdir, its state)."""
    workdir = str(tmp_path_factory.mktemp("source"))
    config = digits_config(tfds_dir, num_epochs=1)
    train_and_evaluate(config, workdir)
    return workdir, train.load_state(workdir, config)


def _fresh(num_classes, seed=0):
    model = models.create("small_cnn", num_classes=num_classes)
    return model, create_train_state(model, optax.sgd(0.1), seed=seed, input_shape=(1, 8, 8, 1))


def test_every_leaf_but_the_new_head_comes_from_the_source(source):
    workdir, source_state = source
    model, fresh = _fresh(12, seed=1)
    params, model_state = load_initial_variables(workdir, model, fresh.params, fresh.model_state,
                                                 dont_load=("head",))
    ours = _flat({"params": params, "model_state": model_state})
    theirs = _flat({"params": source_state.params, "model_state": source_state.model_state})
    new = _flat({"params": fresh.params, "model_state": fresh.model_state})
    assert set(ours) == set(new)
    for path, value in ours.items():
        expected = new[path] if "/head/" in path else theirs[path]
        np.testing.assert_array_equal(value, expected, err_msg=path)


def test_a_mismatch_no_regex_covers_stops_naming_the_paths(source):
    workdir, _ = source
    model, fresh = _fresh(12)
    with pytest.raises(ValueError) as stopped:
        load_initial_variables(workdir, model, fresh.params, fresh.model_state)
    lines = str(stopped.value).splitlines()
    assert sorted(lines[1:3]) == ["  head/bias: source (10,), model (12,)",
                                  "  head/kernel: source (128, 10), model (128, 12)"]
    assert "init_dont_load" in lines[3]


@pytest.mark.parametrize("init_from,message", [
    ("/no/such/run", "does not exist"), (__file__, "unknown format")])
def test_a_bad_init_from_stops_before_compiling(tfds_dir, tmp_path, compile_counter, init_from,
                                                message):
    with pytest.raises(ValueError, match=f"config.init_from: .*{message}"):
        train_and_evaluate(digits_config(tfds_dir, init_from=init_from), str(tmp_path))
    assert compile_counter.count == 0


def test_fine_tuning_the_head_of_a_frozen_backbone(source, tfds_dir, tmp_path):
    workdir, source_state = source
    config = digits_config(tfds_dir, num_epochs=1, num_classes=12, init_from=workdir,
                           init_dont_load=("head",), trainable=("head",))
    summary = train_and_evaluate(config, str(tmp_path))
    after = train.load_state(str(tmp_path), config)
    ours, theirs = _flat(jax.device_get(after.variables())), _flat(source_state.variables())
    for path, value in ours.items():
        if "head" not in path:  # backbone params and BatchNorm statistics: untouched
            np.testing.assert_array_equal(value, theirs[path], err_msg=path)
    _, fresh = _fresh(12, seed=config.seed)
    assert not np.array_equal(ours["params/head/kernel"], _flat(fresh.params)["head/kernel"])
    shapes = {np.shape(leaf) for leaf in jax.tree.leaves(after.opt_state)}
    assert shapes <= {(128, 12), (12,), ()}  # optimizer state for the head only
    assert summary["eval_accuracy"] > 0.5  # the source's features are good for digits


@pytest.mark.slow  # ~40-60 s: moved out of the 20-minute default suite
def test_a_torchvision_pth_starts_a_fine_tune_with_torchs_logits(tmp_path):
    torch = pytest.importorskip("torch")
    from torch_reference import TorchResNet18, randomize_bn, torch_forward

    torch.manual_seed(0)
    reference = randomize_bn(TorchResNet18(num_classes=10))
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    source = data.from_arrays(images, rng.integers(0, 10, 32), num_classes=10)
    datasets = data.make_datasets(source, source, batch_size=16, eval_batch_size=16, seed=0)
    config = train.default_config()
    config.update(model="resnet18", num_epochs=1, batch_size=16, eval_batch_size=16,
                  parallel="none", tensorboard=False, init_from=str(tmp_path / "resnet18.pth"),
                  trainable=("head",))
    config.optimizer.learning_rate = 0.0  # step 0's model, after a (frozen, lr 0) epoch
    train_and_evaluate(config, str(tmp_path / "run"), datasets=datasets)
    state = train.load_state(str(tmp_path / "run"), config)
    x = images[:4] / np.float32(255)
    ours = state.apply_fn(state.variables(), x, train=False)
    np.testing.assert_allclose(ours, torch_forward(reference, x.astype(np.float32)),
                               atol=1e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.long  # 2.5 min: out of CI's hour
def test_resnet18_from_a_shapes_run_fine_tunes_a_new_head_on_a_frozen_backbone(tfds_dir,
                                                                                tmp_path):
    """The issue's case: a 10-class ResNet-18 trained on shapes starts a 5-class model with a
    fresh head; with the backbone frozen, 50 steps leave every backbone parameter and BatchNorm
    statistic bitwise as loaded, while the head learns."""
    def config(**overrides):
        c = digits_config(tfds_dir, dataset="shapes/cls32", model="resnet18", batch_size=32,
                          eval_batch_size=100, num_epochs=1, eval_split="test[:200]")
        c.update(overrides)
        return c

    source_config = config(num_classes=10, train_split="train[:800]")
    train_and_evaluate(source_config, str(tmp_path / "source"))
    source = _flat(train.load_state(str(tmp_path / "source"), source_config).variables())

    target_config = config(num_classes=5, train_split="train[:1600]",
                           init_from=str(tmp_path / "source"), init_dont_load=("head",),
                           trainable=("head",))
    summary = train_and_evaluate(target_config, str(tmp_path / "target"))
    assert summary["step"] == 50
    after = train.load_state(str(tmp_path / "target"), target_config)
    ours = _flat(jax.device_get(after.variables()))
    backbone = [path for path in ours if "head" not in path]
    assert len(backbone) == 100  # 20 conv kernels, 20 BatchNorms: scale, bias, mean, var
    for path in backbone:
        np.testing.assert_array_equal(ours[path], source[path], err_msg=path)
    model = models.create("resnet18", num_classes=5)
    fresh = create_train_state(model, optax.sgd(0.1), seed=target_config.seed,
                               input_shape=(1, 32, 32, 3))
    assert not np.array_equal(ours["params/head/kernel"], fresh.params["head"]["kernel"])
    assert {np.shape(leaf) for leaf in jax.tree.leaves(after.opt_state)} <= {(512, 5), (5,), ()}
