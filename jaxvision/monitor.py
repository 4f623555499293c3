"""Production monitoring: latency percentiles, input drift, prediction distribution, validation
alerts and a deterministic A/B router (the course's deployment chapter, its conventions kept).

* Percentiles use the course's rule ``sorted(x)[int(q * n)]`` (latencies 1..100: p50 = 51,
  p95 = 96, p99 = 100), not numpy's interpolation (95.05), so reports match the text.
* Input drift compares each batch's per-channel mean and std with a training baseline (in
  baseline standard deviations of the per-image channel means) and the population stability
  index of the pixel histograms, ``PSI = sum (a - e) ln(a / e)`` over bins (> 0.2: a shift).
* Prediction entropy is in bits (log2) over the predicted classes' frequencies.
* The validation alert fires when a metric falls below ``0.95 x`` its previous value.
* A/B routing: ``int(md5(id), 16) / (2^128 - 1) < split`` goes to ``"A"``: stable per id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The course's percentile: ``sorted(values)[int(q * n)]`` (index clipped to n - 1)."""
    if not 0 <= q <= 1:
        raise ValueError(f"q must be in [0, 1], got {q}")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    return float(ordered[min(int(q * len(ordered)), len(ordered) - 1)])


class PerformanceTracker:
    """Latencies of served batches -> p50/p95/p99 and throughput (images per second)."""

    def __init__(self):
        self.latencies: list[float] = []
        self.images = 0

    def record(self, seconds: float, batch_size: int = 1) -> None:
        self.latencies.append(float(seconds))
        self.images += int(batch_size)

    def summary(self) -> dict[str, float]:
        total = sum(self.latencies)
        return {"p50": percentile(self.latencies, 0.50), "p95": percentile(self.latencies, 0.95),
                "p99": percentile(self.latencies, 0.99), "count": len(self.latencies),
                "images_per_second": self.images / total if total else float("nan")}


def entropy_bits(predicted_classes: Sequence[int]) -> float:
    """Entropy (log2) of the predicted classes' frequencies: 0 when one class takes all."""
    _, counts = np.unique(np.asarray(predicted_classes), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0


def psi(expected: np.ndarray, actual: np.ndarray, *, bins: int = 10,
        value_range: tuple[float, float] = (0, 256), floor: float = 1e-4) -> float:
    """Population stability index of ``actual`` against ``expected`` (values, binned on
    ``value_range``; empty bins floored at ``floor`` so the log stays finite)."""
    e, _ = np.histogram(np.asarray(expected).ravel(), bins=bins, range=value_range)
    a, _ = np.histogram(np.asarray(actual).ravel(), bins=bins, range=value_range)
    e = np.maximum(e / max(e.sum(), 1), floor)
    a = np.maximum(a / max(a.sum(), 1), floor)
    return float(((a - e) * np.log(a / e)).sum())


@dataclasses.dataclass
class DriftMonitor:
    """Input drift of uint8 ``[N, H, W, C]`` batches against training images (module doc)."""

    mean: np.ndarray  # per channel, over the training images' pixels
    std: np.ndarray  # per channel, of the per-image channel means (their natural spread)
    reference: np.ndarray  # a sample of training pixels per channel, for PSI: [C, K]
    z_threshold: float = 3.0
    psi_threshold: float = 0.2

    @classmethod
    def from_images(cls, images: np.ndarray, *, sample: int = 100_000, seed: int = 0,
                    **thresholds) -> "DriftMonitor":
        images = _check_images(images)
        per_image = images.mean(axis=(1, 2))  # [N, C]
        pixels = images.reshape(-1, images.shape[-1]).T
        rng = np.random.default_rng(seed)
        take = rng.choice(pixels.shape[1], min(sample, pixels.shape[1]), replace=False)
        return cls(mean=per_image.mean(0), std=np.maximum(per_image.std(0), 1e-6),
                   reference=pixels[:, take], **thresholds)

    def check(self, images: np.ndarray) -> dict:
        """``{"z": per-channel shift of the batch mean in baseline stds (of a mean over the
        batch), "psi": per channel, "drift": bool}``."""
        images = _check_images(images)
        if images.shape[-1] != len(self.mean):
            raise ValueError(f"the baseline has {len(self.mean)} channels, the batch "
                             f"{images.shape[-1]}")
        batch_mean = images.mean(axis=(0, 1, 2))
        z = (batch_mean - self.mean) / (self.std / math.sqrt(len(images)))
        pixels = images.reshape(-1, images.shape[-1]).T
        psis = np.array([psi(ref, cur) for ref, cur in zip(self.reference, pixels)])
        drift = bool((np.abs(z) > self.z_threshold).any() or (psis > self.psi_threshold).any())
        return {"z": z.tolist(), "psi": psis.tolist(), "drift": drift,
                "channel_mean": batch_mean.tolist(), "channel_std": pixels.std(1).tolist()}


def _check_images(images) -> np.ndarray:
    images = np.asarray(images, np.float64)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty [N, H, W, C] batch, got shape {images.shape}")
    return images


class PredictionMonitor:
    """Class counts, entropy (bits) and mean confidence of served probabilities."""

    def __init__(self, num_classes: int):
        self.counts = np.zeros(num_classes, np.int64)
        self.confidences: list[float] = []

    def update(self, probabilities: np.ndarray) -> None:
        probabilities = np.asarray(probabilities)
        np.add.at(self.counts, probabilities.argmax(-1), 1)
        self.confidences.extend(probabilities.max(-1).tolist())

    def summary(self) -> dict:
        total = self.counts.sum()
        p = self.counts[self.counts > 0] / max(total, 1)
        return {"counts": self.counts.tolist(),
                "entropy_bits": float(-(p * np.log2(p)).sum()) + 0.0,  # never -0.0
                "mean_confidence": float(np.mean(self.confidences)) if self.confidences
                else float("nan")}


def validation_alert(current: float, previous: float, *, tolerance: float = 0.95) -> bool:
    """True when ``current < tolerance * previous`` (0.90 before: alerts below 0.855)."""
    return current < tolerance * previous


def ab_route(request_id: str, split: float = 0.5) -> str:
    """``"A"`` or ``"B"``: the same id always gets the same arm."""
    if not 0 <= split <= 1:
        raise ValueError(f"split must be in [0, 1], got {split}")
    fraction = int(hashlib.md5(request_id.encode()).hexdigest(), 16) / (2**128 - 1)
    return "A" if fraction < split else "B"


__all__ = ["DriftMonitor", "PerformanceTracker", "PredictionMonitor", "ab_route",
           "entropy_bits", "percentile", "psi", "validation_alert"]
