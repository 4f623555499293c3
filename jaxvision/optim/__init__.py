"""Optimizers, schedules, SAM, parameter partitions, weight EMA and snapshot ensembles."""

from jaxvision.optim import schedules
from jaxvision.optim.factory import build_optimizer, build_schedule, decoupled_weight_decay
from jaxvision.optim.partition import decay_mask, discriminative_lr, freeze, label_params
from jaxvision.optim.sam import optax_sam, sam_value_and_grad

__all__ = ["build_optimizer", "build_schedule", "decoupled_weight_decay", "schedules",
           "decay_mask", "discriminative_lr", "freeze", "label_params", "optax_sam",
           "sam_value_and_grad"]
