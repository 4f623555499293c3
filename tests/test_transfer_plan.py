"""What each strategy trains on a ResNet-18 (traced only, nothing computed): stages read off
the model in call order, the course's block-level freeze list, the last x% of layers, and the
blocks re-initialised for a dissimilar domain."""

import re

import pytest

from jaxvision import models
from jaxvision.train import default_config
from jaxvision.transfer import engine

INPUT = (1, 32, 32, 3)


@pytest.fixture(scope="module")
def resnet18():
    return models.create("resnet18", num_classes=4, base_features=4)


def _trained_modules(resnet18, **transfer):
    config = default_config()
    config.transfer.update(transfer)
    plan = engine.plan(config, resnet18, INPUT)
    return plan, {leaf.rpartition("/")[0] for leaf in plan.structure.leaves
                  if not plan.freeze.is_frozen(leaf)}


def test_stages_are_timms_grouping(resnet18):
    plan, _ = _trained_modules(resnet18)
    groups = [(g.name, g.blocks) for g in plan.structure.groups]
    assert groups == [("stem", (("conv1", "bn1"),)),
                      *[(f"layer{s}", ((f"layer{s}_0",), (f"layer{s}_1",))) for s in (1, 2, 3, 4)],
                      ("head", (("head",),))]


def test_feature_extraction_and_the_courses_block_level_list(resnet18):
    _, trained = _trained_modules(resnet18, strategy="feature_extraction")
    assert trained == {"head"}
    # Fine-tuning the last two stages: conv1, bn1, layer1, layer2 frozen; layer3, layer4, fc trainable.
    _, named = _trained_modules(resnet18, strategy="stages", stages=("layer3", "layer4"))
    _, top2 = _trained_modules(resnet18, strategy="top_k", top_k=2)
    assert named == top2
    assert {m.split("/")[0].split("_")[0] for m in named} == {"layer3", "layer4", "head"}


def test_last_fraction_counts_kernel_layers_in_call_order(resnet18):
    """21 weight layers (conv1, 19 block convs with 3 downsamples, head); 30% is the last 7:
    head, layer4 (5 convs) and layer3_1's conv2 with the norm after it."""
    plan, trained = _trained_modules(resnet18, strategy="last_fraction", fraction=0.3)
    assert len(plan.structure.layers) == 21
    layer3 = {m for m in trained if m.startswith("layer3")}
    assert layer3 == {"layer3_1/conv2", "layer3_1/bn2"}
    assert {m for m in trained if not m.startswith("layer3")} == {
        m for m in (l.rpartition("/")[0] for l in plan.structure.leaves)
        if m.startswith(("layer4", "head"))}


def test_reinit_last_blocks_and_a_new_head_keep_their_fresh_initialisation(resnet18):
    config = default_config()
    config.transfer.update(reinit_last_blocks=3, head="linear")
    plan = engine.plan(config, resnet18, INPUT)
    kept = {leaf.split("/")[0] for leaf in plan.structure.leaves
            if any(re.search(p, leaf) for p in plan.dont_load)}
    assert kept == {"layer3_1", "layer4_0", "layer4_1", "head"}
