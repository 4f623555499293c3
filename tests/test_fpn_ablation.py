"""The single-level RetinaNet of ``experiments/fpn_ablation.py`` (no pyramid, every anchor size
on one map) against the FPN one: output and anchor shapes, and a parameter count that differs
from the FPN's by exactly the neck and the wider output convs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.models.retinanet import RetinaNet, level_anchors
from experiments.fpn_ablation import ALL_SIZES, PYRAMID_SIZES, VARIANTS

CHANNELS, BASE, CLASSES = 16, 8, 5  # neck/head width, backbone width, object classes


def _build(name):
    model = models.create("retinanet_resnet18_fpn", num_classes=CLASSES, fpn_channels=CHANNELS,
                          anchor_offset=0.5, round_anchors=False, conv="xla",
                          backbone_kwargs=dict(base_features=BASE, conv="xla"),
                          **VARIANTS[name])
    out, variables = jax.eval_shape(
        lambda k: model.init_with_output(k, jnp.zeros((2, 128, 128, 3)), train=False),
        jax.random.key(0))
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(variables["params"]))
    return model, out, variables["params"], count


def test_defaults_keep_the_pyramid():
    assert RetinaNet.extra == "p6p7" and tuple(RetinaNet.in_levels) == ("c3", "c4", "c5")


def test_single_level_outputs_and_anchors():
    _, out, params, _ = _build("c4")
    # One level: C4 of a 128-pixel image is 8x8; 15 sizes x 3 ratios = 45 anchors per cell.
    assert len(out["class_logits"]) == len(out["box_deltas"]) == len(out["anchors"]) == 1
    assert out["class_logits"][0].shape == (2, 8 * 8 * 45, CLASSES)
    assert out["box_deltas"][0].shape == (2, 8 * 8 * 45, 4)
    assert out["anchors"][0].shape == (8 * 8 * 45, 4)
    assert set(params["fpn"]) == {"inner_blocks_0", "layer_blocks_0"}  # no top-down, no P6/P7
    assert params["fpn"]["inner_blocks_0"]["kernel"].shape == (1, 1, 4 * BASE, CHANNELS)

    _, fpn_out, _, _ = _build("fpn")
    grids = [16, 8, 4, 2, 1]  # P3-P7
    assert [a.shape for a in fpn_out["anchors"]] == [(g * g * 9, 4) for g in grids]


def test_single_level_anchors_are_the_pyramid_s_shapes_on_one_grid():
    model, _, _, _ = _build("c4")
    # What RetinaNet.__call__ builds for its one 8x8 level (host constants).
    (anchors,) = level_anchors([(8, 8)], (128, 128), sizes=model.anchor_sizes,
                               aspect_ratios=model.aspect_ratios, offset=model.anchor_offset,
                               round_to_integer=model.round_anchors)
    pyramid = sorted(s for level in PYRAMID_SIZES for s in level)
    assert list(ALL_SIZES[0]) == pyramid and len(pyramid) == 15
    cell = anchors[:45]  # the first location's anchors, centred on (8, 8) with offset 0.5
    np.testing.assert_allclose((cell[:, :2] + cell[:, 2:]) / 2, 8.0, atol=1e-4)
    square = np.isclose(cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1])
    np.testing.assert_allclose(np.sort((cell[:, 2] - cell[:, 0])[square]), pyramid, rtol=1e-5)
    # The next location is one stride (16 pixels) to the right.
    np.testing.assert_allclose(anchors[45:90, 0] - anchors[:45, 0], 16.0, atol=1e-4)


def test_parameter_difference_is_the_neck_and_the_output_convs():
    *_, fpn = _build("fpn")
    *_, single = _build("c4")
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731 (kernel + bias)
    c = CHANNELS
    # FPN: laterals from C3/C4/C5 (2, 4, 8 x BASE channels), three 3x3 smoothers, P6 and P7.
    fpn_neck = sum(conv(1, m * BASE, c) for m in (2, 4, 8)) + 5 * conv(3, c, c)
    single_neck = conv(1, 4 * BASE, c) + conv(3, c, c)
    # Heads: the same four 3x3 convs; the output convs emit A x K (class) and A x 4 (box).
    fpn_out = conv(3, c, 9 * CLASSES) + conv(3, c, 9 * 4)
    single_out = conv(3, c, 45 * CLASSES) + conv(3, c, 45 * 4)
    assert fpn - single == (fpn_neck - single_neck) - (single_out - fpn_out)


@pytest.mark.slow
@pytest.mark.long  # 3 variants x compile: several minutes; CI's hour has no room for it
def test_quick_experiment_runs(tmp_path):
    from experiments import fpn_ablation

    config = fpn_ablation.get_config()
    config.quick = True
    config.num_epochs = 1
    config.variants = ("fpn", "c4")
    config.model_kwargs.head_convs = 1
    config.model_kwargs.backbone_kwargs.base_features = 8
    result = fpn_ablation.main(config, str(tmp_path))
    assert set(result) == {"fpn", "c4"}
    assert all(0.0 <= v <= 1.0 for r in result.values() for v in r.values())
    for name in ("report.md", "results.json", "detections.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "single level C4" in (tmp_path / "report.md").read_text()
