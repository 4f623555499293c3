"""Autoencoder applications: corruptions for denoising and inpainting, anomaly
scores and thresholds, compression (rate-distortion against JPEG) and latent-space tools."""

from jaxvision.autoencoders import anomaly, compression, latent
from jaxvision.autoencoders.corruption import (KINDS, Corrupted, box_mask, corrupt,
                                               curriculum_level, gaussian_noise, masking_noise,
                                               salt_and_pepper)

__all__ = ["anomaly", "compression", "latent", "KINDS", "Corrupted", "box_mask", "corrupt", "curriculum_level", "gaussian_noise",
           "masking_noise", "salt_and_pepper"]
