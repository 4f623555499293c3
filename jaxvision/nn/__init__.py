"""jaxvision.nn: reusable Flax blocks (conv-BN-act, residual, SE, inverted residual, ...)."""

from jaxvision.nn.blocks import (
    BasicBlock,
    Bottleneck,
    ConvBNAct,
    DenseBlock,
    DenseLayer,
    DepthwiseSeparableConv,
    DropPath,
    InceptionBlock,
    InvertedResidual,
    PreActBlock,
    SEBlock,
    adaptive_avg_pool,
    same_padding,
)
from jaxvision.nn.conv import conv_general_dilated_matmul_dw

__all__ = [
    "BasicBlock", "Bottleneck", "ConvBNAct", "DenseBlock", "DenseLayer", "DepthwiseSeparableConv",
    "DropPath", "InceptionBlock", "InvertedResidual", "PreActBlock", "SEBlock",
    "adaptive_avg_pool", "conv_general_dilated_matmul_dw", "same_padding",
]
