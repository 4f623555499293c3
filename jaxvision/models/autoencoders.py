"""The course's autoencoders: linear, convolutional (with optional U-Net skip), VAE,
conditional VAE and VQ-VAE.

Every model returns a dict with ``reconstruction`` (in the output activation's range) and
``latent``; the VAEs add ``mean``, ``log_var`` and ``logits`` (the decoder's pre-activation),
the VQ-VAE ``codes``, ``codebook_loss`` and ``commitment_loss``. ``encode`` / ``decode``
methods (``model.apply(variables, x, method="encode")``) serve embeddings and generation.
``num_classes`` is accepted (and ignored, except by the CVAE) so that the engine's
``models.create(name, num_classes=...)`` builds them like any other model.

Choices the text leaves open, made here: ReLU hidden layers, a linear latent;
VQ-VAE losses of van den Oord et al. (2017), commitment weight 0.25.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models.registry import register
from jaxvision.nn.layers import resolve_act, resolve_norm
from jaxvision.nn.upsample import ConvTranspose, PixelShuffleUpsample, ResizeConv

UPSAMPLINGS = ("transpose", "transpose3", "nearest", "bilinear", "pixel_shuffle", "bed_of_nails")


def _check_image(x, image_shape: Sequence[int], name: str) -> None:
    if tuple(x.shape[1:]) != tuple(image_shape):
        raise ValueError(f"{name} was built for images of shape {tuple(image_shape)}, got "
                         f"{tuple(x.shape[1:])}; set image_shape=...")


def _check_latent(latent_dim: int, image_shape: Sequence[int], name: str) -> None:
    size = math.prod(image_shape)
    if latent_dim < 1 or latent_dim > size:
        raise ValueError(f"{name}: latent_dim={latent_dim} must lie in [1, {size}] (the input "
                         f"size {tuple(image_shape)}); a latent larger than the input compresses "
                         "nothing")


class MLPStack(nn.Module):
    """Dense layers with ``act`` between them; the last one linear."""

    widths: Sequence[int]
    act: Any = "relu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        act = resolve_act(self.act)
        for i, width in enumerate(self.widths):
            x = nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(x)
            if i < len(self.widths) - 1:
                x = act(x)
        return x


class LinearAutoencoder(nn.Module):
    """Flatten -> Dense ``hidden`` -> ``latent_dim`` -> mirrored -> reshape.

    With ``act=None`` every layer is linear: the network can only learn the principal
    subspace of the data (Baldi & Hornik, 1989), which ``experiments.linear_ae_vs_pca`` shows.
    """

    image_shape: Sequence[int] = (28, 28, 1)
    hidden: Sequence[int] = (256, 128, 64)
    latent_dim: int = 32
    act: Any = "relu"
    output_act: Any = "sigmoid"  # 'sigmoid' for [0, 1], 'tanh' for [-1, 1], None for linear
    num_classes: int | None = None  # unused
    dtype: Any = jnp.float32

    def setup(self):
        _check_latent(self.latent_dim, self.image_shape, type(self).__name__)
        size = math.prod(self.image_shape)
        self.encoder = MLPStack((*self.hidden, self.latent_dim), self.act or (lambda v: v),
                                self.dtype)
        self.decoder = MLPStack((*self.hidden[::-1], size), self.act or (lambda v: v), self.dtype)

    def encode(self, x):
        _check_image(x, self.image_shape, type(self).__name__)
        return self.encoder(x.reshape(x.shape[0], -1).astype(self.dtype))

    def decode(self, z):
        out = self.decoder(z).reshape((z.shape[0], *self.image_shape))
        act = resolve_act(self.output_act)
        return out if act is None else act(out)

    def __call__(self, x, *, train: bool = False):
        z = self.encode(x)
        return {"reconstruction": self.decode(z), "latent": z}


class ConvAutoencoder(nn.Module):
    """Conv(16)-pool-Conv(32)-pool encoder (1x28x28 -> 16x14x14 -> 32x7x7) and a
    mirrored decoder that upsamples x2 twice with ``upsampling`` (one of :data:`UPSAMPLINGS`;
    ``'transpose'`` is the text's k=2 s=2 transposed conv, ``'transpose3'`` a k=3 s=2 one with
    padding 1 and output padding 1, the checkerboard-prone kind).

    Note: the 32x7x7 "bottleneck" holds 1,568 values, twice the 784 inputs (the course calls it a bottleneck); set
    ``latent_channels`` lower to compress. ``skip`` ('add' or 'concat') joins the encoder's
    pooled 16-channel map to the decoder's at the same resolution (U-Net style).
    """

    channels: Sequence[int] = (16, 32)
    latent_channels: int | None = None  # a 1x1 conv to this many channels at the bottleneck
    upsampling: str = "transpose"
    skip: str | None = None
    out_channels: int | None = None  # default: the input's
    norm: Any = "batch_norm"
    act: Any = "relu"
    output_act: Any = "sigmoid"
    num_classes: int | None = None  # unused
    dtype: Any = jnp.float32

    def _up(self, features: int, name: str):
        kind = self.upsampling
        if kind == "transpose":
            return ConvTranspose(features, kernel_size=2, stride=2, dtype=self.dtype, name=name)
        if kind == "transpose3":
            return ConvTranspose(features, kernel_size=3, stride=2, padding=1, output_padding=1,
                                 dtype=self.dtype, name=name)
        if kind in ("nearest", "bilinear", "bed_of_nails"):
            return ResizeConv(features, mode=kind, dtype=self.dtype, name=name)
        if kind == "pixel_shuffle":
            return PixelShuffleUpsample(features, dtype=self.dtype, name=name)
        raise ValueError(f"upsampling must be one of {UPSAMPLINGS}, got {kind!r}")

    def _norm_act(self, x, train: bool, name: str):
        norm = resolve_norm(self.norm, train=train, dtype=self.dtype)
        if norm is not None:
            x = norm(name=name)(x)
        return resolve_act(self.act)(x)

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        if self.skip not in (None, "add", "concat"):
            raise ValueError(f"skip must be None, 'add' or 'concat', got {self.skip!r}")
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(f"ConvAutoencoder halves the image twice: H and W must be "
                             f"divisible by 4, got {x.shape[1:3]}")
        bias = self.norm is None
        c1, c2 = self.channels
        x = x.astype(self.dtype)
        h = nn.Conv(c1, (3, 3), padding=1, use_bias=bias, dtype=self.dtype, name="enc_conv1")(x)
        s1 = nn.max_pool(self._norm_act(h, train, "enc_norm1"), (2, 2), (2, 2))
        h = nn.Conv(c2, (3, 3), padding=1, use_bias=bias, dtype=self.dtype, name="enc_conv2")(s1)
        z = nn.max_pool(self._norm_act(h, train, "enc_norm2"), (2, 2), (2, 2))
        if self.latent_channels:
            z = nn.Conv(self.latent_channels, (1, 1), dtype=self.dtype, name="bottleneck")(z)
        self.sow("intermediates", "latent", z)
        h = self._norm_act(self._up(c1, "dec_up1")(z), train, "dec_norm1")
        self.sow("intermediates", "decoder1", h)
        if self.skip == "add":
            h = h + s1
        elif self.skip == "concat":
            h = jnp.concatenate([h, s1], axis=-1)
        out = self._up(self.out_channels or x.shape[-1], "dec_up2")(h)
        act = resolve_act(self.output_act)
        return {"reconstruction": out if act is None else act(out), "latent": z}


def gaussian_sample(key, mean, log_var):
    """The reparameterisation ``z = mu + sigma * eps``, ``eps ~ N(0, I)``."""
    return mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape, mean.dtype)


class VAE(nn.Module):
    """Gaussian encoder ``q(z|x) = N(mu(x), diag sigma^2(x))``, decoder ``p(x|z)``.

    Training draws ``z`` by reparameterisation from the ``sample`` RNG stream; evaluation
    decodes the mean (``sample_in_eval=True`` draws there too, from ``sample`` if given).
    ``decoder='bernoulli'``: ``logits`` are Bernoulli logits and ``reconstruction`` their
    sigmoid; ``'gaussian'``: ``reconstruction`` is the mean (sigmoid-bounded) of a Gaussian of
    fixed variance.
    """

    image_shape: Sequence[int] = (28, 28, 1)
    hidden: Sequence[int] = (256, 128)
    latent_dim: int = 8
    decoder: str = "bernoulli"
    act: Any = "relu"
    num_classes: int | None = None  # the CVAE's number of conditions
    dtype: Any = jnp.float32
    conditional = False

    def setup(self):
        _check_latent(self.latent_dim, self.image_shape, type(self).__name__)
        if self.decoder not in ("bernoulli", "gaussian"):
            raise ValueError(f"decoder must be 'bernoulli' or 'gaussian', got {self.decoder!r}")
        self.encoder = MLPStack((*self.hidden, 2 * self.latent_dim), self.act, self.dtype)
        self.decoder_net = MLPStack((*self.hidden[::-1], math.prod(self.image_shape)), self.act,
                                    self.dtype)
        # Training calls so far (checkpointed with the state): what KL annealing reads.
        self.train_steps = self.variable("curriculum", "step", lambda: jnp.zeros((), jnp.int32))

    def _condition(self, h, labels):
        if not self.conditional:
            return h
        if labels is None:
            if not self.is_initializing():
                raise ValueError("a conditional VAE needs labels (with the 'vae' task: "
                                 "task_kwargs.conditional=True)")
            labels = jnp.zeros(h.shape[:1], jnp.int32)  # shapes only: init sees no labels
        return jnp.concatenate([h, jax.nn.one_hot(labels, self.num_classes, dtype=h.dtype)], -1)

    def encode(self, x, labels=None):
        """``(mean, log_var)`` of ``q(z|x)``."""
        _check_image(x, self.image_shape, type(self).__name__)
        h = self._condition(x.reshape(x.shape[0], -1).astype(self.dtype), labels)
        mean, log_var = jnp.split(self.encoder(h), 2, axis=-1)
        return mean, log_var

    def decode_logits(self, z, labels=None):
        out = self.decoder_net(self._condition(z, labels))
        return out.reshape((z.shape[0], *self.image_shape))

    def decode(self, z, labels=None):
        """The decoder's mean image for latents ``z`` (generation: ``z ~ N(0, I)``)."""
        return jax.nn.sigmoid(self.decode_logits(z, labels))

    def __call__(self, x, labels=None, *, train: bool = False, sample_in_eval: bool = False):
        mean, log_var = self.encode(x, labels)
        z = (gaussian_sample(self.make_rng("sample"), mean, log_var)
             if train or sample_in_eval else mean)
        logits = self.decode_logits(z, labels)
        step = self.train_steps.value
        if train and self.is_mutable_collection("curriculum") and not self.is_initializing():
            self.train_steps.value = step + 1
        return {"reconstruction": jax.nn.sigmoid(logits), "logits": logits, "latent": z,
                "mean": mean, "log_var": log_var, "train_step": step}


