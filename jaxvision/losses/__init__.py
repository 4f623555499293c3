"""Losses: pure functions of arrays, jit- and vmap-safe."""

from jaxvision.losses.classification import (binary_cross_entropy, class_weights_from_counts,
                                             cross_entropy, focal_loss, oversample_indices,
                                             oversampling_weights)
from jaxvision.losses.combine import combine_losses
from jaxvision.losses.detection import (ciou_loss, diou_loss, giou_loss, iou_loss, retinanet_loss,
                                        sigmoid_focal_loss, smooth_l1_loss)
from jaxvision.losses.regression import huber, mae, mse, smooth_l1
from jaxvision.losses.regularization import l1_penalty, l2_penalty, l2_penalty_for_weight_decay
from jaxvision.losses.segmentation import (dice_ce_loss, dice_loss, jaccard_loss, multiclass_dice_loss,
                                           pixel_cross_entropy, pixel_focal_loss, soft_dice,
                                           soft_iou, tversky_loss)

__all__ = ["cross_entropy", "binary_cross_entropy", "focal_loss", "class_weights_from_counts",
           "oversampling_weights", "oversample_indices", "combine_losses", "mse", "mae", "huber",
           "smooth_l1", "l1_penalty", "l2_penalty", "l2_penalty_for_weight_decay",
           # detection (jaxvision.losses.detection)
           "iou_loss", "giou_loss", "diou_loss", "ciou_loss", "sigmoid_focal_loss", "smooth_l1_loss",
           "retinanet_loss",
           # segmentation (jaxvision.losses.segmentation)
           "soft_dice", "dice_loss", "multiclass_dice_loss", "dice_ce_loss", "pixel_cross_entropy",
           "tversky_loss", "jaccard_loss", "pixel_focal_loss", "soft_iou"]
