"""Graceful stop on SIGINT (Ctrl-C) and SIGTERM (what a scheduler or a preemption sends).

The first signal only raises a flag: the loop finishes its step, saves a checkpoint, closes its
writers and raises ``Interrupted``, which the CLI turns into one line and the exit code 130 or
143. A second signal stops the process at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading

import jax
import numpy as np

log = logging.getLogger("jaxvision.train")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint at ``step``."""

    def __init__(self, signum: int, step: int, workdir: str):
        self.signum, self.step, self.workdir = signum, step, workdir
        self.exit_code = 128 + signum
        super().__init__(
            f"{signal.Signals(signum).name}: stopped at step {step} with a checkpoint saved in "
            f"{workdir}; run the same command again to resume")


class StopRequest:
    """Set by the first SIGINT/SIGTERM while installed (a context manager); the loop polls
    ``signum``. Installs nothing off the main thread, where Python cannot take signals."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            log.warning("second %s: stopping now, without saving", signal.Signals(signum).name)
            os._exit(128 + signum)
        self.signum = signum
        log.warning("%s received: finishing the current step and saving a checkpoint "
                    "(send it again to stop at once)", signal.Signals(signum).name)

    def poll(self) -> int | None:
        """The signal to stop on, agreed by every process so that all save the same step."""
        if jax.process_count() == 1:
            return self.signum
        from jax.experimental import multihost_utils

        signums = multihost_utils.process_allgather(np.int32(self.signum or 0))
        return int(np.max(signums)) or None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
        self._previous.clear()
