"""Spatial padding of NHWC images with the five border modes the course describes.

Convolution layers only ever pad with zeros; the other modes are obtained by padding
explicitly and then running a VALID convolution (``jaxvision.ops.conv`` does this for you).

Mode names (PyTorch name / numpy name, both accepted):

==============  ===========  =====================================================
``zeros``       constant     zeros outside the image
``reflect``     reflect      mirror *excluding* the edge pixel: ``c b | a b c | b a``
``symmetric``   symmetric    mirror *including* the edge pixel: ``b a | a b c | c b``
``replicate``   edge         repeat the edge pixel: ``a a | a b c | c c``
``circular``    wrap         wrap around (a torus): ``b c | a b c | a b``
==============  ===========  =====================================================

The course's "reflection" diagram repeats the edge pixel, i.e. it is
``symmetric``, not PyTorch's ``ReflectionPad2d`` (which is ``reflect``).
"""

from __future__ import annotations

from typing import Sequence, Union

import jax.numpy as jnp

# Accepted spellings -> the jnp.pad mode.  A tuple of pairs is immutable module state.
_MODE_ALIASES = (
    ("zeros", "constant"),
    ("zero", "constant"),
    ("constant", "constant"),
    ("reflect", "reflect"),
    ("reflection", "reflect"),
    ("symmetric", "symmetric"),
    ("replicate", "edge"),
    ("replication", "edge"),
    ("edge", "edge"),
    ("circular", "wrap"),
    ("wrap", "wrap"),
)

PaddingSpec = Union[int, Sequence[int], Sequence[Sequence[int]]]


def numpy_pad_mode(mode: str) -> str:
    """The ``numpy.pad``/``jnp.pad`` name of a padding mode (``'replicate'`` -> ``'edge'``)."""
    for alias, np_mode in _MODE_ALIASES:
        if mode == alias:
            return np_mode
    names = ", ".join(repr(a) for a, _ in _MODE_ALIASES)
    raise ValueError(f"unknown padding mode {mode!r}; use one of {names}")


def padding_pairs(padding: PaddingSpec, *, num_spatial: int = 2) -> tuple[tuple[int, int], ...]:
    """Normalises ``p``, ``(p_h, p_w)`` or ``((top, bottom), (left, right))`` to pairs per axis."""
    if isinstance(padding, str):
        raise ValueError(
            f"padding={padding!r} is a string; this function needs explicit amounts. Use "
            "jaxvision.ops.geometry.same_padding(...) to turn 'same' into amounts."
        )
    if isinstance(padding, int):
        pairs = ((padding, padding),) * num_spatial
    else:
        items = tuple(padding)
        if len(items) != num_spatial:
            raise ValueError(
                f"padding={padding!r} has {len(items)} entries; give one int, or one int or "
                f"(before, after) pair per spatial axis ({num_spatial})"
            )
        pairs = tuple((int(p), int(p)) if isinstance(p, int) else tuple(int(v) for v in p)
                      for p in items)
    for pair in pairs:
        if len(pair) != 2 or min(pair) < 0:
            raise ValueError(
                f"padding={padding!r}: each axis needs a non-negative (before, after) pair"
            )
    return tuple(pairs)  # type: ignore[return-value]


def pad_images(images: jnp.ndarray, padding: PaddingSpec, *, mode: str = "zeros",
               value: float = 0.0) -> jnp.ndarray:
    """Pads the two spatial axes of an ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` array.

    ``padding`` is ``p``, ``(p_h, p_w)`` or ``((top, bottom), (left, right))``; ``mode`` is one
    of the names in the module docstring; ``value`` is the fill of the ``zeros`` mode (e.g.
    ``-inf`` before a max-pool).
    """
    images = jnp.asarray(images)
    if images.ndim not in (2, 3, 4):
        raise ValueError(
            f"images of shape {images.shape} have rank {images.ndim}; expected (H, W), "
            "(H, W, C) or (N, H, W, C)"
        )
    np_mode = numpy_pad_mode(mode)
    (top, bottom), (left, right) = padding_pairs(padding)
    height_axis = 1 if images.ndim == 4 else 0
    height, width = images.shape[height_axis], images.shape[height_axis + 1]
    if np_mode == "reflect" and (max(top, bottom) >= height or max(left, right) >= width):
        raise ValueError(
            f"reflect padding of {padding!r} needs each amount below the image size "
            f"({height}x{width}), as in PyTorch's ReflectionPad2d; use mode='symmetric' or pad less"
        )
    widths = [(0, 0)] * images.ndim
    widths[height_axis] = (top, bottom)
    widths[height_axis + 1] = (left, right)
    if np_mode == "constant":
        return jnp.pad(images, widths, mode="constant", constant_values=value)
    return jnp.pad(images, widths, mode=np_mode)
