"""jaxvision.ops."""
