"""Optimizers, schedules, SAM, parameter partitions, weight EMA and snapshot ensembles."""

from jaxvision.optim import schedules, snapshot
from jaxvision.optim.ema import EmaState, ema_init, ema_update
from jaxvision.optim.factory import (OPTIMIZERS, SCHEDULES, build_momentum_schedule,
                                     build_optimizer, build_schedule, decoupled_weight_decay,
                                     normalize_global)
from jaxvision.optim.partition import (decay_mask, discriminative_lr, freeze, label_params, path_names,
                                       scale_by_path)
from jaxvision.optim.sam import optax_sam, perturbation, sam_value_and_grad

__all__ = ["OPTIMIZERS", "SCHEDULES", "build_momentum_schedule", "build_optimizer", "build_schedule", "decoupled_weight_decay",
           "normalize_global", "schedules", "snapshot", "EmaState", "ema_init", "ema_update", "decay_mask",
           "discriminative_lr", "freeze", "label_params", "path_names", "scale_by_path", "optax_sam",
           "perturbation", "sam_value_and_grad"]
