"""jaxvision.interpret.cam: CAM, Grad-CAM and Grad-CAM++ against their definitions, captum's
LayerGradCam, and the refusals that keep a wrong map from being drawn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.interpret import cam as C
from jaxvision.interpret.hooks import capture, class_scores, layer_gradients

from helpers import random_variables


@pytest.fixture(scope="module")
def resnet():
    model = models.create("cifar_resnet20", depth=8, num_classes=10, conv="xla")
    x = jax.random.normal(jax.random.key(0), (3, 16, 16, 3))
    return model, random_variables(model, x), x


# The map the head pools: SimpleCNN's after its last max-pool (2x2), the last block's (4x4).
@pytest.mark.parametrize("name,options,side", [("simple_cnn", {}, 2),
                                               ("cifar_resnet20", {"depth": 8}, 4)])
def test_cam_spatial_mean_plus_bias_is_the_target_logit(name, options, side):
    model = models.create(name, num_classes=5, conv="xla", **options)
    x = jax.random.normal(jax.random.key(0), (3, 16, 16, 3))
    variables, target = random_variables(model, x), jnp.array([4, 0, 2])
    maps = C.cam(model, variables, x, target, upsample=False, relu=False)
    bias = variables["params"]["head"]["bias"][target]
    logits = model.apply(variables, x, train=False)
    assert maps.shape == (3, side, side)
    np.testing.assert_allclose(maps.mean(axis=(1, 2)) + bias, class_scores(logits, target),
                               rtol=1e-5, atol=1e-5)


def test_grad_cam_is_cam_divided_by_the_map_area_on_a_gap_linear_net(resnet):
    model, variables, x = resnet
    target = jnp.argmin(model.apply(variables, x, train=False), axis=-1)  # mostly negative
    cams = C.cam(model, variables, x, target, upsample=False, relu=False)
    grad_cams = jax.jit(lambda x: C.grad_cam(model, variables, x, "layer3_0", target,
                                             upsample=False, relu=False))(x)
    assert cams.shape == (3, 4, 4) and (cams < 0).any()  # signed: the whole map is compared
    np.testing.assert_allclose(grad_cams * 16, cams, rtol=1e-5, atol=1e-5 * np.abs(cams).max())
    # Normalised, the positive scale is gone; the explicit layer is the default's map.
    a = C.cam(model, variables, x, layer="layer3_0", normalize=True)
    b = C.grad_cam(model, variables, x, "layer3_0", normalize=True)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.shape == (3, 16, 16) and np.allclose(a.min(axis=(1, 2)), 0)
    np.testing.assert_allclose(a.max(axis=(1, 2)), 1, atol=1e-5)


def test_grad_cam_plus_plus_is_eq19_with_exact_derivatives_of_exp_score(resnet):
    """The paper's alpha from the 2nd and 3rd derivatives of exp(score) along each activation
    (forward-mode, no formula shared with the implementation); pytorch-grad-cam's eps is
    exp(score) x 1e-6 in these units."""
    model, variables, x = resnet
    x, layer, target = x[:2, :4, :4], "layer2_0", jnp.array([3, 8])
    activation, _, logits = layer_gradients(model, variables, x, layer, target)
    scale = jnp.exp(class_scores(logits, target))[:, None, None, None]

    def exp_score(delta):  # sum over examples: each depends on its own delta only
        out, _ = capture(model, variables, x, [layer], edit=lambda _, a: a + delta)
        return jnp.sum(jnp.exp(class_scores(out, target)))

    def derivatives(direction):  # d^k/dt^k exp_score(t * direction) at 0, k = 1, 2, 3
        d1 = lambda t: jax.jvp(lambda s: exp_score(s * direction), (t,), (1.0,))[1]
        d2 = lambda t: jax.jvp(d1, (t,), (1.0,))[1]
        return d1(0.0), d2(0.0), jax.jvp(d2, (0.0,), (1.0,))[1]

    eye = jnp.eye(activation.size).reshape(-1, *activation.shape)
    dy, d2y, d3y = (d.reshape(activation.shape) for d in jax.jit(jax.vmap(derivatives))(eye))
    alpha = d2y / (2 * d2y + activation.sum(axis=(1, 2), keepdims=True) * d3y + 1e-6 * scale)
    weights = jnp.sum(alpha * jax.nn.relu(dy), axis=(1, 2)) / scale[:, 0, 0]
    expected = jnp.einsum("nhwc,nc->nhw", activation, weights)
    ours = C.grad_cam_plus_plus(model, variables, x, layer, target, upsample=False, relu=False)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_vit_grad_cam_reads_the_patch_tokens_as_the_image_grid():
    model = models.create("vit_t16", num_classes=5, conv="xla", image_size=32, num_layers=1)
    x = jax.random.normal(jax.random.key(0), (2, 32, 64, 3))
    variables = random_variables(model, x)  # ViT's head starts at zero: no gradient there
    layer = "encoder_layer_0/ln_1"

    @jax.jit
    def run(x):
        return (C.grad_cam(model, variables, x, layer, 1, upsample=False, relu=False),
                layer_gradients(model, variables, x, layer, 1)[:2],
                C.grad_cam(model, variables, x, "encoder_layer_0", upsample=False, relu=False))

    maps, (tokens, grads), last_block = run(x)
    grid = lambda t: t[:, 1:].reshape(2, 2, 4, t.shape[-1])  # row-major patches after [CLS]
    expected = jnp.einsum("nhwd,nd->nhw", grid(tokens), grid(grads).mean(axis=(1, 2)))
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert jax.eval_shape(lambda x: C.grad_cam(model, variables, x, layer), x).shape == (2, 32, 64)
    # The last block's patch tokens never reach the class token: no gradient, no map.
    assert np.asarray(maps).any() and not np.asarray(last_block).any()
    with pytest.raises(ValueError, match="class-token or flatten head"):
        C.cam(model, variables, x)


def test_bad_inputs_are_refused_with_what_would_work(resnet):
    model, variables, x = resnet
    with pytest.raises(ValueError, match=r"no layer\(s\) \['layer9'\].*layer1_0, layer1_0/conv1"):
        C.grad_cam(model, variables, x, "layer9")
    with pytest.raises(ValueError, match=r"no layer\(s\) \['layer9'\]"):
        C.cam(model, variables, x, layer="layer9")
    with pytest.raises(ValueError, match="target class 10 is out of range for 10 classes"):
        C.grad_cam_plus_plus(model, variables, x, "layer3_0", 10)
    with pytest.raises(ValueError, match="out of range"):
        C.cam(model, variables, x, [0, 10, 1])
    with pytest.raises(ValueError, match="head does not apply"):
        C.cam(model, variables, x, layer="layer3_0/conv2")  # a map, but not the pooled one
    flatten = models.create("simple_cnn", num_classes=5, head="flatten", conv="xla")
    with pytest.raises(ValueError, match="needs a GAP -> Dense head"):
        C.cam(flatten, random_variables(flatten, x), x)


@pytest.fixture(scope="module")
def torch_resnet18():
    """A torchvision-layout ResNet-18 with random weights and BN statistics, and its
    conversion."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("captum")
    from torch_reference import TorchResNet18, randomize_bn

    from jaxvision import convert

    torch.manual_seed(0)
    reference = randomize_bn(TorchResNet18(num_classes=10)).eval()
    model = models.create("resnet18", num_classes=10, conv="xla")
    variables = convert.load_torchvision(model, reference.state_dict())
    x = np.random.default_rng(0).normal(size=(2, 96, 96, 3)).astype(np.float32)
    return torch, reference, model, variables, x


