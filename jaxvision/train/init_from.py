"""Starting a run from other weights: ``config.init_from`` and ``config.init_dont_load``.

The source is a jaxvision workdir or checkpoint (params and model state are read without
building its optimizer), a torchvision/timm weights file (``.safetensors``, ``.npz``,
``.pth``; converted by ``jaxvision.convert``), or published weights named
``"<model>.<WEIGHTS>"`` (``"resnet50.IMAGENET1K_V2"``: fetched, checked and converted once by
``jaxvision.models.pretrained``). Every leaf of the new model takes the source's
value, except those whose path matches a ``init_dont_load`` regex (``re.search`` on paths like
``head/kernel`` or ``layer1/0/bn1/mean``), which keep their fresh initialisation. A leaf that
is missing from the source or has another shape, and that no regex covers, stops the run with
the list of paths: a half-loaded model never trains silently. Two mismatches are adapted
(``jaxvision.transfer.inputs.adapt_leaf``): an RGB stem kernel loaded into a grayscale model
is summed over its input channels, and a ViT position embedding is resized to the new grid.
Source leaves the model does not have (a 1000-class head for a headless backbone) are left out
with a log line.

The loop applies this only to a fresh run: its own checkpoint comes first (resume order: own
checkpoint, then ``init_from``, then scratch).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Sequence

import numpy as np
from flax import traverse_util

from jaxvision.transfer.inputs import adapt_leaf

log = logging.getLogger("jaxvision.train")

WEIGHT_FILES = (".safetensors", ".npz", ".pth", ".pt")


def check_source(path: str) -> None:
    """Stops on a path that does not exist or is of no format ``init_from`` reads."""
    from jaxvision.models.pretrained import weights_reference

    if weights_reference(path) is not None:  # "resnet50.IMAGENET1K_V2": published weights
        return
    if not os.path.exists(path):
        raise ValueError(f"config.init_from: {path!r} does not exist")
    if os.path.isfile(path) and not path.endswith(WEIGHT_FILES):
        raise ValueError(f"config.init_from: {path!r} is of an unknown format; give a jaxvision "
                         f"workdir or checkpoint folder, or a {'/'.join(WEIGHT_FILES)} file")


def _read(path: str, model) -> dict:
    """``{"params": ..., "model_state": ...}`` of the source, in the layout of ``model``."""
    from jaxvision.models import pretrained

    if (entry := pretrained.weights_reference(path)) is not None:
        path = pretrained.converted_path(entry)  # fetched, checked and converted once
    if os.path.isfile(path) and pretrained.is_converted(path):
        variables = pretrained.read_variables(path)
        return {"params": variables.get("params", {}),
                "model_state": {k: v for k, v in variables.items() if k != "params"}}
    if os.path.isfile(path):
        from jaxvision import convert

        converted = convert._converter_for(model)(convert.load_state_dict(path))
        return {"params": converted.get("params", {}),
                "model_state": {k: v for k, v in converted.items() if k != "params"}}
    from jaxvision.train.checkpoint import read_variables

    return read_variables(path)


def _flat(variables: dict) -> dict[str, Any]:
    """``{"params/head/kernel": ..., "model_state/batch_stats/bn0/mean": ...}``."""
    return traverse_util.flatten_dict(variables, sep="/") if variables else {}


def _short(path: str) -> str:
    """The path users write regexes for: without ``params/`` or ``model_state/<collection>/``."""
    parts = path.split("/")
    return "/".join(parts[1:] if parts[0] == "params" else parts[2:])


def load_initial_variables(path: str, model, params: Any, model_state: Any, *,
                           dont_load: Sequence[str] = ()) -> tuple[dict, dict]:
    """``(params, model_state)`` of a fresh model with the source's values filled in."""
    check_source(path)
    source = _flat(_read(path, model))
    target = _flat({"params": params, "model_state": model_state})
    skip = [re.compile(pattern) for pattern in dont_load]
    loaded, problems = {}, []
    for name, fresh in target.items():
        if any(pattern.search(_short(name)) for pattern in skip):
            loaded[name] = fresh
        elif name not in source:
            problems.append(f"{_short(name)}: missing from the source")
        elif tuple(np.shape(source[name])) != tuple(np.shape(fresh)):
            adapted = adapt_leaf(_short(name), source[name], fresh)
            if adapted is not None:  # grayscale stem, ViT position embedding
                log.info("init_from: %s adapted from %s to %s", _short(name),
                         tuple(np.shape(source[name])), tuple(np.shape(fresh)))
                loaded[name] = np.asarray(adapted).astype(np.asarray(fresh).dtype)
                continue
            problems.append(f"{_short(name)}: source {tuple(np.shape(source[name]))}, model "
                            f"{tuple(np.shape(fresh))}")
        else:
            loaded[name] = np.asarray(source[name]).astype(np.asarray(fresh).dtype)
    if problems:
        raise ValueError(f"config.init_from {path!r} does not fit the model:\n  "
                         + "\n  ".join(problems[:20])
                         + ("\n  ..." if len(problems) > 20 else "")
                         + "\nAdd regexes for them to config.init_dont_load (e.g. 'head' for a "
                         "new classifier) to keep their fresh initialisation.")
    unused = [name for name in source if name not in target]
    kept = sum(1 for name in target if any(p.search(_short(name)) for p in skip))
    log.info("init_from %s: %d arrays loaded, %d kept fresh (init_dont_load), %d of the source "
             "unused", path, len(target) - kept, kept, len(unused))
    variables = traverse_util.unflatten_dict(loaded, sep="/")
    return variables["params"], variables.get("model_state", {})
