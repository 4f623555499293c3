"""MobileNetV2, EfficientNet, the 2012 AlexNet and plain ResNets (issue 19).

Expected numbers come from torchvision (``meta["num_params"]``), the papers or counts worked
out by hand from the layer sizes, never from these models' own output. Shapes
and counts use ``jax.eval_shape``: nothing is allocated, even for the 62M-parameter AlexNet.
"""

import math

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import jaxvision.models as models
from jaxvision.models.alexnet import local_response_norm
from jaxvision.models.efficientnet import compound_scale
from jaxvision.models.mobilenet import make_divisible

RNGS = {"params": jax.random.key(0), "dropout": jax.random.key(1)}


def shapes(name, size, **overrides):
    """``(params shapes, intermediates shapes, output shape)`` of one ``size`` px RGB image."""
    model = models.create(name, **overrides)
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)

    def run(x):
        variables = model.init(RNGS, x, train=False)
        out, state = model.apply(variables, x, train=False, mutable=["intermediates"])
        return variables["params"], {k: v[-1] for k, v in state["intermediates"].items()}, out

    return jax.eval_shape(run, x)


def param_tree(name, size, **overrides):
    model = models.create(name, **overrides)
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(RNGS, x, train=False), x)["params"]


def count(tree) -> int:
    return sum(leaf.size for leaf in jax.tree.leaves(tree))


def num_params(name, size, **overrides):
    return count(param_tree(name, size, **overrides))


# --- parameter counts: torchvision's ------------------------------------------------------------

# Both families are fully convolutional up to global pooling: the count does not depend on the
# input size, so a small input keeps the tracing short.
@pytest.mark.parametrize("name, expected", [
    ("mobilenet_v2", 3_504_872),
    ("efficientnet_b0", 5_288_548),
    ("efficientnet_b1", 7_794_184),
    ("efficientnet_b2", 9_109_994),
    ("efficientnet_b3", 12_233_232),
])
def test_mobile_counts_equal_torchvision(name, expected):
    assert num_params(name, 32) == expected


def test_make_divisible_is_torchvisions_rounding():
    # torchvision's _make_divisible: nearest multiple of 8, at least 8, never > 10% below.
    assert make_divisible(32 * 1.4) == 48        # 44.8 -> 48
    assert make_divisible(24 * 0.5) == 16        # 12 rounds half up
    assert make_divisible(32 * 0.35) == 16       # 11.2 -> 8 would lose 29%: bumped to 16
    assert make_divisible(1280 * 1.4) == 1792


@pytest.mark.parametrize("width, widths", [
    # torchvision's MobileNetV2 widths (stem, 16, 24, 32, 96 blocks, last conv), by its rule;
    # the last conv only grows (1280 * max(1, width)).
    (0.5, (16, 8, 16, 16, 48, 1280)),
    (1.4, (48, 24, 32, 48, 136, 1792)),
])
def test_mobilenet_width_multiplier_widths(width, widths):
    info = models.create("mobilenet_v2", width_mult=width, num_classes=None).feature_info()
    assert tuple(f.channels for f in info[:-1]) == widths
    assert [f.stride for f in info[:-1]] == [2, 2, 4, 8, 16, 32]


@pytest.mark.parametrize("variant, size, dropout, blocks, widths", [
    # torchvision's factors (width, depth) applied to Table 1: repeats ceil(n * depth),
    # widths _make_divisible(c * width); resolution and dropout from Tan & Le.
    ("b0", 224, 0.2, 16, (32, 16, 24, 40, 112, 1280)),
    ("b1", 240, 0.2, 23, (32, 16, 24, 40, 112, 1280)),
    ("b2", 260, 0.3, 23, (32, 16, 24, 48, 120, 1408)),
    ("b3", 300, 0.3, 26, (40, 24, 32, 48, 136, 1536)),
])
def test_efficientnet_compound_scaling(variant, size, dropout, blocks, widths):
    model = models.create(f"efficientnet_{variant}", num_classes=None)
    assert (model.image_size, model.dropout_rate) == (size, dropout)
    assert sum(len(stage) for stage in model.plan()[1]) == blocks
    info = model.feature_info()
    assert tuple(f.channels for f in info[:-1]) == widths
    assert [f.stride for f in info[:-1]] == [2, 2, 4, 8, 16, 32]


