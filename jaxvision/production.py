"""The tests production needs, as functions a user runs on their own trained classifier.

Each takes an ``inference.Predictor`` (or anything with its ``model``, ``variables`` and
``spec``) and uint8 images, and returns plain numbers, so that a test suite can assert them:

* :func:`golden_check`: today's probabilities against a saved golden file (written on the
  first run), within a tolerance.
* :func:`edge_cases`: blank, saturated, noise, tiny, huge and non-square images all give
  finite probabilities that sum to 1.
* :func:`consistency`: the rate at which the top-1 answer survives a horizontal flip and a
  down-and-up resize.
* :func:`fgsm_robustness`: accuracy under FGSM at each epsilon (``interpret.adversarial``).
* :func:`corruption_robustness`: accuracy under Gaussian noise, blur, contrast loss and JPEG
  at five severities (the augmentation ops; JPEG through Pillow).
"""

from __future__ import annotations

import io
import json
import os
from typing import Sequence

import numpy as np


def golden_check(predictor, images: np.ndarray, path: str | os.PathLike, *,
                 atol: float = 1e-4) -> dict:
    """Compare with the golden probabilities in ``path`` (JSON), writing them when absent.
    Returns ``{"written": bool, "max_abs_diff": float, "ok": bool}``."""
    probs = np.asarray(predictor(images), np.float64)
    if not os.path.exists(path):
        with open(path, "w") as f:
            json.dump({"probabilities": probs.tolist()}, f)
        return {"written": True, "max_abs_diff": 0.0, "ok": True}
    with open(path) as f:
        golden = np.asarray(json.load(f)["probabilities"])
    if golden.shape != probs.shape:
        raise ValueError(f"golden file {path} holds {golden.shape} probabilities, the model "
                         f"gave {probs.shape}")
    diff = float(np.abs(golden - probs).max())
    return {"written": False, "max_abs_diff": diff, "ok": diff <= atol}


def edge_cases(predictor) -> dict[str, bool]:
    """``{case: ok}``: finite probabilities summing to 1 for each unusual input."""
    h, w = predictor.spec.image_size
    c = predictor.spec.channels
    rng = np.random.default_rng(0)
    cases = {
        "blank": np.zeros((h, w, c), np.uint8),
        "saturated": np.full((h, w, c), 255, np.uint8),
        "noise": rng.integers(0, 256, (h, w, c), dtype=np.uint8),
        "tiny": rng.integers(0, 256, (2, 2, c), dtype=np.uint8),
        "huge": rng.integers(0, 256, (8 * h, 8 * w, c), dtype=np.uint8),
        "non_square": rng.integers(0, 256, (h, 3 * w, c), dtype=np.uint8),
    }
    results = {}
    for name, image in cases.items():
        probs = np.asarray(predictor(image))
        results[name] = bool(np.isfinite(probs).all() and np.allclose(probs.sum(-1), 1, atol=1e-4))
    return results


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from jaxvision.inference import InputSpec, resize_images

    channels = images.shape[-1]
    spec = InputSpec(image_size=size, channels=channels, mean=(0.0,) * channels,
                     std=(1.0,) * channels)
    return resize_images(spec, list(images))


def consistency(predictor, images: np.ndarray) -> dict[str, float]:
    """Fractions of images whose top-1 class is unchanged by a horizontal flip and by a
    resize to half size and back."""
    images = np.asarray(images)
    top = np.asarray(predictor(images)).argmax(-1)
    flipped = np.asarray(predictor(images[:, :, ::-1])).argmax(-1)
    h, w = images.shape[1:3]
    small = _resize(_resize(images, (max(h // 2, 1), max(w // 2, 1))), (h, w))
    resized = np.asarray(predictor(small)).argmax(-1)
    return {"flip": float((top == flipped).mean()), "resize": float((top == resized).mean())}


def _forward01(predictor):
    """Logits of float images in [0, 1] at the model's size: what the attacks differentiate."""
    from jaxvision.inference import to_model_input

    model, variables, spec = predictor.model, predictor.variables, predictor.spec
    return lambda x: model.apply(variables, to_model_input(spec, x * 255.0), train=False)


def fgsm_robustness(predictor, images: np.ndarray, labels: np.ndarray,
                    epsilons: Sequence[float] = (0.0, 0.01, 0.03, 0.1)) -> dict[float, float]:
    """``{epsilon: accuracy}`` under FGSM in [0, 1] pixel units (images at the model's size)."""
    from jaxvision.interpret.adversarial import fgsm, robust_accuracy

    x = np.asarray(images, np.float32) / 255.0
    accuracy = robust_accuracy(_forward01(predictor), x, np.asarray(labels), list(epsilons),
                               attack=fgsm)
    return {float(e): float(a) for e, a in zip(epsilons, accuracy)}


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    squeeze = image.shape[-1] == 1
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if squeeze else image).save(buffer, format="JPEG",
                                                               quality=quality)
    out = np.asarray(Image.open(buffer))
    return out[..., None] if squeeze else out


def corrupt(images: np.ndarray, kind: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """uint8 images corrupted by ``kind`` (``noise``, ``blur``, ``contrast``, ``jpeg``) at
    ``severity`` 1..5 (ImageNet-C's scale: 5 is the strongest)."""
    import jax

    from jaxvision.augment.photometric import adjust_contrast, gaussian_blur

    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, got {severity}")
    images = np.asarray(images)
    x = images.astype(np.float32) / 255.0
    if kind == "noise":
        sigma = (0.04, 0.08, 0.12, 0.18, 0.26)[severity - 1]
        x = x + np.random.default_rng(seed).normal(0, sigma, x.shape).astype(np.float32)
    elif kind == "blur":
        sigma = (0.5, 0.75, 1.0, 1.5, 2.0)[severity - 1]
        size = 2 * int(np.ceil(2 * sigma)) + 1
        x = np.asarray(jax.jit(jax.vmap(
            lambda i: gaussian_blur(i, sigma=sigma, kernel_size=size)))(x))
    elif kind == "contrast":
        factor = (0.75, 0.5, 0.4, 0.3, 0.15)[severity - 1]
        x = np.asarray(jax.jit(jax.vmap(lambda i: adjust_contrast(i, factor)))(x))
    elif kind == "jpeg":
        quality = (80, 60, 40, 20, 10)[severity - 1]
        return np.stack([_jpeg(i, quality) for i in images])
    else:
        raise ValueError(f"unknown corruption {kind!r}; use noise, blur, contrast or jpeg")
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


CORRUPTIONS = ("noise", "blur", "contrast", "jpeg")


def corruption_robustness(predictor, images: np.ndarray, labels: np.ndarray,
                          kinds: Sequence[str] = CORRUPTIONS) -> dict[str, list[float]]:
    """``{kind: [accuracy at severity 1..5]}`` plus ``"clean": [accuracy]``."""
    labels = np.asarray(labels)
    accuracy = lambda x: float((np.asarray(predictor(x)).argmax(-1) == labels).mean())  # noqa: E731
    results = {"clean": [accuracy(images)]}
    for kind in kinds:
        results[kind] = [accuracy(corrupt(images, kind, s)) for s in range(1, 6)]
    return results


__all__ = ["CORRUPTIONS", "consistency", "corrupt", "corruption_robustness", "edge_cases",
           "fgsm_robustness", "golden_check"]
