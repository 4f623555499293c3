"""Shared pieces of the autoencoder experiments: digits as [0, 1] arrays, a run
of a reconstruction model through the one engine, and batched reconstruction. Not an
experiment itself."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments._science import engine_config, run_engine
from jaxvision.data import make_datasets
from jaxvision.data.builders import digits_arrays
from jaxvision.data.sources import from_arrays


def digits(split: str, *, exclude: int | None = None, only: int | None = None):
    """``(uint8 images [N, 8, 8, 1], labels)`` of the embedded digits, optionally without (or
    with only) one class."""
    images, labels = digits_arrays(split)
    keep = np.ones(len(labels), bool)
    if exclude is not None:
        keep &= labels != exclude
    if only is not None:
        keep &= labels == only
    return images[keep], labels[keep]


def ae_config(*, epochs: int, task: str = "reconstruction", learning_rate: float = 3e-3,
              batch_size: int = 32, **task_kwargs):
    """The engine config of these experiments: one device, Adam(W) with a cosine schedule, a
    fresh run each time, best checkpoints off."""
    config = engine_config(epochs=epochs, optimizer=dict(
        name="adamw", learning_rate=learning_rate, schedule="cosine", warmup_steps=0,
        momentum=0.9, nesterov=False, weight_decay=0.0))
    config.task = task
    config.task_kwargs = dict(task_kwargs)
    config.batch_size = batch_size
    config.log_every_steps = 100
    return config


def train_model(config, workdir: str, model, train_images, test_images, *, train_labels=None,
                test_labels=None, num_classes: int = 1):
    """Trains ``model`` (an object, not a registry name) on images as their own targets through
    ``train_and_evaluate``; returns the engine's ``Run`` (summary, records, seconds, state).
    Labels (zeros if not given) reach the model only through a conditional task."""
    def source(images, labels):
        labels = np.zeros(len(images), np.int64) if labels is None else labels
        return from_arrays(images, labels, num_classes=num_classes)

    datasets = make_datasets(source(train_images, train_labels), source(test_images, test_labels),
                             batch_size=config.batch_size, eval_batch_size=config.eval_batch_size,
                             seed=config.seed)
    return run_engine(config, workdir, datasets=datasets, model=model)


def as_float(images) -> np.ndarray:
    images = np.asarray(images)
    return images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)


def apply_batched(model, variables, images, *, method=None, batch_size: int = 512, **kwargs):
    """``model.apply`` in inference mode over ``images`` in batches, jitted once; returns the
    outputs (a dict of arrays, or an array) as numpy."""
    fn = jax.jit(lambda v, x: model.apply(v, x, train=False, method=method, **kwargs)
                 if method is None else model.apply(v, x, method=method, **kwargs))
    parts = [jax.device_get(fn(variables, jnp.asarray(images[i:i + batch_size])))
             for i in range(0, len(images), batch_size)]
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


def image_row(axes, images, title: str | None = None):
    for ax, image in zip(axes, images):
        ax.imshow(np.asarray(image)[..., 0], cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        axes[0].set_ylabel(title, fontsize=7)
