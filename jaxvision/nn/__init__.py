"""jaxvision.nn: reusable Flax blocks (conv-BN-act, residual, SE, inverted residual, ...), the
injectable ``conv``/``norm``/``act`` layers they are built from, regularisation layers and
initialisers."""

from jaxvision.nn.blocks import (
    BasicBlock,
    Bottleneck,
    ConvBNAct,
    DenseBlock,
    DenseLayer,
    DepthwiseSeparableConv,
    InceptionBlock,
    InvertedResidual,
    PreActBlock,
    SEBlock,
    padded_conv,
    pool_downsample,
    symmetric_padding,
)
from jaxvision.nn.conv import fast_conv_general_dilated
from jaxvision.nn.layers import ACTS, CONVS, NORMS, ModuleDef, resolve_layers
from jaxvision.nn.pool import fast_max_pool
from jaxvision.nn.init import get_initializer, reinitialize
from jaxvision.nn.regularization import (
    DropBlock,
    DropPath,
    SpatialDropout,
    StochasticDepth,
    drop_block_mask,
    drop_path,
    linear_drop_path_rates,
)

__all__ = [
    "BasicBlock", "Bottleneck", "ConvBNAct", "DenseBlock", "DenseLayer", "DepthwiseSeparableConv",
    "DropPath", "InceptionBlock", "InvertedResidual", "PreActBlock", "SEBlock",
    "fast_conv_general_dilated", "fast_max_pool", "padded_conv", "pool_downsample",
    "symmetric_padding",
    "ACTS", "CONVS", "NORMS", "ModuleDef", "resolve_layers",
    "DropBlock", "SpatialDropout", "StochasticDepth", "drop_block_mask", "drop_path",
    "get_initializer", "linear_drop_path_rates", "reinitialize",
]