class ConditionalVAE(VAE):
    """VAE with ``q(z|x, c)`` and ``p(x|z, c)``: the one-hot label joins the encoder's input
    and the decoder's latent. Call as ``apply(variables, x, labels, ...)``."""

    num_classes: int | None = 10
    conditional = True


class VectorQuantizer(nn.Module):
    """Nearest codebook vector ``z_q = argmin_e ||z_e - e||^2`` with the straight-through
    gradient ``z_e + stop_gradient(z_q - z_e)``, the codebook loss ``||sg(z_e) - z_q||^2``
    and the commitment loss ``||z_e - sg(z_q)||^2`` (both means over elements)."""

    num_codes: int = 64
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z_e):
        codebook = self.param("codebook", nn.initializers.variance_scaling(1.0, "fan_in", "uniform"),
                              (self.num_codes, z_e.shape[-1]))
        flat = z_e.reshape(-1, z_e.shape[-1])
        distances = ((flat ** 2).sum(-1, keepdims=True) - 2 * flat @ codebook.T
                     + (codebook ** 2).sum(-1))
        codes = jnp.argmin(distances, axis=-1)
        z_q = codebook[codes].reshape(z_e.shape)
        codebook_loss = jnp.mean((jax.lax.stop_gradient(z_e) - z_q) ** 2)
        commitment_loss = jnp.mean((z_e - jax.lax.stop_gradient(z_q)) ** 2)
        straight_through = z_e + jax.lax.stop_gradient(z_q - z_e)
        return straight_through, codes.reshape(z_e.shape[:-1]), codebook_loss, commitment_loss


