"""Training diagnostics as pure functions returning flat dicts, plus a logger and early stopping.

* ``layer_grad_norms``: L2 norm of the gradient of each layer (parameter-tree node holding
  leaves), to spot vanishing/exploding gradients.
* ``update_ratios``: ``||update|| / ||param||`` per layer; about 1e-3 per step is healthy, much
  larger means the LR is too high for that layer, much smaller means it barely trains.
* ``activation_stats``: mean, std and the fraction of dead ReLU units per captured activation.
* ``weight_histograms``: per-layer histograms of the kernels (weights that collapse to 0 or
  spread out show there).
* ``MonitoringLogger`` writes scalars to ``monitoring.jsonl`` and scalars + histograms to
  TensorBoard; ``EarlyStopping`` functions stop a run after ``patience`` evaluations without
  improvement.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.train.writers import MetricWriter, read_metrics


def _name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _group_by_layer(tree: Any) -> dict[str, list[jax.Array]]:
    """Leaves grouped by their parent path ('conv0', 'stage1/block0/conv1', ...)."""
    groups: dict[str, list[jax.Array]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        layer = "/".join(_name(k) for k in path[:-1]) or _name(path[-1])
        groups.setdefault(layer, []).append(leaf)
    return groups


def _norm(leaves: list[jax.Array]) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def layer_grad_norms(grads: Any, *, prefix: str = "grad_norm") -> dict[str, jax.Array]:
    """``{f"{prefix}/{layer}": ||g_layer||_2, prefix: global norm}`` (jit-safe)."""
    groups = _group_by_layer(grads)
    out = {f"{prefix}/{layer}": _norm(leaves) for layer, leaves in groups.items()}
    out[prefix] = _norm(jax.tree.leaves(grads))
    return out


def update_ratios(updates: Any, params: Any, *, prefix: str = "update_ratio",
                  eps: float = 1e-12) -> dict[str, jax.Array]:
    """``||update_layer|| / (||param_layer|| + eps)`` per layer plus the global ratio (jit-safe).

    ``updates`` are the optimizer's outputs (``new_params - params``), not the gradients.
    """
    u_groups, p_groups = _group_by_layer(updates), _group_by_layer(params)
    out = {f"{prefix}/{layer}": _norm(u_groups[layer]) / (_norm(p_groups[layer]) + eps) for layer in u_groups}
    out[prefix] = _norm(jax.tree.leaves(updates)) / (_norm(jax.tree.leaves(params)) + eps)
    return out


def activation_stats(activations: Any, *, prefix: str = "act") -> dict[str, jax.Array]:
    """Mean, std, zero fraction and dead-unit fraction of each activation array (jit-safe).

    ``activations`` is any pytree of ``[B, ..., C]`` arrays (e.g. the ``intermediates``
    collection). ``dead`` is the fraction of channels that are <= 0 for every example and
    position in the batch: units whose ReLU passes no gradient at all.
    """
    out = {}
    for path, x in jax.tree_util.tree_flatten_with_path(activations)[0]:
        name = "/".join(_name(k) for k in path if not isinstance(_name(k), int) and not _name(k).isdigit())
        x = x.astype(jnp.float32)
        channels = x.reshape(-1, x.shape[-1])
        out[f"{prefix}/{name}/mean"] = x.mean()
        out[f"{prefix}/{name}/std"] = x.std()
        out[f"{prefix}/{name}/zero_fraction"] = jnp.mean(x <= 0)
        out[f"{prefix}/{name}/dead"] = jnp.mean(jnp.all(channels <= 0, axis=0))
    return out


def capture_activations(model, variables: dict, x: jax.Array, *, train: bool = False) -> dict:
    """Outputs of every submodule (``capture_intermediates=True``) and sown ``intermediates``."""
    _, state = model.apply(variables, x, train=train, capture_intermediates=True, mutable=["intermediates"])
    flat = {}
    for path, value in jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]:
        parts = [_name(k) for k in path]
        parts = [p for p in parts if p not in ("__call__", "0")]
        flat["/".join(parts)] = value
    return flat


def weight_histograms(params: Any, *, bins: int = 30, kernels_only: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer/leaf: (counts, bin_edges)}`` of the parameter values (host-side numpy)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = "/".join(_name(k) for k in path)
        if kernels_only and _name(path[-1]) != "kernel":
            continue
        counts, edges = np.histogram(np.asarray(leaf, np.float32).ravel(), bins=bins)
        out[name] = (counts, edges)
    return out


class MonitoringLogger:
    """Appends scalars to ``<workdir>/monitoring.jsonl`` and writes scalars and weight
    histograms to TensorBoard (``tensorboard/monitoring``)."""

    def __init__(self, workdir: str, *, tensorboard: bool = True):
        self._writer = MetricWriter(workdir, name="monitoring", tensorboard=tensorboard)
        self.path = self._writer.path

    def log(self, step: int, scalars: dict[str, Any], *, params: Any = None) -> None:
        self._writer.write(step, scalars)
        if params is not None:
            for name, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
                label = "/".join(_name(k) for k in name)
                self._writer.histogram(step, f"weights/{label}", np.asarray(leaf, np.float32))

    def close(self) -> None:
        self._writer.close()


def read_monitoring(workdir: str) -> list[dict]:
    """Records of ``<workdir>/monitoring.jsonl``."""
    return read_metrics(os.path.join(workdir, "monitoring.jsonl"))


def plot_grad_flow(norms: dict[str, float], *, path: str, prefix: str = "grad_norm/") -> str:
    """Bar chart of per-layer gradient norms in network order (log scale)."""
    from jaxvision import plots

    items = [(k[len(prefix):], float(v)) for k, v in norms.items() if k.startswith(prefix)]
    fig, ax = plots.figure((max(5, 0.45 * len(items)), 3.8))
    ax.bar(range(len(items)), [v for _, v in items])
    ax.set_xticks(range(len(items)), [k for k, _ in items], rotation=70, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("gradient L2 norm")
    plots.save(fig, path, dpi=100)
    return path


# --- early stopping -----------------------------------------------------------------------------

class EarlyStoppingState(NamedTuple):
    """Best metric so far, when it was seen, and evaluations since the last improvement."""

    best: float
    best_step: int
    bad_evals: int


def early_stopping_init(*, mode: str = "min") -> EarlyStoppingState:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return EarlyStoppingState(float("inf") if mode == "min" else float("-inf"), -1, 0)


def early_stopping_update(state: EarlyStoppingState, metric: float, *, step: int, patience: int = 10,
                          min_delta: float = 0.0, mode: str = "min") -> tuple[EarlyStoppingState, bool, bool]:
    """Returns ``(state, improved, stop)``: save a checkpoint when ``improved``, stop when ``stop``.

    ``stop`` becomes True after ``patience`` consecutive evaluations that do not beat the best
    by more than ``min_delta``. A usual setting is patience 10, reloading the best checkpoint
    at the end (the last ``patience`` evaluations are the ones that did not improve).
    """
    metric = float(metric)
    improved = metric < state.best - min_delta if mode == "min" else metric > state.best + min_delta
    if improved:
        return EarlyStoppingState(metric, int(step), 0), True, False
    bad = state.bad_evals + 1
    return EarlyStoppingState(state.best, state.best_step, bad), False, bad >= patience
