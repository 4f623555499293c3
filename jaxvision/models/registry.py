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


def create(name: str, *, weights=None, **overrides):
    """Builds the registered model ``name`` with keyword overrides (e.g. ``num_classes=10``).

    With ``weights`` (a published name such as ``"IMAGENET1K_V2"`` or ``"DEFAULT"``, or a local
    ``.pth``/``.safetensors`` file) it returns a :class:`~jaxvision.models.pretrained.Pretrained`
    (``model, variables = create(...)``; ``.input_spec``) instead of the bare module; see
    :mod:`jaxvision.models.pretrained`.
    """
    if name not in _FACTORIES:
        close = difflib.get_close_matches(name, _FACTORIES, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} Available: {', '.join(sorted(_FACTORIES))}"
        )
    if weights is not None:
        from jaxvision.models import pretrained

        return pretrained.load(name, weights, **overrides)
    return _FACTORIES[name](**overrides)


def list(pattern: str = "*", *, pretrained: bool = False) -> builtins.list[str]:  # noqa: A001
    """Sorted names of the registered models matching a shell-style ``pattern`` (mirrors
    ``timm.list_models``); ``pretrained=True``: only those with published weights."""
    import fnmatch

    names = _FACTORIES
    if pretrained:
        from jaxvision.models.pretrained import pretrained_models

        names = [n for n in pretrained_models() if n in _FACTORIES]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))
