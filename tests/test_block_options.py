"""Normalisation, padding and downsampling options of the CNN blocks, against PyTorch.

``padding_mode`` must match ``torch.nn.Conv2d(padding_mode=...)`` (pad, then convolve without
padding), every norm its torch layer, and pooled downsampling a stride-1 conv then a pool.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.nn import BasicBlock, Bottleneck, ConvBNAct, DenseLayer, PreActBlock
from jaxvision.ops import param_count

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 7, 6, 4)).astype(np.float32)  # odd/even sizes: asymmetric cases show


def _torch(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _numpy(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("strides,dilation", [(1, 1), (2, 1), (1, 2)])
def test_padding_mode_matches_torch_conv2d(mode, strides, dilation):
    block = ConvBNAct(5, 3, strides=strides, dilation=dilation, norm=None, act=None, conv="xla",
                      padding_mode=mode)
    variables = block.init(jax.random.key(0), X, train=False)
    ours = jax.jit(lambda v, x: block.apply(v, x, train=False))(variables, X)
    ref = torch.nn.Conv2d(4, 5, 3, stride=strides, padding=dilation, dilation=dilation,
                          padding_mode=mode)
    params = variables["params"]["conv"]
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(np.array(params["kernel"]).transpose(3, 2, 0, 1)))
        ref.bias.copy_(torch.from_numpy(np.array(params["bias"])))
        want = _numpy(ref(_torch(X)))
    assert ours.shape == want.shape
    np.testing.assert_allclose(ours, want, atol=1e-5)


def _torch_norm(kind, channels):
    return {"batch": lambda: torch.nn.BatchNorm2d(channels),
            "group": lambda: torch.nn.GroupNorm(32, channels),
            "instance": lambda: torch.nn.InstanceNorm2d(channels, affine=True),
            "none": lambda: torch.nn.Identity()}[kind]()


@pytest.mark.parametrize("kind", ["batch", "group", "instance", "layer", "none"])
def test_every_norm_matches_torch(kind):
    x = RNG.normal(size=(3, 5, 5, 4)).astype(np.float32)
    block = ConvBNAct(64, 3, norm=kind, conv="xla")
    variables = block.init(jax.random.key(1), x, train=False)
    ours, _ = jax.jit(lambda v, x: block.apply(v, x, train=True, mutable=["batch_stats"]))(
        variables, x)
    params = variables["params"]
    conv = torch.nn.Conv2d(4, 64, 3, padding=1, bias=kind == "none")
    with torch.no_grad():
        kernel = np.array(params["conv"]["kernel"]).transpose(3, 2, 0, 1)
        conv.weight.copy_(torch.from_numpy(kernel))
        if kind == "none":
            conv.bias.copy_(torch.from_numpy(np.array(params["conv"]["bias"])))
        y = conv(_torch(x))
        if kind == "layer":  # over the channels of each pixel (ConvNeXt's LayerNorm)
            y = torch.nn.functional.layer_norm(y.permute(0, 2, 3, 1), (64,), eps=1e-5)
            want = _numpy(torch.relu(y).permute(0, 3, 1, 2))
        else:
            want = _numpy(torch.relu(_torch_norm(kind, 64).train()(y)))
    np.testing.assert_allclose(ours, want, atol=2e-5)
    assert ("bn" in params) == (kind != "none") and ("bias" in params["conv"]) == (kind == "none")


def _shapes(block, x):
    return jax.eval_shape(lambda: block.init(jax.random.key(0), x, train=False))


@pytest.mark.parametrize("block", [BasicBlock(64, strides=2), PreActBlock(64, strides=2),
                                   Bottleneck(16, strides=2, base_width=128)])
@pytest.mark.parametrize("norm", ["batch", "group", "layer", "instance", "none"])
def test_residual_blocks_take_every_norm(block, norm):
    x = jnp.asarray(RNG.normal(size=(2, 8, 8, 32)).astype(np.float32))
    block = block.clone(norm=norm, conv="xla")
    variables = _shapes(block, x)
    out = jax.eval_shape(lambda v: block.apply(v, x, train=True, mutable=True)[0], variables)
    assert out.shape == (2, 4, 4, 64)
    params = variables["params"]
    base = _shapes(block.clone(norm="batch"), x)["params"]
    convs = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(base)
             if "kernel" in jax.tree_util.keystr(path)]
    if norm == "none":  # no norm parameters; every conv gets a bias instead
        assert param_count(params) == sum(k.size + k.shape[-1] for k in convs)
    else:  # every norm here has a scale and a bias per channel
        assert param_count(params) == param_count(base)


@pytest.mark.parametrize("name,kwargs", [
    ("resnet18", dict(stage_sizes=(1, 1, 1, 1), base_features=8)),
    ("resnet18", dict(stem="cifar", base_features=8)), ("cifar_resnet20", {}),
    ("plain_resnet20", {}), ("wide_resnet16_4", {})])
def test_whole_resnets_take_norm_none(name, kwargs):
    """The stems and final norms follow the blocks: no norm state, and every conv biased."""
    from jaxvision import models

    x = jnp.zeros((2, 32, 32, 3))
    model = models.create(name, num_classes=10, norm="none", conv="xla", **kwargs)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    assert set(variables) == {"params"}
    kernels = [jax.tree_util.keystr(p) for p, _ in
               jax.tree_util.tree_leaves_with_path(variables["params"]) if "kernel" in str(p)]
    flat = {jax.tree_util.keystr(p) for p, _ in
            jax.tree_util.tree_leaves_with_path(variables["params"])}
    assert kernels and all(k.replace("kernel", "bias") in flat for k in kernels)
    out = model.apply(jax.tree.map(lambda s: jnp.full(s.shape, 0.01, s.dtype), variables), x,
                      train=True)
    assert out.shape == (2, 10)


@pytest.mark.parametrize("pool", ["max_pool", "avg_pool"])
def test_downsampling_by_pooling_is_a_stride_1_conv_then_a_pool(pool):
    x = RNG.normal(size=(2, 8, 8, 4)).astype(np.float32)
    block = ConvBNAct(6, 3, strides=2, norm=None, act=None, conv="xla", downsample=pool)
    variables = block.init(jax.random.key(0), x, train=False)
    params = variables["params"]["conv"]
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.array(params["kernel"]).transpose(3, 2, 0, 1)))
        conv.bias.copy_(torch.from_numpy(np.array(params["bias"])))
        torch_pool = torch.nn.MaxPool2d(2) if pool == "max_pool" else torch.nn.AvgPool2d(2)
        want = _numpy(torch_pool(conv(_torch(x))))
    np.testing.assert_allclose(block.apply(variables, x, train=False), want, atol=1e-5)
    # The residual blocks keep their parameter tree, so strided weights load into pooled ones.
    for cls, features in ((BasicBlock, 8), (Bottleneck, 4), (PreActBlock, 8)):
        pooled = cls(features, strides=2, conv="xla", downsample=pool)
        strided = cls(features, strides=2, conv="xla")
        shapes = [_shapes(b, x) for b in (pooled, strided)]
        assert jax.tree.map(lambda a: a.shape, shapes[0]) == jax.tree.map(lambda a: a.shape,
                                                                          shapes[1])
        assert jax.eval_shape(lambda v: pooled.apply(v, x, train=False), shapes[0]).shape[1:3] \
            == (4, 4)


def test_dense_layer_padding_mode_and_bad_options():
    x = RNG.normal(size=(1, 6, 6, 8)).astype(np.float32)
    layer = DenseLayer(4, padding_mode="circular", conv="xla")
    variables = jax.jit(lambda x: layer.init(jax.random.key(0), x, train=False))(x)
    apply = jax.jit(lambda x: layer.apply(variables, x, train=False))
    shifted = np.roll(x, 2, axis=2)  # circular padding: shifting the input shifts the output
    np.testing.assert_allclose(apply(shifted), np.roll(apply(x), 2, axis=2), atol=1e-5)
    with pytest.raises(ValueError, match="padding_mode"):
        ConvBNAct(4, padding_mode="symmetric").init(jax.random.key(0), x, train=False)
    with pytest.raises(ValueError, match="downsample"):
        BasicBlock(8, strides=2, downsample="conv").init(jax.random.key(0), x, train=False)
