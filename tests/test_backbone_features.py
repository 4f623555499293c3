"""``num_classes=None`` backbones: returned features agree with the static ``feature_info``.

Shapes come from ``jax.eval_shape`` (nothing is computed), so every registered model is checked.
A stride is measured as the growth of the map when the input grows by ``STEP`` pixels, which is
exact even where unpadded pools (AlexNet) or valid convs (LeNet) shave pixels off the border.
"""

import math

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import jaxvision.models as models
from jaxvision.models.backbone import Classifier

SIZE, STEP = 64, 64  # STEP: a multiple of every stride, so the map grows by STEP / stride
RNGS = {"params": jax.random.key(0), "dropout": jax.random.key(1)}

# The deepest ResNets only repeat blocks of a shallower registered one (same feature_info code,
# same strides and widths) at seconds of tracing each.
REPEATS = {"resnet101", "resnet152", "se_resnet101", "se_resnet152", "cifar_resnet110",
           "cifar_resnet1202",
           # plain_resnet20 and efficientnet_b0 run the same code (b1..b3: other widths, checked
           # statically in test_efficient_models)
           "plain_resnet32", "plain_resnet56", "efficientnet_b1", "efficientnet_b2",
           "efficientnet_b3"}
# Every registered classifier backbone (dense-prediction models such as tiny_fcn have no head
# to drop).
BACKBONES = [name for name in models.list()
             if isinstance(models.create(name), Classifier) and name not in REPEATS]
CASES = [(name, {}) for name in BACKBONES] + [
    ("resnet18", {"stem": "cifar"}),          # four stages at strides 1..8: c0..c3
    ("vit_t16", {"patch_size": 8}),           # c3
    ("simple_cnn", {"head": "flatten"}),      # pre_logits width depends on the input
    ("mlp", {"hidden": ()}),                  # idem: pre_logits is the flattened image
]


def trace(model, size):
    """(outputs, variables) shapes for a ``size`` x ``size`` RGB batch of one."""
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init_with_output(RNGS, x, train=False), x)


@pytest.mark.parametrize("name, overrides", CASES,
                         ids=[n + "".join(f"-{k}={v}" for k, v in o.items()) for n, o in CASES])
def test_feature_info_matches_returned_features(name, overrides):
    model = models.create(name, num_classes=None, **overrides)
    info = model.feature_info()
    (small, variables), (large, _) = trace(model, SIZE), trace(model, SIZE + STEP)
    assert sorted(small) == sorted(f.name for f in info)
    assert "head" not in variables.get("params", {})  # an MLP without hidden layers has none
    assert info[-1].name == "pre_logits" and info[-1].stride is None
    for f in info:
        a, b = small[f.name], large[f.name]
        if f.stride is None:
            assert a.ndim == 2, f
        else:
            assert a.ndim == 4, f
            assert f.name == "stem" or f.name == f"c{int(math.log2(f.stride))}", f
            grown = (b.shape[1] - a.shape[1], b.shape[2] - a.shape[2])
            assert grown == (STEP // f.stride,) * 2, (f, a.shape, b.shape)
        if f.channels is None:  # documented as input-dependent: it must really be
            assert a.shape[-1] != b.shape[-1], f
        else:
            assert a.shape[-1] == b.shape[-1] == f.channels, (f, a.shape)


FAMILIES = ["resnet18", "se_resnet50", "cifar_resnet20", "wide_resnet16_4", "vgg11_bn",
            "vit_t16", "small_cnn", "simple_cnn", "lenet5", "alexnet", "mlp"]


@pytest.mark.parametrize("name", FAMILIES)
def test_head_is_the_only_difference(name):
    (_, headless), (logits, full) = (trace(models.create(name, num_classes=k), SIZE)
                                     for k in (None, 10))
    assert logits.shape == (1, 10)
    width = models.create(name, num_classes=10).feature_info()[-1].channels
    assert full["params"]["head"]["kernel"].shape == (width, 10)
    without_head = {k: v for k, v in full["params"].items() if k != "head"}
    assert jax.tree.map(lambda s: s.shape, without_head) == \
        jax.tree.map(lambda s: s.shape, headless["params"])


def test_backbone_output_is_what_the_head_reads():
    classifier = models.create("cifar_resnet20", depth=8, num_classes=10)
    backbone = models.create("cifar_resnet20", depth=8, num_classes=None)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    # Random positive values (BN variances must be), not model.init: its per-shape initialiser
    # compiles cost seconds here.
    shapes = jax.eval_shape(lambda: classifier.init(jax.random.key(1), x, train=False))
    variables = jax.tree.map(lambda s: rng.uniform(0.5, 1.0, s.shape).astype(np.float32), shapes)
    head = variables["params"]["head"]
    trunk = {**variables, "params": {k: v for k, v in variables["params"].items() if k != "head"}}
    feats = backbone.apply(trunk, x, train=False)
    logits = classifier.apply(variables, x, train=False)
    np.testing.assert_allclose(feats["pre_logits"] @ head["kernel"] + head["bias"], logits,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(feats["c2"].mean((1, 2)), feats["pre_logits"], rtol=1e-5,
                               atol=1e-6)
    # The sow-based API still works on a backbone, its output being the feature dict.
    sown = models.features(backbone, trunk, x, names=["layer3"], with_output=True)
    np.testing.assert_allclose(sown["layer3"], feats["c2"], rtol=1e-6)
