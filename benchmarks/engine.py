"""The engine's cost, measured side by side in one process. Prints JSON lines.

1. ``step_overhead``: jaxvision's compiled train step (``make_train_step`` under
   ``parallel="none"``: per-step keys, non-finite guard, metrics) against a minimal
   hand-written ``jax.jit`` step of the same model, loss and optimizer. Rounds of N steps
   alternate between the two so that machine noise hits both; medians per step are reported.
   Goal: overhead <= 5%.
2. ``input_pipeline``: host batches per second from ``TrainStream`` on an embedded data set
   against train steps per second on the same batches. Goal: ratio >= 5.

Usage:  python benchmarks/engine.py [--dataset shapes/cls32] [--batch-size 128] [--rounds 7]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from jaxvision import data, models  # noqa: E402
from jaxvision.losses import cross_entropy  # noqa: E402
from jaxvision.optim import build_optimizer, build_schedule  # noqa: E402
from jaxvision.train import (StepOptions, create_train_state, make_parallel,  # noqa: E402
                             make_train_step)


def minimal_step(state, batch, *, schedule):
    """What a user would write by hand: dropout key, value_and_grad, optax update."""
    del schedule
    key = jax.random.fold_in(state.key, state.step)
    images = batch["image"].astype(jnp.float32) / 255.0

    def loss_fn(params):
        logits, updates = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats}, images, train=True,
            mutable=["batch_stats"], rngs={"dropout": key})
        return cross_entropy(logits, batch["label"]), updates["batch_stats"]

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                         opt_state=opt_state, model_state={"batch_stats": batch_stats}), {"loss": loss}


def time_steps(step, state, batches, num_steps):
    start = time.perf_counter()
    for i in range(num_steps):
        state, metrics = step(state, batches[i % len(batches)])
    jax.block_until_ready((state, metrics))
    return state, (time.perf_counter() - start) / num_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes/cls32")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per timing round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    source = data.from_tfds(args.dataset, "train", data_dir=args.data_dir)
    stream = data.TrainStream(source, batch_size=args.batch_size, seed=0)
    parallel = make_parallel("none")
    host_batches = [b for _, b in zip(range(8), stream.epoch(0))]
    batches = [parallel.place_batch(b) for b in host_batches]
    model = models.create(args.model, num_classes=source.num_classes)
    total_steps = args.steps * args.rounds * 4
    optimizer = {"name": "adamw", "learning_rate": 1e-3, "schedule": "cosine", "weight_decay": 1e-4}
    tx = build_optimizer(optimizer, total_steps)
    init = functools.partial(create_train_state, model, tx, seed=0,
                             input_shape=(1, *source.image_shape))
    engine = parallel.compile_train_step(make_train_step(
        StepOptions(learning_rate_fn=build_schedule(optimizer, total_steps))))
    reference = jax.jit(functools.partial(minimal_step, schedule=None), donate_argnums=0)

    common = {"backend": jax.default_backend(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "model": args.model, "dataset": args.dataset,
              "batch_size": args.batch_size}
    states = {"engine": parallel.place_state(init()), "minimal": parallel.place_state(init())}
    steps = {"engine": engine, "minimal": reference}
    for name in steps:  # compile and warm up
        states[name], _ = time_steps(steps[name], states[name], batches, 3)
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name in steps:
            states[name], per_step = time_steps(steps[name], states[name], batches, args.steps)
            times[name].append(per_step)
    engine_s, minimal_s = (statistics.median(times[n]) for n in ("engine", "minimal"))
    print(json.dumps({"benchmark": "step_overhead", **common,
                      "engine_ms": round(engine_s * 1e3, 3), "minimal_ms": round(minimal_s * 1e3, 3),
                      "overhead_pct": round(100 * (engine_s / minimal_s - 1), 2),
                      "rounds": args.rounds, "steps_per_round": args.steps}))

    # Host pipeline: full epochs from the (cached) stream, as the loop consumes it.
    list(stream.epoch(1))  # fills the cache
    start, count = time.perf_counter(), 0
    for epoch in range(2, 5):
        for _ in stream.epoch(epoch):
            count += 1
    host_batches_per_s = count / (time.perf_counter() - start)
    steps_per_s = 1.0 / engine_s
    print(json.dumps({"benchmark": "input_pipeline", **common,
                      "host_batches_per_s": round(host_batches_per_s, 1),
                      "train_steps_per_s": round(steps_per_s, 1),
                      "ratio": round(host_batches_per_s / steps_per_s, 2)}))


if __name__ == "__main__":
    main()
