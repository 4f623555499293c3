"""Transfer strategies as configs (``config.transfer``), compiled against the model's structure
into what the engine already runs: frozen leaves (``Freeze``), per-leaf learning-rate
multipliers, stage start steps for gradual unfreezing, and ``init_dont_load`` regexes.

``config.transfer.strategy``:

* ``""``: nothing beyond ``config.trainable`` / ``config.frozen`` (full training);
* ``"feature_extraction"``: only the head group (and adapters) train;
* ``"stages"``: the stages named in ``stages`` (e.g. ``("layer3", "layer4")``) and
  the head group train;
* ``"top_k"``: the last ``top_k`` stages and the head group train;
* ``"last_fraction"``: the last ``fraction`` of the layers (kernel-holding modules in call
  order, the head's included; each norm goes with the layer before it) train;
* ``"full"``: everything trains (use it with ``lr_decay``);
* ``"gradual"``: the head group trains from the start and one more stage joins from the top
  every ``unfreeze_every_epochs`` epochs (the stem last), each with fresh optimizer state
  (``jaxvision.transfer.unfreeze``). Stages that wait keep updating their BatchNorm statistics
  unless ``batch_norm_frozen`` names them.

``lr_decay``: ``"course"`` (stem /10, stages /8, /6, /4, /2, head 1) or ``"layer"`` (timm's
layer decay ``layer_decay ** (layer_max - layer_id)``), scaled after the optimizer so any
schedule keeps them. ``reinit_last_blocks``: the last n blocks keep their fresh
initialisation when ``init_from`` loads the rest (dissimilar domains: the last blocks'
source-specific features would mislead more than help).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import optax
from flax import traverse_util

from jaxvision.train.freeze import Freeze
from jaxvision.transfer.rates import as_rules, course_multipliers, layer_decay_multipliers
from jaxvision.transfer.structure import ADAPTER_PREFIX, Structure, prefix_pattern

STRATEGIES = ("", "feature_extraction", "stages", "top_k", "last_fraction", "full", "gradual")
LR_DECAYS = ("", "course", "layer")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a transfer config means for one model."""

    freeze: Freeze
    lr_multipliers: dict[str, float]  # {regex: factor}; {} for none
    start_steps: dict[str, int]  # {group name: step}; {} unless gradual
    dont_load: tuple[str, ...]  # init_dont_load regexes the strategy adds
    structure: Structure

    def labels(self, params: Any) -> Any:
        """Group name of every leaf (for gradual unfreezing's ``multi_transform``)."""
        from jaxvision.optim.partition import path_names
        import jax

        names = [g.name for g in self.structure.groups]
        return jax.tree.map(lambda p: names[self.structure.group_of(p)], path_names(params))


def check_transfer_config(transfer) -> None:
    """Value checks that need no model."""
    if transfer.strategy not in STRATEGIES:
        raise ValueError(f"config.transfer.strategy must be one of {STRATEGIES}, got "
                         f"{transfer.strategy!r}")
    if transfer.lr_decay not in LR_DECAYS:
        raise ValueError(f"config.transfer.lr_decay must be one of {LR_DECAYS}, got "
                         f"{transfer.lr_decay!r}")
    if transfer.strategy == "top_k" and transfer.top_k < 1:
        raise ValueError(f"config.transfer.top_k must be >= 1, got {transfer.top_k}")
    if transfer.strategy == "last_fraction" and not 0 < transfer.fraction <= 1:
        raise ValueError(f"config.transfer.fraction must lie in (0, 1], got {transfer.fraction}")
    if transfer.strategy == "gradual" and transfer.unfreeze_every_epochs < 1:
        raise ValueError("config.transfer.unfreeze_every_epochs must be >= 1, got "
                         f"{transfer.unfreeze_every_epochs}")
    if transfer.reinit_last_blocks < 0:
        raise ValueError(f"config.transfer.reinit_last_blocks must be >= 0, got "
                         f"{transfer.reinit_last_blocks}")
    if transfer.adapters_after and transfer.strategy not in ("", "feature_extraction"):
        raise ValueError("config.transfer.adapters_after trains only the adapters and the head; "
                         f"it cannot go with strategy={transfer.strategy!r}")


def _exact(leaves) -> tuple[str, ...]:
    return tuple(f"^{re.escape(leaf)}$" for leaf in leaves)


def _trainable_leaves(transfer, structure: Structure) -> list[str] | None:
    """The leaves the strategy trains (None: all of them)."""
    strategy = "feature_extraction" if transfer.adapters_after else transfer.strategy
    head = set(structure.group("head").modules)
    adapters = {m for g in structure.groups for m in g.modules if m.startswith(ADAPTER_PREFIX)}
    top = lambda leaf: leaf.split("/")[0]  # noqa: E731
    if strategy == "feature_extraction":
        return [leaf for leaf in structure.leaves if top(leaf) in head | adapters]
    if strategy == "stages":
        if not transfer.stages:
            raise ValueError("config.transfer.strategy='stages' needs config.transfer.stages, "
                             f"e.g. {[g.name for g in structure.stages][-2:]}")
        chosen = head.union(*(structure.group(name).modules for name in transfer.stages))
        return [leaf for leaf in structure.leaves if top(leaf) in chosen]
    if strategy == "top_k":
        stages = structure.stages
        if transfer.top_k > len(stages):
            raise ValueError(f"config.transfer.top_k={transfer.top_k} but the model has "
                             f"{len(stages)} stages: {[g.name for g in stages]}")
        chosen = head.union(*(g.modules for g in stages[len(stages) - transfer.top_k:]))
        return [leaf for leaf in structure.leaves if top(leaf) in chosen]
    if strategy == "last_fraction":
        layers = structure.layers
        count = max(1, math.ceil(transfer.fraction * len(layers)))
        first = structure.modules.index(layers[len(layers) - count])
        later = set(structure.modules[first:])
        return [leaf for leaf in structure.leaves
                if leaf.rpartition("/")[0] in later or top(leaf) in head]
    return None


