"""Model zoo: ``create(name, num_classes=..., **overrides)`` and ``list()``.

Importing this package imports every model module so that each registers its names.
``features(model, variables, x, names=...)`` returns a model's named intermediate maps.
"""

from jaxvision.models.registry import create, list, register  # noqa: A004
from jaxvision.models import mlp, small_cnn  # noqa: F401  (registration)
from jaxvision.models import alexnet, lenet, resnet, simple_cnn, vgg, vit  # noqa: F401
from jaxvision.models.feature_maps import features

__all__ = ["create", "features", "list", "register"]
