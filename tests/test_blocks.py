"""jaxvision.nn blocks: parameter counts worked out by hand and by torch."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jaxvision import nn as jvnn
from jaxvision.nn.layers import sync_batch_norm


def param_leaves(module, input_shape):
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(input_shape),
                                                **({} if isinstance(module, jvnn.SEBlock)
                                                   else {"train": False})))
    return jax.tree_util.tree_flatten_with_path(shapes["params"])[0]


def count(module, input_shape, only_kernels=False):
    return sum(leaf.size for path, leaf in param_leaves(module, input_shape)
               if not only_kernels or path[-1].key == "kernel")


@pytest.mark.parametrize("block, in_ch, expected", [
    (jvnn.BasicBlock(64), 64, 73_984),                  # ResidualBlock(64, 64)
    (jvnn.BasicBlock(128, strides=2), 64, 230_144),     # ResidualBlock(64, 128, stride=2)
    (jvnn.Bottleneck(64), 256, 70_400),                 # BottleneckBlock(256, 64)
    (jvnn.Bottleneck(64), 64, 75_008),                  # BottleneckBlock(64, 64), projection
    (jvnn.DepthwiseSeparableConv(64), 32, 2_528),       # DepthwiseSeparableConv(32, 64)
])
def test_course_block_parameter_counts(block, in_ch, expected):
    assert count(block, (1, 8, 8, in_ch)) == expected


def test_conv_weight_counts_of_c2_reductions():
    # Bottleneck 256 -> 64 -> 256 conv weights 69,632 (81,920, often quoted, is wrong).
    assert count(jvnn.Bottleneck(64), (1, 8, 8, 256), only_kernels=True) == 69_632
    # 3x3 256 -> 256 with 32 groups = 18,432; with 8 groups = 73,728; plain = 589,824.
    for groups, expected in ((32, 18_432), (8, 73_728), (1, 589_824)):
        conv = jvnn.ConvBNAct(256, 3, groups=groups)
        assert count(conv, (1, 8, 8, 256), only_kernels=True) == expected
    # Inverted residual 64 -> 384 -> 64 conv weights 52,608.
    assert count(jvnn.InvertedResidual(64, expand_ratio=6), (1, 8, 8, 64),
                 only_kernels=True) == 52_608
    # Depthwise-separable 256 -> 256: 256*9 + 256*256 = 67,840 conv weights.
    assert count(jvnn.DepthwiseSeparableConv(256), (1, 8, 8, 256), only_kernels=True) == 67_840


def test_se_block_count_and_gating():
    se = jvnn.SEBlock(reduction=16)
    assert count(se, (1, 4, 4, 256)) == 8_464  # 256 -> 16 -> 256 with biases
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, 32))
    variables = se.init(jax.random.key(1), x)
    y = se.apply(variables, x)
    gate = y / x  # one sigmoid gate per (example, channel), constant over space
    assert np.allclose(gate, gate[:, :1, :1, :], atol=1e-5)
    assert np.all((np.asarray(gate) > 0) & (np.asarray(gate) < 1))


def test_inception_and_dense_block_counts_from_arithmetic():
    # GoogLeNet inception 3a on 192 channels: 64 | 96->128 | 16->32 (5x5) | pool->32.
    convs = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    bns = 2 * (64 + 96 + 128 + 16 + 32 + 32)
    block = jvnn.InceptionBlock(64, 96, 128, 16, 32, 32)
    assert count(block, (1, 8, 8, 192)) == convs + bns
    y = block.apply(block.init(jax.random.key(0), jnp.ones((1, 8, 8, 192)), train=False),
                    jnp.ones((1, 8, 8, 192)), train=False)
    assert y.shape == (1, 8, 8, 256)
    # DenseNet-121 block 1: 6 layers, k=32, bn_size=4, from 64 channels.
    expected = sum(2 * c + c * 128 + 2 * 128 + 128 * 32 * 9 for c in (64 + 32 * i for i in range(6)))
    dense = jvnn.DenseBlock(6, growth_rate=32)
    assert count(dense, (1, 8, 8, 64)) == expected
    out = jax.eval_shape(lambda: dense.init_with_output(jax.random.key(0), jnp.ones((1, 8, 8, 64)),
                                                        train=False)[0])
    assert out.shape == (1, 8, 8, 64 + 6 * 32)


def test_option_a_shortcut_is_parameter_free_and_zero_pads():
    block = jvnn.BasicBlock(32, strides=2, shortcut_kind="option_a")
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    variables = block.init(jax.random.key(1), x, train=False)
    assert "downsample_conv" not in variables["params"]
    # Zero the residual branch (bn2 scale and bias): the output is relu(shortcut).
    params = jax.tree.map(lambda a: a, variables["params"])
    params["bn2"] = {"scale": jnp.zeros(32), "bias": jnp.zeros(32)}
    y = block.apply({**variables, "params": params}, x, train=False)
    expected = np.zeros((2, 4, 4, 32), np.float32)
    expected[..., 8:24] = np.maximum(np.asarray(x)[:, ::2, ::2, :], 0)
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_drop_path_drops_whole_examples_and_keeps_the_mean():
    layer = jvnn.DropPath(0.25)
    x = jnp.ones((4000, 3, 3, 2))
    y = np.asarray(layer.apply({}, x, train=True, rngs={"dropout": jax.random.key(0)}))
    per_example = y.reshape(4000, -1)
    assert np.all(np.isclose(per_example, 0.0) | np.isclose(per_example, 1 / 0.75))
    assert np.all(per_example.min(1) == per_example.max(1))  # whole examples only
    assert abs((per_example[:, 0] == 0).mean() - 0.25) < 0.03
    assert abs(y.mean() - 1.0) < 0.05
    np.testing.assert_array_equal(layer.apply({}, x, train=False), x)


def test_conv_bn_act_stride2_pads_like_pytorch():
    # 3x3 stride 2 on 8x8 with symmetric padding 1 samples pixel 0 at the first output's
    # centre row/col 0 (Flax "SAME" would pad (0, 1) and centre it at row 1).
    conv = jvnn.ConvBNAct(1, 3, strides=2, norm=None, act=None)
    x = jnp.zeros((1, 8, 8, 1)).at[0, 0, 0, 0].set(1.0)
    kernel = jnp.zeros((3, 3, 1, 1)).at[1, 1, 0, 0].set(1.0)
    y = conv.apply({"params": {"conv": {"kernel": kernel, "bias": jnp.zeros(1)}}}, x, train=False)
    assert y.shape == (1, 4, 4, 1) and float(y[0, 0, 0, 0]) == 1.0


def test_bottleneck_matches_torch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.manual_seed(0)
    conv1, conv2, conv3 = (tnn.Conv2d(32, 16, 1, bias=False), tnn.Conv2d(16, 16, 3, 2, 1, bias=False),
                           tnn.Conv2d(16, 64, 1, bias=False))
    down = tnn.Conv2d(32, 64, 1, 2, bias=False)
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 32)).astype(np.float32)
    with torch.no_grad():
        t = torch.from_numpy(x.transpose(0, 3, 1, 2))
        expected = torch.relu(conv3(torch.relu(conv2(torch.relu(conv1(t))))) + down(t))
    to_hwio = lambda c: jnp.asarray(c.weight.detach().numpy().transpose(2, 3, 1, 0))
    bn = lambda c: {"scale": jnp.ones(c), "bias": jnp.zeros(c)}
    stats = lambda c: {"mean": jnp.zeros(c), "var": jnp.ones(c) - 1e-5}  # BN == identity
    params = {"conv1": {"kernel": to_hwio(conv1)}, "conv2": {"kernel": to_hwio(conv2)},
              "conv3": {"kernel": to_hwio(conv3)}, "downsample_conv": {"kernel": to_hwio(down)},
              "bn1": bn(16), "bn2": bn(16), "bn3": bn(64), "downsample_bn": bn(64)}
    batch_stats = {k: stats(v["scale"].shape[0]) for k, v in params.items() if "scale" in v}
    y = jvnn.Bottleneck(16, strides=2).apply({"params": params, "batch_stats": batch_stats},
                                             jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(y).transpose(0, 3, 1, 2), expected.numpy(), atol=1e-5)


def test_synced_batch_norm_syncs_statistics_across_shards():
    block = jvnn.ConvBNAct(4, 3, norm=sync_batch_norm("batch_norm", "data"))
    plain = jvnn.ConvBNAct(4, 3)
    x = jax.random.normal(jax.random.key(0), (8, 5, 5, 3)) * 3 + 1
    variables = plain.init(jax.random.key(1), x, train=False)
    full, _ = plain.apply(variables, x, train=True, mutable=["batch_stats"])
    sharded = jax.vmap(lambda xs: block.apply(variables, xs, train=True, mutable=["batch_stats"])[0],
                       axis_name="data")(x.reshape(2, 4, 5, 5, 3))
    np.testing.assert_allclose(sharded.reshape(full.shape), full, atol=1e-5)
