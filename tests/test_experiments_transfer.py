"""The transfer experiments: the source pretraining, the strategy sweep, the BatchNorm study.

Default suite: the pieces that decide what is measured (data, sampling, the strategy configs
compiled against the model, the negative-transfer verdict). Slow: a tiny end-to-end run of each
experiment. Long: the reproduction of the report's Must-show figures."""

import json
import os

import numpy as np
import pytest

from experiments import pretrain as P
from experiments import transfer_learning as E
from jaxvision.data.shapes import CLASS_NAMES, SHAPE_NAMES, ShapesSpec, generate
from jaxvision.models.resnet import ResNet
from jaxvision.train import default_config
from jaxvision.transfer import make_plan, model_structure


def test_source_and_target_classes_are_disjoint_shapes():
    assert len(P.SOURCE_CLASSES) == 10 and len(P.TARGET_CLASSES) == 5
    assert not set(P.SOURCE_CLASSES) & set(P.TARGET_CLASSES)
    assert set(P.SOURCE_CLASSES + P.TARGET_CLASSES) <= set(SHAPE_NAMES)
    images, labels = P.shapes_split(P.TARGET_CLASSES, "train", 40, size=16)
    assert images.shape == (40, 16, 16, 3) and images.dtype == np.uint8
    assert set(labels.tolist()) <= set(range(5)) and len(set(labels.tolist())) > 1


def test_the_new_shapes_are_distinct_masks_and_textures_leave_plain_specs_alone():
    size = 32
    masks = []
    for name in SHAPE_NAMES:
        data = generate(ShapesSpec(image_size=size, classes=(name,), min_radius_frac=0.4,
                                   max_radius_frac=0.4, seed=5), "train", 1)
        masks.append(data["semantic_mask"][0] > 0)
    # Same position and radius for every class (same seed): each shape differs from all others
    # in at least 3% of the pixels.
    for i in range(len(masks)):
        for j in range(i):
            assert (masks[i] != masks[j]).mean() > 0.03, (SHAPE_NAMES[i], SHAPE_NAMES[j])
    plain = generate(ShapesSpec(image_size=size), "train", 3)
    again = generate(ShapesSpec(image_size=size, classes=CLASS_NAMES, textures=False), "train", 3)
    np.testing.assert_array_equal(plain["image"], again["image"])
    textured = generate(ShapesSpec(image_size=size, textures=True), "train", 3)
    assert not np.array_equal(plain["image"], textured["image"])
    with pytest.raises(ValueError, match="classes must be"):
        ShapesSpec(classes=("circle", "blob"))


def test_per_class_samples_are_balanced_seeded_and_refuse_too_few():
    labels = np.repeat(np.arange(4), 25)
    a, b = E.sample_per_class(labels, 10, 0), E.sample_per_class(labels, 10, 1)
    assert np.bincount(labels[a]).tolist() == [10, 10, 10, 10]
    assert len(set(a.tolist())) == 40 and not np.array_equal(np.sort(a), np.sort(b))
    np.testing.assert_array_equal(a, E.sample_per_class(labels, 10, 0))
    assert E.sample_per_class(labels, 26, 0) is None
    assert len(E.repeated(a, 256)) == 280 and len(E.repeated(np.arange(300), 256)) == 300


def test_each_strategy_compiles_to_the_stages_it_names():
    """The experiment's strategies against the model's structure: what trains, at which rate,
    from which step."""
    config = E.get_config()
    # The experiment's ResNet-18 with one block per stage: the same stages, traced in half the time.
    model = ResNet(stage_sizes=(1, 1, 1, 1), num_classes=5, base_features=4)
    structure = model_structure(model, (1, 32, 32, 3))
    leaves = structure.leaves
    plans = {}
    for strategy in E.STRATEGIES:
        run = E.strategy_config(config, strategy, "/source")
        assert "sizes" not in run and "quick" not in run  # only engine keys
        assert run.init_from == ("" if strategy == "scratch" else "/source")
        plans[strategy] = make_plan(run, structure, steps_per_epoch=8)
    trained = {s: {leaf for leaf in leaves if not p.freeze.is_frozen(leaf)}
               for s, p in plans.items()}
    assert trained["scratch"] == trained["discriminative"] == set(leaves)
    assert trained["feature_extraction"] == {"head/kernel", "head/bias"}
    assert {leaf.split("/")[0] for leaf in trained["top_k"]} == {"layer4_0", "head"}
    multipliers = plans["discriminative"].lr_multipliers
    assert sorted(set(multipliers.values())) == [0.1, 0.125, 1 / 6, 0.25, 0.5, 1.0]
    assert plans["gradual"].start_steps == {"head": 0, "layer4": 8, "layer3": 16, "layer2": 24,
                                            "layer1": 32, "stem": 40}
    assert plans["scratch"].dont_load == () and default_config().init_dont_load == ()


