"""jaxvision: a JAX/Flax vision library.

Subpackages are imported on demand (``import jaxvision.models``) so that ``import jaxvision``
stays cheap and never initialises a JAX backend.
"""

__version__ = "0.1.0"
