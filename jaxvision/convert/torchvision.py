"""torchvision state dicts -> Flax variables for jaxvision's ResNet, VGG, AlexNet, ViT,
MobileNetV2 and EfficientNet.

Each converter is an explicit name map (no guessing from parameter order across modules):

* conv ``weight`` (O, I/groups, kh, kw) -> ``kernel`` (kh, kw, I/groups, O);
* linear ``weight`` (O, I) -> ``kernel`` (I, O);
* BatchNorm ``weight``/``bias`` -> ``params`` ``scale``/``bias``; ``running_mean``/``running_var``
  -> ``batch_stats`` ``mean``/``var``; ``num_batches_tracked`` is dropped;
* the first classifier layer of VGG/AlexNet reads a map flattened in NCHW order in PyTorch
  and in NHWC order here, so its input rows are permuted (C, H, W) -> (H, W, C);
* the classifier (ResNet ``fc``, VGG/AlexNet ``classifier.6``, ViT ``heads.head``) is always
  ``head``, the one name jaxvision models give their classifier.

Arrays may be numpy arrays or anything with ``.numpy()`` / ``__array__`` (torch tensors on CPU);
torch itself is never imported.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

StateDict = Mapping[str, Any]
Variables = dict[str, dict]


def to_numpy(value: Any) -> np.ndarray:
    """A torch tensor (CPU, possibly requiring grad) or array-like as a float32/int numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _assign(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if path[-1] in node:
        raise ValueError(f"two state-dict entries map to {'/'.join(path)}")
    node[path[-1]] = value


def conv_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch OIHW conv weight -> Flax HWIO kernel."""
    if weight.ndim != 4:
        raise ValueError(f"expected a 4-D conv weight, got shape {weight.shape}")
    return np.transpose(weight, (2, 3, 1, 0))


def dense_kernel(weight: np.ndarray) -> np.ndarray:
    """PyTorch (out, in) linear weight (or a 1x1 conv weight) -> Flax (in, out) kernel."""
    if weight.ndim == 4 and weight.shape[2:] == (1, 1):
        weight = weight[:, :, 0, 0]
    if weight.ndim != 2:
        raise ValueError(f"expected a 2-D linear weight, got shape {weight.shape}")
    return np.transpose(weight)


def nchw_flatten_to_nhwc(weight: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Linear weight that read a (C, H, W)-flattened map -> Flax kernel reading (H, W, C) order."""
    out = weight.shape[0]
    if weight.shape[1] != channels * height * width:
        raise ValueError(f"linear weight {weight.shape} does not read a {channels}x{height}x{width} "
                         "map; was the model built for another input?")
    return weight.reshape(out, channels, height, width).transpose(2, 3, 1, 0).reshape(-1, out)


class _Builder:
    """Collects converted arrays into ``{"params": ..., "batch_stats": ...}``."""

    def __init__(self) -> None:
        self.variables: Variables = {"params": {}, "batch_stats": {}}

    def conv(self, module: tuple[str, ...], sd: dict, prefix: str) -> None:
        _assign(self.variables["params"], module + ("kernel",), conv_kernel(sd.pop(prefix + ".weight")))
        if prefix + ".bias" in sd:
            _assign(self.variables["params"], module + ("bias",), sd.pop(prefix + ".bias"))

    def dense(self, module: tuple[str, ...], sd: dict, prefix: str, kernel=None) -> None:
        weight = sd.pop(prefix + ".weight")
        _assign(self.variables["params"], module + ("kernel",),
                dense_kernel(weight) if kernel is None else kernel(weight))
        _assign(self.variables["params"], module + ("bias",), sd.pop(prefix + ".bias"))

    def batch_norm(self, module: tuple[str, ...], sd: dict, prefix: str) -> None:
        _assign(self.variables["params"], module + ("scale",), sd.pop(prefix + ".weight"))
        _assign(self.variables["params"], module + ("bias",), sd.pop(prefix + ".bias"))
        _assign(self.variables["batch_stats"], module + ("mean",), sd.pop(prefix + ".running_mean"))
        _assign(self.variables["batch_stats"], module + ("var",), sd.pop(prefix + ".running_var"))
        sd.pop(prefix + ".num_batches_tracked", None)

    def conv_norm(self, module: tuple[str, ...], sd: dict, prefix: str) -> None:
        """torchvision ``Conv2dNormActivation`` (``prefix.0`` conv, ``prefix.1`` BN) ->
        a :class:`~jaxvision.nn.ConvBNAct` (``conv``, ``bn``)."""
        self.conv(module + ("conv",), sd, f"{prefix}.0")
        self.batch_norm(module + ("bn",), sd, f"{prefix}.1")

    def layer_norm(self, module: tuple[str, ...], sd: dict, prefix: str) -> None:
        _assign(self.variables["params"], module + ("scale",), sd.pop(prefix + ".weight"))
        _assign(self.variables["params"], module + ("bias",), sd.pop(prefix + ".bias"))

    def result(self, sd: dict) -> Variables:
        leftovers = sorted(k for k in sd if not k.endswith("num_batches_tracked"))
        if leftovers:
            raise ValueError(f"state-dict entries not understood by this converter: {leftovers[:8]}"
                             f"{' ...' if len(leftovers) > 8 else ''}; is it the right architecture?")
        if not self.variables["batch_stats"]:
            del self.variables["batch_stats"]
        return self.variables


def _numpy_dict(state_dict: StateDict) -> dict[str, np.ndarray]:
    return {k: to_numpy(v) for k, v in state_dict.items()}


def resnet_from_torchvision(state_dict: StateDict) -> Variables:
    """torchvision ``ResNet`` (any depth, also SE variants with ``se.fc1``/``se.fc2``) ->
    :class:`jaxvision.models.resnet.ResNet` variables."""
    sd = _numpy_dict(state_dict)
    out = _Builder()
    out.conv(("conv1",), sd, "conv1")
    out.batch_norm(("bn1",), sd, "bn1")
    blocks = sorted({m.group(1, 2) for k in sd if (m := re.match(r"layer(\d+)\.(\d+)\.", k))},
                    key=lambda sj: (int(sj[0]), int(sj[1])))
    for stage, index in blocks:
        prefix, name = f"layer{stage}.{index}", (f"layer{stage}_{index}",)
        for k in (1, 2, 3):
            if f"{prefix}.conv{k}.weight" in sd:
                out.conv(name + (f"conv{k}",), sd, f"{prefix}.conv{k}")
                out.batch_norm(name + (f"bn{k}",), sd, f"{prefix}.bn{k}")
        if f"{prefix}.downsample.0.weight" in sd:
            out.conv(name + ("downsample_conv",), sd, f"{prefix}.downsample.0")
            out.batch_norm(name + ("downsample_bn",), sd, f"{prefix}.downsample.1")
        for fc in ("fc1", "fc2"):
            if f"{prefix}.se.{fc}.weight" in sd:
                out.dense(name + ("se", fc), sd, f"{prefix}.se.{fc}")
    out.dense(("head",), sd, "fc")
    return out.result(sd)


def _sequential_indices(sd: Mapping[str, np.ndarray], container: str) -> list[int]:
    return sorted({int(m.group(1)) for k in sd if (m := re.match(rf"{container}\.(\d+)\.", k))})


def vgg_from_torchvision(state_dict: StateDict) -> Variables:
    """torchvision ``VGG`` (with or without BN) -> :class:`jaxvision.models.vgg.VGG` variables.

    Convs in ``features`` are numbered in order (``conv0``..); a BatchNorm right after a conv
    becomes ``bn<i>``; ``classifier.0/3/6`` become ``fc1``/``fc2``/``head``.
    """
    sd = _numpy_dict(state_dict)
    out = _Builder()
    conv_index = -1
    for i in _sequential_indices(sd, "features"):
        prefix = f"features.{i}"
        if f"{prefix}.running_mean" in sd:
            out.batch_norm((f"bn{conv_index}",), sd, prefix)
        else:
            conv_index += 1
            out.conv((f"conv{conv_index}",), sd, prefix)
    channels = out.variables["params"][f"conv{conv_index}"]["kernel"].shape[-1]
    _classifier(out, sd, channels=channels, spatial=7)
    return out.result(sd)


def _classifier(out: "_Builder", sd, *, channels: int, spatial: int) -> None:
    """torchvision's 3-Linear ``classifier`` (AlexNet, VGG) -> ``fc1``, ``fc2``, ``head``; the
    first Linear reads an NCHW-flattened ``channels x spatial x spatial`` map."""
    linear = _sequential_indices(sd, "classifier")
    if len(linear) != 3:
        raise ValueError(f"expected 3 linear layers in classifier, found indices {linear}")
    out.dense(("fc1",), sd, f"classifier.{linear[0]}",
              kernel=lambda w: nchw_flatten_to_nhwc(w, channels, spatial, spatial))
    out.dense(("fc2",), sd, f"classifier.{linear[1]}")
    out.dense(("head",), sd, f"classifier.{linear[2]}")


def alexnet_from_torchvision(state_dict: StateDict) -> Variables:
    """torchvision ``AlexNet`` -> :class:`jaxvision.models.alexnet.AlexNet` variables."""
    sd = _numpy_dict(state_dict)
    out = _Builder()
    for n, i in enumerate(_sequential_indices(sd, "features"), start=1):
        out.conv((f"conv{n}",), sd, f"features.{i}")
    channels = out.variables["params"]["conv5"]["kernel"].shape[-1]
    _classifier(out, sd, channels=channels, spatial=6)
    return out.result(sd)


def vit_from_torchvision(state_dict: StateDict) -> Variables:
    """torchvision ``VisionTransformer`` -> :class:`jaxvision.models.vit.ViT` variables.

    ``in_proj_weight`` rows are [q; k; v], each split into heads, which is the column order of
    jaxvision's fused ``qkv`` kernel.
    """
    sd = _numpy_dict(state_dict)
    out = _Builder()
    params = out.variables["params"]
    out.conv(("conv_proj",), sd, "conv_proj")
    _assign(params, ("class_token",), sd.pop("class_token"))
    _assign(params, ("pos_embedding",), sd.pop("encoder.pos_embedding"))
    layers = sorted({int(m.group(1)) for k in sd
                     if (m := re.match(r"encoder\.layers\.encoder_layer_(\d+)\.", k))})
    for i in layers:
        prefix, name = f"encoder.layers.encoder_layer_{i}", (f"encoder_layer_{i}",)
        out.layer_norm(name + ("ln_1",), sd, f"{prefix}.ln_1")
        out.layer_norm(name + ("ln_2",), sd, f"{prefix}.ln_2")
        _assign(params, name + ("qkv", "kernel"),
                dense_kernel(sd.pop(f"{prefix}.self_attention.in_proj_weight")))
        _assign(params, name + ("qkv", "bias"), sd.pop(f"{prefix}.self_attention.in_proj_bias"))
        out.dense(name + ("out_proj",), sd, f"{prefix}.self_attention.out_proj")
        # torchvision >= 0.15 names the MLP linears mlp.0/mlp.3; older ones linear_1/linear_2.
        for flax_name, keys in (("mlp_fc1", ("mlp.0", "mlp.linear_1")),
                                ("mlp_fc2", ("mlp.3", "mlp.linear_2"))):
            key = next((k for k in keys if f"{prefix}.{k}.weight" in sd), None)
            if key is None:
                raise ValueError(f"no MLP weights {keys} in {prefix}")
            out.dense(name + (flax_name,), sd, f"{prefix}.{key}")
    out.layer_norm(("encoder_norm",), sd, "encoder.ln")
    out.dense(("head",), sd, "heads.head")
    return out.result(sd)


def _submodule_indices(sd: Mapping[str, np.ndarray], prefix: str) -> list[int]:
    return _sequential_indices(sd, re.escape(prefix))


def mobilenet_v2_from_torchvision(state_dict: StateDict) -> Variables:
    """torchvision ``MobileNetV2`` (any width) -> :class:`jaxvision.models.mobilenet.MobileNetV2`.

    ``features.N`` -> ``features_N``. A block's ``conv`` Sequential is ``[expand,] depthwise``
    (each a conv-BN-ReLU6) then the projection's bare conv and BN: four entries with an
    expansion, three without (the first block).
    """
    sd = _numpy_dict(state_dict)
    out = _Builder()
    indices = _sequential_indices(sd, "features")
    out.conv_norm(("features_0",), sd, "features.0")
    for i in indices[1:-1]:
        prefix, name = f"features.{i}.conv", f"features_{i}"
        parts = _submodule_indices(sd, prefix)
        units = ("expand", "depthwise") if len(parts) == 4 else ("depthwise",)
        if len(parts) != len(units) + 2:
            raise ValueError(f"{prefix} has sub-modules {parts}; not a MobileNetV2 block")
        for k, unit in enumerate(units):
            out.conv_norm((name, unit), sd, f"{prefix}.{k}")
        out.conv((name, "project", "conv"), sd, f"{prefix}.{len(units)}")
        out.batch_norm((name, "project", "bn"), sd, f"{prefix}.{len(units) + 1}")
    out.conv_norm((f"features_{indices[-1]}",), sd, f"features.{indices[-1]}")
    out.dense(("head",), sd, "classifier.1")
    return out.result(sd)


def efficientnet_from_torchvision(state_dict: StateDict) -> Variables:
    """torchvision ``EfficientNet`` B0..B7 -> :class:`jaxvision.models.efficientnet.EfficientNet`.

    ``features.S.J`` -> ``features_S_J``; a block's ``block`` Sequential is ``[expand,]
    depthwise, SE (fc1/fc2 1x1 convs -> Dense), project``: the SE entry splits it.
    """
    sd = _numpy_dict(state_dict)
    out = _Builder()
    indices = _sequential_indices(sd, "features")
    out.conv_norm(("features_0",), sd, "features.0")
    for s in indices[1:-1]:
        for j in _submodule_indices(sd, f"features.{s}"):
            prefix, name = f"features.{s}.{j}.block", f"features_{s}_{j}"
            parts = _submodule_indices(sd, prefix)
            se = next((k for k in parts if f"{prefix}.{k}.fc1.weight" in sd), None)
            if se is None or se not in (1, 2) or parts[-1] != se + 1:
                raise ValueError(f"{prefix} has sub-modules {parts}; not an MBConv block")
            for k, unit in zip(parts, ("expand", "depthwise")[2 - se:]):
                out.conv_norm((name, unit), sd, f"{prefix}.{k}")
            for fc in ("fc1", "fc2"):
                out.dense((name, "se", fc), sd, f"{prefix}.{se}.{fc}")
            out.conv_norm((name, "project"), sd, f"{prefix}.{se + 1}")
    out.conv_norm((f"features_{indices[-1]}",), sd, f"features.{indices[-1]}")
    out.dense(("head",), sd, "classifier.1")
    return out.result(sd)