def test_mbconv_stochastic_depth_drops_whole_examples():
    """Training drops the residual branch per example (torchvision's ``StochasticDepth(p,
    "row")``) and scales kept branches by 1/(1-p); evaluation keeps every branch unscaled."""
    from jaxvision.models.efficientnet import MBConv

    block = MBConv(8, expand_ratio=1, drop_path_rate=0.5, conv="xla", norm=None)
    no_drop = block.clone(drop_path_rate=0.0)
    x = jax.random.normal(jax.random.key(0), (64, 2, 2, 8))
    rng = np.random.default_rng(0)  # random values from the shapes: no init to compile
    variables = jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32),
                             jax.eval_shape(lambda: block.init(jax.random.key(1), x, train=False)))

    @jax.jit
    def run(x):
        return (block.apply(variables, x, train=False), no_drop.apply(variables, x, train=True),
                block.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)}))

    evaluated, branch_kept, trained = run(x)
    np.testing.assert_allclose(evaluated, branch_kept, rtol=1e-6)  # no norm: same in both modes
    kept = jnp.all(jnp.isclose(trained - x, 2 * (branch_kept - x), atol=1e-5), (1, 2, 3))
    dropped = jnp.all(trained == x, axis=(1, 2, 3))
    assert bool(jnp.all(kept | dropped)) and 16 < int(dropped.sum()) < 48


def test_compound_scaling_rule_doubles_flops():
    # Tan & Le, eq. 3: alpha * beta^2 * gamma^2 ~ 2 (alpha=1.2, beta=1.1, gamma=1.15).
    depth, width, resolution = compound_scale(1.0)
    assert depth * width**2 * resolution**2 == pytest.approx(1.92, abs=0.01)
    assert compound_scale(2.0)[0] == pytest.approx(1.44)


# --- torch parity through jaxvision.convert -----------------------------------------------------

def torch_reference(name):
    """A torchvision-named torch model with random weights and BN statistics, 10 classes."""
    torch = pytest.importorskip("torch")
    from torch_reference import randomize_bn
    from torch_reference_mobile import TorchEfficientNet, TorchMobileNetV2

    torch.manual_seed(0)
    module = {"mobilenet_v2": TorchMobileNetV2, "efficientnet_b0": TorchEfficientNet}[name]
    return randomize_bn(module(num_classes=10))


@pytest.mark.parametrize("name, torchvision_count", [("mobilenet_v2", 3_504_872),
                                                     ("efficientnet_b0", 5_288_548)])
def test_torchvision_weights_give_torch_logits(name, torchvision_count):
    import torch
    from torch_reference import torch_forward

    from jaxvision import convert

    reference = torch_reference(name)
    # The references are written from the papers' tables; their counts must be torchvision's
    # (whose 1000-class head has 1281 * 1000 parameters, here 1281 * 10).
    assert sum(p.numel() for p in reference.parameters()) == torchvision_count - 1281 * 990
    with torch.no_grad():  # logits of order 1, so 1e-4 is a tight bound
        reference.classifier[1].weight.mul_(10.0)
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny forward: more threads only spin on a busy machine
    try:
        expected = torch_forward(reference, x)
    finally:
        torch.set_num_threads(threads)
    # load_torchvision checks that every variable is filled, with the right shape, and that
    # no key is left over.
    model = models.create(name, num_classes=10, conv="xla")  # the converter is under test
    variables = convert.load_torchvision(model, reference.state_dict(),
                                         input_shape=(1, 64, 64, 3))
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    assert np.abs(expected).max() > 0.5
    np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-4, rtol=0)


def test_converters_refuse_the_other_architecture():
    torch = pytest.importorskip("torch")
    from torch_reference_mobile import TorchMobileNetV2

    from jaxvision import convert

    state_dict = TorchMobileNetV2(num_classes=10).state_dict()
    with pytest.raises(ValueError, match="not understood"):
        convert.efficientnet_from_torchvision(state_dict)
    with pytest.raises(TypeError, match="no torchvision converter"):  # torchvision has no such net
        convert.load_torchvision(models.create("alexnet_paper"), {"x": torch.zeros(1)})


# --- the 2012 paper's AlexNet ------------------------------------------------------------------

def test_alexnet_paper_counts_and_shapes():
    params, sown, logits = shapes("alexnet_paper", 227)
    per_layer = {k: count(p) for k, p in params.items()}
    assert per_layer == {"conv1": 34_944, "conv2": 614_656, "conv3": 885_120,
                         "conv4": 1_327_488, "conv5": 884_992, "fc1": 37_752_832,
                         "fc2": 16_781_312, "head": 4_097_000}
    assert sum(per_layer.values()) == 62_378_344
    assert {k: v.shape[1:] for k, v in sown.items()} == {
        "act1": (55, 55, 96), "act2": (27, 27, 256), "act3": (13, 13, 384),
        "act4": (13, 13, 384), "act5": (13, 13, 256), "features": (6, 6, 256),
        "pre_logits": (4096,)}
    assert math.prod(sown["features"].shape[1:]) == 9_216
    assert logits.shape == (1, 1000)


def test_alexnet_paper_grouped_two_gpu_count():
    params, _, _ = shapes("alexnet_paper_grouped", 227)
    assert count(params) == 60_965_224
    # conv2, conv4, conv5 read half of the channels (one GPU's tower); conv3 reads both.
    assert [params[f"conv{i}"]["kernel"].shape[2] for i in range(1, 6)] == [3, 48, 256, 192, 192]


