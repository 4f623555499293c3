"""The server's counters in Prometheus' text format (no client library needed)."""

from __future__ import annotations

import threading
from collections import Counter

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Requests by status, request latency histogram, batch sizes, model time, queue depth."""

    def __init__(self, buckets: tuple[int, ...]):
        self._lock = threading.Lock()
        self.requests: Counter[int] = Counter()  # by HTTP status
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.batch_sizes: Counter[int] = Counter()
        self.batch_buckets = buckets
        self.model_seconds = 0.0
        self.queue_depth = lambda: 0

    def request(self, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[status] += 1
            self.latency_sum += seconds
            index = next((i for i, b in enumerate(LATENCY_BUCKETS) if seconds <= b),
                         len(LATENCY_BUCKETS))
            self.latency[index] += 1

    def batch(self, size: int, seconds: float) -> None:
        with self._lock:
            self.batch_sizes[size] += 1
            self.model_seconds += seconds

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP jaxvision_requests_total Requests answered, by HTTP status.",
                     "# TYPE jaxvision_requests_total counter"]
            lines += [f'jaxvision_requests_total{{status="{s}"}} {n}'
                      for s, n in sorted(self.requests.items())]
            errors = sum(n for s, n in self.requests.items() if s >= 400)
            lines += ["# TYPE jaxvision_request_errors_total counter",
                      f"jaxvision_request_errors_total {errors}",
                      "# HELP jaxvision_request_seconds Time from request to answer.",
                      "# TYPE jaxvision_request_seconds histogram"]
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), self.latency):
                cumulative += count
                lines.append(f'jaxvision_request_seconds_bucket{{le="{bound}"}} {cumulative}')
            lines += [f"jaxvision_request_seconds_sum {self.latency_sum:.6f}",
                      f"jaxvision_request_seconds_count {cumulative}",
                      "# HELP jaxvision_batch_size_total Model runs by number of real images.",
                      "# TYPE jaxvision_batch_size_total counter"]
            lines += [f'jaxvision_batch_size_total{{size="{s}"}} {n}'
                      for s, n in sorted(self.batch_sizes.items())]
            lines += ["# TYPE jaxvision_model_seconds_total counter",
                      f"jaxvision_model_seconds_total {self.model_seconds:.6f}",
                      "# TYPE jaxvision_queue_depth gauge",
                      f"jaxvision_queue_depth {self.queue_depth()}"]
        return "\n".join(lines) + "\n"
