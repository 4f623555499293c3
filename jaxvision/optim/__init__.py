"""Optimizers, schedules and their config factory."""

from jaxvision.optim.factory import build_optimizer, build_schedule

__all__ = ["build_optimizer", "build_schedule"]
