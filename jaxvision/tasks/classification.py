"""Image classification: cross-entropy (with label smoothing) on ``batch["label"]`` (integer
ids, or one-hot/soft targets after mixup), accuracy by argmax."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxvision.losses import cross_entropy
from jaxvision.tasks.base import Batch, Task, valid_weights


def correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example hit (float); soft/one-hot targets count their argmax as the label."""
    if labels.ndim == logits.ndim:
        labels = jnp.argmax(labels, axis=-1)
    return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class ClassificationTask(Task):
    label_smoothing: float = 0.0
    metric_names = ("loss", "accuracy")

    def loss(self, outputs, batch: Batch, *, train: bool):
        loss = cross_entropy(outputs, batch["label"], label_smoothing=self.label_smoothing)
        return loss, {"accuracy": correct(outputs, batch["label"]).mean()}

    def batch_metrics(self, outputs, batch: Batch):
        weights = valid_weights(batch)
        count = weights.sum()
        losses = cross_entropy(outputs, batch["label"], reduction="none")
        return {"loss": ((losses * weights).sum(), count),
                "accuracy": ((correct(outputs, batch["label"]) * weights).sum(), count)}

    def predict(self, outputs):
        return jax.nn.softmax(outputs.astype(jnp.float32), axis=-1)