class VQVAE(nn.Module):
    """Conv encoder to an ``H/4 x W/4 x embed_dim`` map, :class:`VectorQuantizer`, transposed-
    conv decoder with a sigmoid output of ``out_channels``."""

    channels: Sequence[int] = (16, 32)
    embed_dim: int = 8
    num_codes: int = 64
    out_channels: int = 1
    num_classes: int | None = None  # unused
    dtype: Any = jnp.float32

    def setup(self):
        c1, c2 = self.channels
        self.enc = [nn.Conv(c1, (4, 4), (2, 2), padding=1, dtype=self.dtype),
                    nn.Conv(c2, (4, 4), (2, 2), padding=1, dtype=self.dtype),
                    nn.Conv(self.embed_dim, (1, 1), dtype=self.dtype)]
        self.quantizer = VectorQuantizer(self.num_codes, self.dtype)
        self.dec = [ConvTranspose(c1, kernel_size=4, stride=2, padding=1, dtype=self.dtype),
                    nn.Conv(c1, (3, 3), padding=1, dtype=self.dtype),
                    ConvTranspose(self.out_channels, kernel_size=4, stride=2, padding=1,
                                  dtype=self.dtype)]

    def encode(self, x):
        """The continuous encoder map ``z_e``."""
        h = nn.relu(self.enc[0](x.astype(self.dtype)))
        return self.enc[2](nn.relu(self.enc[1](h)))

    def decode(self, z_q):
        h = nn.relu(self.dec[1](nn.relu(self.dec[0](z_q))))
        return jax.nn.sigmoid(self.dec[2](h))

    def __call__(self, x, *, train: bool = False):
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(f"VQVAE halves the image twice: H and W must be divisible by 4, "
                             f"got {x.shape[1:3]}")
        z_e = self.encode(x)
        z_q, codes, codebook_loss, commitment_loss = self.quantizer(z_e)
        return {"reconstruction": self.decode(z_q), "latent": z_e, "quantized": z_q,
                "codes": codes, "codebook_loss": codebook_loss,
                "commitment_loss": commitment_loss}


@register("linear_autoencoder")
def linear_autoencoder(**kwargs) -> LinearAutoencoder:
    """The course's 784-256-128-64-32 autoencoder (489,136 parameters at 28x28x1)."""
    return LinearAutoencoder(**kwargs)


@register("conv_autoencoder")
def conv_autoencoder(**kwargs) -> ConvAutoencoder:
    return ConvAutoencoder(**kwargs)


@register("vae")
def vae(**kwargs) -> VAE:
    return VAE(**kwargs)


@register("conditional_vae")
def conditional_vae(**kwargs) -> ConditionalVAE:
    return ConditionalVAE(**kwargs)


@register("vq_vae")
def vq_vae(**kwargs) -> VQVAE:
    return VQVAE(**kwargs)
