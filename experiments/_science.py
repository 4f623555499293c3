"""Shared pieces of the training-science experiments: offline data, a probe CNN, a fast loop,
and report helpers. Not an experiment itself."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision import cli
from jaxvision import train
from jaxvision.data import make_datasets
from jaxvision.data.sources import from_arrays
from jaxvision.losses import cross_entropy
from jaxvision.nn.init import get_initializer


# --- data --------------------------------------------------------------------------------------

def digits_arrays(*, train_size: int | None = None, label_noise: float = 0.0):
    """scikit-learn's bundled 8x8 digits (no network): fixed 1297/500 train/test split.

    ``train_size`` keeps a class-stratified-by-chance subset; ``label_noise`` replaces that
    fraction of training labels with random classes (a harder, overfitting-prone task).
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[..., None] / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(labels))
    test, trainval = order[:500], order[500:]
    rng = np.random.default_rng(0)
    if train_size is not None:
        trainval = trainval[:train_size]
    x_train, y_train = images[trainval], labels[trainval].copy()
    if label_noise:
        flip = rng.random(len(y_train)) < label_noise
        y_train[flip] = rng.integers(0, 10, flip.sum())
    return (x_train, y_train), (images[test], labels[test])


def digits_datasets(*, batch_size: int = 64, seed: int = 0, train_size: int | None = None,
                    label_noise: float = 0.0):
    """The engine's ``Datasets`` over ``digits_arrays``."""
    (x_train, y_train), (x_test, y_test) = digits_arrays(train_size=train_size, label_noise=label_noise)
    return make_datasets(from_arrays(x_train, y_train, num_classes=10), from_arrays(x_test, y_test, num_classes=10),
                         batch_size=batch_size, eval_batch_size=250, seed=seed)


def engine_config(*, epochs: int, **model_kwargs):
    """The engine's default config for the digits experiments (no best/early checkpoints)."""
    config = train.default_config()
    config.dataset = "digits"
    config.model = "small_cnn"
    config.model_kwargs = dict(model_kwargs)
    config.num_epochs = epochs
    config.batch_size = 64
    config.log_every_steps = 10
    config.keep_checkpoints = 1
    config.best_metric = ""
    config.tensorboard = False
    config.parallel = "none"
    return config


def run_engine(config, workdir: str, datasets) -> tuple[dict, list[dict], float]:
    """``train_and_evaluate`` and the records it wrote; returns (summary, records, seconds)."""
    start = time.perf_counter()
    summary = train.train_and_evaluate(config, workdir, datasets=datasets)
    return summary, train.read_metrics(workdir), time.perf_counter() - start


def series(records: list[dict], split: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    points = [(r["step"], r[metric]) for r in records if r["split"] == split and metric in r]
    if not points:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*points)
    return np.array(steps), np.array(values)


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


def fit(model: nn.Module, tx: optax.GradientTransformation, data, *, epochs: int, batch_size: int = 64,
        seed: int = 0, on_epoch: Callable[[int, dict, dict], None] | None = None) -> dict[str, Any]:
    """A minimal jitted loop over numpy arrays for experiments that need the raw state.

    Returns the final variables and per-epoch ``train_loss``, ``train_accuracy``,
    ``test_loss``, ``test_accuracy`` lists.
    """
    (x_train, y_train), (x_test, y_test) = data
    variables = model.init(jax.random.key(seed), jnp.asarray(x_train[:2]), train=False)
    params, batch_stats = variables["params"], variables.get("batch_stats", {})
    opt_state = tx.init(params)

    def loss_fn(p, bs, x, y):
        out, new = model.apply({"params": p, "batch_stats": bs}, x, train=True, mutable=["batch_stats"])
        return cross_entropy(out, y), (new.get("batch_stats", bs), out)

    @jax.jit
    def step(params, batch_stats, opt_state, x, y):
        (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss, jnp.mean(logits.argmax(-1) == y)

    @jax.jit
    def evaluate(params, batch_stats, x, y):
        logits = model.apply({"params": params, "batch_stats": batch_stats}, x, train=False)
        return cross_entropy(logits, y), jnp.mean(logits.argmax(-1) == y)

    rng = np.random.default_rng(0)
    history = {"train_loss": [], "train_accuracy": [], "test_loss": [], "test_accuracy": []}
    steps_per_epoch = len(x_train) // batch_size
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        losses, accs = [], []
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            params, batch_stats, opt_state, loss, acc = step(params, batch_stats, opt_state,
                                                             x_train[idx], y_train[idx])
            losses.append(float(loss))
            accs.append(float(acc))
        test_loss, test_acc = evaluate(params, batch_stats, x_test, y_test)
        history["train_loss"].append(float(np.mean(losses)))
        history["train_accuracy"].append(float(np.mean(accs)))
        history["test_loss"].append(float(test_loss))
        history["test_accuracy"].append(float(test_acc))
        if on_epoch is not None:
            on_epoch(epoch, {k: v[-1] for k, v in history.items()},
                     {"params": params, "batch_stats": batch_stats})
    history["predict"] = lambda variables, x: model.apply(variables, x, train=False)
    return history


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
