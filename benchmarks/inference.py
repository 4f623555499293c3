"""The jitted JAX predictor against onnxruntime on the exported ONNX of the same model.

Command::

    PYTHONPATH=. python benchmarks/inference.py           # ResNet-18, 224x224, batch 1 and 32
    PYTHONPATH=. python benchmarks/inference.py --quick   # small_cnn at 16x16: a smoke run

One ResNet-18 (random weights and BatchNorm statistics), as ``inference.Predictor`` runs it
(``conv="auto"``: XLA's convolutions when not differentiated) and as ``jaxvision.export``
writes it to ONNX (BatchNorm folded, XLA convolutions, uint8 input with the preprocessing
inside), run by onnxruntime's CPU provider with ``--threads`` intra-op threads (XLA:CPU uses
one per core).
Both sides take the same uint8 batch; each timed call includes the host-to-device copy and
the result's return. Per batch size: ``--warmup`` untimed calls, then ``--repeats`` timed
calls alternating between the two sides (so that other load hits both alike); prints JSON
lines with the medians, the ratio jax / onnxruntime (< 1: JAX is faster; the goal is <= 1.2
at batch 32) and the largest probability difference.

Results (issue 17), batch 32, ratio jax / onnxruntime, quiet machine, goal <= 1.2:

* 1.34 at first (the CPU fast path's GEMMs in inference, YNNPACK on); inference then ran
  XLA's own convolution (the GEMM forms only pay for gradients; e.g. the 7x7 stem took 332 ms
  by XLA vs 1055 ms by im2col), but the ratio stayed about 1.4-1.6.
* 1.58 -> 1.25 once jaxvision's programs compiled without YNNPACK (``jaxvision.xla_options``).
* 1.22 (median of five runs) once onnxruntime's idle threads stopped spinning into the JAX
  calls that follow (``--ort-spinning`` brings them back).
* **1.11** (median of fifteen runs, 1.08-1.19; 2026-12-02, 2-core AMD EPYC VM, JAX 351-393 ms,
  onnxruntime 316-363 ms) with ``jaxvision.nn.pool.fast_max_pool``: the stem's BatchNorm,
  ReLU and 3x3/2 max pool took 37 ms as an elementwise pass and XLA's ``reduce_window``, and
  take 8 ms as one fusion. In one process, the same predictor with Flax's max pool
  (``conv="xla"``, whose inference differs only there) vs the fast one: 446 vs 417 ms and 481
  vs 445 ms (6-8%), equal probabilities. Batch 1: median 1.21 (1.09-1.48).

Ruled out on the way (JAX time at batch 32, one run each): folding BatchNorm into the
convolutions (425 vs 422 ms: an elementwise pass per convolution stays), float instead of uint8
input (422 vs 432 ms), a space-to-depth stem (120 vs 113 ms for the stem, under load), XLA's
oneDNN flags (ratio 1.46 vs 1.34), and page faults (about 32,000 a call; glibc settings that
remove them gave ratio 1.21 vs 1.22). What is left is the convolutions themselves: in one
profile of each side, onnxruntime's NCHWc MLAS kernels, with their bias, residual and ReLU
fused, took 15-17 ms per 3x3 layer where XLA's Eigen ones took 18-22 ms, and 24 ms for the
7x7 stem where XLA took 48-60 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--ort-spinning", action="store_true",
                        help="let onnxruntime's idle threads spin between calls (its default; "
                        "they then take the cores from the JAX call that follows)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.image_size, args.batches, args.repeats = "small_cnn", 16, [1, 8], 3
    return args


def main(argv=None) -> None:
    import jax
    import onnxruntime

    from jaxvision import export, models, tasks
    from jaxvision.inference import InputSpec, Predictor

    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tests"))
    from helpers import random_variables

    args = parse_args(argv)
    size = args.image_size
    model = models.create(args.model, num_classes=1000)
    spec = InputSpec(image_size=(size, size), channels=3, mean=(0.485, 0.456, 0.406),
                     std=(0.229, 0.224, 0.225))
    predictor = Predictor(model=model, variables=random_variables(
        model, np.zeros((1, size, size, 3), np.float32)), task=tasks.ClassificationTask(),
        spec=spec, num_classes=1000, batch_size=max(args.batches))
    with tempfile.TemporaryDirectory() as folder:
        path = export.export_onnx(export.serving_model(predictor), folder)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        if not args.ort_spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    print(json.dumps({"setup": {"model": args.model, "image_size": size, "threads": args.threads,
                                "jax": jax.__version__, "onnxruntime": onnxruntime.__version__,
                                "devices": str(jax.devices())}}), flush=True)
    rng = np.random.default_rng(0)
    for batch in args.batches:
        images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
        run_jax = lambda: predictor(images)  # noqa: E731
        run_ort = lambda: session.run(None, {name: images})[0]  # noqa: E731
        for _ in range(args.warmup):
            run_jax(), run_ort()
        times = {"jax": [], "onnxruntime": []}
        for _ in range(args.repeats):
            for side, run in (("jax", run_jax), ("onnxruntime", run_ort)):
                start = time.perf_counter()
                run()
                times[side].append(time.perf_counter() - start)
        medians = {side: statistics.median(t) for side, t in times.items()}
        print(json.dumps({
            "batch": batch, "jax_ms": round(1e3 * medians["jax"], 2),
            "onnxruntime_ms": round(1e3 * medians["onnxruntime"], 2),
            "ratio_jax_over_ort": round(medians["jax"] / medians["onnxruntime"], 3),
            "max_abs_prob_diff": float(np.abs(run_jax() - run_ort()).max())}), flush=True)


if __name__ == "__main__":
    main()
