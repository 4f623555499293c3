"""Serve a trained model over HTTP: ``python -m jaxvision.serve --workdir W [--port 8000]``.

FastAPI on uvicorn (the ``serve`` extra), dynamic batching into precompiled bucket sizes
(:mod:`~jaxvision.serve.batcher`), input limits with clear status codes
(:mod:`~jaxvision.serve.decode`), Prometheus metrics, graceful shutdown on SIGTERM (uvicorn
stops accepting, the batcher answers what it accepted). See :mod:`~jaxvision.serve.app`.
"""

from jaxvision.serve.app import ServeConfig, create_app
from jaxvision.serve.batcher import Batcher, QueueFull, bucket_sizes

__all__ = ["Batcher", "QueueFull", "ServeConfig", "bucket_sizes", "create_app"]
