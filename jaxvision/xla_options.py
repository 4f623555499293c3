"""The XLA compile options jaxvision's programs run with, set per executable.

Not through ``XLA_FLAGS``: that would change the user's other programs too, and an XLA without
one of the flags aborts at start-up, where per-executable options can be checked first.

On CPU, XLA (jaxlib 0.10.2) hands convolutions to YNNPACK by default. On this project's 2-core
Xeon, XLA's own (Eigen) kernels were faster on all but one of ResNet-18's nine convolution
shapes (the sum at 224x224, each followed by a ReLU: batch 32 212 vs 287 ms, batch 1 7.8 vs
9.6 ms), with the same values up to float32 rounding. Without YNNPACK:

* the ResNet-18 predictor at batch 32 ran 1.25-1.27x onnxruntime's time instead of 1.58x
  (``benchmarks/inference.py``);
* a CIFAR ResNet-18 train step ran 1.33x faster with ``conv="auto"`` and 1.6x with
  ``conv="xla"`` (``benchmarks/train_step.py``).

A user who names ``xla_cpu_experimental_ynn_fusion_type`` in ``XLA_FLAGS`` keeps their choice.
"""

from __future__ import annotations

import functools
import os

import jax

WITHOUT_YNNPACK = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def _supported(options: tuple) -> bool:
    """Whether this XLA knows ``options`` (an unknown option is a compile error)."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - any failure means: do not use them
        return False
    return True


def compiler_options(*, run_once: bool = False) -> dict | None:
    """``compiler_options`` for ``jax.jit`` on the default backend; None (XLA's defaults) off
    CPU. ``run_once``: a program that runs once, such as the initialisation, also compiles
    without XLA's backend optimisations, which spend most of its compile time on the unrolled
    threefry hashes of the initialisers (measured: ResNet-18 46 s -> 18 s, a narrow
    RetinaNet-ResNet-18-FPN 95 s -> 22 s) to save about a second of running time; the values
    agree to float32 rounding (2 ulp measured)."""
    if jax.default_backend() != "cpu":
        return None
    options = {}
    if ("ynn_fusion_type" not in os.environ.get("XLA_FLAGS", "")
            and _supported(tuple(WITHOUT_YNNPACK.items()))):
        options.update(WITHOUT_YNNPACK)
    if run_once:
        options["xla_backend_optimization_level"] = 0
    return options or None


def compile_once(jitted):
    """``jitted`` (no arguments) compiled for a program that runs once, such as the
    initialisation: ``compiler_options(run_once=True)``."""
    return jitted.lower().compile(compiler_options=compiler_options(run_once=True))


__all__ = ["WITHOUT_YNNPACK", "compile_once", "compiler_options"]
