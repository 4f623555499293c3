"""jaxvision.train."""
