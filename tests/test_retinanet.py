"""RetinaNet, FPN and their post-processing against torchvision's definitions.

Parameter counts are torchvision's published numbers (``shared/reference/tools_2026.md``);
forwards and detections are checked against torch networks with torchvision's module names
(``torch_reference.py``, no torchvision build needed) and against a plain numpy version of
``postprocess_detections``.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import convert, models
from jaxvision.models.fpn import FPN, feature_levels, resize_nearest
from jaxvision.models.retinanet import TORCHVISION_ANCHOR_SIZES, RetinaNet, level_anchors
from jaxvision.ops.postprocess import retinanet_postprocess


def _num_params(model, size=128):
    shapes = jax.eval_shape(lambda k: model.init(k, jnp.zeros((1, size, size, 3)), train=False),
                            jax.random.key(0))
    return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes["params"])), shapes


def test_parameter_counts_equal_torchvision():
    frozen, shapes = _num_params(models.create("retinanet_resnet50_fpn"))
    assert frozen == 34_014_999
    # FrozenBatchNorm keeps all four vectors as state, as torchvision's buffers.
    assert set(shapes["batch_stats"]["backbone"]["bn1"]) == {"scale", "bias", "mean", "var"}
    assert _num_params(models.create("retinanet_resnet50_fpn",
                                      backbone_norm="batch_norm"))[0] == 34_068_119
    assert _num_params(models.create("retinanet_resnet50_fpn_v2"))[0] == 38_198_935


@pytest.mark.slow
def test_head_initialisation_is_torchvision_s():
    from jaxvision.losses.detection import prior_bias_init
    from jaxvision.models.retinanet import RetinaNetHead

    head = RetinaNetHead(5, conv="xla", output_bias_init=prior_bias_init(0.01))
    cls = jax.jit(head.init)(jax.random.key(0), jnp.zeros((1, 4, 4, 256)))["params"]
    np.testing.assert_allclose(cls["cls_logits"]["bias"], -math.log(0.99 / 0.01), rtol=1e-6)
    assert cls["cls_logits"]["bias"].shape == (45,)  # 9 anchors x 5 classes
    kernel = np.asarray(cls["conv_0"]["kernel"])
    assert abs(kernel.std() - 0.01) < 5e-4 and np.all(cls["conv_0"]["bias"] == 0)
    # FPN: Kaiming-uniform a=1 -> U(-sqrt(3/fan_in), +sqrt(3/fan_in)), zero bias.
    features = {"c3": jnp.ones((1, 4, 4, 128)), "c4": jnp.ones((1, 2, 2, 256)),
                "c5": jnp.ones((1, 1, 1, 512))}
    fpn = jax.jit(FPN(conv="xla").init)(jax.random.key(0), features)["params"]
    lateral = np.asarray(fpn["inner_blocks_0"]["kernel"])
    bound = math.sqrt(3 / 128)
    assert lateral.max() <= bound and lateral.max() > 0.9 * bound
    assert np.all(fpn["p7"]["bias"] == 0)


def test_outputs_shapes_and_anchor_order():
    model = models.create("retinanet_resnet18_fpn", num_classes=5)
    out, _ = jax.eval_shape(lambda k: model.init_with_output(k, jnp.zeros((2, 128, 96, 3)),
                                                             train=False), jax.random.key(0))
    grids = [(16, 12), (8, 6), (4, 3), (2, 2), (1, 1)]
    assert [o.shape for o in out["class_logits"]] == [(2, h * w * 9, 5) for h, w in grids]
    assert [a.shape for a in out["anchors"]] == [(h * w * 9, 4) for h, w in grids]


def test_fpn_levels_and_p6_source():
    backbone = models.create("resnet18", num_classes=None)
    assert [f.channels for f in feature_levels(backbone, ("c3", "c4", "c5")).values()] == \
        [128, 256, 512]
    features = {"c3": jnp.ones((1, 8, 8, 128)), "c4": jnp.ones((1, 4, 4, 256)),
                "c5": jnp.ones((1, 2, 2, 512))}
    for source, p6_in in (("p5", 32), ("c5", 512)):
        fpn = FPN(channels=32, extra_from=source, conv="xla")
        out, variables = jax.eval_shape(lambda k: fpn.init_with_output(k, features),
                                        jax.random.key(0))
        assert {k: v.shape[1:3] for k, v in out.items()} == {
            "p3": (8, 8), "p4": (4, 4), "p5": (2, 2), "p6": (1, 1), "p7": (1, 1)}
        assert variables["params"]["p6"]["kernel"].shape == (3, 3, p6_in, 32)
    fpn = FPN(extra=None, channels=8, conv="xla")
    out = jax.eval_shape(lambda k: fpn.init_with_output(k, features), jax.random.key(0))[0]
    assert sorted(out) == ["p3", "p4", "p5"]


def test_fpn_rejects_backbones_without_feature_info():
    import flax.linen as nn

    class Plain(nn.Module):
        num_classes: int | None = None

        @nn.compact
        def __call__(self, x, *, train):
            return nn.Conv(8, (3, 3))(x)

    with pytest.raises(ValueError, match="feature_info"):
        feature_levels(Plain(), ("c3",))
    with pytest.raises(ValueError, match="num_classes=None"):
        feature_levels(models.create("resnet18", num_classes=10), ("c3", "c4", "c5"))
    with pytest.raises(ValueError, match="no map named"):
        feature_levels(models.create("resnet18", num_classes=None), ("c3", "c6"))
    model = RetinaNet(backbone=Plain(), num_classes=3)
    with pytest.raises(ValueError, match="feature_info"):
        model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)


def test_nearest_resize_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(1, 5, 7, 2)).astype(np.float32)
    for size in ((10, 14), (9, 13), (5, 7)):
        ref = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)),
                                              size=size, mode="nearest")
        np.testing.assert_array_equal(resize_nearest(jnp.asarray(x), size),
                                      ref.numpy().transpose(0, 2, 3, 1))


# --- post-processing -----------------------------------------------------------------------


def _numpy_postprocess(logits_levels, deltas_levels, anchors_levels, image_size, *,
                       score_thresh=0.05, topk=1000, nms_thresh=0.5, max_det=300):
    """torchvision's postprocess_detections for one image, written out plainly in numpy."""
    boxes_all, scores_all, labels_all = [], [], []
    for logits, deltas, anchors in zip(logits_levels, deltas_levels, anchors_levels):
        k = logits.shape[-1]
        scores = (1 / (1 + np.exp(-logits.astype(np.float64)))).reshape(-1)
        idx = np.nonzero(scores > score_thresh)[0]
        idx = idx[np.argsort(-scores[idx], kind="stable")][:topk]
        a, d = anchors[idx // k].astype(np.float64), deltas[idx // k].astype(np.float64)
        w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        cx, cy = a[:, 0] + w / 2 + d[:, 0] * w, a[:, 1] + h / 2 + d[:, 1] * h
        pw = np.exp(np.minimum(d[:, 2], math.log(1000 / 16))) * w
        ph = np.exp(np.minimum(d[:, 3], math.log(1000 / 16))) * h
        b = np.stack([cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2], 1)
        b[:, 0::2] = b[:, 0::2].clip(0, image_size[1])
        b[:, 1::2] = b[:, 1::2].clip(0, image_size[0])
        boxes_all.append(b), scores_all.append(scores[idx]), labels_all.append(idx % k)
    boxes, scores, labels = map(np.concatenate, (boxes_all, scores_all, labels_all))
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        ok = True
        for j in keep:
            if labels[j] != labels[i]:
                continue
            lt, rb = np.maximum(boxes[i, :2], boxes[j, :2]), np.minimum(boxes[i, 2:], boxes[j, 2:])
            inter = np.prod(np.clip(rb - lt, 0, None))
            area = lambda x: (x[2] - x[0]) * (x[3] - x[1])  # noqa: E731
            with np.errstate(invalid="ignore"):  # 0/0 for two empty boxes: no suppression
                overlaps = inter / (area(boxes[i]) + area(boxes[j]) - inter) > nms_thresh
            if overlaps:
                ok = False
                break
        if ok:
            keep.append(i)
        if len(keep) == max_det:
            break
    return boxes[keep], scores[keep], labels[keep]


def _random_head_outputs(seed, grids, image_size, num_classes=6, batch=2):
    rng = np.random.default_rng(seed)
    anchors = level_anchors(grids, image_size, sizes=TORCHVISION_ANCHOR_SIZES,
                            aspect_ratios=(0.5, 1.0, 2.0))
    logits = [rng.normal(-3.5, 1.5, (batch, len(a), num_classes)).astype(np.float32)
              for a in anchors]
    deltas = [rng.normal(0, 0.4, (batch, len(a), 4)).astype(np.float32) for a in anchors]
    return logits, deltas, anchors


@pytest.mark.parametrize("max_det,topk", [(300, 1000), (20, 50)])
def test_postprocess_equals_numpy_reference(max_det, topk):
    grids, size = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)], (128, 128)
    logits, deltas, anchors = _random_head_outputs(1, grids, size)
    out = jax.device_get(retinanet_postprocess(logits, deltas, anchors, np.array(size),
                                               topk_candidates=topk, max_detections=max_det))
    for b in range(2):
        boxes, scores, labels = _numpy_postprocess([x[b] for x in logits], [x[b] for x in deltas],
                                                   anchors, size, topk=topk, max_det=max_det)
        n = int(out["valid"][b].sum())
        assert n == len(boxes) > 0
        np.testing.assert_allclose(out["boxes"][b, :n], boxes, atol=1e-3)
        np.testing.assert_allclose(out["scores"][b, :n], scores, atol=1e-6)
        np.testing.assert_array_equal(out["classes"][b, :n], labels)
        assert np.all(out["classes"][b, n:] == -1) and np.all(out["boxes"][b, n:] == 0)