def test_the_shift_and_the_verdict():
    images = np.array([[[[0, 128, 255]]]], np.uint8)
    shifted = E.shift(images, 0.25, (0.3, 0.05, 0.25))
    np.testing.assert_array_equal(shifted[0, 0, 0], np.rint(
        np.array([0.3, 0.05 + 0.25 * 128 / 255, 0.5]) * 255).astype(np.uint8))
    table = {"scratch": {"10": [0.50, 0.52, 0.48]},
             "feature_extraction": {"10": [0.80, 0.82, 0.78]},
             "gradual": {"10": [0.30, 0.31, 0.29]},
             "top_k": {"10": [0.49, 0.50, 0.48]}}
    (line,) = E.verdicts("similar", table, [10])
    assert "beat scratch: feature extraction (+0.300)" in line
    assert "gradual unfreezing (-0.200, negative transfer)" in line
    assert "fine-tune top-1 stage (-0.010)" in line  # within the spread: not called negative


@pytest.mark.slow
@pytest.mark.long  # 2-5 min: out of CI's hour (the notebook runs the engine path there)
def test_pretrain_and_transfer_smoke(tmp_path):
    """Both experiments end to end on a tiny budget: a source workdir that the transfer runs
    load, every strategy, both targets, the BatchNorm study, the report and the figures."""
    # ResNet-18's stages with one block each and width 4: what compiles fastest.
    small = dict(base_features=4, stage_sizes=(1, 1, 1, 1))
    config = P.get_config()
    config.model_kwargs = small
    config.num_train, config.num_test, config.num_epochs = 128, 64, 1
    config.optimizer.warmup_steps = 0
    source = str(tmp_path / "pretrain")
    pre = P.main(config, source)
    assert 0.0 <= pre["eval_accuracy"] <= 1.0 and pre["steps"] == 2
    assert os.path.exists(os.path.join(source, "report.md"))

    config = E.get_config()
    config.model_kwargs = small
    config.source = source
    config.strategies = ("scratch", "feature_extraction", "gradual")
    config.sizes, config.seeds, config.dissimilar_seeds, config.num_epochs = (2,), 1, 1, 2
    config.epoch_examples, config.num_test = 32, 50
    config.bn_finetune_per_class = 0  # the no-gradient modes only: two compilations fewer
    out = E.main(config, str(tmp_path / "transfer"))
    for target in ("similar", "dissimilar"):  # digits: one channel, the stem summed from RGB
        for strategy in config.strategies:
            (accuracy,) = out["accuracy"][target][strategy]["2"]
            assert 0.0 <= accuracy <= 1.0
    bn = out["batchnorm"]
    assert bn["adabn_params_unchanged"] is True
    assert {"clean", "shifted, BN frozen (source statistics)",
            "shifted, BN train mode (batch statistics)", "shifted, AdaBN (no gradient step)"} == {
        k for k, v in bn.items() if isinstance(v, float) and not k.startswith("adabn")}
    report = open(tmp_path / "transfer" / "report.md").read()
    assert "| gradual unfreezing |" in report and "AdaBN recovers" in report
    for png in ("sample_efficiency.png", "batchnorm_shift.png", "targets.png"):
        assert os.path.getsize(tmp_path / "transfer" / png) > 10_000
    assert json.load(open(tmp_path / "transfer" / "results.json"))["accuracy"] == out["accuracy"]


@pytest.mark.slow
@pytest.mark.long
def test_transfer_learning_reproduces_the_report(tmp_path):
    """The Must-show figures of the docstring, from the default config: fine-tuning beats
    scratch at 10 and 30 examples per class on the similar target (mean of 3 seeds), and AdaBN
    recovers at least half of the accuracy lost to the shift without a gradient step."""
    config = E.get_config()
    out = E.main(config, str(tmp_path))
    similar = out["accuracy"]["similar"]
    for k in ("10", "30"):
        assert len(similar["scratch"][k]) >= 3
        scratch = np.mean(similar["scratch"][k])
        assert np.mean(similar["discriminative"][k]) > scratch
        assert np.mean(similar["feature_extraction"][k]) > scratch
    bn = out["batchnorm"]
    lost = bn["clean"] - bn["shifted, BN frozen (source statistics)"]
    assert lost > 0.2
    assert bn["adabn_recovered_fraction"] >= 0.5
