"""Input adaptation: an RGB source into a grayscale model through init_from, a ViT position
embedding for another grid, and the target domain's normalization statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.train.init_from import load_initial_variables
from jaxvision.transfer import adapt_leaf, normalization_statistics


@pytest.mark.slow  # a ResNet-18 in torch and JAX: ~1 min on a loaded 2-core machine
def test_a_torch_rgb_resnet_loads_into_a_grayscale_model_with_the_same_logits(tmp_path):
    """The summed stem kernel on a gray image equals the source on the image repeated 3x
    (a grayscale target for an RGB source), through ``init_from`` with a torch .pth file."""
    torch = pytest.importorskip("torch")
    from torch_reference import TorchResNet18, randomize_bn, torch_forward

    torch.manual_seed(0)
    reference = randomize_bn(TorchResNet18(num_classes=10))
    path = str(tmp_path / "resnet18.pth")
    torch.save(reference.state_dict(), path)
    model = models.create("resnet18", num_classes=10)
    fresh = jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)),
                                       train=False))()
    params, state = load_initial_variables(path, model, fresh["params"],
                                           {"batch_stats": fresh["batch_stats"]})
    gray = np.random.default_rng(0).uniform(size=(2, 32, 32, 1)).astype(np.float32)
    ours = jax.jit(lambda v, x: model.apply(v, x, train=False))({"params": params, **state}, gray)
    expected = torch_forward(reference, np.repeat(gray, 3, axis=-1))
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)


def test_a_summed_stem_on_gray_equals_the_rgb_stem_on_repeated_gray():
    import flax.linen as nn

    conv = nn.Conv(4, (3, 3), padding=1)
    rgb = conv.init(jax.random.key(0), jnp.zeros((1, 6, 6, 3)))
    kernel = adapt_leaf("conv1/kernel", rgb["params"]["kernel"], np.zeros((3, 3, 1, 4)))
    gray_params = {"params": {"kernel": kernel, "bias": rgb["params"]["bias"]}}
    gray = np.random.default_rng(0).uniform(size=(2, 6, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(conv.apply(gray_params, gray),
                               conv.apply(rgb, np.repeat(gray, 3, axis=-1)), atol=1e-6)


def test_pos_embedding_is_resized_as_torch_interpolate_does():
    """A 2x2 grid (plus class token) to 4x4: torch ``F.interpolate(bilinear,
    align_corners=False)`` on the grid, class token kept."""
    torch = pytest.importorskip("torch")
    source = np.random.default_rng(0).normal(size=(1, 5, 6)).astype(np.float32)
    out = adapt_leaf("pos_embedding", source, np.zeros((1, 17, 6), np.float32))
    grid = torch.tensor(source[:, 1:].reshape(1, 2, 2, 6)).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(4, 4), mode="bilinear",
                                               align_corners=False)
    expected = expected.permute(0, 2, 3, 1).reshape(1, 16, 6).numpy()
    np.testing.assert_allclose(out[:, 1:], expected, atol=1e-6)
    np.testing.assert_array_equal(out[:, :1], source[:, :1])


def test_other_shape_mismatches_are_not_adapted():
    assert adapt_leaf("head/kernel", np.zeros((8, 10)), np.zeros((8, 5))) is None
    assert adapt_leaf("conv1/kernel", np.zeros((3, 3, 3, 8)), np.zeros((3, 3, 4, 8))) is None


def test_normalization_statistics_of_the_target_domain():
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8) for n in (5, 7)]
    stats = normalization_statistics({"image": b} for b in batches)
    pixels = np.concatenate(batches).reshape(-1, 3) / 255.0
    np.testing.assert_allclose(stats["normalize_mean"], pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats["normalize_std"], pixels.std(0), rtol=1e-9)


def test_init_from_a_vit_trained_at_another_size_resizes_its_position_embedding(tmp_path):
    """A torchvision-layout ViT for 16-pixel images (2x2 patches) starts a model for 32-pixel
    images (4x4): the position embedding is resized, every other leaf loads unchanged."""
    torch = pytest.importorskip("torch")
    from torch_reference import TorchViT

    from jaxvision.models.vit import ViT, resize_pos_embedding

    torch.manual_seed(0)
    reference = TorchViT(16, 8, 1, 2, 8, 16, 3)
    path = str(tmp_path / "vit.pth")
    torch.save(reference.state_dict(), path)
    model = ViT(num_classes=3, patch_size=8, hidden_size=8, num_layers=1, num_heads=2,
                mlp_dim=16, image_size=32)
    fresh = jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                       train=False))()
    params, _ = load_initial_variables(path, model, fresh["params"], {})
    source = reference.encoder.pos_embedding.detach().numpy()
    np.testing.assert_allclose(params["pos_embedding"],
                               resize_pos_embedding(jnp.asarray(source), (4, 4)), atol=1e-6)
    np.testing.assert_array_equal(params["class_token"],
                                  reference.class_token.detach().numpy())
