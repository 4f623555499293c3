"""Class activation maps: where in the image the evidence for a class lies.

All three weight the channels of one layer's map and sum them, ``sum_c w_c A_c``; they differ
in the weights. **CAM** (Zhou et al. 2016) reads them off a GAP -> linear head: the head's
column of the class, so that the map's spatial mean plus the bias is the class logit.
**Grad-CAM** (Selvaraju et al. 2017) uses the spatial mean of the gradient of the class score
with respect to the map (not the input image, as the course text's code does), so it works on
any layer of any model; on a GAP -> linear head that gradient is ``w / (h w)`` everywhere, and
Grad-CAM is CAM divided by the map's area. **Grad-CAM++** (Chattopadhyay et al. 2018) weights
each position's positive gradient by its eq. 19 coefficient.

Every map is ``[N, H, W]``: ReLU (``relu=True``), bilinearly upsampled to the input's size as
``torch.nn.functional.interpolate(mode="bilinear")`` does (``upsample=True``) and, with
``normalize=True``, min-max scaled per image to [0, 1] as pytorch-grad-cam shows it. With
``normalize=False`` Grad-CAM is captum's ``LayerGradCam`` (with ``relu_attributions=relu``)
followed by ``LayerAttribution.interpolate(..., "bilinear")``.

A transformer layer's tokens ``[N, 1 + h w, D]`` are read as an ``h x w`` grid of patches after
the class token is dropped. Its last block's output reaches the class token's logit only
through the class token, so Grad-CAM there is zero; use an earlier point of that block, e.g.
``encoder_layer_11/ln_1`` (pytorch-grad-cam's ``blocks[-1].norm1``).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.interpret.hooks import Target, capture, class_scores, layer_gradients
from jaxvision.models.backbone import Classifier


def cam(model: nn.Module, variables, x: jax.Array, target: Target = None, *,
        layer: str | None = None, upsample: bool = True, relu: bool = True,
        normalize: bool = False) -> jax.Array:
    """Class activation maps ``[N, H, W]`` of a GAP -> linear (``head``) classifier.

    ``layer`` names the map the head pools; ``None`` takes it from the model's features
    (the deepest map, as ``num_classes=None`` returns it). A head that does not pool that map
    (flatten, MLP or class-token heads) is refused: CAM would not explain its logits."""
    activation, logits = _pooled_map(model, variables, x, layer)
    head = variables["params"]["head"]
    kernel, bias = head["kernel"], head.get("bias", 0.0)
    if activation.ndim != 4 or kernel.shape[0] != activation.shape[-1]:
        raise ValueError(f"CAM needs a GAP -> Dense head over the map; the head has "
                         f"{kernel.shape[0]} inputs, the map shape {activation.shape}")
    pooled = activation.mean(axis=(1, 2))
    if not isinstance(logits, jax.core.Tracer) and not np.allclose(
            pooled @ kernel + bias, logits, rtol=1e-4, atol=1e-4 * (1 + np.abs(logits).max())):
        raise ValueError("the head does not apply to this map's spatial mean (a class-token "
                         "or flatten head, or the wrong layer); use grad_cam")
    # Each example's head column of its target class: the score's gradient w.r.t. the pooled map.
    weights = jax.grad(lambda p: jnp.sum(class_scores(p @ kernel + bias, target)))(pooled)
    return _finish(_weighted_sum(activation, weights), x, upsample, relu, normalize)


def grad_cam(model: nn.Module, variables, x: jax.Array, layer: str, target: Target = None, *,
             upsample: bool = True, relu: bool = True, normalize: bool = False) -> jax.Array:
    """Grad-CAM ``[N, H, W]`` at ``layer``: channel weights = spatial mean of d score / d map."""
    activation, grads = _map_and_grads(model, variables, x, layer, target)
    return _finish(_weighted_sum(activation, grads.mean(axis=(1, 2))), x, upsample, relu,
                   normalize)


def grad_cam_plus_plus(model: nn.Module, variables, x: jax.Array, layer: str,
                       target: Target = None, *, upsample: bool = True, relu: bool = True,
                       normalize: bool = False) -> jax.Array:
    """Grad-CAM++ ``[N, H, W]``: weights ``sum_ij alpha_ij relu(g_ij)`` with eq. 19's
    ``alpha = g^2 / (2 g^2 + sum_ab A_ab g^3)``, the higher derivatives of ``exp(score)``
    for a piecewise-linear network (pytorch-grad-cam's ``GradCAMPlusPlus``, eps 1e-6)."""
    activation, grads = _map_and_grads(model, variables, x, layer, target)
    g2 = grads**2
    alpha = g2 / (2 * g2 + activation.sum(axis=(1, 2), keepdims=True) * g2 * grads + 1e-6)
    alpha = jnp.where(grads != 0, alpha, 0.0)
    weights = jnp.sum(jax.nn.relu(grads) * alpha, axis=(1, 2))
    return _finish(_weighted_sum(activation, weights), x, upsample, relu, normalize)


def _pooled_map(model, variables, x, layer):
    """``(map, logits)``: the named layer's output, or the deepest of the model's features."""
    if layer is not None:
        logits, acts = capture(model, variables, x, [layer])
        return acts[layer], logits
    if not isinstance(model, Classifier):
        raise ValueError(f"{type(model).__name__} does not name its feature maps; pass layer=")
    maps = model.clone(num_classes=None).apply(variables, x, train=False)
    return maps[model.feature_info()[-2].name], model.apply(variables, x, train=False)


def _map_and_grads(model, variables, x, layer, target):
    activation, grads, _ = layer_gradients(model, variables, x, layer, target)
    return spatial_grid(activation, x), spatial_grid(grads, x)


def spatial_grid(values: jax.Array, x: jax.Array) -> jax.Array:
    """NHWC maps pass; tokens ``[N, 1 + h w, D]`` lose the class token and become the
    ``h x w`` patch grid (``h / w`` = the image's aspect ratio)."""
    if values.ndim == 4:
        return values
    if values.ndim != 3:
        raise ValueError(f"a CAM needs an NHWC map or [N, tokens, D] tokens, got {values.shape}")
    patches = values.shape[1] - 1
    rows = round(math.sqrt(patches * x.shape[1] / x.shape[2]))
    if rows == 0 or patches % rows:
        raise ValueError(f"{patches} patch tokens do not tile a {x.shape[1]}x{x.shape[2]} image")
    return values[:, 1:].reshape(values.shape[0], rows, patches // rows, values.shape[2])


def _weighted_sum(activation: jax.Array, weights: jax.Array) -> jax.Array:
    return jnp.einsum("nhwc,nc->nhw", activation, weights)


def _finish(maps, x, upsample: bool, relu: bool, normalize: bool) -> jax.Array:
    """ReLU, bilinear upsampling (half-pixel centres, no antialiasing: torch's
    ``interpolate``), then pytorch-grad-cam's ``(m - min) / (1e-7 + max(m - min))``; scaling
    before or after the resize is the same map, the resize being affine."""
    if relu:
        maps = jax.nn.relu(maps)
    if upsample:
        maps = jax.image.resize(maps, (maps.shape[0], *x.shape[1:3]), "bilinear",
                                antialias=False)
    if normalize:
        maps = maps - maps.min(axis=(1, 2), keepdims=True)
        maps = maps / (1e-7 + maps.max(axis=(1, 2), keepdims=True))
    return maps
