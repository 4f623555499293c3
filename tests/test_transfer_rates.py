"""Discriminative learning rates: the course's per-stage preset and timm's layer decay are
exact multipliers of the base update, under any schedule (timm's ``lr_scale`` needs timm's own
scheduler, timm issue 2532; here the scale comes after the optimizer)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxvision import models
from jaxvision.optim import build_optimizer as build_base
from jaxvision.train import default_config
from jaxvision.transfer import engine
from jaxvision.transfer.strategy import build_optimizer

INPUT = (1, 32, 32, 3)


@pytest.fixture(scope="module")
def resnet18():
    model = models.create("resnet18", num_classes=5, base_features=4)  # small: same structure
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(INPUT), train=False))
    params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), params["params"])
    return model, params


def _config(**optimizer):
    config = default_config()
    config.model = "resnet18"
    config.transfer.strategy = "full"
    config.optimizer.update(dict(weight_decay=0.0, warmup_steps=0, momentum=0.9), **optimizer)
    return config


def _grads(params, seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda l: rng.normal(size=l.shape).astype(np.float32), params)


def _updates(tx, params, steps=3):
    """The per-step updates of ``tx`` on the same random gradients."""
    state, out, update = tx.init(params), [], jax.jit(tx.update)
    for t in range(steps):
        updates, state = update(_grads(params, t), state, params)
        out.append(traverse_util.flatten_dict(updates, sep="/"))
    return out


def _course_factor(path):
    """The per-stage preset, slowest at the stem: conv1 base/10, layer1 /8, layer2 /6, layer3 /4,
    layer4 /2, classifier base."""
    top = path.split("/")[0]
    if top in ("conv1", "bn1"):
        return 1 / 10
    if top == "head":
        return 1.0
    return {"layer1": 1 / 8, "layer2": 1 / 6, "layer3": 1 / 4, "layer4": 1 / 2}[top.split("_")[0]]


@pytest.mark.parametrize("optimizer", [
    dict(name="sgd", schedule="constant", learning_rate=0.1),
    dict(name="momentum", schedule="one_cycle", learning_rate=0.1),
    dict(name="adamw", schedule="cosine", learning_rate=1e-2, weight_decay=0.1),
])
def test_each_stage_moves_by_its_course_multiplier_times_the_base_update(resnet18, optimizer):
    model, params = resnet18
    config = _config(**optimizer)
    config.transfer.lr_decay = "course"
    plan = engine.plan(config, model, INPUT)
    scaled = _updates(build_optimizer(config, plan, total_steps=10), params)
    base = _updates(build_base(config.optimizer, 10), params)
    for step, (s, b) in enumerate(zip(scaled, base)):
        for path in b:
            np.testing.assert_allclose(s[path], _course_factor(path) * b[path], rtol=1e-6,
                                       atol=1e-7, err_msg=f"step {step} {path}")
    assert any(np.abs(b[p]).max() > 1e-3 for b in base for p in b)  # the updates are not ~0


def _timm_layer_id(path):
    """timm's ``group_matcher`` for ResNet (``stem=r'^conv1|bn1|maxpool'``,
    ``blocks=r'^layer(\\d+)\\.(\\d+)'``, the rest last), renumbered 0.. as
    ``group_with_matcher`` does: stem 0, layer<s>.<b> in order, fc last."""
    top = path.split("/")[0]
    if top in ("conv1", "bn1"):
        return 0
    if top == "head":
        return 9
    stage, block = top[len("layer"):].split("_")
    return 1 + 2 * (int(stage) - 1) + int(block)


def test_layer_decay_scales_are_timms_formula_for_a_resnet18(resnet18):
    """timm is not a test dependency, so its formula is computed here by hand:
    ``param_groups_layer_decay`` gives ``decay ** (layer_max - layer_id)`` with
    ``layer_max = num_blocks + 1`` (= ``decay ** (num_layers + 1 - layer_id)`` with
    ``num_layers`` = 8 blocks), with the grouping of ``_timm_layer_id``."""
    model, params = resnet18
    config = _config(name="sgd", schedule="constant", learning_rate=0.1)
    config.transfer.lr_decay, config.transfer.layer_decay = "layer", 0.7
    plan = engine.plan(config, model, INPUT)
    scaled = _updates(build_optimizer(config, plan, total_steps=10), params, steps=1)[0]
    base = _updates(build_base(config.optimizer, 10), params, steps=1)[0]
    for path in base:
        expected = 0.7 ** (8 + 1 - _timm_layer_id(path))
        np.testing.assert_allclose(scaled[path], expected * base[path], rtol=1e-6, atol=1e-8,
                                   err_msg=path)


def test_layer_decay_scales_equal_timms_param_groups(resnet18):
    timm = pytest.importorskip("timm")
    from timm.optim import param_groups_layer_decay

    torch_model = timm.create_model("resnet18", pretrained=False, num_classes=5)
    groups = param_groups_layer_decay(torch_model, weight_decay=0.0, layer_decay=0.7)
    names = {id(p): n for n, p in torch_model.named_parameters()}
    timm_scale = {}
    for group in groups:
        for p in group["params"]:
            top = names[id(p)].split(".")
            key = "head" if top[0] == "fc" else (f"{top[0]}_{top[1]}" if top[0].startswith("layer")
                                                 else top[0])
            timm_scale.setdefault(key, set()).add(group["lr_scale"])
    model, _ = resnet18
    config = _config(name="sgd", schedule="constant", learning_rate=0.1)
    config.transfer.lr_decay, config.transfer.layer_decay = "layer", 0.7
    plan = engine.plan(config, model, INPUT)
    from jaxvision.transfer.rates import layer_decay_multipliers

    ours = layer_decay_multipliers(plan.structure, 0.7)
    for leaf, scale in ours.items():
        assert timm_scale[leaf.split("/")[0]] == {pytest.approx(scale)}, leaf


def test_lr_decay_and_hand_written_multipliers_are_one_choice(resnet18):
    model, _ = resnet18
    config = _config(name="sgd", schedule="constant", learning_rate=0.1)
    config.transfer.lr_decay = "course"
    config.optimizer.lr_multipliers = {"head": 2.0}
    with pytest.raises(ValueError, match="use one"):
        engine.plan(config, model, INPUT)
