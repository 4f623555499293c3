"""Compression with autoencoders: compression ratios, uniform
latent quantisation and its bits per pixel, and JPEG (Pillow) at a matched bit rate.

Bits per pixel (bpp) are bits per image pixel (H x W, all channels together). JPEG's bytes are
counted on one mosaic of all the images, so that the file header (hundreds of bytes) is shared
as a codec would share it over a stream; the latent's cost is ``latent_dim x bits`` per image
with no entropy coding (an upper bound for it).
"""

from __future__ import annotations

import io
import math

import numpy as np


def compression_ratio(input_shape, latent_size: int) -> float:
    """Input values per latent value: 784 -> 32 is 24.5, 256x256x3 -> 512 is 384."""
    if latent_size < 1:
        raise ValueError(f"latent_size must be >= 1, got {latent_size}")
    return math.prod(input_shape) / latent_size


def quantize(latents, *, bits: int, low: float, high: float) -> np.ndarray:
    """Uniform quantisation of ``latents`` clipped to ``[low, high]`` onto ``2^bits`` levels
    (returned de-quantised, as the decoder sees them)."""
    if bits < 1 or high <= low:
        raise ValueError(f"need bits >= 1 and high > low, got bits={bits}, [{low}, {high}]")
    levels = 2 ** bits - 1
    z = (np.clip(np.asarray(latents, np.float64), low, high) - low) / (high - low)
    return (np.round(z * levels) / levels * (high - low) + low).astype(np.float32)


def latent_bits_per_pixel(latent_size: int, bits: int, image_shape) -> float:
    return latent_size * bits / (image_shape[0] * image_shape[1])


def mosaic(images, columns: int | None = None) -> np.ndarray:
    """Images (N, H, W, C) in [0, 1] tiled into one uint8 (rows*H, columns*W, C) image."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = image
    return np.clip(np.rint(grid * 255), 0, 255).astype(np.uint8)


def jpeg_roundtrip(images, quality: int) -> tuple[np.ndarray, float]:
    """``(decoded images in [0, 1], bits per pixel)`` of the images' mosaic as JPEG at
    ``quality`` (Pillow, 4:4:4 for colour)."""
    from PIL import Image

    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    columns = int(math.ceil(math.sqrt(n)))
    tiled = mosaic(images, columns)
    buffer = io.BytesIO()
    Image.fromarray(tiled[..., 0] if c == 1 else tiled).save(
        buffer, format="JPEG", quality=int(quality), subsampling=0)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), np.float32) / 255.0
    decoded = decoded.reshape(tiled.shape)
    out = np.stack([decoded[(i // columns) * h:(i // columns + 1) * h,
                            (i % columns) * w:(i % columns + 1) * w] for i in range(n)])
    return out, buffer.tell() * 8 / (n * h * w)


def jpeg_at_bpp(images, target_bpp: float) -> tuple[np.ndarray, float, int]:
    """JPEG at the highest quality (1..95) whose rate does not exceed ``target_bpp``, or
    quality 1 when even that exceeds it: ``(decoded, bpp, quality)``."""
    best = None
    for quality in range(1, 96):
        decoded, bpp = jpeg_roundtrip(images, quality)
        if best is None or bpp <= target_bpp:
            best = (decoded, bpp, quality)
        if bpp > target_bpp:
            break
    return best
