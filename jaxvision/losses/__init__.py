"""Losses: pure functions of arrays, jit- and vmap-safe."""

from jaxvision.losses.classification import cross_entropy

__all__ = ["cross_entropy"]
