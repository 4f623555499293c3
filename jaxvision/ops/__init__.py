"""Pure array operations: convolution and filters, padding, pooling, size and receptive-field
arithmetic, and the box math of detection (formats, IoU family, NMS, anchors, coder, matcher).

Everything is a function of arrays, jit- and vmap-safe; detection outputs have static shapes
with a ``valid`` mask. The names users type as in ``torchvision.ops`` are functions:
``ops.nms(boxes, scores, 0.5)``, ``ops.batched_nms(boxes, scores, idxs, 0.5)``,
``ops.box_iou(a, b)`` (the NMS module is ``jaxvision.ops.suppression``, so that no module hides
them). ``receptive_field.receptive_field`` is reached through its module.
"""

from jaxvision.ops.anchors import (anchor_coverage, cell_anchors, feature_map_shapes,
                                   generate_anchors, grid_anchors, pyramid_anchors)
from jaxvision.ops.box_coder import decode_boxes, encode_boxes
from jaxvision.ops.boxes import (BOX_FORMATS, box_area, clip_boxes, convert_boxes,
                                 cxcywh_to_xyxy, denormalize_boxes, masks_to_boxes,
                                 normalize_boxes, order_box_corners, remove_small_boxes,
                                 xywh_to_xyxy, xyxy_to_cxcywh, xyxy_to_xywh, xyxy_to_yxyx,
                                 yxyx_to_xyxy)
from jaxvision.ops.conv import (conv2d, conv2d_reference, conv_transpose2d, convolve2d,
                                extract_patches)
from jaxvision.ops.filters import (apply_filter, binomial_kernel, box_kernel,
                                   diagonal_edge_kernel, edge_kernel, filter_bank, gabor_kernel,
                                   gaussian_kernel, prewitt_x, prewitt_y, sharpen_kernel, sobel_x,
                                   sobel_y)
from jaxvision.ops.geometry import (batch_norm_param_count, conv_mac_count, conv_output_size,
                                    conv_param_count, conv_transpose_output_size,
                                    dense_param_count, depthwise_separable_param_count,
                                    effective_kernel_size, param_count, pool_output_size,
                                    same_padding)
from jaxvision.ops.iou import box_iou, complete_box_iou, distance_box_iou, generalized_box_iou
from jaxvision.ops.matcher import anchor_targets, match_anchors
from jaxvision.ops.suppression import batched_nms, multiclass_nms, nms, nms_padded, soft_nms
from jaxvision.ops.padding import pad_images
from jaxvision.ops.pooling import (adaptive_avg_pool, adaptive_max_pool, avg_pool,
                                   fractional_max_pool, global_avg_pool, global_max_pool,
                                   lp_pool, max_pool, mixed_pool, spatial_pyramid_pool,
                                   stochastic_pool)
from jaxvision.ops.receptive_field import (FieldOfView, LayerSpec, effective_receptive_field,
                                           receptive_fields)

__all__ = [
    "adaptive_avg_pool", "adaptive_max_pool", "anchor_coverage", "anchor_targets", "apply_filter",
    "avg_pool", "batch_norm_param_count", "batched_nms", "binomial_kernel", "box_area",
    "BOX_FORMATS", "box_iou", "box_kernel", "cell_anchors", "clip_boxes", "complete_box_iou",
    "conv2d", "conv2d_reference", "conv_mac_count", "conv_output_size", "conv_param_count",
    "conv_transpose2d", "conv_transpose_output_size", "convert_boxes", "convolve2d",
    "cxcywh_to_xyxy", "decode_boxes", "denormalize_boxes", "dense_param_count",
    "depthwise_separable_param_count", "diagonal_edge_kernel", "distance_box_iou", "edge_kernel",
    "effective_kernel_size", "effective_receptive_field", "encode_boxes", "extract_patches",
    "feature_map_shapes", "FieldOfView", "filter_bank", "fractional_max_pool", "gabor_kernel",
    "gaussian_kernel", "generalized_box_iou", "generate_anchors", "global_avg_pool",
    "global_max_pool", "grid_anchors", "LayerSpec", "lp_pool", "masks_to_boxes", "match_anchors",
    "max_pool", "mixed_pool", "multiclass_nms", "nms", "nms_padded", "normalize_boxes",
    "order_box_corners", "pad_images", "param_count", "pool_output_size", "prewitt_x",
    "prewitt_y", "pyramid_anchors", "receptive_fields", "remove_small_boxes", "same_padding",
    "sharpen_kernel", "sobel_x", "sobel_y", "soft_nms", "spatial_pyramid_pool", "stochastic_pool",
    "xywh_to_xyxy", "xyxy_to_cxcywh", "xyxy_to_xywh", "xyxy_to_yxyx", "yxyx_to_xyxy",
]
