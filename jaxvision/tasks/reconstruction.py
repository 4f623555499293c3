"""Reconstruction tasks: plain, denoising and inpainting autoencoders, VAEs and
VQ-VAEs, trained by the one engine on ``batch["image"]`` (in [0, 1]) as their own target.

Denoising and inpainting wrap the model in :class:`jaxvision.autoencoders.Corrupted`, which
corrupts the input inside the jitted step from the ``noise`` stream these tasks declare; the
loss is always against the clean image (so the network learns to undo the corruption rather
than copy its input). With ``masked=True`` the loss covers only the hidden pixels,
``outputs["mask"]`` (the ones the network had to fill in). The VAE task draws its
reparameterisation noise from the ``sample`` stream and anneals the KL weight with the
model's own step counter.

Eval metrics: ``loss`` and ``mse`` per batch; ``psnr`` and ``ssim`` (mean per image) from
:class:`ImageQualityEvaluator` over the whole set, plus ``input_psnr`` / ``input_ssim`` of the
corrupted input when there is one (what the denoiser improves on).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxvision.losses import autoencoder as ael
from jaxvision.metrics import image_quality as iq
from jaxvision.tasks.base import Batch, Task, valid_weights

LOSSES = ("mse", "l1", "bce", "ssim")


def _per_example(values):
    return values.reshape(values.shape[0], -1).mean(axis=-1)


def reconstruction_error(kind: str, predictions, targets, *, ssim_sigma: float = 1.5):
    """Per-example reconstruction loss of kind :data:`LOSSES` (means over pixels)."""
    predictions, targets = predictions.astype(jnp.float32), targets.astype(jnp.float32)
    if kind == "mse":
        return _per_example((predictions - targets) ** 2)
    if kind == "l1":
        return _per_example(jnp.abs(predictions - targets))
    if kind == "bce":
        p = jnp.clip(predictions, 1e-6, 1 - 1e-6)
        return _per_example(-(targets * jnp.log(p) + (1 - targets) * jnp.log(1 - p)))
    if kind == "ssim":
        return 1.0 - iq.ssim(predictions, targets, sigma=ssim_sigma)
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def default_ssim_sigma(height: int, width: int) -> float:
    """1.5 (the usual 11x11 window) where it fits, else 0.5 (a 5x5 window, e.g. 8x8 digits)."""
    return 1.5 if min(height, width) >= 11 else 0.5


class ImageQualityEvaluator:
    """Mean per-image PSNR and SSIM of ``predictions["reconstruction"]`` against the clean
    ``batch["image"]`` over the set (and of ``predictions["corrupted"]``, if any)."""

    def __init__(self, *, ssim_sigma: float | None = None, data_range: float = 1.0):
        self.ssim_sigma, self.data_range = ssim_sigma, data_range
        self.sums: dict[str, float] = {}
        self.count = 0

    def update(self, predictions, batch) -> None:
        images = np.asarray(batch["image"])
        clean = images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)
        keep = (np.asarray(batch["valid"], bool) if "valid" in batch
                else np.ones(len(clean), bool))
        sigma = self.ssim_sigma or default_ssim_sigma(*clean.shape[1:3])
        pairs = {"": predictions["reconstruction"]}
        if "corrupted" in predictions:
            pairs["input_"] = predictions["corrupted"]
        for prefix, images_out in pairs.items():
            out = np.asarray(images_out, np.float32)[keep]
            values = {"psnr": iq.psnr(out, clean[keep], data_range=self.data_range),
                      "ssim": iq.ssim(out, clean[keep], data_range=self.data_range, sigma=sigma)}
            for name, value in values.items():
                # Identical images have infinite PSNR; cap at 100 dB so the mean stays finite.
                total = float(np.sum(np.minimum(np.asarray(value, np.float64), 100.0)))
                self.sums[prefix + name] = self.sums.get(prefix + name, 0.0) + total
        self.count += int(keep.sum())

    def result(self) -> dict[str, float]:
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}


@dataclasses.dataclass(frozen=True)
class ReconstructionTask(Task):
    """Autoencoder training: ``loss`` of ``outputs["reconstruction"]`` against the clean image,
    over the masked pixels only with ``masked``, plus ``sparsity_weight`` times the L1 norm of
    ``outputs["latent"]`` (a sparse autoencoder)."""

    num_classes: int | None = None  # unused (the engine passes it)
    loss_type: str = "mse"
    masked: bool = False
    sparsity_weight: float = 0.0
    ssim_sigma: float | None = None
    metric_names = ("loss", "mse", "psnr", "ssim")
    rng_streams = ("dropout", "noise")

    def __post_init__(self):
        if self.loss_type not in LOSSES:
            raise ValueError(f"loss_type must be one of {LOSSES}, got {self.loss_type!r}")
        if self.sparsity_weight < 0:
            raise ValueError(f"sparsity_weight must be >= 0, got {self.sparsity_weight}")

    def _sigma(self, images):
        return self.ssim_sigma or default_ssim_sigma(*images.shape[1:3])

    def per_example_loss(self, outputs, batch: Batch):
        target, recon = batch["image"], outputs["reconstruction"]
        if self.masked:
            mask = ael.check_mask(outputs["mask"], target)
            err = (recon.astype(jnp.float32) - target) ** 2 * mask
            per = err.reshape(err.shape[0], -1).sum(-1) / jnp.maximum(
                mask.reshape(mask.shape[0], -1).sum(-1), 1.0)
        else:
            per = reconstruction_error(self.loss_type, recon, target,
                                       ssim_sigma=self._sigma(target))
        if self.sparsity_weight:
            z = outputs["latent"].astype(jnp.float32)
            per = per + self.sparsity_weight * jnp.abs(z.reshape(z.shape[0], -1)).sum(-1)
        return per

    def loss(self, outputs, batch: Batch, *, train: bool):
        mse = _per_example((outputs["reconstruction"].astype(jnp.float32) - batch["image"]) ** 2)
        return jnp.mean(self.per_example_loss(outputs, batch)), {"mse": jnp.mean(mse)}

    def batch_metrics(self, outputs, batch: Batch):
        weights = valid_weights(batch)
        mse = _per_example((outputs["reconstruction"].astype(jnp.float32) - batch["image"]) ** 2)
        return {"loss": ((self.per_example_loss(outputs, batch) * weights).sum(), weights.sum()),
                "mse": ((mse * weights).sum(), weights.sum())}

    def predict(self, outputs):
        keep = ("reconstruction", "corrupted", "mask")
        return {k: outputs[k] for k in keep if k in outputs}

    def evaluators(self):
        return [ImageQualityEvaluator(ssim_sigma=self.ssim_sigma)]


@dataclasses.dataclass(frozen=True)
class VAETask(ReconstructionTask):
    """The negative (beta-)ELBO per example; ``beta`` ramps up over ``warmup_steps`` (cyclically
    with ``cycle_steps``) from the model's training-step counter. Eval ``loss`` is the
    negative ELBO at ``beta`` and ``neg_elbo`` at beta 1; ``kl`` is nats per example. The
    eval step decodes the posterior mean (the model's inference mode), so the eval
    reconstruction term is at ``z = mu``, not an expectation over ``q``; for the bound itself
    use :func:`jaxvision.losses.autoencoder.importance_weighted_bound`. ``conditional``: the
    model (a ``conditional_vae``) also gets ``batch["label"]`` as its ``labels``."""

    beta: float = 1.0
    warmup_steps: int = 0
    cycle_steps: int = 0
    decoder: str = "bernoulli"
    sigma: float = 1.0
    conditional: bool = False
    metric_names = ("loss", "mse", "psnr", "ssim", "neg_elbo", "kl")
    rng_streams = ("dropout", "sample")

    def __post_init__(self):
        super().__post_init__()
        ael.check_beta(self.beta)
        ael.kl_weight(0, beta=self.beta, warmup_steps=self.warmup_steps,
                      cycle_steps=self.cycle_steps)  # validates

    def model_inputs(self, batch: Batch):
        return {"labels": batch["label"]} if self.conditional else {}

    def _terms(self, outputs, batch, beta):
        return ael.elbo(outputs, batch["image"], beta=beta, decoder=self.decoder, sigma=self.sigma)

    def loss(self, outputs, batch: Batch, *, train: bool):
        beta = (ael.kl_weight(outputs["train_step"], beta=self.beta,
                              warmup_steps=self.warmup_steps, cycle_steps=self.cycle_steps)
                if train and "train_step" in outputs else self.beta)
        value, log_likelihood, kl = self._terms(outputs, batch, beta)
        mse = _per_example((outputs["reconstruction"] - batch["image"]) ** 2)
        return -jnp.mean(value), {"kl": jnp.mean(kl), "kl_weight": jnp.asarray(beta, jnp.float32),
                                  "recon": -jnp.mean(log_likelihood), "mse": jnp.mean(mse)}

    def batch_metrics(self, outputs, batch: Batch):
        weights = valid_weights(batch)
        value, log_likelihood, kl = self._terms(outputs, batch, self.beta)
        mse = _per_example((outputs["reconstruction"] - batch["image"]) ** 2)
        total = lambda v: ((v * weights).sum(), weights.sum())  # noqa: E731
        return {"loss": total(-value), "neg_elbo": total(kl - log_likelihood), "kl": total(kl),
                "mse": total(mse)}


@dataclasses.dataclass(frozen=True)
class VQVAETask(ReconstructionTask):
    """Reconstruction MSE plus the codebook loss and ``commitment_weight`` times the
    commitment loss (van den Oord et al., 2017)."""

    commitment_weight: float = 0.25
    metric_names = ("loss", "mse", "psnr", "ssim")

    def per_example_loss(self, outputs, batch: Batch):
        return super().per_example_loss(outputs, batch) + ael.vq_loss(
            outputs, commitment_weight=self.commitment_weight)
