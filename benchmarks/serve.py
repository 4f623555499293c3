"""The REST server under a bounded loopback load: throughput and latency by concurrency,
dynamic batching against batch-size-1 serving, and a burst past the queue limit.

Command::

    PYTHONPATH=. python benchmarks/serve.py            # ResNet-18 at 64x64, about a minute
    PYTHONPATH=. python benchmarks/serve.py --quick    # a smoke run

A ResNet-18 (random weights, BatchNorm folded, the fast CPU convolutions: what
``python -m jaxvision.serve`` runs) behind ``jaxvision.serve`` in uvicorn on 127.0.0.1, with
default ``ServeConfig`` but ``max_batch`` 32 or 1 and a queue that never fills (4,096). Two
servers, one of each, take turns at each concurrency level: half the bodies each, then the
other half, so a drift in the machine's speed touches both alike. The load generator is httpx
on asyncio with ``c`` workers, each sending one PNG at a time over its own transport;
``--requests-per-level`` per server and level. Prints JSON lines: per server and level,
throughput, p50, p95 and p99 (the course's percentile rule), mean batch, failed (answered with
an error) and lost (no answer); the ratio of the servers' throughputs at concurrency 32; then
a burst of ``--burst`` simultaneous requests at a server whose queue holds ``--burst-queue``
images: how many got 200, 503, another status or no answer. Stops by itself; no request is
retried.

Measured 2026-12-02 on the 2-core development machine (Xeon, AVX-512; client and servers
share both cores; uvicorn on uvloop, which orbax-checkpoint installs, and h11), default
arguments, the run nearest the median: batched 48.5, 188.5, 250.8 and 307.3 requests/s at
concurrency 1, 8, 32 and 64 (mean batch 1.0, 6.2, 12.8, 28.4; p50 20.4, 39.0, 120.1, 175.3
ms; p99 24.9, 63.1, 148.1, 296.8 ms); batch-size-1 66.6, 72.2, 76.9, 68.7 (p50 14.9, 109.4,
400.3, 853.9 ms); burst of 200 at a 16-image queue: 16 answered, 184 refused with 503.
**Ratio at concurrency 32: median 3.19 over 10 runs (2.91-3.76; 7 of 10 at 3 or more)**;
0 failed and 0 lost at every level and the same burst in all 10. Without uvloop (asyncio's
own loop) the same day: median 3.13 over 11 runs (2.65-3.60). The machine's speed varied by
up to 2x between runs, and the slow runs gave the low ratios. At concurrency 1 the batched
server is slower: a lone request waits ``max_wait_ms`` (5 ms) for company.

What it took, measured in turns on that machine without uvloop (the code of 425067d against
this): 1.62, 1.46, 1.83 before, 3.08, 3.42, 2.81 after.
  * The load generator was eating the servers' CPU: httpx's shared pool cost 3.4 ms of CPU per
    request at 32 connections and 4.2 ms at 64 (1.0 ms at one), and building a client, timed
    with the level, loads the CA certificates. Now each worker has its own transport, built
    before the clock: about 1-1.5 ms per request.
  * The batcher waited ``max_wait_ms`` from when it took the first request, so requests that
    had queued during the previous run waited again; the wait now counts from arrival.
  * Bucket sizes step by 1.5x (1, 2, 3, 4, 6, 8, 12, 16, 24, 32), not 2x: about 10% more
    batched throughput at concurrency 32 (207, 222, 201 against 188, 181, 192 requests/s).
By thread CPU at concurrency 32, a batched request costs the server about 7.6 ms (5.7 ms in
XLA's threads) and the client 1.1 ms; at batch size 1, 21 ms and 1.9 ms. So both servers are
nearly CPU-bound, and the ratio is about their CPU per request, which the model dominates.
Earlier figures (another machine, an AMD EPYC, the old client and batcher): 1.76 and 1.59.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--requests-per-level", type=int, default=256)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--burst-queue", type=int, default=16)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.image_size, args.concurrency = "small_cnn", 16, [1, 8]
        args.requests_per_level, args.burst = 32, 40
    return args


def serving_model(args):
    from jaxvision import export, models, tasks
    from jaxvision.inference import InputSpec, Predictor

    import sys
    import pathlib

    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tests"))
    from helpers import random_variables

    size = args.image_size
    model = models.create(args.model, num_classes=10)
    spec = InputSpec(image_size=(size, size), channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    variables = random_variables(model, np.zeros((1, size, size, 3), np.float32))
    predictor = Predictor(model=model, variables=variables, task=tasks.ClassificationTask(),
                          spec=spec, num_classes=10)
    return export.serving_model(predictor, portable=False)  # as jaxvision.serve runs it


def _serve(args, config, port):
    """The server process: build the model, serve it until terminated."""
    import uvicorn

    from jaxvision.serve import create_app

    app = create_app(serving_model(args), config)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


class Server:
    """The server in its own process (the load generator must not share its interpreter);
    ``with Server(args, config) as url: ...``."""

    def __init__(self, args, config):
        import multiprocessing

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(args, config, self.port), daemon=True)

    def __enter__(self) -> str:
        import httpx

        self.process.start()
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and self.process.is_alive():
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def __exit__(self, *exc):
        self.process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        self.process.join(60)


def batch_runs(url: str) -> int:
    """Model runs so far, from the server's Prometheus metrics."""
    import httpx

    text = httpx.get(url + "/metrics").text
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("jaxvision_batch_size_total{"))


