"""UNet size arithmetic: which inputs a UNet takes and what it returns.

The original network (Ronneberger et al. 2015) uses unpadded ("valid") 3x3 convolutions: each
block of two convolutions loses 4 pixels, each 2x2 max-pool halves the size and must see an
even size, each 2x2 up-convolution doubles it, and the encoder maps are centre-cropped to the
decoder's size before concatenation. Depth 4: 572 -> skips 568, 280, 136, 64 -> bottleneck 28
-> 52, 100, 196, 388; the valid inputs are 188 + 16k. Padded ("same") UNets return their input
size and need it divisible by ``2 ** depth``.
"""

from __future__ import annotations

from typing import NamedTuple


class UNetSizes(NamedTuple):
    """Spatial sizes through a UNet: ``skips`` (encoder block outputs, top first),
    ``bottleneck``, ``decoder`` (block outputs, deepest first), ``crops`` (pixels cut from each
    side of each skip to meet the up-convolution's output, top first) and ``output``."""

    skips: tuple[int, ...]
    bottleneck: int
    decoder: tuple[int, ...]
    crops: tuple[int, ...]
    output: int


def _walk(size: int, depth: int, padding: str, shrink_per_block: int) -> UNetSizes | str:
    """The sizes, or a string saying why ``size`` does not fit."""
    loss = shrink_per_block if padding == "valid" else 0
    skips, x = [], size
    for level in range(depth):
        x -= loss
        if x < 2:
            return f"level {level} shrinks to {x} pixels"
        if x % 2:
            return f"the 2x2 max-pool of level {level} sees an odd size {x}"
        skips.append(x)
        x //= 2
    x -= loss
    if x < 1:
        return f"the bottleneck shrinks to {x} pixels"
    bottleneck, decoder, upsampled = x, [], []
    for _ in range(depth):
        upsampled.append(2 * x)
        x = 2 * x - loss
        if x < 1:
            return f"a decoder block shrinks to {x} pixels"
        decoder.append(x)
    crops = tuple((s - u) // 2 for s, u in zip(skips, reversed(upsampled)))
    return UNetSizes(tuple(skips), bottleneck, tuple(decoder), crops, x)


def valid_input_sizes(*, depth: int = 4, padding: str = "valid", limit: int = 2048,
                      shrink_per_block: int = 4) -> list[int]:
    """All input sizes up to ``limit`` that a UNet of this ``depth`` and ``padding`` takes
    (original depth 4: 188, 204, 220, ... = 188 + 16k)."""
    return [s for s in range(1, limit + 1)
            if isinstance(_walk(s, depth, padding, shrink_per_block), UNetSizes)]


def unet_sizes(size: int, *, depth: int = 4, padding: str = "valid",
               shrink_per_block: int = 4) -> UNetSizes:
    """The sizes through the network for an input of ``size`` pixels (one spatial axis).

    Raises ``ValueError`` naming the nearest valid sizes when the network cannot take ``size``
    (a max-pool would see an odd size, or a map would shrink to nothing)."""
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    walked = _walk(int(size), depth, padding, shrink_per_block)
    if isinstance(walked, UNetSizes):
        return walked
    step = 2 ** depth
    span = 4 * step + (2 * step * shrink_per_block if padding == "valid" else 0)
    candidates = valid_input_sizes(depth=depth, padding=padding, limit=int(size) + span,
                                   shrink_per_block=shrink_per_block)
    below = [s for s in candidates if s < size][-1:]
    above = [s for s in candidates if s > size][:1]
    rule = (f"{candidates[0]} + {step}k" if padding == "valid" and candidates
            else f"multiples of {step}")
    raise ValueError(f"a {padding}-padded UNet of depth {depth} cannot take an input of {size} "
                     f"pixels ({walked}); nearest valid sizes: {below + above} (valid sizes are "
                     f"{rule})")


def output_size(size: int, *, depth: int = 4, padding: str = "valid") -> int:
    """The output size for an input of ``size`` pixels (572 -> 388 for the original UNet)."""
    return unet_sizes(size, depth=depth, padding=padding).output
