"""Request bodies -> uint8 images, with every refusal an ``HTTPError`` carrying its status.

PNG/JPEG bytes are opened lazily: the declared size is checked against ``max_pixels`` before
any pixel is decoded (a 20,000 x 20,000 PNG of a few kilobytes is a decompression bomb). JSON
is ``{"instances": array}`` or a bare array of ``[H, W, C]`` or ``[N, H, W, C]`` numbers in
0..255; NaN and infinities are refused rather than cast.
"""

from __future__ import annotations

import io
import json

import numpy as np

IMAGE_TYPES = ("image/png", "image/jpeg")
JSON_TYPE = "application/json"


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _modes(channels: int) -> str:
    return {1: "L", 3: "RGB", 4: "RGBA"}.get(channels) or _unsupported(channels)


def _unsupported(channels):
    raise HTTPError(500, f"the model takes {channels} channels; images cannot be converted")


def decode_image(body: bytes, channels: int, max_pixels: int) -> np.ndarray:
    from PIL import Image

    if not body:
        raise HTTPError(400, "empty body: send PNG or JPEG bytes")
    try:
        image = Image.open(io.BytesIO(body))
        width, height = image.size
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad bytes
        raise HTTPError(400, f"undecodable image: {e}") from None
    if width * height > max_pixels:
        raise HTTPError(400, f"image of {width}x{height} pixels exceeds the limit of "
                             f"{max_pixels:,} pixels")
    try:
        image.load()
        return np.asarray(image.convert(_modes(channels)), np.uint8).reshape(
            height, width, channels)
    except HTTPError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated or corrupt data
        raise HTTPError(400, f"undecodable image: {e}") from None


def _no_constants(name):
    raise HTTPError(422, f"JSON numbers must be finite pixel values, got {name}")


def decode_json(body: bytes, channels: int, max_pixels: int) -> list[np.ndarray]:
    try:
        data = json.loads(body, parse_constant=_no_constants)
    except HTTPError:
        raise
    except Exception as e:  # noqa: BLE001
        raise HTTPError(400, f"undecodable JSON: {e}") from None
    if isinstance(data, dict):
        if "instances" not in data:
            raise HTTPError(422, 'JSON must be an array or {"instances": array}')
        data = data["instances"]
    try:
        array = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError):
        raise HTTPError(422, "JSON images must be rectangular arrays of numbers") from None
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != channels:
        raise HTTPError(422, f"JSON images must be [H, W, {channels}] or [N, H, W, {channels}] "
                             f"arrays, got shape {list(array.shape)}")
    if array.shape[1] * array.shape[2] > max_pixels or 0 in array.shape:
        raise HTTPError(422, f"JSON images of shape {list(array.shape)} are empty or exceed "
                             f"{max_pixels:,} pixels")
    if array.min() < 0 or array.max() > 255:
        raise HTTPError(422, "JSON pixel values must lie in 0..255")
    return list(np.round(array).astype(np.uint8))


def decode(content_type: str, body: bytes, channels: int, max_pixels: int) -> list[np.ndarray]:
    """uint8 ``[H, W, C]`` images of the body, or an ``HTTPError``."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in IMAGE_TYPES:
        return [decode_image(body, channels, max_pixels)]
    if kind == JSON_TYPE:
        return decode_json(body, channels, max_pixels)
    raise HTTPError(415, f"unsupported content type {kind or '(none)'}; send "
                         f"{', '.join(IMAGE_TYPES)} or {JSON_TYPE}")
