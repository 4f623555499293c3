"""Image-quality metrics for reconstructions: PSNR, SSIM and MS-SSIM (NHWC, per image).

* :func:`psnr`: ``10 log10(R^2 / MSE)`` per image, ``R`` the data range
  (``skimage.metrics.peak_signal_noise_ratio``).
* :func:`ssim`: Wang et al. (2004) with an isotropic Gaussian window (``sigma``, truncated at
  3.5 sigma as scipy does), population statistics and ``C1 = (K1 R)^2``, ``C2 = (K2 R)^2``;
  the SSIM map over the window positions that fit inside the image, averaged over pixels and
  channels. This is ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=R)`` (which crops the border of half a window).
* :func:`ms_ssim`: Wang et al. (2003): per channel, the contrast-structure terms at
  ``len(weights)`` scales (2x2 average pooling between them) and the SSIM at the last, each
  clipped at 0 and raised to its weight; the product is averaged over channels. This is
  ``tf.image.ssim_multiscale`` and ``pytorch_msssim.ms_ssim`` (11-tap window, sigma 1.5) on
  images whose sides stay even down the pyramid (odd sides: TF pads symmetrically,
  pytorch_msssim with zeros, we crop the last row/column). With the five published weights
  it needs images of at least ``(win - 1) * 16 + 1`` pixels; fewer weights serve small
  images.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _pair(x, y):
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"images must be two NHWC arrays of one shape, got {x.shape} and {y.shape}")
    return x, y


def psnr(x, y, *, data_range: float = 1.0) -> jax.Array:
    """Per-image PSNR in dB (``inf`` for identical images)."""
    x, y = _pair(x, y)
    mse = jnp.mean((x - y) ** 2, axis=(1, 2, 3))
    return 10.0 * jnp.log10(data_range ** 2 / mse)


def gaussian_window(sigma: float, truncate: float = 3.5) -> np.ndarray:
    """scipy's normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


def _filter(images, window):
    """Valid separable filtering of NHWC ``images`` by ``window`` (per channel)."""
    w = jnp.asarray(window, images.dtype)
    k = w.shape[0]
    h_out, w_out = images.shape[1] - k + 1, images.shape[2] - k + 1
    out = sum(w[i] * images[:, i:i + h_out] for i in range(k))
    return sum(w[j] * out[:, :, j:j + w_out] for j in range(k))


def _ssim_terms(x, y, window, data_range, k1, k2):
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    var_x = _filter(x * x, window) - mu_x ** 2
    var_y = _filter(y * y, window) - mu_y ** 2
    cov = _filter(x * y, window) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    return luminance, contrast_structure


def _check_size(x, window, what: str):
    if min(x.shape[1:3]) < window.shape[0]:
        raise ValueError(f"{what} needs images of at least {window.shape[0]}x{window.shape[0]} "
                         f"pixels for sigma's window, got {x.shape[1:3]}; use a smaller sigma")


def ssim(x, y, *, data_range: float = 1.0, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03) -> jax.Array:
    """Per-image mean SSIM (see the module docstring)."""
    x, y = _pair(x, y)
    _check_size(x, gaussian_window(sigma), "ssim")
    return _ssim(x, y, data_range=float(data_range), sigma=float(sigma), k1=k1, k2=k2)


@functools.partial(jax.jit, static_argnames=("data_range", "sigma", "k1", "k2"))
def _ssim(x, y, *, data_range, sigma, k1, k2):
    luminance, contrast_structure = _ssim_terms(x, y, gaussian_window(sigma), data_range, k1, k2)
    return jnp.mean(luminance * contrast_structure, axis=(1, 2, 3))


def ms_ssim(x, y, *, data_range: float = 1.0, sigma: float = 1.5,
            weights=MS_SSIM_WEIGHTS, k1: float = 0.01, k2: float = 0.03) -> jax.Array:
    """Per-image multi-scale SSIM (see the module docstring)."""
    x, y = _pair(x, y)
    window = gaussian_window(sigma)
    scale = 2 ** (len(weights) - 1)
    if min(x.shape[1:3]) < (window.shape[0] - 1) * scale + 1:
        raise ValueError(f"ms_ssim with {len(weights)} scales needs images of at least "
                         f"{(window.shape[0] - 1) * scale + 1} pixels, got {x.shape[1:3]}; "
                         "pass fewer weights or a smaller sigma")
    return _ms_ssim(x, y, data_range=float(data_range), sigma=float(sigma),
                    weights=tuple(weights), k1=k1, k2=k2)


@functools.partial(jax.jit, static_argnames=("data_range", "sigma", "weights", "k1", "k2"))
def _ms_ssim(x, y, *, data_range, sigma, weights, k1, k2):
    window = gaussian_window(sigma)
    per_channel = jnp.ones((x.shape[0], x.shape[3]))
    for level, weight in enumerate(weights):
        luminance, cs = _ssim_terms(x, y, window, data_range, k1, k2)
        if level == len(weights) - 1:
            term = jnp.mean(luminance * cs, axis=(1, 2))
        else:
            term = jnp.mean(cs, axis=(1, 2))
            x = _avg_pool2(x)
            y = _avg_pool2(y)
        per_channel = per_channel * jnp.maximum(term, 0.0) ** weight
    return per_channel.mean(axis=-1)


def _avg_pool2(x):
    n, h, w, c = x.shape
    x = x[:, :h - h % 2, :w - w % 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
