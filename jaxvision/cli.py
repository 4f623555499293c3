"""Command line of every experiment: ``python -m experiments.<name> --workdir DIR --config.x=y``.

Each experiment module defines ``get_config()`` and ``main(config, workdir)``; ``run`` turns
them into a program whose ``--config.*`` flags override any config field (ml_collections
config flags) and whose ``--workdir`` defaults to ``workdirs/<experiment>``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Callable


def setup_logging() -> None:
    """Plain progress lines from jaxvision; only warnings from Orbax, absl and TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    for noisy in ("absl", "orbax", "tensorflow", "jax"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def write_report(workdir: str, lines: list[str], results=None) -> None:
    """An experiment's ``report.md`` (markdown ``lines``) and, when given, ``results.json``."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if results is not None:
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)


def maybe_initialize_distributed() -> None:
    """``jax.distributed.initialize()`` on multi-host set-ups (a coordinator address is given,
    or a TPU pod lists several workers), before any other JAX call; a no-op on one host."""
    multi_host_tpu = "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or multi_host_tpu:
        import jax

        jax.distributed.initialize()


def run_reporting_errors(main: Callable, config, workdir: str):
    """``main(config, workdir)``; a graceful stop or a refused input ends the process with one
    line and an exit code instead of a traceback (``JAXVISION_TRACEBACK=1`` shows it)."""
    from jaxvision.train import Interrupted, NonFiniteError

    log = logging.getLogger("jaxvision")
    try:
        return main(config, workdir)
    except Interrupted as stop:
        log.warning("%s", stop)
        sys.exit(stop.exit_code)
    except (ValueError, RuntimeError, OSError, NonFiniteError) as error:
        if os.environ.get("JAXVISION_TRACEBACK"):
            raise
        log.error("%s: %s", type(error).__name__, error)
        sys.exit(1)


def run(get_config: Callable, main: Callable, *, name: str | None = None) -> None:
    """Parses flags, builds the config and calls ``main(config, workdir)``."""
    from absl import app, flags
    from ml_collections import config_flags

    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    config_flag = config_flags.DEFINE_config_dict("config", get_config(), "experiment config")
    workdir_flag = flags.DEFINE_string("workdir", os.path.join("workdirs", name),
                                       "where checkpoints, metrics and figures go")

    def _main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        setup_logging()
        maybe_initialize_distributed()
        result = run_reporting_errors(main, config_flag.value, workdir_flag.value)
        if result is not None:
            logging.getLogger("jaxvision").info("result: %s", result)

    app.run(_main)
