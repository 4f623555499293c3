"""The REST service: FastAPI routes over a :class:`~jaxvision.serve.batcher.Batcher`.

* ``POST /v1/predict``: PNG/JPEG bytes or JSON pixels (:mod:`~jaxvision.serve.decode`), any
  size (resized by the model's ``InputSpec`` rule) -> ``{"predictions": [...]}``, one per image.
* ``GET /healthz``: the process answers. ``GET /readyz``: 200 once every batch bucket is
  compiled, 503 before. ``GET /metrics``: Prometheus text.

Refusals: 401 (API key set and missing or wrong), 413 (body over ``max_body_bytes``), 415,
400 (undecodable or over ``max_pixels``), 422 (JSON of the wrong shape or values), 503 with
``Retry-After`` (queue full or shutting down), 504 (no answer within ``timeout_s``).
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations (``Request``,
# imported inside ``create_app`` because FastAPI is optional) when they are defined.
import asyncio
import contextlib
import dataclasses
import hmac
import time
from typing import Any

import jax
import numpy as np

from jaxvision.serve.batcher import Batcher, QueueFull
from jaxvision.serve.decode import HTTPError, decode
from jaxvision.serve.metrics import Metrics


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256  # images waiting; beyond it requests get 503
    timeout_s: float = 30.0
    max_body_bytes: int = 10 * 2**20
    max_pixels: int = 4096 * 4096
    api_key: str | None = None

    def __post_init__(self):
        for name in ("max_batch", "max_queue", "max_body_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServeConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError("ServeConfig.max_wait_ms must be >= 0 and timeout_s > 0")


def _jsonable(prediction: Any, class_names) -> Any:
    """One image's prediction as JSON: probabilities with the top class, or the task's dict."""
    if isinstance(prediction, dict):
        return {k: np.asarray(v).tolist() for k, v in prediction.items()}
    probs = np.asarray(prediction, np.float64)
    if probs.ndim == 1:
        top = int(probs.argmax())
        name = class_names[top] if class_names and top < len(class_names) else str(top)
        return {"class": top, "class_name": name, "score": float(probs[top]),
                "probabilities": probs.tolist()}
    return probs.tolist()


def create_app(serving, config: ServeConfig = ServeConfig()):
    """A FastAPI app serving a :class:`jaxvision.export.ServingModel`; the batcher compiles
    its buckets when the app starts (lifespan) and drains when it stops."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    from jaxvision.inference import resize_images

    metrics = Metrics(())
    batcher = Batcher(serving.apply, serving.variables, serving.input_shape,
                      max_batch=config.max_batch, max_wait_s=config.max_wait_ms / 1000,
                      max_queue=config.max_queue, observe=metrics.batch)
    metrics.batch_buckets = batcher.buckets
    metrics.queue_depth = lambda: batcher.queue_depth

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await asyncio.get_running_loop().run_in_executor(None, batcher.start)
        yield
        await asyncio.get_running_loop().run_in_executor(None, batcher.stop)

    app = FastAPI(title="jaxvision", lifespan=lifespan)
    app.state.batcher, app.state.metrics, app.state.serving = batcher, metrics, serving

    def refuse(error: HTTPError):
        return JSONResponse({"error": error.message}, status_code=error.status,
                            headers=error.headers)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise HTTPError(413, f"body of {int(declared):,} bytes exceeds "
                                 f"{config.max_body_bytes:,}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                raise HTTPError(413, f"body exceeds {config.max_body_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def predict_images(images: list[np.ndarray]) -> list:
        batch = resize_images(serving.spec, images)
        results = []
        for start in range(0, len(batch), config.max_batch):
            try:
                out = await asyncio.wait_for(batcher.submit(batch[start:start + config.max_batch]),
                                             config.timeout_s)
            except QueueFull as e:
                raise HTTPError(503, str(e), {"Retry-After": "1"}) from None
            except asyncio.TimeoutError:
                raise HTTPError(504, f"no answer within {config.timeout_s} s") from None
            results.append(out)
        merged = jax.tree.map(lambda *xs: np.concatenate(xs), *results)
        if isinstance(merged, dict):
            return [{k: v[i] for k, v in merged.items()} for i in range(len(batch))]
        return list(merged)

    @app.post("/v1/predict")
    async def predict(request: Request):
        start = time.perf_counter()
        try:
            if config.api_key is not None and not hmac.compare_digest(
                    request.headers.get("x-api-key", ""), config.api_key):
                raise HTTPError(401, "missing or wrong X-API-Key")
            body = await read_body(request)
            images = decode(request.headers.get("content-type", ""), body,
                            serving.spec.channels, config.max_pixels)
            predictions = await predict_images(images)
            response = JSONResponse({"predictions": [_jsonable(p, serving.class_names)
                                                     for p in predictions]})
        except HTTPError as e:
            response = refuse(e)
        metrics.request(response.status_code, time.perf_counter() - start)
        return response

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if batcher.ready:
            return {"status": "ready", "buckets": list(batcher.buckets)}
        return JSONResponse({"status": "compiling"}, status_code=503)

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


__all__ = ["ServeConfig", "create_app"]
