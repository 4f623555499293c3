"""On-device augmentation cost next to a ResNet-18 train step, measured in one process.

Command (2 CPU cores, about 5-8 minutes; most of it is the 224px ResNet-18 step)::

    PYTHONPATH=. python benchmarks/augment.py

For each image size (default 32 and 224, batch 128) it prints one JSON object per line:

* ``augment``: the course's training pipeline (``build("course_train")``: random resized crop,
  horizontal flip, rotation +-15 deg, colour jitter 0.2/0.2/0.2, ImageNet normalize) compiled
  alone: median ms per batch and images/s;
* ``train_step``: a ResNet-18 train step on the same batch (SGD momentum 0.9, BatchNorm in
  training mode, softmax cross-entropy, float32): CIFAR stem and 10 classes at 32px, ImageNet
  stem and 1000 classes at 224px (``jaxvision.models.create("resnet18", ...)``);
* ``train_step_with_augment``: the same step with the pipeline inside it (what the engine runs);
* ``summary``: augmentation time as a fraction of the train step (goal <= 0.05), both measured
  alone and as the extra time of the fused step, with the ratios.

The timings use the median of ``--steps`` calls after ``--warmup`` calls, each ended with
``block_until_ready``; inputs stay on the device between calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--sizes", default="32,224", help="comma-separated image sizes")
    parser.add_argument("--pipeline", default="course_train",
                        help="augmentation preset or comma-separated op names")
    parser.add_argument("--steps", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--no-fused", action="store_true",
                        help="skip the train step with the pipeline inside")
    return parser.parse_args(argv)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def timed(fn, *args, steps: int, warmup: int):
    """Compile time and per-call seconds (list) of ``fn(*args)``, blocking on the result."""
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - start
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return compile_s, times


def make_train_step(model, tx, augment_fn=None):
    import jax
    import optax

    def step(params, batch_stats, opt_state, key, batch):
        if augment_fn is not None:
            batch = augment_fn(key, batch)

        def loss_fn(p):
            logits, updates = model.apply({"params": p, "batch_stats": batch_stats},
                                          batch["image"], train=True, mutable=["batch_stats"])
            labels = batch["label"]
            if labels.ndim == 1:
                labels = jax.nn.one_hot(labels, logits.shape[-1])
            return optax.softmax_cross_entropy(logits, labels).mean(), updates["batch_stats"]

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, loss

    return jax.jit(step)


def bench_size(args, size: int) -> None:
    import jax
    import jax.numpy as jnp
    import optax

    from jaxvision import augment, models

    cifar = size <= 64
    num_classes = 10 if cifar else 1000
    pipeline = args.pipeline if "," not in args.pipeline else {"ops": args.pipeline.split(",")}
    augment_fn = augment.build(pipeline, num_classes=num_classes)
    key = jax.random.key(0)
    batch = {
        "image": jax.random.uniform(key, (args.batch, size, size, 3), jnp.float32),
        "label": jax.random.randint(key, (args.batch,), 0, num_classes, jnp.int32),
    }
    common = {"size": size, "batch": args.batch, "device": str(jax.devices()[0].platform),
              "pipeline": args.pipeline}

    aug_compile, aug_times = timed(jax.jit(augment_fn), key, batch, steps=args.steps,
                                   warmup=args.warmup)
    aug_s = statistics.median(aug_times)
    emit({"name": "augment", **common, "compile_s": round(aug_compile, 2),
          "median_ms": round(1e3 * aug_s, 2), "images_per_s": round(args.batch / aug_s, 1)})

    model = models.create(args.model, num_classes=num_classes,
                          **({"stem": "cifar"} if cifar else {}))
    variables = model.init(key, jnp.zeros((1, size, size, 3)), train=False)
    params, stats = variables["params"], variables["batch_stats"]
    tx = optax.sgd(0.1, momentum=0.9)
    opt_state = tx.init(params)
    step_args = (params, stats, opt_state, key, batch)

    step_compile, step_times = timed(make_train_step(model, tx), *step_args, steps=args.steps,
                                     warmup=args.warmup)
    step_s = statistics.median(step_times)
    emit({"name": "train_step", **common, "model": args.model, "stem": "cifar" if cifar else
          "imagenet", "compile_s": round(step_compile, 2), "median_ms": round(1e3 * step_s, 2),
          "images_per_s": round(args.batch / step_s, 1)})

    summary = {"name": "summary", **common, "augment_ms": round(1e3 * aug_s, 2),
               "train_step_ms": round(1e3 * step_s, 2),
               "augment_fraction_of_step": round(aug_s / step_s, 4),
               "augment_images_per_s": round(args.batch / aug_s, 1), "goal_fraction": 0.05}
    if not args.no_fused:
        fused_compile, fused_times = timed(make_train_step(model, tx, augment_fn), *step_args,
                                           steps=args.steps, warmup=args.warmup)
        fused_s = statistics.median(fused_times)
        emit({"name": "train_step_with_augment", **common, "compile_s": round(fused_compile, 2),
              "median_ms": round(1e3 * fused_s, 2), "images_per_s": round(args.batch / fused_s, 1)})
        summary.update(fused_step_ms=round(1e3 * fused_s, 2),
                       fused_overhead_fraction=round((fused_s - step_s) / step_s, 4))
    summary["meets_goal"] = summary["augment_fraction_of_step"] <= 0.05
    emit(summary)


def main(argv=None) -> None:
    args = parse_args(argv)
    for size in (int(s) for s in args.sizes.split(",") if s):
        bench_size(args, size)


if __name__ == "__main__":
    main()
