"""Bad transfer configs stop before anything compiles, naming what the model has."""

import pytest

from helpers import digits_config

from jaxvision import models
from jaxvision.train import default_config, train_and_evaluate
from jaxvision.transfer import engine

RESNET_INPUT = (1, 32, 32, 3)


def _config(**transfer):
    config = default_config()
    config.transfer.update(transfer)
    return config


def test_a_strategy_that_freezes_everything_stops_before_compiling(tfds_dir, tmp_path,
                                                                  compile_counter):
    config = digits_config(tfds_dir, model="small_cnn", num_epochs=1, frozen=("fc", "head"),
                           **{"transfer.strategy": "feature_extraction"})
    with pytest.raises(ValueError, match="freezes every parameter: nothing to train"):
        train_and_evaluate(config, str(tmp_path))
    assert compile_counter.count == 0


@pytest.mark.parametrize("transfer,match", [
    (dict(strategy="stages", stages=("layer9",)),
     r"no stage 'layer9'; its stages are \['stem', 'layer1', 'layer2', 'layer3', 'layer4', "
     r"'head'\]"),
    (dict(strategy="top_k", top_k=5), r"has 4 stages: \['layer1', 'layer2', 'layer3', 'layer4'\]"),
    (dict(adapters_after=("layer5_0",)), r"'layer5_0', which is not a block of the model; its "
                                         r"blocks are \['layer1_0', 'layer1_1', 'layer2_0'"),
    (dict(reinit_last_blocks=9), "has 8 blocks"),
    (dict(batch_norm_frozen=("layer9",)), "matches no module"),
    (dict(strategy="last_fraction", fraction=0.0), r"fraction must lie in \(0, 1\]"),
    (dict(strategy="freeze_all"), "strategy must be one of"),
    (dict(adapters_after=("layer1_0",), strategy="full"), "trains only the adapters"),
])
def test_names_the_model_lacks_and_bad_values(transfer, match):
    model = models.create("resnet18", num_classes=3, base_features=8)
    with pytest.raises(ValueError, match=match):
        engine.plan(_config(**transfer), model, RESNET_INPUT)


def test_a_strategy_and_hand_written_trainable_are_one_choice():
    config = _config(strategy="feature_extraction")
    config.trainable = ("head",)
    with pytest.raises(ValueError, match="leave config.trainable empty"):
        engine.plan(config, models.create("small_cnn"), (1, 8, 8, 1))


def test_bad_strategy_name_is_refused_by_config_validation(tfds_dir, tmp_path, compile_counter):
    config = digits_config(tfds_dir, **{"transfer.strategy": "topk"})
    with pytest.raises(ValueError, match="config.transfer.strategy must be one of"):
        train_and_evaluate(config, str(tmp_path))
    assert compile_counter.count == 0
