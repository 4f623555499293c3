"""Calibration: expected calibration error, reliability diagrams and temperature scaling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def calibration_bins(probs: jax.Array, labels: jax.Array, *, num_bins: int = 15) -> dict[str, jax.Array]:
    """Per-bin counts, mean confidence and accuracy over equal-width confidence bins.

    Confidence is the top-class probability; bin ``b`` holds confidences in
    ``(b / num_bins, (b + 1) / num_bins]`` (Guo et al. 2017).
    """
    confidence = jnp.max(probs, -1)
    correct = (jnp.argmax(probs, -1) == labels).astype(jnp.float32)
    bins = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
    count = jnp.zeros(num_bins).at[bins].add(1.0)
    conf_sum = jnp.zeros(num_bins).at[bins].add(confidence)
    acc_sum = jnp.zeros(num_bins).at[bins].add(correct)
    safe = jnp.maximum(count, 1.0)
    return {"count": count, "confidence": conf_sum / safe, "accuracy": acc_sum / safe}


def expected_calibration_error(probs: jax.Array, labels: jax.Array, *, num_bins: int = 15) -> jax.Array:
    """ECE = sum_b (n_b / N) |accuracy_b - confidence_b| over equal-width confidence bins."""
    bins = calibration_bins(probs, labels, num_bins=num_bins)
    weight = bins["count"] / bins["count"].sum()
    return jnp.sum(weight * jnp.abs(bins["accuracy"] - bins["confidence"]))


def fit_temperature(logits: jax.Array, labels: jax.Array, *, steps: int = 300,
                    learning_rate: float = 0.05) -> jax.Array:
    """Temperature ``T > 0`` that minimises the NLL of ``softmax(logits / T)`` on held-out data.

    Optimises ``log T`` with Adam in a ``lax.scan`` (jit-safe); use a validation split, then
    divide test logits by ``T``. Accuracy is unchanged; confidence becomes calibrated.
    """
    logits = logits.astype(jnp.float32)

    def nll(log_t):
        return optax.softmax_cross_entropy_with_integer_labels(logits / jnp.exp(log_t), labels).mean()

    tx = optax.adam(learning_rate)

    def step(carry, _):
        log_t, state = carry
        grad = jax.grad(nll)(log_t)
        updates, state = tx.update(grad, state, log_t)
        return (log_t + updates, state), None

    log_t = jnp.zeros(())
    (log_t, _), _ = jax.lax.scan(step, (log_t, tx.init(log_t)), None, length=steps)
    return jnp.exp(log_t)


def plot_reliability_diagram(probs, labels, *, path: str, num_bins: int = 15, title: str = "") -> str:
    """Bar chart of per-bin accuracy against confidence, with the diagonal and the ECE."""
    from jaxvision import plots
    import numpy as np

    bins = {k: np.asarray(v) for k, v in calibration_bins(probs, labels, num_bins=num_bins).items()}
    ece = float(expected_calibration_error(probs, labels, num_bins=num_bins))
    centers = (np.arange(num_bins) + 0.5) / num_bins
    fig, ax = plots.figure((4.5, 4.5))
    ax.bar(centers, bins["accuracy"], width=1.0 / num_bins, edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} ECE={ece:.3f}".strip())
    ax.legend(loc="upper left")
    plots.save(fig, path, dpi=100)
    return path
