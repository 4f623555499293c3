"""Embedded TFDS builders that need no network; importing registers them with TFDS."""

from jaxvision.data.builders.digits import Digits, digits_arrays
from jaxvision.data.builders.shapes import Shapes, ShapesConfig

EMBEDDED = ("digits", "shapes")

__all__ = ["Digits", "Shapes", "ShapesConfig", "digits_arrays", "EMBEDDED"]
