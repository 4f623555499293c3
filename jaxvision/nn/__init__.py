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

__all__ = [
    "BasicBlock", "Bottleneck", "ConvBNAct", "DenseBlock", "DenseLayer", "DepthwiseSeparableConv",
    "DropPath", "InceptionBlock", "InvertedResidual", "PreActBlock", "SEBlock",
    "adaptive_avg_pool", "same_padding",
]