def test_postprocess_with_nothing_above_threshold_is_all_padding():
    grids, size = [(4, 4), (2, 2)], (32, 32)
    anchors = level_anchors(grids, size, sizes=TORCHVISION_ANCHOR_SIZES[:2],
                            aspect_ratios=(0.5, 1.0, 2.0))
    logits = [np.full((1, len(a), 3), -10.0, np.float32) for a in anchors]
    deltas = [np.zeros((1, len(a), 4), np.float32) for a in anchors]
    out = retinanet_postprocess(logits, deltas, anchors, np.array(size), max_detections=10)
    assert not np.asarray(out["valid"]).any() and np.all(np.asarray(out["classes"]) == -1)


# --- torch parity --------------------------------------------------------------------------


def _torch_retinanet(stages, seed=0):
    torch = pytest.importorskip("torch")
    from torch_reference import TorchRetinaNet, randomize_bn

    torch.manual_seed(seed)
    reference = randomize_bn(TorchRetinaNet(stages=stages).eval())
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(1, 3, 64, 64)).astype(np.float32))
    with torch.no_grad():  # livelier heads than N(0, 0.01), so that a wrong map shows
        for name, p in reference.head.named_parameters():
            p.copy_(torch.randn_like(p) * (0.03 if p.ndim == 4 else 0.5))
        # Rescale the output convs: logits around -3 +- 1.5, deltas +- 0.3 (sane boxes).
        for head, target, shift in ((reference.head.classification_head, 1.5, -3.0),
                                    (reference.head.regression_head, 0.3, 0.0)):
            out = head.__getattr__(head.out_name)
            spread = torch.cat([o.flatten() for o in head(reference.backbone.fpn(
                reference.backbone.body(x)))]).std()
            out.weight.mul_(target / spread)
            out.bias.mul_(target / spread).add_(shift)
    return reference


