"""Autoencoder and VAE losses: masked reconstruction, sparsity penalties,
SSIM and perceptual losses, the closed-form Gaussian KL, the (beta-)ELBO with KL annealing
and the importance-weighted bound. Reconstruction MSE / L1 / BCE are
:func:`jaxvision.losses.mse`, :func:`~jaxvision.losses.mae` and
:func:`~jaxvision.losses.binary_cross_entropy`.

Sums and means: per-example quantities (KL, log-likelihoods, ELBO) are sums over the example's
elements, returned per example; the caller averages over the batch.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxvision.metrics.image_quality import ssim

LOG_2PI = math.log(2 * math.pi)


def check_mask(mask, targets) -> jax.Array:
    """``mask`` as float, the shape of ``targets`` or of it with one channel (NHW1)."""
    mask, shape = jnp.asarray(mask), jnp.shape(targets)
    if mask.shape != shape and mask.shape != (*shape[:-1], 1):
        raise ValueError(f"mask shape {mask.shape} must equal the targets' {shape} or "
                         f"{(*shape[:-1], 1)} (one channel)")
    return jnp.broadcast_to(mask.astype(jnp.float32), shape)


def masked_mse(predictions, targets, mask) -> jax.Array:
    """``sum M (x - x_hat)^2 / sum M`` over the pixels ``M = 1`` marks (the inpainting loss:
    only the pixels the network had to fill in are scored); 0 when the mask is empty."""
    m = check_mask(mask, targets)
    diff = jnp.asarray(predictions, jnp.float32) - jnp.asarray(targets, jnp.float32)
    return jnp.sum(m * diff ** 2) / jnp.maximum(jnp.sum(m), 1.0)


def l1_activity(latent, *, weight: float = 1.0) -> jax.Array:
    """Sparse-activation penalty ``weight * mean_n sum_j |z_nj|`` (a sparse autoencoder: few
    code units active per input)."""
    z = jnp.asarray(latent, jnp.float32)
    return weight * jnp.mean(jnp.sum(jnp.abs(z.reshape(z.shape[0], -1)), axis=-1))


def kl_sparsity(activations, *, target: float = 0.05, eps: float = 1e-6) -> jax.Array:
    """``sum_j KL(rho || rho_hat_j)`` of Bernoulli means, ``rho_hat_j`` the batch mean of unit
    ``j``'s activation in (0, 1) (Ng's sparse autoencoder)."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target sparsity must lie in (0, 1), got {target}")
    a = jnp.asarray(activations, jnp.float32)
    rho_hat = jnp.clip(jnp.mean(a.reshape(a.shape[0], -1), axis=0), eps, 1 - eps)
    rho = target
    return jnp.sum(rho * jnp.log(rho / rho_hat) + (1 - rho) * jnp.log((1 - rho) / (1 - rho_hat)))


def ssim_loss(predictions, targets, *, data_range: float = 1.0, sigma: float = 1.5) -> jax.Array:
    """``1 - mean SSIM``."""
    return 1.0 - jnp.mean(ssim(predictions, targets, data_range=data_range, sigma=sigma))


def perceptual_loss(predictions, targets, *,
                    feature_fn: Callable[[jax.Array], Mapping[str, jax.Array]],
                    layer_weights: Mapping[str, float] | None = None) -> jax.Array:
    """``sum_l w_l mean (phi_l(x_hat) - phi_l(x))^2`` over the feature maps ``phi_l`` that
    ``feature_fn`` returns (e.g. ``lambda x: models.features(net, variables, x,
    names=("c1", "c2"))`` of a trained jaxvision classifier; the targets' features carry no
    gradient)."""
    fake, real = feature_fn(predictions), jax.lax.stop_gradient(feature_fn(targets))
    names = sorted(fake) if layer_weights is None else list(layer_weights)
    if not names:
        raise ValueError("feature_fn returned no feature maps")
    weights = layer_weights or {}
    return sum(weights.get(n, 1.0) * jnp.mean((fake[n].astype(jnp.float32) - real[n]) ** 2)
               for n in names)


def gaussian_kl(mean, log_var) -> jax.Array:
    """``KL(N(mu, diag sigma^2) || N(0, I)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)`` per
    example (summed over the latent axes after the first)."""
    mean, log_var = jnp.asarray(mean, jnp.float32), jnp.asarray(log_var, jnp.float32)
    terms = 1.0 + log_var - mean ** 2 - jnp.exp(log_var)
    return -0.5 * jnp.sum(terms.reshape(terms.shape[0], -1), axis=-1)


def bernoulli_log_likelihood(logits, targets) -> jax.Array:
    """``log p(x|z)`` per example for Bernoulli pixels given logits (targets in [0, 1])."""
    logits, x = jnp.asarray(logits, jnp.float32), jnp.asarray(targets, jnp.float32)
    ll = x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits)
    return jnp.sum(ll.reshape(ll.shape[0], -1), axis=-1)