@pytest.mark.parametrize("layer,relu", [("layer4_1", True), ("layer3_0", False)])
def test_grad_cam_equals_captum_layer_grad_cam_interpolated(torch_resnet18, layer, relu):
    from captum.attr import LayerAttribution, LayerGradCam

    torch, reference, model, variables, x = torch_resnet18
    stage, block = layer[:6], int(layer[-1])
    explainer = LayerGradCam(reference, getattr(reference, stage)[block])
    attr = explainer.attribute(torch.from_numpy(x.transpose(0, 3, 1, 2)), target=[3, 7],
                               relu_attributions=relu)
    expected = LayerAttribution.interpolate(attr, (96, 96), "bilinear")[:, 0].detach().numpy()
    ours = np.asarray(C.grad_cam(model, variables, x, layer, jnp.array([3, 7]), relu=relu))
    assert ours.shape == expected.shape == (2, 96, 96)
    assert (expected != 0).mean() > 0.2 and (relu or (expected < 0).any())
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_mask_scores_mass_and_pointing_game():
    from experiments.saliency import mask_scores

    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :2] = True  # a quarter of each image
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 1], maps[0, 3, 3] = 3.0, 1.0  # peak inside, 3/4 of the mass inside
    maps[1, 2, 2] = 1.0  # all outside
    assert mask_scores(maps, masks) == {"mass": 0.375, "pointing": 0.5}


@pytest.mark.slow  # a training and nine compiled attribution methods: about 40 s
def test_saliency_experiment_smoke(tmp_path):
    from experiments import saliency

    config = saliency.get_config()
    config.update(dict(num_train=128, num_test=32, num_epochs=1, num_eval=8, eval_chunk=8,
                       ig_steps=4, smoothgrad_samples=2, occlusion_window=16,
                       occlusion_stride=16, num_show=2))
    config.model_kwargs.conv = "xla"
    results = saliency.main(config, str(tmp_path))
    scores = results["scores"]
    assert list(scores)[:3] == ["CAM", "Grad-CAM", "Grad-CAM++"] and len(scores) == 12
    assert all(0 <= s["mass"] <= 1 and 0 <= s["pointing"] <= 1 for s in scores.values())
    assert scores["random map"]["mass"] == pytest.approx(results["object_area_fraction"],
                                                         abs=0.05)
    for name in ("report.md", "results.json", "saliency.png"):
        assert (tmp_path / name).exists()
