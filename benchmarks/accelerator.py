"""ResNet-50 training throughput on whatever devices JAX sees: images/s, step time, compile
time, model FLOPs utilization (MFU) against the device's peak, and the projected ImageNet
epoch time of the ResNet-50 recipe.

Command (any GPU/TPU host, unchanged; all local devices, data parallel, bfloat16 compute)::

    python benchmarks/accelerator.py                       # 224x224, batch 128 per device
    python benchmarks/accelerator.py --image-size 32 --batch-per-device 2 --steps 2  # CPU smoke

Prints JSON lines: the set-up (devices, device kind, peak), the compile time and XLA's FLOP
count of one train step, then the median step time over ``--steps`` timed steps (after
``--warmup``), images/s, MFU = XLA FLOPs per step / step time / (peak x devices), and the
projected epoch time of ImageNet-1k (1,281,167 images) at that rate.

The step is jaxvision's own (``make_train_step`` under ``parallel='jit'``): SGD with momentum,
weight decay, BatchNorm in training mode, softmax cross-entropy, on synthetic uint8 images
(nothing is read from disk, so this is the device's ceiling, not the input pipeline's).
The FLOP count is XLA's for the step as written, before compilation (forward + backward +
update, direct convolutions, a multiply-add counted as 2 FLOPs), so MFU counts model FLOPs; it is about 3x the forward's 4.1 GMACs (8.2 GFLOPs) per 224x224
image, so about 25 GFLOPs per image.

Peaks are the vendors' dense bfloat16 figures (no sparsity) per device (one GPU, one TPU chip;
JAX shows a v2/v3 chip as 2 devices); MFU is left empty for a device not in the table (CPUs
included) unless ``--peak-tflops`` is given.

Measured: no GPU or TPU was available when this was written; only the CPU smoke run
(``tests/test_accelerator_benchmark.py``) has been run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

PEAK_BF16_TFLOPS = {  # device_kind substring (lower case) -> dense bf16 TFLOP/s per device
    "h200": 989.0, "h100": 989.0,  # SXM; the PCIe H100 is 756
    "a100": 312.0, "l4": 121.0, "a10g": 70.0, "v100": 125.0,  # V100: fp16 tensor cores
    "tpu v6": 918.0, "tpu v5p": 459.0, "tpu v5 lite": 197.0, "tpu v5e": 197.0,
    "tpu v4": 275.0, "tpu v3": 61.5, "tpu v2": 22.5,
}
IMAGENET_TRAIN = 1_281_167


def peak_tflops(device_kind: str) -> float | None:
    kind = device_kind.lower()
    if "h100" in kind and "pcie" in kind:
        return 756.0
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in kind:
            return value
    return None


def run(*, model_name: str = "resnet50", image_size: int = 224, batch_per_device: int = 128,
        steps: int = 10, warmup: int = 2, compute_dtype: str = "bfloat16",
        peak: float | None = None, num_devices: int = 0, emit=print) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from jaxvision import models
    from jaxvision.train import StepOptions, create_train_state, make_parallel, make_train_step

    parallel = make_parallel("jit", num_devices=num_devices or None)
    devices = parallel.num_devices
    kind = jax.devices()[0].device_kind
    peak = peak if peak is not None else peak_tflops(kind)
    batch = batch_per_device * devices
    emit(json.dumps({"devices": devices, "device_kind": kind, "platform": jax.default_backend(),
                     "model": model_name, "image_size": image_size, "batch": batch,
                     "compute_dtype": compute_dtype, "peak_tflops_per_device": peak}))
    dtype = {"bfloat16": jnp.bfloat16, "float32": jnp.float32}[compute_dtype]
    model = models.create(model_name, num_classes=1000, dtype=dtype)
    tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.1, momentum=0.9))
    state = parallel.place_state(create_train_state(
        model, tx, seed=0, input_shape=(1, image_size, image_size, 3)))
    options = StepOptions(learning_rate_fn=lambda step: 0.1, compute_dtype=dtype,
                          axis_name=parallel.axis_name)
    step = parallel.compile_train_step(make_train_step(options))
    rng = np.random.default_rng(0)
    host = {"image": rng.integers(0, 256, (batch, image_size, image_size, 3), dtype=np.uint8),
            "label": rng.integers(0, 1000, (batch,), dtype=np.int32)}
    placed = parallel.place_batch(host)

    start = time.perf_counter()
    compiled = step.lower(state, placed).compile()
    compile_s = time.perf_counter() - start
    flops = _model_flops(model, tx, options, parallel, image_size, placed)
    emit(json.dumps({"compile_s": round(compile_s, 2), "step_gflops": round(flops / 1e9, 2)}))

    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        state, metrics = compiled(state, placed)
        jax.block_until_ready(metrics["loss"])
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    images_per_s = batch / step_s
    mfu = flops / step_s / (peak * 1e12 * devices) if peak and flops else None
    result = {"step_s": step_s, "images_per_s": images_per_s, "mfu": mfu,
              "loss": float(metrics["loss"]),
              "imagenet_epoch_min": IMAGENET_TRAIN / images_per_s / 60}
    emit(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    return {"compile_s": compile_s, "step_gflops": flops / 1e9, "devices": devices,
            "device_kind": kind, "batch": batch, **result}


def _model_flops(model, tx, options, parallel, image_size: int, placed) -> float:
    """XLA's FLOP count of the train step as written (direct convolutions: ``conv='xla'``),
    before compilation: the model FLOPs, whatever convolution algorithm the device then runs
    (a compiled CPU step with Winograd convolutions counts fewer)."""
    import dataclasses

    from jaxvision.train import create_train_state, make_train_step

    if "conv" in {f.name for f in dataclasses.fields(model)}:
        model = model.clone(conv="xla")
    state = parallel.place_state(create_train_state(
        model, tx, seed=0, input_shape=(1, image_size, image_size, 3)))
    lowered = parallel.compile_train_step(make_train_step(options)).lower(state, placed)
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-per-device", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compute-dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak, when it is not in the table")
    parser.add_argument("--devices", type=int, default=0, help="devices to use (0: all)")
    args = parser.parse_args(argv)
    run(model_name=args.model, image_size=args.image_size,
        batch_per_device=args.batch_per_device, steps=args.steps, warmup=args.warmup,
        compute_dtype=args.compute_dtype, peak=args.peak_tflops, num_devices=args.devices)


if __name__ == "__main__":
    main()
