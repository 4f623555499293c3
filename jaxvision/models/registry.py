"""Model registry: the user-facing names behind ``jaxvision.models.create``.

Model modules register a factory with ``@register("name")``; a factory takes keyword options
(``num_classes`` and any module field) and returns an unbound Flax module.
"""

from __future__ import annotations

import builtins
import difflib
from typing import Callable

import flax.linen as nn

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a model factory under ``name``."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _FACTORIES:
            raise ValueError(f"model name {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return decorator


def create(name: str, **overrides) -> nn.Module:
    """Builds the registered model ``name`` with keyword overrides (e.g. ``num_classes=10``)."""
    if name not in _FACTORIES:
        close = difflib.get_close_matches(name, _FACTORIES, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} Available: {', '.join(sorted(_FACTORIES))}"
        )
    return _FACTORIES[name](**overrides)


def list(pattern: str = "*") -> builtins.list[str]:  # noqa: A001 - mirrors timm.list_models
    """Sorted names of the registered models matching a shell-style ``pattern``."""
    import fnmatch

    return sorted(n for n in _FACTORIES if fnmatch.fnmatch(n, pattern))