def _compare_with_torch(stages, size, batch):
    torch = pytest.importorskip("torch")
    from torch_reference import torch_postprocess_detections

    reference = _torch_retinanet(stages)
    state_dict = reference.state_dict()
    assert "backbone.fpn.extra_blocks.p6.weight" in state_dict
    assert "head.classification_head.conv.3.0.bias" in state_dict
    assert "backbone.body.layer1.0.bn1.running_var" in state_dict
    model = models.create("retinanet_resnet50_fpn", conv="xla",
                          backbone_kwargs=dict(stage_sizes=stages))
    variables = convert.load_torchvision(model, state_dict, input_shape=(1, size, size, 3))
    x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        cls_ref, box_ref = reference(torch.from_numpy(x.transpose(0, 3, 1, 2)))

    @jax.jit
    def detect(variables, x):
        out = model.apply(variables, x, train=False)
        return out, retinanet_postprocess(out["class_logits"], out["box_deltas"],
                                          out["anchors"], out["image_size"])

    out, detections = jax.device_get(detect(variables, x))
    for ours, ref in zip(out["class_logits"] + out["box_deltas"], cls_ref + box_ref):
        assert ref.numpy().std() > 0.05  # a live output, not the prior everywhere
        np.testing.assert_allclose(ours, ref.numpy(), atol=1e-4, rtol=1e-4)
    anchors = [torch.from_numpy(np.array(a)) for a in out["anchors"]]
    for b in range(batch):
        boxes, scores, labels = torch_postprocess_detections(
            [c[b] for c in cls_ref], [r[b] for r in box_ref], anchors, (size, size))
        n = int(detections["valid"][b].sum())
        assert n == len(boxes) > 10
        np.testing.assert_allclose(detections["boxes"][b, :n], boxes.numpy(), atol=1e-3)
        np.testing.assert_array_equal(detections["classes"][b, :n], labels.numpy())


def test_small_retinanet_matches_torchvision_layout():
    """The whole converter and head on a one-block-per-stage ResNet-50 layout (fast)."""
    _compare_with_torch((1, 1, 1, 1), size=64, batch=2)


@pytest.mark.slow
def test_retinanet_resnet50_fpn_matches_torchvision():
    _compare_with_torch((3, 4, 6, 3), size=128, batch=2)


def test_converter_rejects_a_classifier_state_dict():
    with pytest.raises(ValueError, match="backbone.body"):
        convert.retinanet_from_torchvision({"conv1.weight": np.zeros((64, 3, 7, 7))})


def test_anchors_equal_torchvision_anchor_generator():
    torch = pytest.importorskip("torch")
    from torch_reference import torch_retinanet_anchors

    del torch
    for size, grids in (((128, 128), [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]),
                        ((96, 160), [(12, 20), (6, 10), (3, 5), (2, 3), (1, 2)])):
        ours = level_anchors(grids, size, sizes=TORCHVISION_ANCHOR_SIZES,
                             aspect_ratios=(0.5, 1.0, 2.0))
        for a, t in zip(ours, torch_retinanet_anchors(size, grids)):
            np.testing.assert_array_equal(a, t.numpy())
