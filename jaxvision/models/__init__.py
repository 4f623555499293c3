"""Model zoo: ``create(name, num_classes=..., **overrides)`` and ``list()``.

Importing this package imports every model module so that each registers its names.

Every family's classifier is a Dense named ``head``. ``num_classes=None`` drops it and the
model returns a dict of named features instead of logits; ``model.feature_info()`` lists them
as ``FeatureInfo(name, stride, channels)`` without running the model. Naming rule: a map with
stride ``s`` is ``c<floor(log2 s)>`` (ImageNet ResNet: ``c2``..``c5``; CIFAR ResNet: ``c0``..
``c2``), a stem's output is ``stem``, and ``pre_logits`` (stride None) is the vector the head
would see; details in :mod:`jaxvision.models.backbone`.

``features(model, variables, x, names=...)`` returns the maps a model sows (names per family,
for Grad-CAM and receptive fields), whatever ``num_classes`` is.
"""

from jaxvision.models.registry import create, list, register  # noqa: A004
from jaxvision.models.backbone import FeatureInfo
from jaxvision.models import mlp, small_cnn  # noqa: F401  (registration)
from jaxvision.models import alexnet, lenet, resnet, simple_cnn, tiny_fcn, vgg, vit  # noqa: F401
from jaxvision.models import unet, unet_encoder  # noqa: F401  (registration)
from jaxvision.models import autoencoders  # noqa: F401  (registration)
from jaxvision.models import localizer, retinanet  # noqa: F401  (registration)
from jaxvision.models import efficientnet, mobilenet  # noqa: F401  (registration)
from jaxvision.models.feature_maps import features
from jaxvision.models.pretrained import Pretrained, Weights, list_models, list_weights  # noqa: E402

__all__ = ["FeatureInfo", "Pretrained", "Weights", "create", "features", "list", "list_models",
           "list_weights", "register"]
