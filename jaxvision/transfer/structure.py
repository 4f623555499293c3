"""A model's transfer-learning structure: its stem, stages of blocks and head, in call order.

Strategies speak of stages ("fine-tune the top two stages"), blocks ("re-initialise the last
two blocks", "an adapter after ``layer3_1``") and layers ("the last 30% of the layers"). They
are read off the model, not declared by it: the top-level submodules are recorded in the order
the forward pass calls them (``nn.intercept_methods`` under ``jax.eval_shape``, so nothing is
computed), and

* a submodule named ``<stage>_<index>`` is a block of stage ``<stage>`` (ResNet ``layer3_1``,
  ViT ``encoder_layer_7``); without such names, modules whose names end in the same number are
  one stage ``stage<number>`` (small_cnn's ``conv0``/``bn0``);
* what runs before the first block, and the root's own parameters (ViT's ``class_token``,
  ``pos_embedding``), is the ``stem``; what runs after the last block is the ``head`` group
  (the classifier ``head`` and any neck before it: a final norm, small_cnn's ``fc``);
* layers are the modules that hold a ``kernel``, in call order.

This is timm's grouping for a ResNet (stem ``conv1``/``bn1``, one layer per block, the rest
with the head), which the layer-decay test checks.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

_BLOCK = re.compile(r"^(.+)_(\d+)$")
_NUMBERED = re.compile(r"^\D+?(\d+)$")
ADAPTER_PREFIX = "adapter_"  # jaxvision.transfer.heads names its adapters adapter_<block>


@dataclasses.dataclass(frozen=True)
class Group:
    """A stage (or the stem, or the head group): its blocks, each a tuple of top-level names."""

    name: str
    blocks: tuple[tuple[str, ...], ...]

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(m for block in self.blocks for m in block)


def prefix_pattern(names) -> str:
    """A regex matching the leaves under any of the top-level ``names`` (or equal to one)."""
    return "^(" + "|".join(re.escape(n) for n in names) + ")(/|$)"


@dataclasses.dataclass(frozen=True)
class Structure:
    """``groups``: ``stem`` (if any), the stages, ``head``; ``layers``: kernel-holding module
    paths in call order; ``leaves``: every parameter path."""

    groups: tuple[Group, ...]
    layers: tuple[str, ...]
    leaves: tuple[str, ...]
    modules: tuple[str, ...] = ()  # every module path, in call order

    @property
    def stages(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.name not in ("stem", "head"))

    @property
    def blocks(self) -> tuple[tuple[str, ...], ...]:
        """Every block of every stage, bottom to top."""
        return tuple(b for g in self.stages for b in g.blocks)

    def block_names(self) -> tuple[str, ...]:
        return tuple(m for b in self.blocks for m in b)

    def group(self, name: str) -> Group:
        for group in self.groups:
            if group.name == name:
                return group
        raise ValueError(f"the model has no stage {name!r}; its stages are "
                         f"{[g.name for g in self.groups]}")

    def group_of(self, leaf: str) -> int:
        """Index into ``groups`` of the group holding ``leaf``."""
        top = leaf.split("/")[0]
        for i, group in enumerate(self.groups):
            if top in group.modules:
                return i
        raise ValueError(f"{leaf!r} belongs to no group")

    def layer_ids(self) -> dict[str, int]:
        """timm's layer id of every leaf: stem 0, block i -> i + 1, the head group last
        (``len(blocks) + 1``). Without blocks, each stage counts as one layer."""
        units = [self.group("stem").modules] if self.has("stem") else []
        units += list(self.blocks) if self.blocks else [g.modules for g in self.stages]
        ids = {}
        for leaf in self.leaves:
            top = leaf.split("/")[0]
            ids[leaf] = next((i + (0 if self.has("stem") else 1)
                              for i, unit in enumerate(units) if top in unit), None)
            if ids[leaf] is None:
                ids[leaf] = len(units) + (0 if self.has("stem") else 1)
        return ids

    def has(self, name: str) -> bool:
        return any(g.name == name for g in self.groups)


def _call_order(model: nn.Module, input_shape) -> tuple[list[str], list[str], Any]:
    """Top-level submodule names and kernel-holding module paths, in the order they run."""
    top, everything = [], []

    def record(next_fun, args, kwargs, context):
        path = tuple(context.module.path)
        if context.method_name == "__call__" and path:
            if path[0] not in top:
                top.append(path[0])
            name = "/".join(path)
            if name not in everything:
                everything.append(name)
        return next_fun(*args, **kwargs)

    def init():
        with nn.intercept_methods(record):
            return model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)},
                              jnp.zeros(input_shape, jnp.float32), train=False)

    variables = jax.eval_shape(init)
    return top, everything, variables["params"]


def model_structure(model: nn.Module, input_shape) -> Structure:
    """The :class:`Structure` of ``model`` on inputs of ``input_shape`` (NHWC, batch 1)."""
    top, called, params = _call_order(model, input_shape)
    return structure_from(top, called, params)


def structure_from(top: list[str], called: list[str], params: Any) -> Structure:
    flat = traverse_util.flatten_dict(params, sep="/")
    leaves = tuple(flat)
    owners = {leaf.split("/")[0] for leaf in leaves}
    adapters = {n[len(ADAPTER_PREFIX):]: n for n in top if n.startswith(ADAPTER_PREFIX)}
    top = [name for name in top if name in owners and not name.startswith(ADAPTER_PREFIX)]
    roots = [leaf for leaf in leaves if "/" not in leaf]  # the root's own parameters
    blocked = any(_BLOCK.match(n) for n in top)

    def key(name: str) -> str | None:
        """The stage of a top-level module, or None."""
        match = (_BLOCK if blocked else _NUMBERED).match(name)
        if match is None:
            return None
        return match.group(1) if blocked else f"stage{match.group(1)}"

    staged = [i for i, n in enumerate(top) if key(n) is not None and n != "head"]
    if not staged:
        groups = [Group("stem", (tuple(roots),))] if roots else []
        groups.append(Group("head", (tuple(top),)))
    else:
        first, last = staged[0], staged[-1]
        stem = tuple(roots) + tuple(top[:first])
        groups = [Group("stem", (stem,))] if stem else []
        for name in top[first:last + 1]:
            stage = key(name) or (groups[-1].name if groups else "stem")
            if groups and groups[-1].name == stage:
                blocks = groups[-1].blocks
                blocks = blocks + ((name,),) if blocked else (blocks[0] + (name,),)
                groups[-1] = Group(stage, blocks)
            else:
                groups.append(Group(stage, ((name,),)))
        groups.append(Group("head", (tuple(top[last + 1:]),)))
    if adapters:  # an adapter belongs to the block it follows
        groups = [Group(g.name, tuple(tuple(m for n in b for m in (n, adapters.get(n)) if m)
                                      for b in g.blocks)) for g in groups]
    kernels = {leaf.rpartition("/")[0] for leaf in leaves if leaf.endswith("/kernel")}
    layers = tuple(path for path in called if path in kernels)
    return Structure(tuple(groups), layers, leaves, tuple(called))
