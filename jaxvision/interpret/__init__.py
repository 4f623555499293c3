"""jaxvision.interpret: what a network learned, where it looks and how it breaks.

Layers are reached by name (:mod:`jaxvision.interpret.hooks`), so every method works on every
zoo model without model changes. Attribution and CAM methods take ``(model, variables, x,
target=None, ...)``; attacks take a ``forward(x01) -> logits`` callable so that the
preprocessing is part of what is attacked; diagnostics take a trained ``Predictor``.

- :mod:`~jaxvision.interpret.attribution`: saliency, input x gradient, SmoothGrad, Integrated
  Gradients (captum's methods and convergence delta), guided backprop, occlusion.
- :mod:`~jaxvision.interpret.cam`: CAM, Grad-CAM (ViT token grids too), Grad-CAM++.
- :mod:`~jaxvision.interpret.inspect`: feature-map and filter grids, activation statistics,
  SE gates, activation maximization.
- :mod:`~jaxvision.interpret.adversarial`: FGSM, PGD (L-inf, L2), robust accuracy; adversarial
  training is ``config.adversarial`` in the engine.
- :mod:`~jaxvision.interpret.diagnostics`: confusion, misclassified and mislabelled examples,
  reliability, embeddings, feature-class correlation.
"""

from jaxvision.interpret.adversarial import fgsm, pgd, robust_accuracy
from jaxvision.interpret.attribution import (guided_backprop, input_x_gradient,
                                             integrated_gradients, occlusion, saliency,
                                             smoothgrad)
# CAM itself is interpret.cam.cam: a function named cam here would hide the module.
from jaxvision.interpret.cam import grad_cam, grad_cam_plus_plus
from jaxvision.interpret.hooks import (capture, check_layers, class_scores, layer_gradients,
                                       layer_names)
from jaxvision.interpret.inspect import (activation_stats, feature_maps, filters,
                                         maximize_activation, se_gates)

__all__ = [
    "activation_stats", "capture", "check_layers", "class_scores", "feature_maps",
    "fgsm", "filters", "grad_cam", "grad_cam_plus_plus", "guided_backprop", "input_x_gradient",
    "integrated_gradients", "layer_gradients", "layer_names", "maximize_activation",
    "occlusion", "pgd", "robust_accuracy", "saliency", "se_gates", "smoothgrad",
]
