"""Freezing parts of a model for transfer learning: ``config.trainable`` / ``config.frozen``.

Leaves are addressed by their '/'-joined parameter path (``"layer1/0/conv1/kernel"``) and
matched with ``re.search``, as everywhere in ``jaxvision.optim.partition``. With ``trainable``
set, every leaf it does not match is frozen; ``frozen`` then freezes more.

The step differentiates only the trainable leaves and the optimizer sees only them, so frozen
leaves get no gradient, no optimizer state and no weight decay. A BatchNorm whose parameters are
all frozen runs on its running statistics and does not update them (PyTorch's ``eval()`` on a
frozen stage), through ``nn.intercept_methods``, so no model needs a special field for it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

import flax.linen as nn
from flax import traverse_util


def _flat(tree: Any) -> dict[str, Any]:
    return traverse_util.flatten_dict(tree, sep="/") if tree else {}


def _tree(flat: dict[str, Any]) -> dict:
    return traverse_util.unflatten_dict(flat, sep="/") if flat else {}


@dataclasses.dataclass(frozen=True)
class Freeze:
    trainable: tuple[str, ...] = ()
    frozen: tuple[str, ...] = ()
    # BatchNorm modes per subtree (regexes on module paths like 'layer1_0/bn1'): running
    # statistics used and never updated, or batch statistics and updates even where the
    # BatchNorm's parameters are frozen (the course's "parameter freezing only").
    bn_frozen: tuple[str, ...] = ()
    bn_train: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.trainable or self.frozen or self.bn_frozen or self.bn_train)

    def is_frozen(self, path: str) -> bool:
        if self.trainable and not any(re.search(p, path) for p in self.trainable):
            return True
        return any(re.search(p, path) for p in self.frozen)

    def check(self, params: Any) -> None:
        """Every regex must match some parameter: a typo would silently freeze nothing."""
        paths = list(_flat(params))
        for name, patterns in (("trainable", self.trainable), ("frozen", self.frozen)):
            for pattern in patterns:
                if not any(re.search(pattern, path) for path in paths):
                    raise ValueError(f"config.{name} regex {pattern!r} matches no parameter; "
                                     f"parameters look like {paths[:4]}")
        modules = {path.rpartition("/")[0] for path in paths}
        for name, patterns in (("batch_norm_frozen", self.bn_frozen),
                               ("batch_norm_train", self.bn_train)):
            for pattern in patterns:
                if not any(re.search(pattern, module) for module in modules):
                    raise ValueError(f"config.transfer.{name} regex {pattern!r} matches no "
                                     f"module; modules look like {sorted(modules)[:4]}")
        if paths and all(self.is_frozen(path) for path in paths):
            raise ValueError("config.trainable/frozen freeze every parameter: nothing to train")

    def split(self, params: Any) -> tuple[dict, dict]:
        """``(trainable, frozen)`` subtrees of ``params``."""
        flat = _flat(params)
        return (_tree({p: v for p, v in flat.items() if not self.is_frozen(p)}),
                _tree({p: v for p, v in flat.items() if self.is_frozen(p)}))

    def frozen_modules(self, params: Any) -> frozenset[str]:
        """Paths of the modules whose BatchNorm runs on running statistics: those whose
        parameters are all frozen, unless ``bn_train`` matches them, and those ``bn_frozen``
        matches."""
        modules: dict[str, bool] = {}
        for path in _flat(params):
            module = path.rpartition("/")[0]
            modules[module] = modules.get(module, True) and self.is_frozen(path)

        def stats_frozen(module: str, frozen: bool) -> bool:
            if any(re.search(p, module) for p in self.bn_frozen):
                return True
            return frozen and not any(re.search(p, module) for p in self.bn_train)

        return frozenset(m for m, frozen in modules.items() if stats_frozen(m, frozen))


def merge(trainable: Any, frozen: Any) -> dict:
    """The whole parameter tree from its two parts."""
    return _tree({**_flat(trainable), **_flat(frozen)})


def frozen_batch_norm(frozen_modules: frozenset[str]) -> Callable:
    """An ``nn.intercept_methods`` interceptor: BatchNorms at ``frozen_modules`` use their
    running statistics even in training."""

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if (isinstance(module, nn.BatchNorm) and context.method_name == "__call__"
                and "/".join(module.path) in frozen_modules):
            # BatchNorm refuses use_running_average both as a field and at call time, and
            # the models set the field; this instance lives only for the current apply.
            object.__setattr__(module, "use_running_average", True)
        return next_fun(*args, **kwargs)

    return interceptor


def from_config(config) -> Freeze:
    def patterns(value: Sequence[str] | str) -> tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(value)

    return Freeze(trainable=patterns(config.get("trainable", ())),
                  frozen=patterns(config.get("frozen", ())))
