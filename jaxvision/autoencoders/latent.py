"""Latent-space tools: interpolation, traversal, attribute
arithmetic, PCA projection, and principal angles between subspaces (to compare a linear
autoencoder's decoder with PCA: the text's "rows of W1 are the principal components" is too
strong; the subspaces agree, the bases do not)."""

from __future__ import annotations

import numpy as np


def interpolate(z1, z2, num: int) -> np.ndarray:
    """``(1 - t) z1 + t z2`` for ``num`` evenly spaced ``t`` in [0, 1]."""
    t = np.linspace(0.0, 1.0, num)[:, None]
    return (1 - t) * np.asarray(z1, np.float64)[None] + t * np.asarray(z2, np.float64)[None]


def traverse(z, direction, alphas) -> np.ndarray:
    """``z + alpha * direction`` for each alpha."""
    return np.asarray(z)[None] + np.asarray(alphas)[:, None] * np.asarray(direction)[None]


def attribute_vector(latents, has_attribute) -> np.ndarray:
    """Mean latent with the attribute minus mean latent without: ``z' = z + alpha v``."""
    latents, has = np.asarray(latents), np.asarray(has_attribute, bool)
    if has.all() or not has.any():
        raise ValueError("attribute_vector needs samples with and without the attribute")
    return latents[has].mean(0) - latents[~has].mean(0)


def pca(data, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, components (k, D), explained variance (k,))`` of ``data`` (N, D) by SVD."""
    x = np.asarray(data, np.float64).reshape(len(data), -1)
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"k must lie in [1, {min(x.shape)}], got {k}")
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:k], s[:k] ** 2 / (len(x) - 1)


def principal_angles(a, b) -> np.ndarray:
    """Principal angles in degrees between the column spaces of ``a`` (D, k) and ``b`` (D, l),
    smallest first (Bjorck & Golub)."""
    qa, _ = np.linalg.qr(np.asarray(a, np.float64))
    qb, _ = np.linalg.qr(np.asarray(b, np.float64))
    cosines = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), -1.0, 1.0)
    return np.degrees(np.arccos(cosines))
