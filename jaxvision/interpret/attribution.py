"""Input attributions: how much each input value counts for a class score, by captum's definitions.

Every function takes ``(model, variables, x, target=None, *, options)``, as the rest of
:mod:`jaxvision.interpret` does, and runs ``model.apply(variables, x, train=False)`` on a float
batch ``x`` (NHWC for images; any ``[N, ...]`` works); wrap other networks in a Flax module.
The module rather than a closure is the argument because it is what jit can cache a compiled
program on, and what :func:`guided_backprop` rebuilds with another activation.

``target`` is :func:`~jaxvision.interpret.hooks.class_scores`'s: one int, one class per example,
or ``None``: the class the model predicts for ``x``, kept along the integration path, under
noise and under occlusion (captum requires a target instead). Every result has ``x``'s shape;
:func:`integrated_gradients` adds the convergence delta.

Each function compiles once per model and static option and is jit- and vmap-safe. The methods
that need many passes (integrated gradients, smoothgrad, occlusion) batch them into one
computation; ``internal_batch_size`` (at most that many examples per forward pass, but at least
the batch, as in captum) bounds the memory that takes.

Definitions are captum's (``captum.attr``, checked against 0.9); the one difference is the
layout: captum's tensors are NCHW and ours NHWC, so its occlusion window ``(3, 8, 8)`` is
``(8, 8, 3)`` here.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.interpret.hooks import Target, class_scores
from jaxvision.nn.layers import resolve_act

IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
              "gausslegendre")
NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")
Baseline = float | jax.Array | np.ndarray | None


def _logits(model, variables, x) -> jax.Array:
    """The model's inference logits, which must be ``[N, classes]``."""
    logits = model.apply(variables, x, train=False)
    if getattr(logits, "ndim", None) != 2:
        raise ValueError(f"attributions explain one class score per example: the model must "
                         f"return [N, classes] logits; {type(model).__name__} returns "
                         f"{jax.tree.map(jnp.shape, logits)}")
    return logits


_logits_shape = jax.jit(_logits, static_argnums=0).eval_shape  # traces once per model and shape


def _target_array(model, variables, x, target: Target):
    """``target`` as one class per example, range-checked when it is concrete: inside the
    compiled attribution it is traced, where :func:`class_scores` cannot check it."""
    if target is None or isinstance(target, jax.core.Tracer):
        return target
    logits = _logits_shape(model, variables, x)
    class_scores(jnp.zeros(logits.shape), target)  # raises on a class out of range
    return jnp.broadcast_to(jnp.asarray(target, jnp.int32), x.shape[:1])


def _compiled(*static: str):
    """Jit an attribution ``f(model, variables, x, target, **options)`` with the model and the
    ``static`` options (lists made tuples) as compile-time constants, after checking and
    normalising ``target``. Defaults are passed explicitly, so that leaving an option out and
    giving its default (or another value of a traced option) reuse the compiled program."""
    def decorate(f: Callable) -> Callable:
        jitted = jax.jit(f, static_argnames=("model",) + static)
        signature = inspect.signature(f)

        @functools.wraps(f)
        def run(model, variables, x, target: Target = None, **options):
            options = {k: tuple(v) if k in static and isinstance(v, list) else v
                       for k, v in options.items()}
            target = _target_array(model, variables, x, target)
            call = signature.bind(model, variables, x, target, **options)
            call.apply_defaults()
            return jitted(*call.args, **call.kwargs)
        return run
    return decorate


def _scores(model, variables, x, target: Target) -> jax.Array:
    return class_scores(_logits(model, variables, x), target)


def _gradients(model, variables, x, target: Target) -> jax.Array:
    """d score_i / d x_i for every example i, by one backward pass of the summed scores
    (examples are independent in inference mode)."""
    return jax.grad(lambda x: jnp.sum(_scores(model, variables, x, target)))(x)


def _fixed_target(logits: jax.Array, target: Target) -> tuple[jax.Array, jax.Array]:
    """``(scores, classes)`` of x's ``logits``, ``None`` resolved to the predicted classes, so
    that perturbed copies of x are scored for x's class, not for their own predictions."""
    target = jnp.argmax(logits, axis=-1) if target is None else target
    return class_scores(logits, target), target