def gaussian_log_likelihood(mean, targets, *, sigma: float = 1.0) -> jax.Array:
    """``log N(x; mean, sigma^2 I)`` per example."""
    d = jnp.asarray(targets, jnp.float32) - jnp.asarray(mean, jnp.float32)
    d = d.reshape(d.shape[0], -1)
    return -0.5 * jnp.sum(d ** 2, -1) / sigma ** 2 - d.shape[-1] * (0.5 * LOG_2PI + math.log(sigma))


def check_beta(beta) -> None:
    if isinstance(beta, (int, float)) and (beta < 0 or not math.isfinite(beta)):
        raise ValueError(f"beta (the KL weight) must be finite and >= 0, got {beta}")


def kl_weight(step, *, beta: float = 1.0, warmup_steps: int = 0, cycle_steps: int = 0):
    """KL annealing (a small KL weight early on keeps the code from collapsing onto the prior
    before the decoder learns to use it): ``beta`` times a ramp from 0 to 1 over ``warmup_steps``
    (0: no ramp); with ``cycle_steps`` the ramp restarts every cycle (cyclical annealing,
    Fu et al. 2019)."""
    check_beta(beta)
    if warmup_steps < 0 or cycle_steps < 0:
        raise ValueError(f"warmup_steps={warmup_steps} and cycle_steps={cycle_steps} must be >= 0")
    if not warmup_steps:
        return jnp.asarray(beta, jnp.float32)
    step = jnp.asarray(step, jnp.float32)
    if cycle_steps:
        step = jnp.mod(step, cycle_steps)
    return beta * jnp.clip(step / warmup_steps, 0.0, 1.0)


def elbo(outputs: Mapping[str, jax.Array], targets, *, beta=1.0, decoder: str = "bernoulli",
         sigma: float = 1.0) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-example ``(elbo, log_likelihood, kl)`` with ``elbo = log p(x|z) - beta KL`` from a
    VAE's outputs (``logits``, ``mean``, ``log_var``); the training loss is ``-mean(elbo)``.
    ``decoder='gaussian'`` reads the decoder mean from ``reconstruction``."""
    check_beta(beta)
    if decoder == "bernoulli":
        log_likelihood = bernoulli_log_likelihood(outputs["logits"], targets)
    elif decoder == "gaussian":
        log_likelihood = gaussian_log_likelihood(outputs["reconstruction"], targets, sigma=sigma)
    else:
        raise ValueError(f"decoder must be 'bernoulli' or 'gaussian', got {decoder!r}")
    kl = gaussian_kl(outputs["mean"], outputs["log_var"])
    return log_likelihood - beta * kl, log_likelihood, kl


def _normal_log_density(z, mean, log_var):
    return -0.5 * jnp.sum(LOG_2PI + log_var + (z - mean) ** 2 / jnp.exp(log_var), axis=-1)


def importance_weighted_bound(decode_logits: Callable[[jax.Array], jax.Array], mean, log_var,
                              targets, key, *, num_samples: int, decoder: str = "bernoulli",
                              sigma: float = 1.0) -> jax.Array:
    """Per-example ``log (1/k) sum_i p(x, z_i) / q(z_i|x)``, ``z_i ~ q(z|x)`` (Burda et al.,
    2016): ``k = 1`` is a one-sample ELBO; the bound rises towards ``log p(x)`` with ``k``.
    ``decode_logits`` maps latents ``(B, d)`` to the decoder's logits (or mean, Gaussian)."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    eps = jax.random.normal(key, (num_samples, *mean.shape), mean.dtype)
    z = mean + jnp.exp(0.5 * log_var) * eps  # (k, B, d)
    flat = z.reshape(-1, z.shape[-1])
    decoded = decode_logits(flat)
    repeated = jnp.broadcast_to(targets, (num_samples, *targets.shape)).reshape(decoded.shape)
    if decoder == "bernoulli":
        log_px = bernoulli_log_likelihood(decoded, repeated)
    else:
        log_px = gaussian_log_likelihood(decoded, repeated, sigma=sigma)
    log_px = log_px.reshape(num_samples, -1)
    log_pz = _normal_log_density(z, 0.0, jnp.zeros_like(z))
    log_qz = _normal_log_density(z, mean, log_var)
    log_w = log_px + log_pz - log_qz
    return jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples)


def vq_loss(outputs: Mapping[str, jax.Array], *, commitment_weight: float = 0.25) -> jax.Array:
    """The VQ-VAE's codebook loss plus ``commitment_weight`` times its commitment loss."""
    if commitment_weight < 0:
        raise ValueError(f"commitment_weight must be >= 0, got {commitment_weight}")
    return outputs["codebook_loss"] + commitment_weight * outputs["commitment_loss"]
