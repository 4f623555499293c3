"""Corruptions for denoising and inpainting autoencoders, made on
device from a PRNG key, and :class:`Corrupted`, the wrapper that applies one inside the
model's forward pass so that the engine's jitted step draws fresh noise every step (from the
``noise`` RNG stream the reconstruction tasks declare).

The text gives no noise parameters; the defaults here are the library's choice. Every function
returns ``(corrupted images, mask)`` with ``mask`` (N, H, W, 1) 1.0 where a pixel was hidden or
replaced (all ones for additive Gaussian noise, which touches every pixel).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

KINDS = ("gaussian", "salt_pepper", "masking", "box")


def gaussian_noise(key, images, std):
    """``clip(x + std * eps, 0, 1)``."""
    noisy = images + std * jax.random.normal(key, images.shape, images.dtype)
    return jnp.clip(noisy, 0.0, 1.0), jnp.ones((*images.shape[:-1], 1), images.dtype)


def salt_and_pepper(key, images, amount):
    """A fraction ``amount`` of pixels set to 0 or 1 (half each), all channels alike."""
    hit_key, salt_key = jax.random.split(key)
    shape = (*images.shape[:-1], 1)
    hit = jax.random.uniform(hit_key, shape) < amount
    salt = jax.random.bernoulli(salt_key, 0.5, shape).astype(images.dtype)
    return jnp.where(hit, salt, images), hit.astype(images.dtype)


def masking_noise(key, images, fraction):
    """A fraction ``fraction`` of pixels dropped to 0 (missing data)."""
    hit = jax.random.uniform(key, (*images.shape[:-1], 1)) < fraction
    return jnp.where(hit, 0.0, images), hit.astype(images.dtype)


def box_mask(key, images, size):
    """One square hole of side ``round(size * min(H, W))`` per image at a uniform position,
    filled with 0 (the inpainting hole); ``size`` may be traced (a curriculum)."""
    n, h, w, _ = images.shape
    side = jnp.maximum(jnp.round(size * min(h, w)), 1.0)
    ky, kx = jax.random.split(key)
    top = jax.random.uniform(ky, (n, 1, 1)) * (h - side + 1)
    left = jax.random.uniform(kx, (n, 1, 1)) * (w - side + 1)
    top, left = jnp.floor(top), jnp.floor(left)
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
    mask = inside[..., None].astype(images.dtype)
    return images * (1.0 - mask), mask


CORRUPTIONS = {"gaussian": gaussian_noise, "salt_pepper": salt_and_pepper,
               "masking": masking_noise, "box": box_mask}


def corrupt(kind: str, key, images, level):
    """``(corrupted, mask)`` for one of :data:`KINDS` at ``level`` (std, fraction or box size)."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {KINDS}, got {kind!r}")
    return CORRUPTIONS[kind](key, images, level)


def curriculum_level(step, *, start: float, end: float, steps: int):
    """Linear ramp from ``start`` to ``end`` over ``steps`` training steps (the noise / mask-size
    curricula that start easy: little noise, small holes), then ``end``."""
    if steps <= 0:
        return jnp.asarray(end, jnp.float32)
    t = jnp.clip(jnp.asarray(step, jnp.float32) / steps, 0.0, 1.0)
    return start + (end - start) * t


class Corrupted(nn.Module):
    """``model`` fed a corrupted copy of its input; outputs the model's dict plus
    ``corrupted``, ``mask`` and ``noise_level``.

    Training draws the corruption from the ``noise`` stream and steps a counter in the
    ``curriculum`` collection (checkpointed with the state; it counts micro-batches under
    gradient accumulation) that drives the ramp from ``start_level`` to ``level`` over
    ``curriculum_steps``. Evaluation corrupts at ``level`` with the fixed key ``eval_seed``, so
    that every evaluation sees the same noise.
    """

    model: nn.Module
    kind: str = "gaussian"
    level: float = 0.3
    start_level: float | None = None
    curriculum_steps: int = 0
    eval_seed: int = 0

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        counter = self.variable("curriculum", "step", lambda: jnp.zeros((), jnp.int32))
        if train:
            start = self.level if self.start_level is None else self.start_level
            level = curriculum_level(counter.value, start=start, end=self.level,
                                     steps=self.curriculum_steps)
            key = self.make_rng("noise")
            if self.is_mutable_collection("curriculum") and not self.is_initializing():
                counter.value = counter.value + 1
        else:
            level, key = jnp.asarray(self.level, jnp.float32), jax.random.key(self.eval_seed)
        noisy, mask = corrupt(self.kind, key, x.astype(jnp.float32), level)
        outputs = dict(self.model(noisy, train=train))
        return {**outputs, "corrupted": noisy, "mask": mask, "noise_level": level}

