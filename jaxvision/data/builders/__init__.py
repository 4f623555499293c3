"""jaxvision.data.builders."""
