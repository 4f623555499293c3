"""Shared pieces of the training-science experiments: the engine's digits split, runs through
``train_and_evaluate``, a probe CNN and report helpers. Not an experiment itself.

Every run goes through the engine so that a measured figure is what the library does, not
what a private loop does."""

from __future__ import annotations

import os
import time
from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from jaxvision import cli
from jaxvision import train
from jaxvision.data import Datasets, EvalStream, build_datasets, make_datasets
from jaxvision.data.builders import digits_arrays
from jaxvision.data.sources import from_arrays
from jaxvision.nn.init import get_initializer
from jaxvision.tasks import ClassificationTask


# --- data and runs -----------------------------------------------------------------------------

def cache_compilations(workdir: str) -> None:
    """Keeps compiled programs in ``workdir/xla_cache``: a study's runs that differ only in
    seed or data compile to the same programs, and a rerun reuses them."""
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "xla_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def digits_datasets(config, *, train_size: int | None = None, label_noise: float = 0.0) -> Datasets:
    """The engine's ``digits`` split, batched as ``config`` says.

    Unchanged, it is what ``train_and_evaluate`` builds from ``config.dataset``. A smaller
    training set (the first ``train_size`` of the split's fixed permutation) or ``label_noise``
    (that fraction of training labels replaced by random classes, drawn with seed 0) is built
    from the same split's arrays; the test set stays the split's.
    """
    if train_size is None and not label_noise:
        return build_datasets(config)
    images, labels = digits_arrays("train")
    images, labels = images[:train_size], labels[:train_size].copy()
    if label_noise:
        rng = np.random.default_rng(0)
        flip = rng.random(len(labels)) < label_noise
        labels[flip] = rng.integers(0, 10, flip.sum())
    return make_datasets(from_arrays(images, labels, num_classes=10),
                         from_arrays(*digits_arrays("test"), num_classes=10),
                         batch_size=config.batch_size, eval_batch_size=config.eval_batch_size,
                         seed=config.seed)


def engine_config(*, epochs: int, seed: int = 0, optimizer: dict | None = None, **model_kwargs):
    """The engine's default config for the digits experiments: small_cnn with
    ``model_kwargs``, one device, no best checkpoints, and a fresh run on every call (an
    earlier run in the workdir is moved aside)."""
    config = train.default_config()
    config.dataset = "digits"
    config.model = "small_cnn"
    config.model_kwargs = dict(model_kwargs)
    config.num_epochs = epochs
    config.seed = seed
    config.batch_size = 64
    config.log_every_steps = len(digits_arrays("train")[1]) // config.batch_size // 2  # twice an epoch
    config.keep_checkpoints = 1
    config.best_metric = ""
    config.tensorboard = False
    config.parallel = "none"
    config.resume = "restart"
    if optimizer is not None:
        config.optimizer = ml_collections.ConfigDict(optimizer)
    return config


class Run(NamedTuple):
    summary: dict  # what train_and_evaluate returned
    records: list[dict]  # its metrics.jsonl
    seconds: float
    state: train.TrainState  # the final state


def run_engine(config, workdir: str, *, datasets: Datasets | None = None,
               model: nn.Module | None = None, callbacks: Sequence[Callable] = ()) -> Run:
    """``train_and_evaluate`` and what it wrote; ``callbacks`` see every evaluation (the
    state they get is donated to the next step: copy what they keep)."""
    final = {}

    def keep_final(step, state, eval_metrics):
        final["state"] = state  # the last one is never donated

    start = time.perf_counter()
    summary = train.train_and_evaluate(config, workdir, model=model, datasets=datasets,
                                       callbacks=(*callbacks, keep_final))
    return Run(summary, train.read_metrics(workdir), time.perf_counter() - start, final["state"])


def series(records: list[dict], split: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    points = [(r["step"], r[metric]) for r in records if r["split"] == split and metric in r]
    if not points:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*points)
    return np.array(steps), np.array(values)


def accuracies(state, image_sets: Sequence[np.ndarray], labels: np.ndarray, *,
               batch_size: int = 256) -> list[float]:
    """Accuracy of ``state`` on each set of uint8 images (one label per image, the same for
    every set: shifted or permuted copies of a test set) through ``train.evaluate``, with one
    compiled eval step for all sets."""
    task = ClassificationTask()
    eval_step = train.make_parallel("none").compile_eval_step(
        train.make_eval_step(train.StepOptions(learning_rate_fn=lambda step: 0.0, task=task)))
    return [train.evaluate(state, EvalStream(from_arrays(images, labels), batch_size=batch_size),
                           task=task, eval_step=eval_step)["accuracy"]
            for images in image_sets]


# --- a probe CNN with selectable init and BatchNorm ------------------------------------------

class PlainCNN(nn.Module):
    """``depth`` x [Conv3x3 (-> BatchNorm) -> ReLU] at constant width, GAP, Dense.

    A deliberately plain (no skip connections) network where initialisation and BatchNorm
    decide whether signals survive depth. Activations are sown as ``intermediates/act{i}``.
    """

    num_classes: int = 10
    depth: int = 8
    width: int = 16
    kernel_init: str = "he_normal"
    init_options: tuple = ()
    batch_norm: bool = False
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x, *, train: bool):
        init = get_initializer(self.kernel_init, **dict(self.init_options))
        for i in range(self.depth):
            x = nn.Conv(self.width, (3, 3), padding=1, use_bias=not self.batch_norm, kernel_init=init,
                        name=f"conv{i}")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                 epsilon=self.bn_epsilon, name=f"bn{i}")(x)
            x = nn.relu(x)
            self.sow("intermediates", f"act{i}", x)
        x = x.mean((1, 2))
        return nn.Dense(self.num_classes, kernel_init=init, name="head")(x)


# --- reporting ---------------------------------------------------------------------------------

def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def plot_lines(curves: dict[str, tuple[Sequence[float], Sequence[float]]], *, path: str, xlabel: str,
               ylabel: str, title: str = "", log_y: bool = False) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, (x, y) in curves.items():
        ax.plot(x, y, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(workdir: str, title: str, sections: Sequence[str]) -> str:
    """``report.md`` with a title and blank-line-separated sections; returns its path."""
    cli.write_report(workdir, [f"# {title}", "", "\n\n".join(sections)])
    return os.path.join(workdir, "report.md")
