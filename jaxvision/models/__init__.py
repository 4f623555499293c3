"""Model zoo: ``create(name, num_classes=..., **overrides)`` and ``list()``.

Importing this package imports every model module so that each registers its names.
"""

from jaxvision.models.registry import create, list, register  # noqa: A004
from jaxvision.models import mlp, small_cnn  # noqa: F401  (registration)

__all__ = ["create", "list", "register"]
