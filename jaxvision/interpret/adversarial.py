"""Adversarial examples: FGSM (Goodfellow et al. 2015), PGD (Madry et al. 2018) and robust
accuracy.

Where the attack sits: in input space, on the image in [0, 1] (where an epsilon of 8/255 means
"8 grey levels"), *before* normalization. Every function takes ``forward(x01) -> outputs``
with the preprocessing inside, so the attack differentiates through it and the model sees what
it sees at evaluation::

    forward = lambda x: model.apply(variables, normalize(x), train=False)

Run the model in inference mode: BatchNorm on its running statistics (an attack pass changes
none of them) and each example's output a function of its own input alone.

Conventions, those of :mod:`jaxvision.interpret.hooks`: ``y`` is a ``Target`` (one class per
example, one int for all, or None for the model's prediction on the clean ``x``, fixed before
the first step so that the attack needs no labels). The attack ascends
``sum(loss(forward(x), y))``, by default the per-example cross-entropy
``logsumexp(logits) - class_scores(logits, y)``: one backward pass gives every example its own
gradient. A custom ``loss(outputs, y)`` may return per-example losses or their mean (each step
uses only each example's gradient direction) and may read any ``y`` (the training engine passes
the batch and its task's loss). Everything is a pure function: jit- and vmap-safe, and epsilon
may be traced (:func:`robust_accuracy` compiles once for all epsilons).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxvision.interpret.hooks import Target, class_scores

NORMS = ("linf", "l2")
Forward = Callable[[jax.Array], Any]
Loss = Callable[[Any, Any], jax.Array]


def cross_entropy(logits: jax.Array, y: Target) -> jax.Array:
    """``[N]`` cross-entropies of the target classes (``y`` as in ``class_scores``)."""
    logits = logits.astype(jnp.float32)
    return jax.nn.logsumexp(logits, axis=-1) - class_scores(logits, y)


def check_attack(epsilon, norm: str = "linf", num_steps: int = 1, step_size=None) -> None:
    """ValueError for an impossible attack; each message starts with the argument's name
    (``validate_config`` prefixes ``config.adversarial.``). Traced values pass unchecked."""
    concrete = lambda v: not isinstance(v, jax.core.Tracer)  # noqa: E731
    if concrete(epsilon) and np.any(np.asarray(epsilon) < 0):
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(num_steps, numbers.Integral) or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    if step_size is not None and concrete(step_size) and not step_size > 0:
        raise ValueError(f"step_size must be > 0 (None: 2.5 * epsilon / num_steps), got "
                         f"{step_size}")


def _labels(forward: Forward, x: jax.Array, y):
    return jnp.argmax(forward(x), axis=-1) if y is None else y


def _gradient(forward: Forward, loss: Loss, x: jax.Array, y) -> jax.Array:
    return jax.grad(lambda x: jnp.sum(loss(forward(x), y)))(x)


def _clip(x: jax.Array, clip) -> jax.Array:
    return x if clip is None else jnp.clip(x, *clip)


def _l2(v: jax.Array) -> jax.Array:
    """Each example's L2 norm, ``[N, 1, ...]``, floored so that a zero vector divides to 0."""
    norms = jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(range(1, v.ndim)), keepdims=True))
    return jnp.maximum(norms, 1e-12)


def fgsm(forward: Forward, x: jax.Array, y: Target, epsilon, *, loss: Loss = cross_entropy,
         clip: tuple[float, float] | None = (0.0, 1.0)) -> jax.Array:
    """``x + epsilon * sign(d loss / d x)``, clipped to ``clip`` (None: not clipped): the
    one-step L-inf attack."""
    check_attack(epsilon)
    grad = _gradient(forward, loss, x, _labels(forward, x, y))
    return _clip(x + epsilon * jnp.sign(grad), clip)


def pgd(forward: Forward, x: jax.Array, y: Target, epsilon, *, norm: str = "linf",
        num_steps: int = 10, step_size=None, random_start: bool = True,
        key: jax.Array | None = None, loss: Loss = cross_entropy,
        clip: tuple[float, float] | None = (0.0, 1.0)) -> jax.Array:
    """Projected gradient ascent on the loss within the epsilon ball around each example.

    Each step moves ``step_size`` along the sign of the gradient (``linf``) or along each
    example's unit-L2 gradient (``l2``), projects onto the ball (per-coordinate clip, or
    rescaling the perturbation to norm <= epsilon) and clips to ``clip``; clipping a point of
    the ball towards ``x`` in [0, 1] keeps it in the ball. ``random_start`` (needs ``key``)
    starts from a uniform point of the ball. ``step_size`` None: ``2.5 * epsilon / num_steps``
    (Madry et al.'s rule: the last step can still reach the far edge). Returns the last iterate.
    """
    check_attack(epsilon, norm, num_steps, step_size)
    if random_start and key is None:
        raise ValueError("pgd with random_start=True needs a key")
    y = _labels(forward, x, y)
    step_size = 2.5 * epsilon / num_steps if step_size is None else step_size

    def project(delta):
        if norm == "linf":
            return jnp.clip(delta, -epsilon, epsilon)
        return delta * jnp.minimum(1.0, epsilon / _l2(delta))

    def ascend(_, x_adv):
        grad = _gradient(forward, loss, x_adv, y)
        direction = jnp.sign(grad) if norm == "linf" else grad / _l2(grad)
        return _clip(x + project(x_adv + step_size * direction - x), clip)

    start = x
    if random_start:
        if norm == "linf":
            delta = epsilon * jax.random.uniform(key, x.shape, minval=-1.0, maxval=1.0)
        else:  # uniform in the ball: a uniform direction, radius epsilon * U^(1/d)
            direction_key, radius_key = jax.random.split(key)
            direction = jax.random.normal(direction_key, x.shape)
            radius = jax.random.uniform(radius_key, (x.shape[0],) + (1,) * (x.ndim - 1))
            delta = epsilon * radius ** (1.0 / np.prod(x.shape[1:])) * direction / _l2(direction)
        start = _clip(x + delta, clip)
    return lax.fori_loop(0, num_steps, ascend, start)


def robust_accuracy(forward: Forward, x, y, epsilons: Sequence[float], *,
                    attack: Callable = fgsm, batch_size: int = 256) -> np.ndarray:
    """Accuracy (argmax of ``forward`` against the labels ``y``) on ``attack(forward, x, y,
    epsilon)`` for each epsilon, as a numpy array; epsilon 0 gives the clean accuracy.

    ``attack`` is :func:`fgsm`, :func:`pgd` or any function of that signature (bind options
    with ``functools.partial(pgd, num_steps=20, key=key)``). One compilation for every
    epsilon: the batches have one shape (the last is padded) and epsilon is traced."""
    for epsilon in epsilons:
        check_attack(epsilon)
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    size = min(batch_size, n)
    pad = -n % size
    x, y = np.concatenate([x, x[:pad]]), np.concatenate([y, y[:pad]])
    valid = np.arange(n + pad) < n

    @jax.jit
    def hits(x, y, valid, epsilon):
        predicted = jnp.argmax(forward(attack(forward, x, y, epsilon)), axis=-1)
        return jnp.sum((predicted == y) & valid)

    return np.array([sum(int(hits(x[i:i + size], y[i:i + size], valid[i:i + size], epsilon))
                         for i in range(0, n + pad, size)) / n for epsilon in epsilons])
