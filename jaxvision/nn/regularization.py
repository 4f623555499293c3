"""Structured dropout as Flax modules: spatial dropout, DropBlock and stochastic depth.

All use *inverted* scaling (survivors scaled by 1/keep during training, identity at eval), as
``flax.linen.Dropout`` and PyTorch do; the course's remark that outputs are "scaled by the keep
probability at inference" describes classic dropout. Randomness comes from the
``dropout`` RNG stream. Inputs are NHWC.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

Dropout = nn.Dropout

__all__ = ["Dropout", "DropPath", "SpatialDropout", "DropBlock", "StochasticDepth", "drop_block_mask",
           "drop_path"]


def _check_rate(rate: float, what: str) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{what} rate must be in [0, 1), got {rate}")


class SpatialDropout(nn.Module):
    """Drops whole feature maps (``Dropout2d``): one Bernoulli per example and channel.

    Neighbouring activations in a feature map are strongly correlated, so element-wise
    dropout barely regularises conv layers; dropping channels does (Tompson et al. 2015).
    """

    rate: float = 0.2

    @nn.compact
    def __call__(self, x, *, train: bool):
        _check_rate(self.rate, "SpatialDropout")
        if x.ndim != 4:
            raise ValueError(f"SpatialDropout expects NHWC input, got shape {x.shape}")
        return nn.Dropout(self.rate, broadcast_dims=(1, 2), deterministic=not train)(x)


def drop_block_mask(key: jax.Array, shape: tuple[int, ...], *, rate: float, block_size: int,
                    shared_channels: bool = False) -> jax.Array:
    """0/1 float mask ``shape`` (NHWC) with ``block_size`` squares of zeros (DropBlock).

    Seeds are drawn with probability ``gamma = rate * H * W / (bs**2 * (H - bs + 1) * (W - bs + 1))``
    (Ghiasi et al. 2018, as ``torchvision.ops.drop_block2d``) at the valid top-left corners, so
    every block lies inside the map and about ``rate`` of the units are dropped.
    """
    n, h, w, c = shape
    bs = min(block_size, h, w)
    gamma = rate * h * w / (bs**2 * (h - bs + 1) * (w - bs + 1))
    seed_shape = (n, h - bs + 1, w - bs + 1, 1 if shared_channels else c)
    seeds = jax.random.bernoulli(key, gamma, seed_shape).astype(jnp.float32)
    seeds = jnp.pad(seeds, ((0, 0), (bs - 1, bs - 1), (bs - 1, bs - 1), (0, 0)))
    dropped = jax.lax.reduce_window(seeds, 0.0, jax.lax.max, (1, bs, bs, 1), (1, 1, 1, 1), "VALID")
    return jnp.broadcast_to(1.0 - dropped, shape)


class DropBlock(nn.Module):
    """DropBlock: zeroes contiguous ``block_size x block_size`` regions of conv feature maps.

    Survivors are rescaled by ``numel / kept`` (as torchvision) so the mean activation is kept.
    ``rate`` is the target fraction of dropped units.
    """

    rate: float = 0.1
    block_size: int = 7
    shared_channels: bool = False
    eps: float = 1e-6

    @nn.compact
    def __call__(self, x, *, train: bool):
        _check_rate(self.rate, "DropBlock")
        if x.ndim != 4:
            raise ValueError(f"DropBlock expects NHWC input, got shape {x.shape}")
        if not train or self.rate == 0.0:
            return x
        mask = drop_block_mask(self.make_rng("dropout"), x.shape, rate=self.rate,
                               block_size=self.block_size, shared_channels=self.shared_channels)
        scale = mask.size / (self.eps + mask.sum())
        return (x * mask * scale).astype(x.dtype)


def drop_path(key: jax.Array, x: jax.Array, *, rate: float, mode: str = "row") -> jax.Array:
    """Zeroes ``x`` per example (``mode='row'``) or for the whole batch (``'batch'``) with
    probability ``rate`` and scales survivors by ``1/(1-rate)`` (``torchvision.ops.stochastic_depth``)."""
    _check_rate(rate, "drop_path")
    if mode not in ("row", "batch"):
        raise ValueError(f"mode must be 'row' or 'batch', got {mode!r}")
    keep = 1.0 - rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if mode == "row" else (1,) * x.ndim
    mask = jax.random.bernoulli(key, keep, shape)
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class DropPath(nn.Module):
    """Stochastic depth on a residual branch: zero it per example with probability ``rate``,
    scale survivors by 1/(1 - rate) (timm/torchvision), identity at eval. ``StochasticDepth``
    offers the batch-wise and Huang et al. variants."""

    rate: float = 0.0

    @nn.compact
    def __call__(self, x, *, train: bool):
        if not train or self.rate == 0.0:
            return x
        return drop_path(self.make_rng("dropout"), x, rate=self.rate)


class StochasticDepth(nn.Module):
    """Stochastic depth for a residual *branch*: use as ``x + StochasticDepth(p)(f(x), train=...)``.

    ``scale_mode='inverted'`` (default, timm/torchvision): train ``b * F / keep``, eval ``F``.
    ``scale_mode='huang'`` (Huang et al. 2016): train ``b * F``, eval ``keep * F``. Both have
    the same expectation. The course's version rescales the shortcut too, which changes the
    expectation; this does not.
    """

    rate: float = 0.2
    mode: str = "row"
    scale_mode: str = "inverted"

    @nn.compact
    def __call__(self, branch, *, train: bool):
        _check_rate(self.rate, "StochasticDepth")
        if self.scale_mode not in ("inverted", "huang"):
            raise ValueError(f"scale_mode must be 'inverted' or 'huang', got {self.scale_mode!r}")
        keep = 1.0 - self.rate
        if not train or self.rate == 0.0:
            return branch if self.scale_mode == "inverted" else branch * keep
        dropped = drop_path(self.make_rng("dropout"), branch, rate=self.rate, mode=self.mode)
        return dropped if self.scale_mode == "inverted" else dropped * keep


def linear_drop_path_rates(max_rate: float, num_blocks: int) -> list[float]:
    """Per-block rates rising linearly from 0 to ``max_rate`` (Huang et al.'s linear decay rule)."""
    if num_blocks == 1:
        return [max_rate]
    return [max_rate * i / (num_blocks - 1) for i in range(num_blocks)]
