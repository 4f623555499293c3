"""Model zoo: parameter counts against torchvision / the papers, forwards, features, registry."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import jaxvision.models as models
from jaxvision.models.vit import resize_pos_embedding


def num_params(name, size, channels=3, **overrides):
    model = models.create(name, **overrides)
    shapes = jax.eval_shape(lambda: model.init(
        {"params": jax.random.key(0), "dropout": jax.random.key(1)},
        jnp.zeros((1, size, size, channels)), train=False))
    return sum(leaf.size for leaf in jax.tree.leaves(shapes["params"]))


# torchvision meta["num_params"] and counts worked out by hand.
@pytest.mark.parametrize("name, expected", [
    ("alexnet", 61_100_840),
    ("vgg16", 138_357_544),
    ("vgg16_bn", 138_365_992),
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
    ("vit_b16", 86_567_656),
    ("vit_b32", 88_224_232),
    ("vit_l16", 304_326_632),
])
def test_imagenet_parameter_counts_equal_torchvision(name, expected):
    assert num_params(name, 224) == expected


@pytest.mark.parametrize("name, exact, paper_millions", [
    ("cifar_resnet20", 269_722, 0.27),
    ("cifar_resnet32", 464_154, 0.46),
    ("cifar_resnet44", 658_586, 0.66),
    ("cifar_resnet56", 853_018, 0.85),
    ("cifar_resnet110", 1_727_962, 1.7),
    ("wide_resnet28_10", 36_479_194, 36.5),
    ("wide_resnet16_8", 10_961_370, 11.0),
])
def test_cifar_parameter_counts_match_papers(name, exact, paper_millions):
    count = num_params(name, 32, num_classes=10)
    assert count == exact
    assert round(count / 1e6, 2 if paper_millions < 1 else 1) == paper_millions


def test_small_models_match_course_and_lecun_counts():
    assert num_params("simple_cnn", 32, num_classes=10) == 94_986  # worked out by hand
    assert num_params("simple_cnn", 28, channels=1, num_classes=10) == 94_410
    assert num_params("lenet5", 28, channels=1) == 61_706  # full-C3 LeNet-5
    assert num_params("mlp", 28, channels=1, hidden=(100,)) == 79_510  # MLP 784-100-10


def test_se_resnet50_matches_hu_et_al():
    # SENet paper, Table 1/7: SE-ResNet-50 has 28.1M parameters (ResNet-50: 25.6M).
    assert round(num_params("se_resnet50", 224) / 1e6, 1) == 28.1


def test_resnet50_without_head_is_the_texts_23m():
    assert num_params("resnet50", 224) - (2048 * 1000 + 1000) == 23_508_032


def test_registry_lists_the_zoo_and_names_typos():
    names = models.list()
    for expected in ["lenet5", "simple_cnn", "alexnet", "vgg11", "vgg19_bn", "resnet152",
                     "se_resnet50", "cifar_resnet110", "wide_resnet28_10", "vit_t16",
                     "vit_s32", "vit_b16", "mlp"]:
        assert expected in names
    assert models.list("vgg*") == ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
                                   "vgg16_bn", "vgg19", "vgg19_bn"]
    with pytest.raises(ValueError, match="resnet50"):
        models.create("resnet05")


@pytest.mark.parametrize("name, size, channels, names_shapes", [
    ("cifar_resnet20", 32, 3, {"stem": (2, 32, 32, 16), "layer3": (2, 8, 8, 64),
                               "pre_logits": (2, 64)}),
    pytest.param("resnet18", 64, 3, {"stem": (2, 16, 16, 64), "layer1": (2, 16, 16, 64),
                                     "layer4": (2, 2, 2, 512), "pre_logits": (2, 512)},
                 marks=pytest.mark.slow),  # 30+ s; cifar_resnet20 covers the family by default
    ("simple_cnn", 28, 1, {"block1": (2, 14, 14, 32), "features": (2, 3, 3, 128)}),
    ("lenet5", 28, 1, {"c1": (2, 28, 28, 6), "features": (2, 5, 5, 16)}),
    pytest.param("vit_t16", 32, 3, {"patch_embed": (2, 2, 2, 192), "features": (2, 2, 2, 192),
                                    "pre_logits": (2, 192)}, marks=pytest.mark.slow),
])
def test_forward_and_named_features(name, size, channels, names_shapes):
    model = models.create(name, num_classes=7)
    x = jax.random.normal(jax.random.key(0), (2, size, size, channels))
    variables = model.init(jax.random.key(1), x, train=False)
    maps = models.features(model, variables, x, names=list(names_shapes), with_output=True)
    assert {k: v.shape for k, v in maps.items() if k != "output"} == names_shapes
    assert maps["output"].shape == (2, 7)
    np.testing.assert_allclose(maps["output"], model.apply(variables, x, train=False), atol=1e-5)
    with pytest.raises(KeyError, match="available"):
        models.features(model, variables, x, names=["nope"])


def test_train_step_updates_batch_stats_and_uses_dropout():
    model = models.create("wide_resnet16_4", num_classes=3, dropout_rate=0.3)
    x = jax.random.normal(jax.random.key(0), (4, 16, 16, 3))
    variables = model.init(jax.random.key(1), x, train=False)
    out, state = model.apply(variables, x, train=True, mutable=["batch_stats"],
                             rngs={"dropout": jax.random.key(2)})
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state["batch_stats"],
                           variables["batch_stats"])
    assert all(jax.tree.leaves(changed))
    out2, _ = model.apply(variables, x, train=True, mutable=["batch_stats"],
                          rngs={"dropout": jax.random.key(3)})
    assert not np.allclose(out, out2)


def test_compute_dtype_bfloat16_keeps_float32_params():
    model = models.create("cifar_resnet20", dtype=jnp.bfloat16)
    x = jnp.ones((1, 16, 16, 3))
    variables = model.init(jax.random.key(0), x, train=False)
    assert {a.dtype for a in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    assert model.apply(variables, x, train=False).dtype == jnp.bfloat16


def test_vit_position_embedding_resize_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    pos = np.random.default_rng(0).normal(size=(1, 1 + 14 * 14, 8)).astype(np.float32)
    for grid in [(24, 24), (7, 10)]:
        ours = np.asarray(resize_pos_embedding(jnp.asarray(pos), grid))
        grid_t = torch.from_numpy(pos[:, 1:].reshape(1, 14, 14, 8).transpose(0, 3, 1, 2))
        ref = torch.nn.functional.interpolate(grid_t, size=grid, mode="bilinear",
                                              align_corners=False)
        ref = ref.numpy().transpose(0, 2, 3, 1).reshape(1, -1, 8)
        np.testing.assert_allclose(ours[:, 1:], ref, atol=1e-5)
        np.testing.assert_array_equal(ours[:, :1], pos[:, :1])


@pytest.mark.slow
@pytest.mark.long  # 245 s on 2 cores (a ViT compiled at several resolutions)
def test_vit_runs_at_other_resolutions_with_the_same_params():
    model = models.create("vit_t32", num_classes=5, image_size=64)
    variables = model.init(jax.random.key(0), jnp.ones((1, 64, 64, 3)), train=False)
    assert variables["params"]["pos_embedding"].shape == (1, 5, 192)
    for size in (32, 96):
        assert model.apply(variables, jnp.ones((2, size, size, 3)), train=False).shape == (2, 5)
    with pytest.raises(ValueError, match="patch_size"):
        model.apply(variables, jnp.ones((1, 40, 40, 3)), train=False)
