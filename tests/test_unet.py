"""UNet: the original network's sizes and parameter count, its variants, the
ResNet-34 encoder UNet against segmentation_models_pytorch's count, and PyTorch parity."""

import functools
import importlib.util
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.models import unet as U
from jaxvision.models.unet_encoder import count_params
from jaxvision.models.unet_sizes import output_size, unet_sizes, valid_input_sizes


def _shapes(model, size, channels=1):
    """(params, output shape) without running the network."""
    x = jnp.zeros((1, size, size, channels))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    out = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
    return count_params(variables), out.shape


def test_original_unet_maps_572_to_388_with_31030658_parameters():
    model = models.create("unet_original", num_classes=2)
    params, shape = _shapes(model, 572, channels=1)
    assert shape == (1, 388, 388, 2)
    assert params == 31_030_658
    # The original UNet: widths 64..1024, four downsamplings; the head's input is 64 channels.
    assert model.level_widths() == (64, 128, 256, 512, 1024)
    # By hand: two 3x3 convs with bias per block, 2x2 up-convs with bias halving channels.
    widths = (64, 128, 256, 512, 1024)
    conv = lambda cin, cout, k=3: k * k * cin * cout + cout  # noqa: E731
    enc = sum(conv(cin, w) + conv(w, w) for cin, w in zip((1,) + widths[:-1], widths))
    dec = sum(conv(2 * w, w, 2) + conv(2 * w, w) + conv(w, w) for w in widths[:-1])
    assert enc + dec + conv(64, 2, 1) == 31_030_658


def test_unet_sizes_notes_d14():
    sizes = unet_sizes(572)
    assert sizes.skips == (568, 280, 136, 64) and sizes.bottleneck == 28
    assert sizes.decoder == (52, 100, 196, 388) and sizes.output == 388
    # skip crops 568->392, 280->200, 136->104, 64->56 (pixels cut from each side)
    assert sizes.crops == ((568 - 392) // 2, (280 - 200) // 2, (136 - 104) // 2, (64 - 56) // 2)
    assert valid_input_sizes(limit=300) == [188, 204, 220, 236, 252, 268, 284, 300]
    assert output_size(188) == 4 and output_size(572) == 388
    small = unet_sizes(68, depth=2)
    assert small.skips == (64, 28) and small.bottleneck == 10 and small.output == 28
    assert output_size(64, padding="same") == 64


def test_bad_input_sizes_list_the_nearest_valid_ones():
    with pytest.raises(ValueError, match=r"cannot take an input of 570.*nearest valid sizes: "
                                         r"\[556, 572\].*188 \+ 16k"):
        output_size(570)
    with pytest.raises(ValueError, match=r"nearest valid sizes: \[\].*\[188\]|\[188\]"):
        output_size(100)
    with pytest.raises(ValueError, match=r"input height.*nearest valid sizes: \[556, 572\]"):
        models.create("unet_original").init(jax.random.key(0), jnp.zeros((1, 570, 572, 1)),
                                            train=False)
    with pytest.raises(ValueError, match=r"nearest valid sizes: \[48, 64\].*multiples of 16"):
        models.create("unet").init(jax.random.key(0), jnp.zeros((1, 60, 64, 3)), train=False)


VARIANTS = [("unet", "resize"), ("unet_noskip", "transpose"), ("attention_unet", "resize"),
            ("residual_unet", "transpose"), ("unet_plusplus", "resize")]


def _variant(name, upsample):
    norm = functools.partial(nn.GroupNorm, num_groups=4) if upsample == "resize" else "batch_norm"
    return models.create(name, num_classes=3, depth=3, base_width=8, upsample=upsample, norm=norm,
                         conv="xla")


def test_variants_keep_the_input_size():
    for name, upsample in VARIANTS:
        _, shape = _shapes(_variant(name, upsample), 24, channels=3)
        assert shape == (1, 24, 24, 3), name


@pytest.mark.slow
@pytest.mark.parametrize("name,upsample", VARIANTS)
def test_variants_run_in_training_mode(name, upsample):
    model = _variant(name, upsample)
    x = jax.random.normal(jax.random.key(0), (2, 24, 24, 3))
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(1), x)
    out, _ = jax.jit(functools.partial(model.apply, train=True,
                                       mutable=["batch_stats", "intermediates"]))(variables, x)
    assert out.shape == (2, 24, 24, 3) and np.all(np.isfinite(out))


