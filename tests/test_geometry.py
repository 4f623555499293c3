"""Output-size and parameter-count formulas: worked examples (with the usual slips corrected) and
independent checks against XLA shapes, PyTorch shapes and Flax parameter trees."""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxvision.ops.geometry import (batch_norm_param_count, conv_mac_count, conv_output_size,
                                    conv_param_count, conv_transpose_output_size,
                                    dense_param_count, depthwise_separable_param_count,
                                    effective_kernel_size, param_count, pool_output_size,
                                    same_padding)


# (n, k, p, s) -> size: worked examples and a 32x32 input with a 3x3 kernel.
@pytest.mark.parametrize("n,k,p,s,want", [
    (5, 3, 0, 1, 3), (5, 3, 1, 1, 5), (5, 3, 1, 2, 3), (5, 3, 0, 2, 2), (28, 3, 0, 1, 26),
    (224, 3, 1, 1, 224), (224, 7, 3, 2, 112), (32, 5, 0, 1, 28),
    (7, 3, 0, 1, 5), (7, 3, 0, 2, 3), (7, 3, 1, 1, 7),
    (32, 3, 0, 1, 30), (32, 3, 1, 1, 32), (32, 3, 0, 2, 15), (32, 3, 1, 2, 16),
    (32, 3, 2, 1, 34), (32, 3, 1, 3, 11),
])
def test_course_output_sizes(n, k, p, s, want):
    assert conv_output_size(n, kernel_size=k, padding=p, stride=s) == want


def test_valid_same_and_dilation():
    assert conv_output_size(28, kernel_size=5, padding="valid") == 24          # n - k + 1
    assert conv_output_size(28, kernel_size=5, padding="same") == 28           # p = (k-1)/2
    assert same_padding(3) == ((1, 1),) and same_padding(4) == ((1, 2),)
    assert same_padding((3, 5), dilation=2) == ((2, 2), (4, 4))
    # 3x3 at dilation 2 covers 5x5; W=7, K=3, D=2 -> 3.
    assert effective_kernel_size(3, 2) == 5
    assert conv_output_size(7, kernel_size=3, dilation=2) == 3
    # Per-axis form, asymmetric padding.
    assert conv_output_size((7, 9), kernel_size=(3, 1), stride=(2, 1),
                            padding=((1, 0), (0, 2))) == (3, 11)


def test_resnet_stem_sizes():
    # ResNet's stem: 224 -> 7x7/2 pad 3 -> 112 -> max-pool 3x3/2 pad 1 -> 56; /32 -> 7.
    after_conv = conv_output_size(224, kernel_size=7, stride=2, padding=3)
    assert after_conv == 112
    assert pool_output_size(after_conv, window=3, stride=2, padding=1) == 56
    # AlexNet: 227 -> 11x11/4 -> 55 -> pool 3/2 -> 27 -> 13 -> 6.
    size = conv_output_size(227, kernel_size=11, stride=4)
    sizes = [size]
    for _ in range(3):
        size = pool_output_size(size, window=3, stride=2)
        sizes.append(size)
    assert sizes == [55, 27, 13, 6]


def test_conv_output_size_matches_xla_shapes():
    x = jnp.zeros((1, 11, 1))
    for k, s, d, lo, hi in itertools.product((1, 2, 3), (1, 2, 3), (1, 2), (0, 1, 2), (0, 1)):
        if d * (k - 1) + 1 > 11 + lo + hi:
            continue
        out = jax.eval_shape(lambda v: lax.conv_general_dilated(
            v, jnp.zeros((k, 1, 1)), (s,), [(lo, hi)], rhs_dilation=(d,),
            dimension_numbers=("NWC", "WIO", "NWC")), x)
        assert conv_output_size((11,), kernel_size=k, stride=s, dilation=d,
                                padding=[(lo, hi)]) == (out.shape[1],)


def test_transposed_output_size_inverts_conv_and_matches_lax():
    for n, k, s, p in itertools.product((4, 7), (2, 3, 4), (1, 2, 3), (0, 1)):
        if p >= k:
            continue
        up = conv_transpose_output_size(n, kernel_size=k, stride=s, padding=p)
        assert up == (n - 1) * s - 2 * p + k                      # the course's (W-1)S - 2P + K
        assert conv_output_size(up, kernel_size=k, stride=s, padding=p) == n
        out = jax.eval_shape(lambda v: lax.conv_transpose(
            v, jnp.zeros((k, 1, 1)), (s,), [(k - 1 - p, k - 1 - p)],
            dimension_numbers=("NWC", "WIO", "NWC")), jnp.zeros((1, n, 1)))
        assert out.shape[1] == up
    # A conv autoencoder's decoder: k=2, s=2 doubles 7 -> 14 -> 28.
    assert conv_transpose_output_size((7, 14), kernel_size=2, stride=2) == (14, 28)
    assert conv_transpose_output_size(4, kernel_size=3, stride=2, padding=1,
                                      output_padding=1) == 8


def test_pool_output_size_matches_torch():
    torch = pytest.importorskip("torch")
    for n, k, s, p, ceil in itertools.product((5, 8, 11), (2, 3), (1, 2, 3), (0, 1), (False, True)):
        if 2 * p > k:
            continue
        want = torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), k, s, p,
                                              ceil_mode=ceil).shape[-1]
        assert pool_output_size(n, window=k, stride=s, padding=p, ceil_mode=ceil) == want


def test_size_errors():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(2, kernel_size=3)
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose_output_size(4, kernel_size=3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="one per spatial axis"):
        conv_output_size((4, 4), kernel_size=(3, 3, 3))


# --------------------------------------------------------------------------- parameter counts