def _stacked(f: Callable, model, variables, xs: jax.Array, target: jax.Array) -> jax.Array:
    """``f(model, variables, batch, target)`` of a stack ``[k, N, ...]`` of batches, as one
    batch of k * N examples (faster than vmap over k with the im2col/Winograd convolutions)."""
    k = xs.shape[0]
    out = f(model, variables, xs.reshape((-1,) + xs.shape[2:]), jnp.tile(target, k))
    return out.reshape((k, -1) + out.shape[1:])


def _sum_chunks(f: Callable, xs, examples: int, internal_batch_size: int | None):
    """``sum of f(chunk)`` over equal chunks of the leading axis of ``xs`` (a pytree), each small
    enough for ``internal_batch_size`` examples (``examples`` per item, and at least one item, as
    in captum; by default one chunk: one pass). The last chunk is padded with zero items, which
    ``f`` must count as nothing."""
    items = jax.tree.leaves(xs)[0].shape[0]
    if internal_batch_size is not None and internal_batch_size < 1:
        raise ValueError(f"internal_batch_size must be >= 1, got {internal_batch_size}")
    limit = items if internal_batch_size is None else max(1, internal_batch_size // examples)
    chunks = -(-items // min(items, limit))
    size = -(-items // chunks)
    xs = jax.tree.map(lambda a: jnp.pad(a, [(0, chunks * size - items)] + [(0, 0)] * (a.ndim - 1))
                      .reshape((chunks, size) + a.shape[1:]), xs)
    if chunks == 1:
        return f(jax.tree.map(lambda a: a[0], xs))
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(f, jax.tree.map(lambda a: a[0], xs)))
    return jax.lax.scan(lambda total, chunk: (jax.tree.map(jnp.add, total, f(chunk)), None),
                        zeros, xs)[0]


def _baseline(x: jax.Array, baseline: Baseline, name: str = "baseline") -> jax.Array:
    """captum's baselines: ``None`` (zeros), a scalar, or an array of x's shape or of one
    example's shape with a leading 1 (the same baseline for every example)."""
    if baseline is None or np.ndim(baseline) == 0:
        return jnp.full_like(x, 0.0 if baseline is None else baseline)
    if np.shape(baseline) not in (x.shape, (1,) + x.shape[1:]):
        raise ValueError(f"{name} has shape {np.shape(baseline)}; give a scalar, the input's "
                         f"shape {x.shape} or {(1,) + x.shape[1:]}")
    return jnp.broadcast_to(jnp.asarray(baseline, x.dtype), x.shape)


@_compiled()
def saliency(model: nn.Module, variables, x: jax.Array, target: Target = None, *,
             abs: bool = True) -> jax.Array:  # noqa: A002 - captum's keyword
    """captum ``Saliency`` (Simonyan et al.): the gradient of the target score w.r.t. the input,
    its absolute value unless ``abs=False`` (the sign says which way a value pushes)."""
    grads = _gradients(model, variables, x, target)
    return jnp.where(abs, jnp.abs(grads), grads)


@_compiled()
def input_x_gradient(model: nn.Module, variables, x: jax.Array,
                     target: Target = None) -> jax.Array:
    """captum ``InputXGradient``: input times gradient, each value's first-order share of the
    score."""
    return x * _gradients(model, variables, x, target)


def smoothgrad(model: nn.Module, variables, x: jax.Array, target: Target = None, *,
               key: jax.Array, stdevs: float = 1.0, nt_samples: int = 5,
               nt_type: str = "smoothgrad", abs: bool = True,  # noqa: A002
               internal_batch_size: int | None = None) -> jax.Array:
    """captum ``NoiseTunnel(Saliency)``: :func:`saliency` (with ``abs``) of ``nt_samples``
    copies of x plus ``stdevs * jax.random.normal(key, (nt_samples, *x.shape))``, then their
    mean (``"smoothgrad"``, Smilkov et al.), mean square (``"smoothgrad_sq"``) or variance
    (``"vargrad"``): averaging over noise removes the gradient's pixel-scale jitter. ``stdevs``
    is in the input's units, as in captum (the paper suggests 10-20% of the input's range)."""
    if nt_type not in NT_TYPES:
        raise ValueError(f"unknown nt_type {nt_type!r}; use one of {NT_TYPES}")
    if nt_samples < 1 or (not isinstance(stdevs, jax.core.Tracer) and stdevs < 0):
        raise ValueError(f"need nt_samples >= 1 and stdevs >= 0, got {nt_samples}, {stdevs}")
    mean, mean_sq = _noise_moments(model, variables, x, target, key=key, stdevs=stdevs,
                                   nt_samples=nt_samples, abs=abs,
                                   internal_batch_size=internal_batch_size)
    return {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean**2}[nt_type]


@_compiled("nt_samples", "internal_batch_size")
def _noise_moments(model, variables, x, target, *, key, stdevs, nt_samples, abs,  # noqa: A002
                   internal_batch_size):
    _, target = _fixed_target(_logits(model, variables, x), target)
    noise = stdevs * jax.random.normal(key, (nt_samples,) + x.shape, x.dtype)

    def moments(chunk):
        noise, weight = chunk  # weight 1 / nt_samples, 0 on padding
        grads = _stacked(_gradients, model, variables, x + noise, target)
        grads = jnp.where(abs, jnp.abs(grads), grads)
        return jnp.tensordot(weight, grads, axes=1), jnp.tensordot(weight, grads**2, axes=1)

    return _sum_chunks(moments, (noise, jnp.full(nt_samples, 1 / nt_samples, x.dtype)),
                       x.shape[0], internal_batch_size)


def ig_quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """captum's ``(step sizes, alphas)`` for the path integral: Gauss-Legendre nodes and
    weights mapped to [0, 1], or Riemann sums of ``n_steps >= 2`` steps of 1/n. captum's
    trapezoid halves the end steps but keeps 1/n on ``linspace(0, 1, n)``, so its weights sum to
    1 - 1/n; kept, since matching captum is the point."""
    if method not in IG_METHODS:
        raise ValueError(f"unknown integration method {method!r}; use one of {IG_METHODS}")
    if method == "gausslegendre":
        if n_steps < 1:
            raise ValueError(f"gausslegendre needs n_steps >= 1, got {n_steps}")
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return 0.5 * weights, 0.5 * (1 + nodes)
    if n_steps < 2:
        raise ValueError(f"{method} needs n_steps >= 2, got {n_steps}")
    n = n_steps
    sizes = np.full(n, 1 / n)
    kind = method.removeprefix("riemann_")
    if kind == "trapezoid":
        sizes[[0, -1]] /= 2
    start, stop = {"left": (0, 1 - 1 / n), "right": (1 / n, 1), "trapezoid": (0, 1),
                   "middle": (1 / (2 * n), 1 - 1 / (2 * n))}[kind]
    return sizes, np.linspace(start, stop, n)


def integrated_gradients(model: nn.Module, variables, x: jax.Array, target: Target = None, *,
                         baseline: Baseline = None, n_steps: int = 50,
                         method: str = "gausslegendre",
                         internal_batch_size: int | None = None
                         ) -> tuple[jax.Array, jax.Array]:
    """captum ``IntegratedGradients`` (Sundararajan et al.): ``(x - baseline)`` times the
    path integral of the gradient from ``baseline`` (zeros by default) to x, by ``method``
    (:data:`IG_METHODS`) on ``n_steps`` points, all batched into one computation (the
    quadrature is data: one compiled program serves every method).

    Returns ``(attributions, delta)``, ``delta`` being captum's ``compute_convergence_delta``
    per example: sum(attributions) - (F(x) - F(baseline)), zero for an exact integral
    (completeness), so its size says whether ``n_steps`` is enough."""
    step_sizes, alphas = ig_quadrature(method, n_steps)
    return _integrate(model, variables, x, target, baseline=baseline, step_sizes=step_sizes,
                      alphas=alphas, internal_batch_size=internal_batch_size)


@_compiled("internal_batch_size")
def _integrate(model, variables, x, target, *, baseline, step_sizes, alphas,
               internal_batch_size):
    baseline = _baseline(x, baseline)
    logits = _logits(model, variables, jnp.concatenate([x, baseline]))  # F(x), F(baseline)
    scores, target = _fixed_target(logits[:x.shape[0]], target)

    def integral(chunk):
        alphas, step_sizes = chunk  # step size 0 on padding
        path = baseline + alphas.reshape((-1,) + (1,) * x.ndim) * (x - baseline)
        grads = _stacked(_gradients, model, variables, path, target)
        return jnp.tensordot(step_sizes, grads, axes=1)

    chunks = (jnp.asarray(alphas, x.dtype), jnp.asarray(step_sizes, x.dtype))
    attributions = _sum_chunks(integral, chunks, x.shape[0], internal_batch_size) * (x - baseline)
    delta = (attributions.reshape(x.shape[0], -1).sum(axis=1)
             - (scores - class_scores(logits[x.shape[0]:], target)))
    return attributions, delta


@jax.custom_vjp
def guided_relu(x: jax.Array) -> jax.Array:
    """ReLU whose gradient passes only positive gradients through positive inputs."""
    return nn.relu(x)


guided_relu.defvjp(lambda x: (nn.relu(x), x),
                   lambda x, g: (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),))


@_compiled()
def guided_backprop(model: nn.Module, variables, x: jax.Array,
                    target: Target = None) -> jax.Array:
    """captum ``GuidedBackprop`` (Springenberg et al.): the input gradient with every ReLU
    passing back only positive gradients at positive inputs, which keeps the input patterns
    that raise the score and drops those that lower it.

    It rebuilds the model with ``act=guided_relu``, so the model needs an ``act`` field that is
    ReLU (every zoo CNN); ReLUs a module calls directly (the SE gate's) keep their plain
    gradient, as captum overrides ``nn.ReLU`` modules but not ``F.relu`` calls."""
    act = getattr(model, "act", None)
    if act is None or resolve_act(act) is not nn.relu:
        raise ValueError(f"guided_backprop replaces the ReLU in a model's `act` field; "
                         f"{type(model).__name__} has act={act!r}")
    return _gradients(model.clone(act=guided_relu), variables, x, target)


def _per_axis(value, ndim: int, name: str) -> tuple[int, ...]:
    value = (int(value),) * ndim if np.ndim(value) == 0 else tuple(int(v) for v in value)
    if len(value) != ndim or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or {ndim} positive ints (one per "
                         f"non-batch axis, HWC for images), got {value}")
    return value


@_compiled("sliding_window_shapes", "strides", "internal_batch_size")
def occlusion(model: nn.Module, variables, x: jax.Array, target: Target = None, *,
              sliding_window_shapes: int | tuple[int, ...], strides: int | tuple[int, ...] = 1,
              baselines: Baseline = None, internal_batch_size: int | None = None) -> jax.Array:
    """captum ``Occlusion`` (Zeiler & Fergus): slide a window of ``baselines`` (zeros by
    default) over the non-batch axes (HWC for images) in ``strides`` steps; each value's
    attribution is the mean drop F(x) - F(occluded) of the target score over the windows
    covering it. As in captum a stride may not exceed its window, and the last window on an
    axis is cut at the edge (``ceil((size - window) / stride) + 1`` positions), so every value
    is covered."""
    shape = x.shape[1:]
    window = _per_axis(sliding_window_shapes, len(shape), "sliding_window_shapes")
    strides = _per_axis(strides, len(shape), "strides")
    if any(w > d or (s > w and w < d) for w, s, d in zip(window, strides, shape)):
        raise ValueError(f"windows must fit in the input {shape} and strides must not exceed "
                         f"them; got windows {window}, strides {strides}")
    starts = [np.arange(-(-(d - w) // s) + 1) * s for w, s, d in zip(window, strides, shape)]
    masks = [(np.arange(d) >= p[:, None]) & (np.arange(d) < p[:, None] + w)
             for p, w, d in zip(starts, window, shape)]  # per axis: [positions, size]
    grid = np.indices([len(p) for p in starts]).reshape(len(shape), -1)  # every window
    baselines = _baseline(x, baselines, "baselines")
    scores, target = _fixed_target(_logits(model, variables, x), target)

    def total_drop(rows):  # per axis [k, size]: k windows, all-zero rows on padding
        mask = functools.reduce(lambda m, r: m[..., None] * jnp.expand_dims(
            r, tuple(range(1, m.ndim))), rows)[:, None]  # [k, 1, *shape]
        drops = scores - _stacked(_scores, model, variables,
                                  x * (1 - mask) + baselines * mask, target)  # [k, N]
        return jnp.tensordot(drops, mask[:, 0], axes=(0, 0))

    rows = [jnp.asarray(m[g], x.dtype) for m, g in zip(masks, grid)]
    counts = functools.reduce(np.multiply.outer, [m.sum(axis=0) for m in masks])
    return _sum_chunks(total_drop, rows, x.shape[0], internal_batch_size) / counts