def test_variant_parameter_counts_follow_their_definitions():
    kw = dict(num_classes=2, depth=2, base_width=4, norm=None)
    base, _ = _shapes(models.create("unet", **kw), 16, 3)
    noskip, _ = _shapes(models.create("unet_noskip", **kw), 16, 3)
    # Without skips each decoder block's first conv sees w instead of 2w input channels.
    assert base - noskip == sum(9 * w * w for w in (4, 8))
    gated, _ = _shapes(models.create("attention_unet", **kw), 16, 3)
    # A gate per level: two 1x1 projections to w/2 channels and a 1x1 psi, all with bias.
    assert gated - base == sum(2 * (w * (w // 2) + w // 2) + (w // 2 + 1) for w in (4, 8))
    residual, _ = _shapes(models.create("residual_unet", **kw), 16, 3)
    # A 1x1 projection shortcut (with bias) wherever a block changes the channel count:
    # enc0 3->4, enc1 4->8, bottleneck 8->16, dec1 16 (concat) -> 8, dec0 8 -> 4.
    shortcuts = [(3, 4), (4, 8), (8, 16), (16, 8), (8, 4)]
    assert residual - base == sum(cin * cout + cout for cin, cout in shortcuts)
    nested, _ = _shapes(models.create("unet_plusplus", **kw), 16, 3)
    assert nested > base


@pytest.mark.slow  # 100 s at load 14 (2 cores shared)
def test_fast_unet_trains_like_the_xla_one():
    """conv="auto" (fast convolutions, the GEMM up-convolution) and conv="xla": the same
    parameters, logits and gradients."""
    x = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
    results = []
    for conv in ("auto", "xla"):
        model = U.UNet(num_classes=2, depth=2, base_width=8, conv=conv)
        variables = model.init(jax.random.key(1), x, train=False)

        def loss(params):
            logits, _ = model.apply({**variables, "params": params}, x, train=True,
                                    mutable=["batch_stats"])
            return jnp.mean(logits ** 2), logits

        results.append((variables["params"],) + jax.jit(jax.grad(loss, has_aux=True))(
            variables["params"]))
    (params, grads, logits), (params_xla, grads_xla, logits_xla) = results
    jax.tree.map(np.testing.assert_array_equal, params, params_xla)
    np.testing.assert_allclose(logits, logits_xla, rtol=1e-4, atol=1e-4)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5),
                 grads, grads_xla)
    for conv, expected in (("auto", "FastConvTranspose"), ("xla", "ConvTranspose")):
        seen = set()

        def record(next_fun, args, kwargs, context):
            seen.add(type(context.module).__name__)
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):
            jax.eval_shape(functools.partial(U.UNet(depth=2, base_width=8, conv=conv).init,
                                             train=False), jax.random.key(0), x)
        assert expected in seen and not {"ConvTranspose", "FastConvTranspose"} - {expected} & seen


def test_valid_unet_rejects_nested_skips_and_bad_options():
    with pytest.raises(ValueError, match="nested .* need padding='same'"):
        models.create("unet_plusplus", padding="valid").init(
            jax.random.key(0), jnp.zeros((1, 188, 188, 1)), train=False)
    with pytest.raises(ValueError, match="upsample must be one of"):
        models.create("unet", upsample="bilinear").init(
            jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)


def test_resnet34_encoder_unet_has_smp_parameter_count():
    """smp's ``Unet("resnet34", encoder_weights=None)`` (3 channels in, 1 class): smp needs
    torchvision, which is not installed here, so its count is computed from smp 0.6's
    documented architecture (``decoders/unet/decoder.py``): the ResNet-34 encoder without its fc
    (21,284,672), five decoder blocks (in + skip -> out: 512+256->256, 256+128->128,
    128+64->64, 64+64->32, 32+0->16), each two bias-free 3x3 convs with BatchNorm, and a 3x3
    head with bias."""
    encoder = 21_797_672 - (512 * 1000 + 1000)  # torchvision resnet34 minus its fc
    blocks = [(512, 256, 256), (256, 128, 128), (128, 64, 64), (64, 64, 32), (32, 0, 16)]
    decoder = sum(9 * (cin + skip) * out + 2 * out + 9 * out * out + 2 * out
                  for cin, skip, out in blocks)
    smp_count = encoder + decoder + (9 * 16 * 1 + 1)
    assert smp_count == 24_436_369
    smp = None
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        pass
    if smp is not None:  # when installable, the package itself is the reference
        net = smp.Unet("resnet34", encoder_weights=None)
        assert sum(p.numel() for p in net.parameters()) == smp_count
    model = models.create("unet_resnet34", num_classes=1)
    params, shape = _shapes(model, 64, channels=3)
    assert shape == (1, 64, 64, 1)
    assert params == smp_count
    assert model.skip_strides() == {2: 64, 4: 64, 8: 128, 16: 256, 32: 512}
    with pytest.raises(ValueError, match="divisible by 32"):
        model.init(jax.random.key(0), jnp.zeros((1, 48, 48, 3)), train=False)


def _benchmark():
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "segmentation.py"
    spec = importlib.util.spec_from_file_location("segmentation_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.slow
@pytest.mark.parametrize("padding,norm,size", [("valid", None, 68), ("same", "batch_norm", 16)])
def test_unet_matches_the_hand_built_pytorch_network(padding, norm, size):
    torch = pytest.importorskip("torch")
    bench = _benchmark()
    model = U.UNet(num_classes=3, depth=2, base_width=4, padding=padding, norm=norm, conv="xla")
    x = np.random.default_rng(0).normal(size=(2, size, size, 1)).astype(np.float32)
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), x)
    ours = np.asarray(jax.jit(functools.partial(model.apply, train=False))(variables, x))
    net = bench.torch_unet(in_channels=1, num_classes=3, depth=2, base_width=4, padding=padding,
                           norm=norm is not None).eval()
    bench.load_flax_params(net, variables["params"])
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert ours.shape == ref.shape == ((2, 28, 28, 3) if padding == "valid" else (2, 16, 16, 3))
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_segmentation_benchmark_smoke(capsys):
    pytest.importorskip("torch")
    results = _benchmark().main(["--batch", "2", "--image-size", "16", "--base-width", "4",
                                 "--depth", "2", "--steps", "1", "--warmup", "0"])
    assert results["jaxvision"]["images_per_s"] > 0
    assert results["ratio"]["images_per_s_over_torch"] > 0
    assert "ratio" in capsys.readouterr().out
