"""Load PyTorch/torchvision weights into jaxvision models (never imports torch).

``load_torchvision(model, source)`` takes a state dict (or a ``.safetensors``/``.npz`` path),
picks the converter for the model's class, checks every array against the shapes the model
expects, and returns Flax variables ready for ``model.apply``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.convert.torchvision import (
    alexnet_from_torchvision,
    conv_kernel,
    dense_kernel,
    efficientnet_from_torchvision,
    mobilenet_v2_from_torchvision,
    nchw_flatten_to_nhwc,
    resnet_from_torchvision,
    vgg_from_torchvision,
    vit_from_torchvision,
)
from jaxvision.convert.retinanet import retinanet_from_torchvision

__all__ = [
    "alexnet_from_torchvision", "conv_kernel", "dense_kernel", "efficientnet_from_torchvision",
    "load_state_dict", "load_torchvision", "mobilenet_v2_from_torchvision",
    "nchw_flatten_to_nhwc", "resnet_from_torchvision",
    "retinanet_from_torchvision",
    "vgg_from_torchvision", "vit_from_torchvision",
]


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a flat ``{name: array}`` file: ``.safetensors`` or ``.npz`` (no pickles), or a
    PyTorch ``.pth`` state dict when torch is installed (``weights_only``: tensors, no code).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no weights file at {path!r}")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        return dict(load_file(path))
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if path.endswith((".pth", ".pt")):
        try:
            import torch
        except ImportError:
            raise ValueError(f"reading {path!r} needs PyTorch, which is not installed; convert it "
                             "once where it is: safetensors.torch.save_file(torch.load(path), "
                             "'weights.safetensors')") from None
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for a bad file
            raise ValueError(f"cannot read {path!r} as a PyTorch state dict: "
                             f"{type(error).__name__}: {error}") from None
        state_dict = state_dict.get("state_dict", state_dict)  # some checkpoints nest it
        return {k: v.numpy() for k, v in state_dict.items()}
    raise ValueError(f"cannot read {path!r}: expected a .safetensors, .npz or .pth file")


def _converter_for(model: nn.Module) -> Callable[[Mapping[str, Any]], dict]:
    from jaxvision.models.alexnet import AlexNet
    from jaxvision.models.efficientnet import EfficientNet
    from jaxvision.models.mobilenet import MobileNetV2
    from jaxvision.models.resnet import ResNet
    from jaxvision.models.vgg import VGG
    from jaxvision.models.retinanet import RetinaNet
    from jaxvision.models.vit import ViT

    if isinstance(model, RetinaNet):
        from jaxvision.convert.retinanet import retinanet_from_torchvision, uses_frozen_norm

        frozen = uses_frozen_norm(model)
        return lambda sd: retinanet_from_torchvision(sd, frozen_batch_norm=frozen)
    for cls, fn in ((ResNet, resnet_from_torchvision), (VGG, vgg_from_torchvision),
                    (AlexNet, alexnet_from_torchvision), (ViT, vit_from_torchvision),
                    (MobileNetV2, mobilenet_v2_from_torchvision),
                    (EfficientNet, efficientnet_from_torchvision)):
        if isinstance(model, cls):
            return fn
    raise TypeError(f"no torchvision converter for {type(model).__name__}; supported: ResNet, "
                    "VGG, AlexNet, ViT, MobileNetV2, EfficientNet, RetinaNet (or call one of "
                    "the *_from_torchvision functions)")


def _flatten(tree: Mapping, prefix: tuple = ()) -> dict[tuple, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix + (key,)))
        else:
            flat[prefix + (key,)] = value
    return flat


def _unflatten(flat: Mapping[tuple, Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def load_torchvision(model: nn.Module, source: Mapping[str, Any] | str | os.PathLike, *,
                     input_shape: tuple[int, ...] | None = None,
                     skip_mismatched: bool = False, rng: jax.Array | None = None) -> dict:
    """Converts torchvision weights for ``model`` and validates them against its variables.

    ``input_shape`` (NHWC, default 224x224 RGB, ViT uses its ``image_size``) is only used to
    trace the expected shapes. A headless model (``num_classes=None``) leaves the checkpoint's
    ``head`` out, so a backbone loads classifier weights directly. With
    ``skip_mismatched=True`` entries whose shape differs (e.g. a 1000-class head loaded into a
    10-class model) or that are missing keep the model's fresh initialisation (from ``rng``)
    instead of raising.
    """
    state_dict = load_state_dict(source) if isinstance(source, (str, os.PathLike)) else source
    converted = _flatten(_converter_for(model)(state_dict))
    if getattr(model, "num_classes", 0) is None:
        converted = {p: v for p, v in converted.items() if p[1] != "head"}
    if input_shape is None:
        size = getattr(model, "image_size", 224)
        input_shape = (1, size, size, 3)
    init = lambda key: model.init({"params": key, "dropout": key}, jnp.zeros(input_shape),
                                  train=False)
    key = rng if rng is not None else jax.random.key(0)
    collections = ("params", "batch_stats")
    shapes = jax.eval_shape(init, key)
    expected = _flatten({c: shapes[c] for c in collections if c in shapes})
    mismatched = [(("/".join(p)), converted[p].shape, expected[p].shape) for p in expected
                  if p in converted and tuple(converted[p].shape) != tuple(expected[p].shape)]
    missing = sorted("/".join(p) for p in expected if p not in converted)
    unexpected = sorted("/".join(p) for p in converted if p not in expected)
    if unexpected:
        raise ValueError(f"converted weights have entries the model lacks: {unexpected[:8]}; "
                         "does the model configuration match the checkpoint?")
    if (mismatched or missing) and not skip_mismatched:
        raise ValueError(f"weights do not fit {type(model).__name__}: shape mismatches "
                         f"(name, checkpoint, model) {mismatched[:8]}, missing {missing[:8]}. "
                         "Pass skip_mismatched=True to keep fresh weights for these (e.g. a new "
                         "head)")
    if mismatched or missing:
        fresh_vars = init(key)
        fresh = _flatten({c: fresh_vars[c] for c in collections if c in fresh_vars})
        result = {p: (converted[p] if p in converted and
                      tuple(converted[p].shape) == tuple(expected[p].shape) else fresh[p])
                  for p in expected}
    else:
        result = {p: converted[p] for p in expected}
    return jax.tree.map(lambda a, e: jnp.asarray(a, dtype=e.dtype),
                        _unflatten(result), _unflatten(expected))