def test_course_parameter_counts():
    # 64 single-channel 3x3 kernels -> 640; nn.Conv2d(3, 64, 3) -> 1,792 (27 weights + 1 bias each).
    assert conv_param_count(in_channels=1, out_channels=64, kernel_size=3) == 640
    assert conv_param_count(in_channels=3, out_channels=64, kernel_size=3) == 1792
    # 784 x 100 = 78,400 weights; with bias 78,500; MLP 784-100-10 = 79,510.
    assert dense_param_count(in_features=784, out_features=100, bias=False) == 78_400
    assert dense_param_count(in_features=784, out_features=100) == 78_500
    assert 78_500 + dense_param_count(in_features=100, out_features=10) == 79_510
    # A plain 256 -> 256 3x3 conv without bias.
    plain = conv_param_count(in_channels=256, out_channels=256, kernel_size=3, bias=False)
    assert plain == 589_824
    # Bottleneck 1x1 256->64, 3x3 64->64, 1x1 64->256; 81,920 (~86% saved) is often quoted,
    # wrongly.
    bottleneck = (conv_param_count(in_channels=256, out_channels=64, kernel_size=1, bias=False)
                  + conv_param_count(in_channels=64, out_channels=64, kernel_size=3, bias=False)
                  + conv_param_count(in_channels=64, out_channels=256, kernel_size=1, bias=False))
    assert bottleneck == 69_632
    assert round(100 * (1 - bottleneck / plain), 2) == 88.19
    assert (conv_param_count(in_channels=256, out_channels=64, kernel_size=1)
            + conv_param_count(in_channels=64, out_channels=64, kernel_size=3)
            + conv_param_count(in_channels=64, out_channels=256, kernel_size=1)) == 70_016
    # 73,728 (87.5% saved) is often quoted for 32 groups; that is 8 groups. 32 give 18,432.
    assert conv_param_count(in_channels=256, out_channels=256, kernel_size=3, groups=32,
                            bias=False) == 18_432
    assert conv_param_count(in_channels=256, out_channels=256, kernel_size=3, groups=8,
                            bias=False) == 73_728
    # Inverted residual 64 -> 384 (1x1) -> depthwise 3x3 -> 64 (1x1).
    assert (conv_param_count(in_channels=64, out_channels=384, kernel_size=1, bias=False)
            + conv_param_count(in_channels=384, out_channels=384, kernel_size=3, groups=384,
                               bias=False)
            + conv_param_count(in_channels=384, out_channels=64, kernel_size=1, bias=False)
            ) == 52_608
    # Depthwise separable.
    assert depthwise_separable_param_count(in_channels=256, out_channels=256,
                                           kernel_size=3) == 67_840
    assert depthwise_separable_param_count(in_channels=128, out_channels=256,
                                           kernel_size=3) == 33_920
    assert conv_param_count(in_channels=128, out_channels=256, kernel_size=3,
                            bias=False) == 294_912
    # DepthwiseSeparableConv(32, 64) (DW 288 + PW 2,048 + BN 64 + BN 128).
    assert (depthwise_separable_param_count(in_channels=32, out_channels=64, kernel_size=3)
            + batch_norm_param_count(32) + batch_norm_param_count(64)) == 2_528
    # VGG's argument: two 3x3 (18 C^2) vs one 5x5 (25 C^2); three 3x3 27 C^2 vs 7x7 49 C^2.
    c = 64
    assert 3 * conv_param_count(in_channels=c, out_channels=c, kernel_size=3,
                                bias=False) == 27 * c * c
    assert conv_param_count(in_channels=c, out_channels=c, kernel_size=7, bias=False) == 49 * c * c
    # Flatten 7x7x512 -> 4096 vs GAP 512 -> 4096 (with bias); reduction 1 - 1/49.
    flat = dense_param_count(in_features=7 * 7 * 512, out_features=4096)
    gap = dense_param_count(in_features=512, out_features=4096)
    assert (flat, gap) == (102_764_544, 2_101_248)
    # ResNet-50's 2048x7x7 head: 100,353,000 vs 2,049,000 parameters for 1000 classes.
    assert dense_param_count(in_features=2048 * 49, out_features=1000) == 100_353_000
    assert dense_param_count(in_features=2048, out_features=1000) == 2_049_000


@pytest.mark.parametrize("cin,cout,k,groups,bias", [
    (3, 64, 3, 1, True), (32, 64, 3, 32, False), (256, 256, 3, 32, False), (12, 8, (3, 5), 4, True),
])
def test_formula_matches_flax_parameter_tree(cin, cout, k, groups, bias):
    kernel = (k, k) if isinstance(k, int) else k
    conv = nn.Conv(cout, kernel, feature_group_count=groups, use_bias=bias)
    shapes = jax.eval_shape(conv.init, jax.random.key(0), jnp.zeros((1, 8, 8, cin)))
    assert param_count(shapes["params"]) == conv_param_count(
        in_channels=cin, out_channels=cout, kernel_size=k, groups=groups, bias=bias)


def test_macs_quarter_after_downsampling():
    # Each 2x downsampling of H and W cuts compute by 75%.
    full = conv_mac_count(output_size=(32, 32), in_channels=64, out_channels=64, kernel_size=3)
    half = conv_mac_count(output_size=(16, 16), in_channels=64, out_channels=64, kernel_size=3)
    assert half / full == 0.25
    assert full == 32 * 32 * 64 * 9 * 64


def test_param_count_errors():
    with pytest.raises(ValueError, match="groups=3"):
        conv_param_count(in_channels=4, out_channels=8, kernel_size=3, groups=3)
    assert param_count({"a": np.zeros((2, 3)), "b": [np.zeros(4)]}) == 10
