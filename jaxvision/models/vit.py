"""Vision Transformer (Dosovitskiy et al.), laid out as torchvision's ``VisionTransformer``.

Presets: tiny/small/base with patch 16 or 32 (``vit_b16``: 86,567,656 params). The position
embedding is stored for ``image_size``; other input sizes bilinearly resize it on the fly, and
:func:`resize_pos_embedding` does the same once, for fine-tuning at a new resolution.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.backbone import Classifier, FeatureInfo, pyramid
from jaxvision.models.registry import register
from jaxvision.nn.layers import Activation, ModuleDef, resolve_layers

# torchvision's and the paper's LayerNorm epsilon (PyTorch's own default is 1e-5).
VIT_NORM = functools.partial(nn.LayerNorm, epsilon=1e-6)


def resize_pos_embedding(pos_embedding: jax.Array, grid: tuple[int, int], *,
                         num_prefix_tokens: int = 1) -> jax.Array:
    """Bilinearly resizes a ``(1, prefix + h*w, D)`` position embedding to a ``grid`` of patches.

    Half-pixel centres without antialiasing, as torch ``F.interpolate(mode="bilinear")``.
    The prefix (class) token embeddings are kept as they are; the patch part is treated as an
    ``h x w`` image (it must be square in the stored form).
    """
    prefix = pos_embedding[:, :num_prefix_tokens]
    patches = pos_embedding[:, num_prefix_tokens:]
    side = int(round(patches.shape[1] ** 0.5))
    if side * side != patches.shape[1]:
        raise ValueError(f"stored position embedding has {patches.shape[1]} patch tokens, "
                         "not a square grid; pass num_prefix_tokens correctly")
    if (side, side) == tuple(grid):
        return pos_embedding
    dim = patches.shape[-1]
    patches = patches.reshape(1, side, side, dim)
    patches = jax.image.resize(patches.astype(jnp.float32), (1, *grid, dim), "bilinear",
                               antialias=False)
    patches = patches.astype(pos_embedding.dtype).reshape(1, grid[0] * grid[1], dim)
    return jnp.concatenate([prefix, patches], axis=1)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)); x + MLP(LN(x)) with exact GELU."""

    num_heads: int
    mlp_dim: int
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    norm: str | ModuleDef = VIT_NORM
    act: str | Activation = "gelu"

    @nn.compact
    def __call__(self, x, *, train: bool):
        _, norm, act = resolve_layers("xla", self.norm, self.act, train=train, dtype=self.dtype)
        batch, tokens, dim = x.shape
        if dim % self.num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads={self.num_heads}")
        head_dim = dim // self.num_heads
        y = norm(name="ln_1")(x)
        qkv = nn.Dense(3 * dim, dtype=self.dtype, name="qkv")(y)
        q, k, v = jnp.split(qkv.reshape(batch, tokens, 3, self.num_heads, head_dim), 3, axis=2)
        q, k, v = (t[:, :, 0] for t in (q, k, v))
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(self.dtype)
        weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(self.dtype)
        weights = nn.Dropout(self.attention_dropout_rate, deterministic=not train)(weights)
        y = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, tokens, dim)
        y = nn.Dense(dim, dtype=self.dtype, name="out_proj")(y)
        x = x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        y = norm(name="ln_2")(x)
        y = act(nn.Dense(self.mlp_dim, dtype=self.dtype, name="mlp_fc1")(y))
        y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        y = nn.Dense(dim, dtype=self.dtype, name="mlp_fc2")(y)
        return x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class ViT(Classifier):
    """Patchify (conv k=s=patch) -> [CLS] + position embedding -> encoder -> LN -> CLS -> head.

    ``num_classes=None``: features ``stem`` (the patch embedding) and ``c<floor(log2 patch)>`` (the
    encoder's normalised patch tokens), both NHWC grids at stride ``patch_size``, and
    ``pre_logits`` (the normalised class token).
    Sown intermediates: ``patch_embed`` and ``features`` (token grids as NHWC maps, before and
    after the encoder), ``pre_logits`` (the normalised class token).
    """

    num_classes: int | None = 1000
    patch_size: int = 16
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_dim: int = 3072
    image_size: int = 224
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    conv: str | ModuleDef = "auto"  # see jaxvision.nn.layers
    norm: str | ModuleDef = VIT_NORM
    act: str | Activation = "gelu"

    @nn.nowrap
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        p, dim = self.patch_size, self.hidden_size
        return pyramid([(p, dim)], dim, stem=(p, dim))

    @nn.compact
    def __call__(self, x, *, train: bool):
        p = self.patch_size
        if x.shape[1] % p or x.shape[2] % p:
            raise ValueError(f"image size {x.shape[1:3]} is not a multiple of patch_size={p}; "
                             "resize or crop the input")
        conv, norm, _ = resolve_layers(self.conv, self.norm, self.act, train=train,
                                       dtype=self.dtype)
        x = conv(self.hidden_size, (p, p), strides=(p, p), padding="VALID",
                 name="conv_proj")(x.astype(self.dtype))
        batch, grid_h, grid_w, dim = x.shape
        self.sow("intermediates", "patch_embed", x)
        stem = x
        x = x.reshape(batch, grid_h * grid_w, dim)
        cls = self.param("class_token", nn.initializers.zeros, (1, 1, dim))
        stored = self.image_size // p
        pos = self.param("pos_embedding", nn.initializers.normal(0.02),
                         (1, stored * stored + 1, dim))
        pos = resize_pos_embedding(pos, (grid_h, grid_w))
        x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, dim)).astype(x.dtype), x], axis=1)
        x = x + pos.astype(x.dtype)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        for i in range(self.num_layers):
            x = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout_rate,
                             self.attention_dropout_rate, dtype=self.dtype, norm=norm,
                             act=self.act,
                             name=f"encoder_layer_{i}")(x, train=train)
        x = norm(name="encoder_norm")(x)
        tokens = x[:, 1:].reshape(batch, grid_h, grid_w, dim)
        self.sow("intermediates", "features", tokens)
        x = x[:, 0]
        self.sow("intermediates", "pre_logits", x)
        return self.head_or_features([stem, tokens], x, kernel_init=nn.initializers.zeros)


VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12),
             "large": (1024, 24, 16)}


def _vit(size: str, patch: int, **kwargs) -> ViT:
    hidden, layers, heads = VIT_SIZES[size]
    preset = dict(patch_size=patch, hidden_size=hidden, num_layers=layers, num_heads=heads,
                  mlp_dim=4 * hidden)
    return ViT(**{**preset, **kwargs})


def _register_all() -> None:
    for size in VIT_SIZES:
        for patch in (16, 32):
            register(f"vit_{size[0]}{patch}")(functools.partial(_vit, size, patch))


_register_all()
