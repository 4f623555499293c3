"""Losses: pure functions of arrays, jit- and vmap-safe."""

from jaxvision.losses.classification import (binary_cross_entropy, class_weights_from_counts,
                                             cross_entropy, focal_loss, oversample_indices,
                                             oversampling_weights)
from jaxvision.losses.combine import combine_losses
from jaxvision.losses.regression import huber, mae, mse, smooth_l1
from jaxvision.losses.regularization import l1_penalty, l2_penalty, l2_penalty_for_weight_decay

__all__ = ["cross_entropy", "binary_cross_entropy", "focal_loss", "class_weights_from_counts",
           "oversampling_weights", "oversample_indices", "combine_losses", "mse", "mae", "huber",
           "smooth_l1", "l1_penalty", "l2_penalty", "l2_penalty_for_weight_decay"]