def test_alexnet_paper_lrn_is_parameter_free_and_torchs():
    torch = pytest.importorskip("torch")
    assert num_params("alexnet_paper", 227, lrn=True) == 62_378_344
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 16)).astype(np.float32) * 30
    # torch's LocalResponseNorm averages over the window: its alpha is the paper's times n=5.
    lrn = torch.nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)
    expected = lrn(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(np.asarray(local_response_norm(jnp.asarray(x))), expected,
                               rtol=1e-5, atol=1e-5)


# --- plain (no-skip) ResNets for the depth study ------------------------------------------------

@pytest.mark.parametrize("depth, expected", [(20, 269_722), (32, 464_154), (56, 853_018)])
def test_plain_nets_have_the_residual_nets_parameters(depth, expected):
    # He et al. §4.2: option-A shortcuts add no parameters, so plain and residual CIFAR nets
    # of one depth have the same count (0.27M, 0.46M, 0.85M).
    assert num_params(f"plain_resnet{depth}", 32) == expected


def test_plain_net_has_no_shortcut():
    """Same variables, zeroed last BN of every block: a residual block then passes its input
    through (ReLU of a non-negative map), a plain block outputs zeros."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    plain, residual = (models.create(n, depth=8, num_classes=None, conv="xla")
                       for n in ("plain_resnet20", "cifar_resnet20"))
    tree = jax.eval_shape(lambda: residual.init(jax.random.key(0), x, train=False))
    assert jax.tree.structure(tree) == jax.tree.structure(
        jax.eval_shape(lambda: plain.init(jax.random.key(0), x, train=False)))
    variables = jax.tree_util.tree_map_with_path(
        lambda path, s: np.zeros(s.shape, np.float32) if "bn2" in str(path) and
        path[-1].key in ("scale", "bias") else rng.uniform(0.5, 1.0, s.shape).astype(np.float32),
        tree)
    apply = lambda m: jax.jit(lambda v, x: m.apply(v, x, train=False))(variables, x)  # noqa: E731
    assert float(jnp.abs(apply(plain)["pre_logits"]).max()) == 0.0
    assert float(apply(residual)["pre_logits"].max()) > 0.0


# --- other counts and shapes, worked out by hand ------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("vgg11", 132_863_336), ("vgg13", 133_047_848), ("vgg19", 143_667_240)])
def test_vgg_totals(name, expected):
    assert num_params(name, 224) == expected


@pytest.mark.parametrize("name, total, backbone", [("resnet101", 44_549_160, 42_500_160),
                                                   ("resnet152", 60_192_808, 58_143_808)])
def test_deep_resnet_counts(name, total, backbone):
    params = param_tree(name, 64)  # convolutional up to GAP: the count is the 224 px one
    assert count(params) == total
    assert count({k: v for k, v in params.items() if k != "head"}) == backbone


def test_se_resnet50_count_and_overhead():
    params = param_tree("se_resnet50", 64)
    se = count([block["se"] for block in params.values() if "se" in block])
    assert (count(params), se) == (28_088_024, 2_530_992)
    assert count(params) - se == 25_557_032  # ResNet-50's


def test_vgg16_stage_shapes():
    _, sown, _ = shapes("vgg16", 224, num_classes=None)
    assert {k: v.shape[1:] for k, v in sown.items() if k.startswith("stage")} == {
        "stage1": (224, 224, 64), "stage2": (112, 112, 128), "stage3": (56, 56, 256),
        "stage4": (28, 28, 512), "stage5": (14, 14, 512)}
    assert sown["features"].shape[1:] == (7, 7, 512)  # after the fifth pool


@pytest.mark.parametrize("channels, with_bias, weights_only", [
    (64, 580, 512), (512, 33_312, 32_768), (2048, 526_464, 524_288)])
def test_se_block_overhead(channels, with_bias, weights_only):
    from jaxvision.nn import SEBlock

    params = jax.eval_shape(lambda: SEBlock(16).init(
        jax.random.key(0), jnp.zeros((1, 2, 2, channels))))["params"]
    assert count(params) == with_bias
    assert params["fc1"]["kernel"].size + params["fc2"]["kernel"].size == weights_only
    assert weights_only == 2 * channels**2 // 16  # two FC layers C -> C/r -> C: 2C^2/r


def test_vit_b16_patches_and_embeddings():
    params, sown, _ = shapes("vit_b16", 224)
    grid = sown["patch_embed"].shape[1:3]
    assert grid[0] * grid[1] == 196
    assert count(params["conv_proj"]) == 590_592  # 768 * 768 + 768
    assert params["conv_proj"]["kernel"].shape[:3] == (16, 16, 3)  # patch vector 16*16*3 = 768
    assert params["pos_embedding"].shape == (1, 197, 768)
    assert params["pos_embedding"].size == 151_296
