"""jaxvision.interpret.inspect: grids of maps and filters, activation statistics, SE gates and
activation maximisation, each checked against what it claims to show."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.interpret import inspect as I
from jaxvision.interpret.hooks import capture

from helpers import random_variables


def scaled(a):
    a = np.asarray(a, np.float32)
    return (a - a.min()) / (a.max() - a.min())


@pytest.fixture(scope="module")
def cnn():
    model = models.create("simple_cnn", num_classes=5, conv="xla")
    x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
    return model, random_variables(model, x), x


def test_image_grid_places_each_tile_scaled_on_its_own():
    tiles = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3) ** 2
    grid = I.image_grid(tiles)  # 3 columns (ceil sqrt 5), 2 rows, 1-pixel NaN padding
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_allclose(grid[3:5, 4:7], scaled(tiles[4]))  # row 1, column 1
    assert np.isnan(grid[2]).all() and np.isnan(grid[3:, 8:]).all()  # padding, empty slot
    rgb = I.image_grid(np.random.default_rng(0).normal(size=(4, 3, 3, 3)), columns=4)
    assert rgb.shape == (3, 15, 3) and np.nanmin(rgb) == 0 and np.nanmax(rgb) == 1
    with pytest.raises(ValueError, match=r"\[K, h, w\] or \[K, h, w, 3\]"):
        I.image_grid(np.zeros((2, 3, 3, 2)))


def test_feature_maps_and_filters_show_the_layer(cnn):
    model, variables, x = cnn
    grid = I.feature_maps(model, variables, x, "bn2", index=1, channels=10)
    bn2 = capture(model, variables, x, ["bn2"])[1]["bn2"]  # [2, 8, 8, 64]
    assert grid.shape == (3 * 9 - 1, 4 * 9 - 1)  # 10 tiles of 8x8: 4 columns (ceil sqrt 10)
    np.testing.assert_allclose(grid[9:17, 0:8], scaled(bn2[1, ..., 4]), atol=1e-6)
    kernel = variables["params"]["conv1"]["kernel"]  # [3, 3, 3 in, 32 out]: RGB tiles
    tiles = I.filters(model, variables, x)
    assert tiles.shape == (6 * 4 - 1, 6 * 4 - 1, 3)
    np.testing.assert_allclose(tiles[0:3, 4:7], scaled(kernel[..., 1]), atol=1e-6)
    gray = I.filters(model, variables, x, "conv2")  # 32 input channels: their mean
    np.testing.assert_allclose(gray[0:3, 0:3], scaled(variables["params"]["conv2"]["kernel"]
                                                      [..., 0].mean(-1)), atol=1e-6)
    with pytest.raises(ValueError, match="'bn2' is not a convolution"):
        I.filters(model, variables, x, "bn2")
    with pytest.raises(ValueError, match=r"no layer\(s\) \['conv9'\].*conv1, bn1"):
        I.filters(model, variables, x, "conv9")


def test_feature_maps_of_a_transformer_are_its_patch_grid():
    model = models.create("vit_t16", num_classes=5, conv="xla", image_size=32, num_layers=1)
    x = jnp.zeros((1, 32, 48, 3))
    grid = I.feature_maps(model, random_variables(model, x), x, "encoder_layer_0", channels=4)
    assert grid.shape == (2 * 3 - 1, 2 * 4 - 1)  # 4 tiles of 2x3 patches


def test_activation_stats_count_dead_relus_and_dead_units(cnn):
    model, variables, x = cnn
    bn = variables["params"]["bn1"]
    bn["bias"] = bn["bias"].at[3].set(-100.0)  # channel 3 can never pass the ReLU after bn1
    stats = I.activation_stats(model, variables, x)
    assert set(stats) == {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "head"}
    out = np.asarray(capture(model, variables, x, ["bn1"])[1]["bn1"])
    assert stats["bn1"]["dead"] == pytest.approx((out <= 0).mean())
    assert stats["bn1"]["mean"] == pytest.approx(out.mean(), rel=1e-5)
    assert stats["bn1"]["std"] == pytest.approx(out.std(), rel=1e-5)
    never = (out <= 0).all(axis=(0, 1, 2))
    assert never[3] and stats["bn1"]["dead_units"] == never.mean() < 1
    only = I.activation_stats(model, variables, x, ["conv2"])
    assert list(only) == ["conv2"] and only["conv2"] == stats["conv2"]


def test_se_gates_are_what_each_block_multiplies_its_branch_by():
    model = models.create("se_resnet18", num_classes=5, conv="xla")
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
    variables = random_variables(model, x)
    gates = I.se_gates(model, variables, x)
    assert len(gates) == 8 and gates["layer3_1/se"].shape == (2, 256)
    _, acts = capture(model, variables, x, ["layer2_0/bn2", "layer2_0/se"])
    gate = np.asarray(gates["layer2_0/se"])
    assert 0 < gate.min() and gate.max() < 1 and gate.std() > 0.01
    np.testing.assert_allclose(acts["layer2_0/se"], acts["layer2_0/bn2"] * gate[:, None, None],
                               rtol=1e-5, atol=1e-6)
    plain = models.create("cifar_resnet20", depth=8, conv="xla")
    with pytest.raises(ValueError, match="no squeeze-and-excitation blocks"):
        I.se_gates(plain, random_variables(plain, x), x)


def test_activation_maximisation_climbs_each_images_channel(cnn):
    model, variables, x = cnn
    start = 0.5 + 0.1 * jax.random.normal(jax.random.key(1), x.shape)
    channels = [1, 5]

    def target_means(images):
        out = capture(model, variables, images, ["bn2"])[1]["bn2"]
        return jnp.stack([out[i, ..., c].mean() for i, c in enumerate(channels)])

    # Unregularised, one step is Adam's first: lr g / (|g| + eps), uphill (about lr x sign g).
    one = I.maximize_activation(model, variables, start, "bn2", channels, steps=1, jitter=0,
                                blur_sigma=0, l2=0)
    grad = jax.grad(lambda im: target_means(im).sum())(start)
    np.testing.assert_allclose(one, start + 0.1 * grad / (jnp.abs(grad) + 1e-8), atol=1e-6)
    # The course's 30 steps with jitter, blur and L2: far higher, deterministic for a key.
    images = I.maximize_activation(model, variables, start, "bn2", channels)
    assert images.shape == start.shape
    assert (target_means(images) > target_means(start) + 1.0).all()
    np.testing.assert_array_equal(images, I.maximize_activation(model, variables, start, "bn2",
                                                                channels))
    with pytest.raises(ValueError, match=r"channels \[64, 64\] out of range for 'bn2' \(64"):
        I.maximize_activation(model, variables, start, "bn2", 64)


def test_activation_maximisation_of_one_unit_changes_only_its_receptive_field(cnn):
    model, variables, x = cnn
    start = 0.5 + 0.4 * jax.random.normal(jax.random.key(1), (1, 16, 16, 3))
    images = I.maximize_activation(model, variables, start, "bn1", 7, unit=(4, 9), jitter=0,
                                   blur_sigma=0, l2=0, clip=(0.0, 1.0))
    changed = np.asarray(images != jnp.clip(start, 0, 1)).any(axis=(0, 3))
    expected = np.zeros((16, 16), bool)
    expected[3:6, 8:11] = True  # conv1's 3x3 window around (4, 9)
    np.testing.assert_array_equal(changed, expected)
    assert float(images.min()) >= 0 and float(images.max()) <= 1


def test_save_grids_writes_one_png_with_a_panel_per_grid(cnn, tmp_path):
    import matplotlib.image

    model, variables, x = cnn
    path = I.save_grids({"filters": I.filters(model, variables, x),
                         "bn1": I.feature_maps(model, variables, x, "bn1")},
                        str(tmp_path / "grids.png"), panel_size=2, title="a title")
    height, width = matplotlib.image.imread(path).shape[:2]
    assert (height, width) == (230, 400)  # 2 panels x 2 inches (+0.3 for the title) at 100 dpi


def test_class_selectivity_index():
    from experiments.feature_hierarchy import class_selectivity

    labels = np.array([0, 0, 1, 1, 2, 2])
    acts = np.zeros((6, 2, 2, 3))
    acts[labels == 0, ..., 0] = 1.0  # fires for class 0 only
    acts[..., 1] = 2.0  # fires equally for all
    acts[labels == 1, ..., 2] = 3.0
    acts[labels == 2, ..., 2] = 1.0  # class means 0, 3, 1: (3 - 0.5) / (3 + 0.5)
    np.testing.assert_allclose(class_selectivity(acts, labels), [1.0, 0.0, 2.5 / 3.5])
    assert np.isnan(class_selectivity(-acts, labels)).all()  # never fires after the ReLU


@pytest.mark.slow  # a training and three activation maximisations: about 30 s
def test_feature_hierarchy_experiment_smoke(tmp_path):
    from experiments import feature_hierarchy

    config = feature_hierarchy.get_config()
    config.update(dict(num_train=128, num_test=32, num_epochs=1, num_stats=32, num_maps=4,
                       num_maximised=2, show_images=(0,)))
    config.model_kwargs.conv = "xla"
    results = feature_hierarchy.main(config, str(tmp_path))
    layers = results["layers"]
    assert [layers[k]["receptive_field"] for k in ("bn1", "bn2", "bn3")] == [3, 8, 18]
    assert all(0 <= r["dead"] <= 1 and len(r["maximised_channels"]) == 2
               for r in layers.values())
    for name in ("report.md", "filters.png", "feature_maps.png", "activation_maximization.png"):
        assert (tmp_path / name).exists()
