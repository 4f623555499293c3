"""Sharpness-Aware Minimization (Foret et al., ICLR 2021) as a gradient function.

SAM replaces the gradient ``g = dL/dw`` by the gradient at the worst nearby point:

    e = rho * g / (||g||_2 + eps)          (ascent to the edge of an L2 ball of radius rho)
    g_sam = dL/dw evaluated at w + e        (then the base optimizer steps from w, not w + e)

``sam_value_and_grad`` returns ``g_sam`` with the loss and auxiliary outputs of the *clean*
pass: BatchNorm statistics (which the caller's ``loss_fn`` returns in ``aux``) are updated once
per step, from the clean parameters, as in the original JAX code; the perturbed pass's ``aux``
is discarded.

m-sharpness: ``group_size=m`` splits the batch into ``B / m`` groups, each with its own
perturbation computed from its own gradient, and averages the groups' SAM gradients (the
paper's per-accelerator perturbations, Section 4.1, independent of the device count).
``group_size=None`` uses one perturbation for the batch passed in. The gradients returned are
local: under ``pmap``/``shard_map`` the engine calls this with the per-device batch and
``lax.pmean``s the result, which is the paper's setup (m = per-device batch).

Cost: two forward/backward passes (``group_size=None``), or one forward pass plus two grouped
forward/backward passes (``group_size=m``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[[Any, Any], tuple[jax.Array, Any]]


def _tree_norm(tree: Any) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def perturbation(grads: Any, *, rho: float, eps: float = 1e-12) -> tuple[Any, jax.Array]:
    """``(rho * g / (||g|| + eps), ||g||)``: zero (not NaN) when the gradient is zero."""
    norm = _tree_norm(grads)
    scale = rho / (norm + eps)
    return jax.tree.map(lambda g: (g * scale).astype(g.dtype), grads), norm


def _split_groups(batch: Any, group_size: int) -> Any:
    sizes = {x.shape[0] for x in jax.tree.leaves(batch)}
    if len(sizes) != 1:
        raise ValueError(f"all batch leaves must share the leading (batch) dimension, got {sorted(sizes)}")
    (size,) = sizes
    if group_size <= 0 or size % group_size:
        raise ValueError(f"SAM group_size={group_size} must be > 0 and divide the batch size {size}; "
                         "pick a divisor of the (per-device) batch size or group_size=None")
    return jax.tree.map(lambda x: x.reshape((size // group_size, group_size) + x.shape[1:]), batch)


def sam_value_and_grad(loss_fn: LossFn, params: Any, batch: Any, *, rho: float,
                       group_size: int | None = None, eps: float = 1e-12,
                       normalize_axis_name: str | None = None):
    """SAM gradient of ``loss_fn(params, batch) -> (loss, aux)``.

    Returns ``((clean_loss, clean_aux), sam_grads, sam_stats)`` where ``sam_stats`` holds the
    scalars ``grad_norm`` (clean gradient), ``perturbation_norm`` (``||e||``, about ``rho``),
    ``perturbed_loss`` and ``loss_gap`` (perturbed minus clean: the measured sharpness).

    ``normalize_axis_name``: inside ``pmap``/``shard_map``, ``lax.pmean`` the clean gradient over
    this axis before perturbing (a synchronised perturbation, m = global batch; the paper's
    runs do *not* sync, which generalises better). ``rho=0`` gives the plain gradient (at the
    cost of a second pass).
    """
    if rho < 0:
        raise ValueError(f"SAM rho must be >= 0, got {rho}")
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    if group_size is None:
        (loss, aux), grads = grad_fn(params, batch)
        if normalize_axis_name is not None:
            grads = jax.lax.pmean(grads, normalize_axis_name)
        e, grad_norm = perturbation(grads, rho=rho, eps=eps)
        perturbed = jax.tree.map(lambda p, d: p + d.astype(p.dtype), params, e)
        (perturbed_loss, _), sam_grads = grad_fn(perturbed, batch)
        perturbation_norm = _tree_norm(e)
    else:
        groups = _split_groups(batch, group_size)
        loss, aux = loss_fn(params, batch)  # clean pass: loss, logits and BatchNorm statistics

        def group_grads(group):
            (_, _), g = grad_fn(params, group)
            return g

        clean_group_grads = jax.vmap(group_grads)(groups)
        if normalize_axis_name is not None:
            clean_group_grads = jax.lax.pmean(clean_group_grads, normalize_axis_name)

        def perturbed_grads(g, group):
            e, _ = perturbation(g, rho=rho, eps=eps)
            perturbed = jax.tree.map(lambda p, d: p + d.astype(p.dtype), params, e)
            (group_loss, _), g_adv = grad_fn(perturbed, group)
            return group_loss, g_adv, _tree_norm(e)

        group_losses, group_sam_grads, e_norms = jax.vmap(perturbed_grads)(clean_group_grads, groups)
        sam_grads = jax.tree.map(lambda g: g.mean(0), group_sam_grads)
        grad_norm = _tree_norm(jax.tree.map(lambda g: g.mean(0), clean_group_grads))
        perturbed_loss = group_losses.mean()
        perturbation_norm = e_norms.mean()
    loss = jnp.asarray(loss, jnp.float32)
    perturbed_loss = jnp.asarray(perturbed_loss, jnp.float32)
    stats = {"grad_norm": grad_norm, "perturbation_norm": perturbation_norm,
             "perturbed_loss": perturbed_loss, "loss_gap": perturbed_loss - loss}
    return (loss, aux), sam_grads, stats


def optax_sam(base: optax.GradientTransformation, *, rho: float = 0.05, eps: float = 1e-12,
              batch_axis_name: str | None = None) -> optax.GradientTransformationExtraArgs:
    """``optax.contrib.sam`` in opaque mode: the drop-in alternative to ``sam_value_and_grad``.

    Call ``tx.update(clean_grads, state, params, grad_fn=lambda p, i: grad_at(p))``; it takes
    one ascent step ``+rho * g/(||g|| + eps)`` and returns ``base``'s update of the gradient at
    the perturbed point. With BatchNorm, ``grad_at`` must discard the statistics it computes.
    ``batch_axis_name`` pmeans the perturbed gradient inside ``pmap`` (pass local clean grads).
    """
    from jaxvision.optim.factory import normalize_global

    adv = optax.chain(normalize_global(eps=eps), optax.sgd(rho))
    return optax.contrib.sam(base, adv, sync_period=2, opaque_mode=True, batch_axis_name=batch_axis_name)
