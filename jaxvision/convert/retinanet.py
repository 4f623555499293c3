"""torchvision ``retinanet_resnet50_fpn`` (v1 and v2) state dicts -> :class:`RetinaNet` variables.

Name map (torchvision -> jaxvision):

* ``backbone.body.*`` -> ``backbone/*`` through :func:`resnet_from_torchvision` (the body has no
  ``fc``); with ``frozen_batch_norm=True`` the four FrozenBatchNorm2d buffers all go to
  ``batch_stats`` (``weight``/``bias`` -> ``scale``/``bias``), as
  :class:`~jaxvision.nn.frozen_norm.FrozenBatchNorm` keeps them;
* ``backbone.fpn.inner_blocks.<i>.0`` / ``layer_blocks.<i>.0`` -> ``fpn/inner_blocks_<i>`` /
  ``fpn/layer_blocks_<i>``; ``backbone.fpn.extra_blocks.p6``/``p7`` -> ``fpn/p6``/``fpn/p7``;
* ``head.{classification,regression}_head.conv.<i>.0`` -> ``<head>/conv_<i>``, ``.conv.<i>.1``
  (v2's GroupNorm) -> ``<head>/norm_<i>``; ``cls_logits``/``bbox_reg`` keep their names.

The eps of FrozenBatchNorm is not in the state dict: torchvision's pretrained COCO weights use
eps 0 (``create("retinanet_resnet50_fpn", frozen_eps=0.0)``), a fresh torchvision model 1e-5.
"""

from __future__ import annotations

import re

import numpy as np

from jaxvision.convert.torchvision import StateDict, Variables, _Builder, _numpy_dict, \
    resnet_from_torchvision

_BODY = "backbone.body."


def retinanet_from_torchvision(state_dict: StateDict, *, frozen_batch_norm: bool = True
                               ) -> Variables:
    """torchvision RetinaNet (ResNet-FPN backbone) -> ``{"params", "batch_stats"}``."""
    sd = _numpy_dict(state_dict)
    body = {k[len(_BODY):]: sd.pop(k) for k in list(sd) if k.startswith(_BODY)}
    if not body:
        raise ValueError("no 'backbone.body.*' entries: is this a torchvision RetinaNet state "
                         "dict?")
    # resnet_from_torchvision expects a classifier; the detection body has none.
    body["fc.weight"], body["fc.bias"] = np.zeros((1, 1), np.float32), np.zeros((1,), np.float32)
    backbone = resnet_from_torchvision(body)
    del backbone["params"]["head"]
    if frozen_batch_norm:
        _move_affine_to_stats(backbone["params"], backbone["batch_stats"])
    out = _Builder()
    out.variables["params"]["backbone"] = backbone["params"]
    out.variables["batch_stats"]["backbone"] = backbone["batch_stats"]
    for kind in ("inner_blocks", "layer_blocks"):
        for i in sorted({int(m.group(1)) for k in sd
                         if (m := re.match(rf"backbone\.fpn\.{kind}\.(\d+)\.0\.", k))}):
            out.conv(("fpn", f"{kind}_{i}"), sd, f"backbone.fpn.{kind}.{i}.0")
    for name in ("p6", "p7"):
        if f"backbone.fpn.extra_blocks.{name}.weight" in sd:
            out.conv(("fpn", name), sd, f"backbone.fpn.extra_blocks.{name}")
    for head, output in (("classification_head", "cls_logits"), ("regression_head", "bbox_reg")):
        prefix = f"head.{head}"
        for i in sorted({int(m.group(1)) for k in sd
                         if (m := re.match(rf"{prefix}\.conv\.(\d+)\.0\.", k))}):
            out.conv((head, f"conv_{i}"), sd, f"{prefix}.conv.{i}.0")
            if f"{prefix}.conv.{i}.1.weight" in sd:  # v2: GroupNorm
                out.layer_norm((head, f"norm_{i}"), sd, f"{prefix}.conv.{i}.1")
        out.conv((head, output), sd, f"{prefix}.{output}")
    return out.result(sd)


def _move_affine_to_stats(params: dict, stats: dict) -> None:
    """BatchNorm ``scale``/``bias`` from ``params`` into ``batch_stats`` (FrozenBatchNorm)."""
    for name, node in list(params.items()):
        if name in stats and isinstance(node, dict) and "scale" in node and "mean" in stats[name]:
            stats[name]["scale"] = node.pop("scale")
            stats[name]["bias"] = node.pop("bias")
            if not node:
                del params[name]
        elif isinstance(node, dict) and name in stats:
            _move_affine_to_stats(node, stats[name])
            if not node:
                del params[name]


def uses_frozen_norm(model) -> bool:
    """Whether the RetinaNet's backbone keeps its norm affine in ``batch_stats``."""
    import functools

    from jaxvision.nn.frozen_norm import FrozenBatchNorm

    norm = model.backbone.norm
    base = norm.func if isinstance(norm, functools.partial) else norm
    return isinstance(base, type) and issubclass(base, FrozenBatchNorm)
