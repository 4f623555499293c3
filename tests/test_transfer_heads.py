"""Heads, their initialisations and residual adapters: the usual head layers
checked against torch, and adapters that start as the identity and are all that trains."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from jaxvision.models.resnet import ResNet
from jaxvision.train import StepOptions, create_train_state, default_config, make_train_step
from jaxvision.transfer import (BottleneckHead, MLPHead, TransferModel, dirac_init, engine,
                                prior_bias_init)


def _flat(tree):
    return traverse_util.flatten_dict(tree, sep="/")


def test_dirac_init_makes_a_1x1_conv_the_identity():
    x = jax.random.normal(jax.random.key(0), (2, 5, 5, 6))
    import flax.linen as nn

    conv = nn.Conv(6, (1, 1), kernel_init=dirac_init)
    out = conv.apply(conv.init(jax.random.key(1), x), x)
    np.testing.assert_array_equal(out, x)
    with pytest.raises(ValueError, match="square 1x1"):
        dirac_init(None, (3, 3, 6, 6))


def test_prior_bias_init_predicts_the_priors():
    priors = np.array([0.7, 0.2, 0.1])
    bias = prior_bias_init(priors)(None, (3,))
    np.testing.assert_allclose(jax.nn.softmax(bias), priors, rtol=1e-6)
    sigmoid_bias = prior_bias_init(0.01, sigmoid=True)(None, (4,))
    np.testing.assert_allclose(jax.nn.sigmoid(sigmoid_bias), 0.01, rtol=1e-5)
    np.testing.assert_allclose(sigmoid_bias, -np.log(0.99 / 0.01), rtol=1e-6)  # RetinaNet's
    with pytest.raises(ValueError, match="sum to 1"):
        prior_bias_init([0.5, 0.4])


def test_mlp_head_equals_torchs_in_eval_mode():
    """Linear -> BatchNorm1d -> ReLU -> Dropout(0.3), twice, then Linear."""
    torch = pytest.importorskip("torch")
    head = MLPHead(4, hidden=(8, 6))
    x = np.random.default_rng(0).normal(size=(5, 10)).astype(np.float32)
    variables = head.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                          {"pre_logits": x}, train=False)
    rng = np.random.default_rng(1)
    stats = jax.tree.map(lambda s: rng.uniform(0.5, 1.5, s.shape).astype(np.float32),
                         variables["batch_stats"])
    p = variables["params"]
    layers = []
    for i, (fan_in, width) in enumerate(((10, 8), (8, 6))):
        linear, bn = torch.nn.Linear(fan_in, width), torch.nn.BatchNorm1d(width, eps=1e-5)
        linear.weight.data = torch.tensor(np.asarray(p[f"fc{i}"]["kernel"]).T.copy())
        linear.bias.data = torch.tensor(np.asarray(p[f"fc{i}"]["bias"]))
        bn.weight.data = torch.tensor(np.asarray(p[f"bn{i}"]["scale"]))
        bn.bias.data = torch.tensor(np.asarray(p[f"bn{i}"]["bias"]))
        bn.running_mean = torch.tensor(np.asarray(stats[f"bn{i}"]["mean"]))
        bn.running_var = torch.tensor(np.asarray(stats[f"bn{i}"]["var"]))
        layers += [linear, bn, torch.nn.ReLU(), torch.nn.Dropout(0.3)]
    last = torch.nn.Linear(6, 4)
    last.weight.data = torch.tensor(np.asarray(p["fc"]["kernel"]).T.copy())
    last.bias.data = torch.tensor(np.asarray(p["fc"]["bias"]))
    reference = torch.nn.Sequential(*layers, last).eval()
    ours = head.apply({"params": p, "batch_stats": stats}, {"pre_logits": x}, train=False)
    np.testing.assert_allclose(ours, reference(torch.tensor(x)).detach().numpy(), atol=1e-5)


def test_bottleneck_head_halves_then_quarters_the_width():
    head = BottleneckHead(3)
    p = head.init(jax.random.key(0), {"pre_logits": jnp.zeros((1, 32))}, train=False)["params"]
    assert [p[n]["kernel"].shape for n in ("fc0", "fc1", "fc")] == [(32, 16), (16, 8), (8, 3)]


@pytest.fixture(scope="module")
def adapted():
    # A two-stage ResNet with one block per stage: ResNet-18's names, a quick compile.
    backbone = ResNet(stage_sizes=(1, 1), num_classes=3, base_features=4)
    model = TransferModel(backbone, adapters_after=("layer1_0", "layer2_0"))
    x = jax.random.uniform(jax.random.key(0), (4, 32, 32, 3))
    variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
    return backbone, model, variables, x


@pytest.mark.slow
def test_adapters_start_as_the_identity(adapted):
    backbone, model, variables, x = adapted
    assert {"adapter_layer1_0", "adapter_layer2_0"} <= set(variables["params"])
    plain = {"params": {k: v for k, v in variables["params"].items()
                        if not k.startswith("adapter_")},
             "batch_stats": variables["batch_stats"]}
    apply = lambda m, v: jax.jit(lambda v, x: m.apply(v, x, train=False))(v, x)  # noqa: E731
    np.testing.assert_array_equal(apply(model, variables), apply(backbone, plain))


@pytest.mark.slow
def test_with_adapters_only_the_adapters_and_the_head_train(adapted):
    _, model, _, x = adapted
    config = default_config()
    config.transfer.adapters_after = ("layer1_0", "layer2_0")
    plan = engine.plan(config, model, (1, 32, 32, 3))
    state = jax.jit(functools.partial(create_train_state, model, optax.sgd(0.1), seed=0,
                                      input_shape=(1, 32, 32, 3), freeze=plan.freeze))()
    step = jax.jit(make_train_step(StepOptions(learning_rate_fn=lambda s: 0.1,
                                               freeze=plan.freeze)))
    new, _ = step(state, {"image": np.asarray(x), "label": np.array([0, 1, 2, 0], np.int32)})
    before, after = _flat(state.params), _flat(new.params)
    moved = {p.split("/")[0] for p in before if not np.array_equal(before[p], after[p])}
    assert moved == {"adapter_layer1_0", "adapter_layer2_0", "head"}
    assert plan.dont_load == ("^(adapter_layer1_0|adapter_layer2_0)(/|$)",)
