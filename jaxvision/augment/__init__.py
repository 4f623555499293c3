"""jaxvision.augment."""
