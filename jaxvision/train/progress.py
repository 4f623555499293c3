"""Progress of a long run: a tqdm bar with rate and ETA on a terminal, plain log lines elsewhere.

The log lines go through the ``jaxvision`` logger, which prints them by itself in plain Python
and in notebooks (a default handler, silent once the application configures logging); turn it
off with :func:`disable_default_handler` or
``logging.getLogger("jaxvision").setLevel(logging.WARNING)``.
"""

from __future__ import annotations

import logging
import sys
import time

from jaxvision._logging import disable_default_handler, install_default_handler

__all__ = ["Progress", "disable_default_handler", "install_default_handler"]

log = logging.getLogger("jaxvision.train")
install_default_handler()


class Progress:
    def __init__(self, total_steps: int, *, initial_step: int = 0, log_every: int = 50,
                 use_bar: bool | None = None):
        self.total = total_steps
        self.log_every = max(1, log_every)
        self._start_step, self._start_time = initial_step, time.perf_counter()
        self._bar = None
        if use_bar if use_bar is not None else sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_steps, initial=initial_step, unit="step",
                             dynamic_ncols=True)

    def update(self, step: int, metrics: dict[str, float] | None = None) -> None:
        """Call once per step; ``metrics`` (if given: the training window's means) are shown
        next to the rate as ``train_<name>``, the name TensorBoard and the logs use."""
        if metrics:
            from jaxvision.train.writers import metric_name

            metrics = {metric_name("train", k) if not k.startswith("train_") else k: v
                       for k, v in metrics.items()}
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            if metrics:
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
            return
        if metrics is not None or step % self.log_every == 0 or step == self.total:
            elapsed = time.perf_counter() - self._start_time
            rate = (step - self._start_step) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - step) / rate if rate > 0 else float("nan")
            shown = " ".join(f"{k}={v:.4g}" for k, v in (metrics or {}).items())
            log.info("step %d/%d %s %.2f steps/s eta %s", step, self.total, shown, rate,
                     _format_seconds(eta))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _format_seconds(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
