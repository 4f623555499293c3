"""jaxvision.interpret: what a network learned, where it looks and how it breaks.

Every method takes a model, its variables and a batch, and reaches layers by name
(:mod:`jaxvision.interpret.hooks`), so it works on every zoo model without model changes.
"""

from jaxvision.interpret.hooks import (capture, check_layers, class_scores, layer_gradients,
                                       layer_names)

__all__ = ["capture", "check_layers", "class_scores", "layer_gradients", "layer_names"]