def png(image) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


async def load(url: str, bodies: list[bytes], concurrency: int
               ) -> tuple[float, list[float], list[int]]:
    """Send every body once with ``concurrency`` in flight: seconds, latencies, statuses.

    Each worker sends over its own httpx transport (one keep-alive connection) and reads every
    response to its end; status 0 marks a request that got no answer (a timeout or a dropped
    connection). The client shares the server's cores, so it is kept lean: transports built
    before the clock starts, no shared pool (httpx's costs more CPU per request the more
    connections it holds), and no ``AsyncClient`` layer (URL merging, cookies, redirects: half
    of httpx's CPU per request)."""
    import ssl

    import httpx

    latencies, statuses = [], []
    pending = iter(bodies)
    context = ssl.create_default_context()  # unused over http://, but built once, not per transport
    transports = [httpx.AsyncHTTPTransport(verify=context) for _ in range(concurrency)]
    timeout = dict.fromkeys(("connect", "read", "write", "pool"), 120.0)

    async def worker(transport):
        async with transport:
            for body in pending:
                request = httpx.Request("POST", url + "/v1/predict", content=body,
                                        headers={"content-type": "image/png"},
                                        extensions={"timeout": timeout})
                start = time.perf_counter()
                try:
                    response = await transport.handle_async_request(request)
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
                    statuses.append(response.status_code)
                except httpx.HTTPError:
                    statuses.append(0)
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker(transport) for transport in transports))
    return time.perf_counter() - start, latencies, statuses


def main(argv=None) -> None:
    from jaxvision.monitor import percentile
    from jaxvision.serve import ServeConfig

    args = parse_args(argv)
    rng = np.random.default_rng(0)
    size = args.image_size
    bodies = [png(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
              for _ in range(args.requests_per_level)]
    print(json.dumps({"setup": {"model": args.model, "image_size": size,
                                "requests_per_level": args.requests_per_level}}), flush=True)
    throughput = {}
    with Server(args, ServeConfig(max_batch=32, max_queue=4096)) as batched, \
            Server(args, ServeConfig(max_batch=1, max_queue=4096)) as single:
        urls = {32: batched, 1: single}
        for url in urls.values():
            asyncio.run(load(url, bodies[:8], 4))  # warm the connection path
        for c in args.concurrency:
            # Each server gets half the bodies, then the other half, in turns (32, 1, 32, 1),
            # so a drift in the machine's speed touches both alike.
            runs_before = {b: batch_runs(url) for b, url in urls.items()}
            half = len(bodies) // 2
            parts = {b: [] for b in urls}  # (seconds, latencies, statuses) per half
            for part in (bodies[:half], bodies[half:]):
                for max_batch, url in urls.items():
                    parts[max_batch].append(asyncio.run(load(url, part, c)))
            for max_batch, url in urls.items():
                seconds = sum(t for t, _, _ in parts[max_batch])
                latencies = [x for _, lat, _ in parts[max_batch] for x in lat]
                statuses = [x for _, _, stat in parts[max_batch] for x in stat]
                runs = batch_runs(url) - runs_before[max_batch]
                throughput[max_batch, c] = len(bodies) / seconds
                print(json.dumps({
                    "max_batch": max_batch, "concurrency": c,
                    "requests_per_s": round(throughput[max_batch, c], 2),
                    "p50_ms": round(1e3 * percentile(latencies, 0.5), 2),
                    "p95_ms": round(1e3 * percentile(latencies, 0.95), 2),
                    "p99_ms": round(1e3 * percentile(latencies, 0.99), 2),
                    "mean_batch": round(len(statuses) / max(runs, 1), 2),
                    "failed": sum(s not in (0, 200) for s in statuses),
                    "lost": statuses.count(0)}), flush=True)
    level = 32 if 32 in args.concurrency else max(args.concurrency)
    print(json.dumps({"dynamic_batching_ratio": round(
        throughput[32, level] / throughput[1, level], 2), "concurrency": level}), flush=True)
    with Server(args, ServeConfig(max_batch=8, max_queue=args.burst_queue)) as url:
        _, _, statuses = asyncio.run(load(url, [bodies[0]] * args.burst, args.burst))
    print(json.dumps({"burst": args.burst, "queue_limit": args.burst_queue,
                      "ok": statuses.count(200), "refused_503": statuses.count(503),
                      "other": len(statuses) - statuses.count(200) - statuses.count(503)
                      - statuses.count(0), "lost": statuses.count(0)}), flush=True)


if __name__ == "__main__":
    main()