def make_plan(config, structure: Structure, *, steps_per_epoch: int = 1) -> Plan:
    """The :class:`Plan` of ``config`` (its ``transfer``, ``trainable``, ``frozen`` and
    ``optimizer.lr_multipliers``) for a model of this ``structure``; stops on names the model
    lacks, listing those it has."""
    transfer = config.transfer
    check_transfer_config(transfer)
    for block in transfer.adapters_after:
        if block not in structure.block_names():
            raise ValueError(f"config.transfer.adapters_after names {block!r}, which is not a "
                             f"block of the model; its blocks are {list(structure.block_names())}")
    for pattern in tuple(transfer.batch_norm_frozen) + tuple(transfer.batch_norm_train):
        if not any(re.search(pattern, m) for m in structure.modules):
            raise ValueError(f"config.transfer batch-norm regex {pattern!r} matches no module; "
                             f"the stages are {[g.name for g in structure.groups]}")
    frozen = config.get("frozen", ())
    frozen = (frozen,) if isinstance(frozen, str) else tuple(frozen)
    hand_written = config.get("trainable", ())
    hand_written = (hand_written,) if isinstance(hand_written, str) else tuple(hand_written)
    # The hand-written regexes first: a typo there is reported as such.
    Freeze(trainable=hand_written, frozen=frozen).check(
        traverse_util.unflatten_dict({leaf: 0 for leaf in structure.leaves}, sep="/"))
    trainable = _trainable_leaves(transfer, structure)
    if trainable is not None and config.get("trainable"):
        raise ValueError(f"config.transfer.strategy={transfer.strategy!r} already chooses the "
                         "trainable parameters; leave config.trainable empty (config.frozen "
                         "may freeze more)")
    if trainable is not None and not trainable:
        raise ValueError(f"config.transfer.strategy={transfer.strategy!r} leaves no parameter "
                         "to train")
    patterns = _exact(trainable) if trainable is not None else hand_written
    freeze = Freeze(trainable=patterns, frozen=frozen,
                    bn_frozen=tuple(transfer.batch_norm_frozen),
                    bn_train=tuple(transfer.batch_norm_train))
    if structure.leaves and all(freeze.is_frozen(leaf) for leaf in structure.leaves):
        raise ValueError("config.transfer together with config.trainable/frozen freezes every "
                         "parameter: nothing to train")

    multipliers: dict[str, float] = {}
    if transfer.lr_decay:
        if config.optimizer.get("lr_multipliers"):
            raise ValueError("config.transfer.lr_decay and config.optimizer.lr_multipliers both "
                             "set learning-rate multipliers; use one")
        multipliers = as_rules(course_multipliers(structure) if transfer.lr_decay == "course"
                               else layer_decay_multipliers(structure, transfer.layer_decay))

    start_steps: dict[str, int] = {}
    if transfer.strategy == "gradual":
        every = transfer.unfreeze_every_epochs * steps_per_epoch
        below = [g.name for g in structure.groups if g.name != "head"]
        start_steps = {"head": 0, **{name: (i + 1) * every
                                     for i, name in enumerate(reversed(below))}}

    dont_load = []
    if transfer.reinit_last_blocks:
        blocks = structure.blocks
        if transfer.reinit_last_blocks > len(blocks):
            raise ValueError(f"config.transfer.reinit_last_blocks={transfer.reinit_last_blocks} "
                             f"but the model has {len(blocks)} blocks: "
                             f"{list(structure.block_names())}")
        dont_load.append(prefix_pattern(
            [m for b in blocks[len(blocks) - transfer.reinit_last_blocks:] for m in b]))
    if transfer.head:
        dont_load.append(prefix_pattern(["head"]))
    adapters = [m for g in structure.groups for m in g.modules if m.startswith(ADAPTER_PREFIX)]
    if adapters:
        dont_load.append(prefix_pattern(adapters))
    return Plan(freeze, multipliers, start_steps, tuple(dont_load), structure)


def build_optimizer(config, plan: Plan, total_steps: int) -> optax.GradientTransformation:
    """``config.optimizer`` with the plan's multipliers and, for gradual unfreezing, stages."""
    from jaxvision.optim import build_optimizer as build
    from jaxvision.transfer.unfreeze import gradual_optimizer

    cfg = config.optimizer
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    if plan.lr_multipliers:
        cfg["lr_multipliers"] = plan.lr_multipliers
    if plan.start_steps:
        return gradual_optimizer(cfg, total_steps, labels=plan.labels,
                                 start_steps=plan.start_steps)
    return build(cfg, total_steps)
