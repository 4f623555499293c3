"""torchvision-layout weights -> Flax through jaxvision.convert, checked against torch forwards.

The torch reference networks (``torch_reference.py``) carry torchvision's exact module names, so
their state-dict keys are torchvision's (no torchvision build is needed).
"""

import numpy as np
import pytest

import jax

from jaxvision import convert
from jaxvision.models import create

torch = pytest.importorskip("torch")
tnn = torch.nn

from torch_reference import (TorchResNet18, TorchViT, randomize_bn, torch_forward,  # noqa: E402
                             torch_vgg)


def test_resnet18_matches_torchvision_layout_forward():
    torch.manual_seed(0)
    reference = randomize_bn(TorchResNet18(num_classes=1000))
    state_dict = reference.state_dict()
    assert "layer2.0.downsample.1.running_var" in state_dict  # torchvision's key names
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    model = create("resnet18")
    variables = convert.load_torchvision(model, state_dict)
    ours = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))
    expected = torch_forward(reference, x)
    assert ours.shape == expected.shape == (2, 1000)
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)


def test_vgg11_matches_torchvision_layout_forward_via_safetensors(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    reference = randomize_bn(torch_vgg((1, 1, 2, 2, 2), batch_norm=False, num_classes=10))
    path = tmp_path / "vgg11.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    # 64x64 input: a 2x2 map before the adaptive 7x7 pool (overlapping cells, as torch).
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
    model = create("vgg11", num_classes=10)
    variables = convert.load_torchvision(model, path, input_shape=(1, 64, 64, 3))
    ours = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))
    expected = torch_forward(reference, x)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours / scale, expected / scale, atol=1e-4)


def test_vgg11_bn_batch_stats_are_mapped():
    torch.manual_seed(2)
    reference = randomize_bn(torch_vgg((1, 1, 2, 2, 2), batch_norm=True, num_classes=5))
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype(np.float32)
    model = create("vgg11_bn", num_classes=5)
    variables = convert.load_torchvision(model, reference.state_dict(), input_shape=(1, 32, 32, 3))
    assert set(variables["batch_stats"]) == {f"bn{i}" for i in range(8)}
    ours = np.asarray(model.apply(variables, x, train=False))
    expected = torch_forward(reference, x)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours / scale, expected / scale, atol=1e-4)


@pytest.mark.slow  # 30+ s: the default suite's 20 minutes
def test_skip_mismatched_keeps_fresh_head_and_strict_mode_names_it():
    state_dict = TorchResNet18(num_classes=1000).state_dict()
    model = create("resnet18", num_classes=10)
    with pytest.raises(ValueError, match="head/kernel"):
        convert.load_torchvision(model, state_dict, input_shape=(1, 32, 32, 3))
    variables = convert.load_torchvision(model, state_dict, input_shape=(1, 32, 32, 3),
                                         skip_mismatched=True)
    assert variables["params"]["head"]["kernel"].shape == (512, 10)
    np.testing.assert_array_equal(variables["params"]["conv1"]["kernel"],
                                  state_dict["conv1.weight"].numpy().transpose(2, 3, 1, 0))


def test_headless_resnet_loads_classifier_weights_and_matches_torch_pooled_features():
    torch.manual_seed(5)
    reference = randomize_bn(TorchResNet18(num_classes=1000))
    model = create("resnet18", num_classes=None)
    variables = convert.load_torchvision(model, reference.state_dict(), input_shape=(1, 32, 32, 3))
    assert "head" not in variables["params"]
    x = np.random.default_rng(5).normal(size=(2, 32, 32, 3)).astype(np.float32)
    feats = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    reference.fc = tnn.Identity()  # torchvision's usual way to get pre_logits
    np.testing.assert_allclose(np.asarray(feats["pre_logits"]), torch_forward(reference, x),
                               atol=1e-4, rtol=1e-4)


def test_wrong_architecture_is_reported():
    state_dict = TorchResNet18().state_dict()
    state_dict["layer1.0.extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match="layer1.0.extra.weight"):
        convert.resnet_from_torchvision(state_dict)


def test_load_state_dict_reads_pth_weights_only_and_names_a_bad_file(tmp_path):
    reference = TorchResNet18(num_classes=10)
    torch.save(reference.state_dict(), tmp_path / "model.pth")
    loaded = convert.load_state_dict(tmp_path / "model.pth")
    np.testing.assert_array_equal(loaded["fc.weight"], reference.fc.weight.detach().numpy())
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read .*bad.pth"):
        convert.load_state_dict(tmp_path / "bad.pth")
    (tmp_path / "model.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="expected a .safetensors, .npz or .pth"):
        convert.load_state_dict(tmp_path / "model.ckpt")


def test_nchw_flatten_permutation_matches_torch_flatten():
    rng = np.random.default_rng(3)
    fmap = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)  # N, C, H, W
    weight = rng.normal(size=(6, 3 * 4 * 5)).astype(np.float32)
    torch_out = fmap.reshape(2, -1) @ weight.T
    kernel = convert.nchw_flatten_to_nhwc(weight, 3, 4, 5)
    ours = fmap.transpose(0, 2, 3, 1).reshape(2, -1) @ kernel
    np.testing.assert_allclose(ours, torch_out, rtol=1e-5, atol=1e-5)


def test_vit_matches_torchvision_layout_forward():
    torch.manual_seed(3)
    reference = TorchViT(image_size=32, patch=8, layers=2, heads=4, dim=32, mlp_dim=64,
                         num_classes=6)
    x = np.random.default_rng(3).normal(size=(2, 32, 32, 3)).astype(np.float32)
    model = create("vit_t16", patch_size=8, hidden_size=32, num_layers=2, num_heads=4,
                   mlp_dim=64, image_size=32, num_classes=6)
    variables = convert.load_torchvision(model, reference.state_dict())
    ours = np.asarray(model.apply(variables, x, train=False))
    np.testing.assert_allclose(ours, torch_forward(reference, x), atol=1e-4, rtol=1e-4)


def test_alexnet_matches_torchvision_layout_forward():
    torch.manual_seed(4)
    features = tnn.Sequential(
        tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(True), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(True), tnn.MaxPool2d(3, 2),
        tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(True),
        tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(True),
        tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(True), tnn.MaxPool2d(3, 2))
    classifier = tnn.Sequential(
        tnn.Dropout(), tnn.Linear(256 * 6 * 6, 4096), tnn.ReLU(True), tnn.Dropout(),
        tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Linear(4096, 7))
    reference = tnn.Module()  # torchvision.models.AlexNet's attribute names
    reference.features, reference.avgpool, reference.classifier = (
        features, tnn.AdaptiveAvgPool2d((6, 6)), classifier)
    reference.forward = lambda x: classifier(torch.flatten(reference.avgpool(features(x)), 1))
    # 127 px: a 3x3 map before the adaptive 6x6 pool.
    x = np.random.default_rng(4).normal(size=(2, 127, 127, 3)).astype(np.float32)
    model = create("alexnet", num_classes=7)
    variables = convert.load_torchvision(model, reference.state_dict(), input_shape=(1, 127, 127, 3))
    ours = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))
    expected = torch_forward(reference, x)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours / scale, expected / scale, atol=1e-4)
