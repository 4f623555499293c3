"""jaxvision.nn.layers: conv/norm/act injection; each norm and the convolution are one argument."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.nn import layers
from jaxvision.nn.conv import fast_conv_general_dilated

X = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))


def _resnet(**kwargs):
    return models.create("resnet18", num_classes=5, **kwargs)


def test_names_resolve_and_unknown_names_are_errors():
    assert layers.resolve_conv("auto").keywords["conv_general_dilated"] is fast_conv_general_dilated
    assert layers.resolve_conv("xla") is nn.Conv
    assert layers.resolve_norm(None, train=True) is None
    bn = layers.resolve_norm("batch_norm", train=True)
    assert (bn.func, bn.keywords) == (nn.BatchNorm, dict(momentum=0.9, epsilon=1e-5,
                                                          use_running_average=False))
    assert layers.resolve_act("relu6") is nn.relu6 and layers.resolve_act(None) is None
    with pytest.raises(ValueError, match="unknown norm 'batchnorm'.*'batch_norm'"):
        layers.resolve_norm("batchnorm", train=True)
    with pytest.raises(ValueError, match="unknown conv 'fast'"):
        _resnet(conv="fast").init(jax.random.key(0), X, train=False)
    with pytest.raises(TypeError, match="act must be a name or a callable"):
        layers.resolve_act(3)


def test_model_defaults_never_override_what_the_caller_set():
    conv = layers.resolve_conv(functools.partial(nn.Conv, kernel_init=nn.initializers.ones),
                               kernel_init=nn.initializers.zeros, dtype=jnp.bfloat16)
    assert conv.keywords == dict(kernel_init=nn.initializers.ones, dtype=jnp.bfloat16)
    frozen = layers.resolve_norm("frozen_batch_norm", train=True)
    assert frozen.keywords["use_running_average"] is True


@pytest.mark.slow  # 30+ s: the default suite's 20 minutes
def test_default_convolution_is_the_fast_one_and_xla_is_one_argument_away():
    default, xla = _resnet(), _resnet(conv="xla")
    variables = default.init(jax.random.key(1), X, train=False)
    assert jax.tree.structure(variables) == jax.tree.structure(
        xla.init(jax.random.key(1), X, train=False))
    # Inference is XLA's convolution, bit for bit, wherever no kernel has more taps than its
    # input has pixels (at 96 px the last stage's maps are 3x3; see jaxvision.nn.conv).
    images = jax.random.normal(jax.random.key(2), (2, 96, 96, 3))
    np.testing.assert_array_equal(default.apply(variables, images, train=False),
                                  xla.apply(variables, images, train=False))

    def loss_and_grads(model):
        loss = lambda params: model.apply({**variables, "params": params}, X, train=False).sum()
        return jax.value_and_grad(loss)(variables["params"])

    # Differentiated, Winograd/im2col GEMMs: they round differently from XLA's convolution
    # and agree with it to float32 rounding.
    (fast_loss, fast_grads), (xla_loss, xla_grads) = loss_and_grads(default), loss_and_grads(xla)
    fast_leaves, xla_leaves = jax.tree.leaves(fast_grads), jax.tree.leaves(xla_grads)
    assert not all(np.array_equal(f, x) for f, x in zip(fast_leaves, xla_leaves))
    np.testing.assert_allclose(fast_loss, xla_loss, rtol=1e-4)
    for fast, exact in zip(fast_leaves, xla_leaves):
        np.testing.assert_allclose(fast, exact, rtol=1e-3, atol=1e-4 * np.abs(exact).max())
    jaxpr = str(jax.make_jaxpr(lambda: loss_and_grads(default))())
    assert "platform_index" in jaxpr and "dot_general" in jaxpr


@pytest.mark.parametrize("norm,param", [("group_norm", "GroupNorm"), ("layer_norm", "LayerNorm")])
def test_group_and_layer_norm_replace_batch_norm_in_one_argument(norm, param):
    model = _resnet(norm=norm, conv="xla")
    variables = model.init(jax.random.key(2), X, train=False)
    assert "batch_stats" not in variables
    assert set(variables["params"]["bn1"]) == {"scale", "bias"}
    # Same parameter count as with BatchNorm (scale and bias per channel).
    bn_params = _resnet(conv="xla").init(jax.random.key(2), X, train=False)["params"]
    assert sum(p.size for p in jax.tree.leaves(variables["params"])) == sum(
        p.size for p in jax.tree.leaves(bn_params))
    # Per-example normalisation: an example's output does not depend on the rest of the batch.
    both = model.apply(variables, X, train=True)
    alone = model.apply(variables, X[:1], train=True)
    np.testing.assert_allclose(both[:1], alone, rtol=1e-5, atol=1e-5)
    expected = {"group_norm": nn.GroupNorm(num_groups=32, epsilon=1e-5),
                "layer_norm": nn.LayerNorm(epsilon=1e-5)}[norm]
    h = jax.random.normal(jax.random.key(3), (2, 4, 4, 64))
    ours = layers.resolve_norm(norm, train=True)()
    np.testing.assert_array_equal(ours.apply(ours.init(jax.random.key(0), h), h),
                                  expected.apply(expected.init(jax.random.key(0), h), h))


def test_frozen_batch_norm_uses_and_keeps_running_statistics_in_training():
    model = _resnet(norm="frozen_batch_norm", conv="xla")
    variables = model.init(jax.random.key(4), X, train=False)
    stats = jax.tree.map(lambda s: s + 0.5, variables["batch_stats"])
    variables = {**variables, "batch_stats": stats}
    train_out, updated = model.apply(variables, X, train=True, mutable=["batch_stats"])
    np.testing.assert_array_equal(train_out, model.apply(variables, X, train=False))
    jax.tree.map(np.testing.assert_array_equal, updated["batch_stats"], stats)


def test_sync_batch_norm_only_for_batch_norms_that_compute_statistics():
    synced = layers.sync_batch_norm("batch_norm", "data")
    assert synced.keywords["axis_name"] == "data"
    for norm in ("frozen_batch_norm", "group_norm", "layer_norm", None):
        assert layers.sync_batch_norm(norm, "data") is None


@pytest.mark.parametrize("name", ["small_cnn", "simple_cnn", "vgg11_bn", "cifar_resnet20",
                                  "wide_resnet16_4", "lenet5", "alexnet", "vit_t16", "tiny_fcn"])
def test_every_family_builds_its_layers_from_the_injected_ones(name):
    convs, acts = [], []

    def conv(*args, **kwargs):
        convs.append(kwargs["name"])
        return nn.Conv(*args, **kwargs)

    def act(v):
        acts.append(v.shape)
        return nn.relu(v)

    fields = set(models.create(name).__dataclass_fields__)
    kwargs = dict(conv=conv, act=act)
    if "norm" in fields:
        kwargs["norm"] = "layer_norm"
    if name != "tiny_fcn":
        kwargs["num_classes"] = 3
    size = 224 if name in ("alexnet", "vit_t16") else 32
    variables = jax.eval_shape(lambda: models.create(name, **kwargs).init(
        jax.random.key(0), jnp.zeros((1, size, size, 3)), train=False))
    kernels = [path for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]
               if path[-1].key == "kernel" and leaf.ndim == 4]
    assert len(convs) == len(kernels) > 0
    assert acts
    assert "batch_stats" not in variables
