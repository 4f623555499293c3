"""RetinaNet-ResNet-50-FPN inference: jaxvision vs the same network in PyTorch eager, on the same
CPU threads, in one run; and the train-step throughput of the ``retinanet_shapes`` config.

Command (the issue's size: 512x512, batch 4)::

    PYTHONPATH=. python benchmarks/detection.py --image-size 512 --batch 4 --steps 3

The PyTorch side is ``tests/torch_reference.TorchRetinaNet`` (torchvision's module layout,
FrozenBatchNorm2d; torchvision itself is not needed), loaded into jaxvision through
``convert.load_torchvision``, so both compute the same numbers. Both run the network (heads
included, no post-processing), float32, batch ``--batch``; calls are interleaved so that load
from other processes hits both alike. Prints JSON lines: compile time (jax), median seconds
per batch and images/s per framework, the ratio jaxvision / PyTorch images/s (goal >= 1.0),
and (``--train-steps``) the median train step of the shapes RetinaNet through the engine's
step function in images/s.

Measured 2026-12-02 on the shared 2-core Xeon (load about 1-3; another job started midway):
``--image-size 512 --batch 4 --steps 3``: jaxvision 4.34 s per batch (compile 20 s), PyTorch
eager 8.02 s, **ratio 1.85** (goal >= 1.0: met). ``--no-torch --steps 1 --image-size 128
--batch 1 --train-steps 10``: the shapes RetinaNet's train step (batch 32, 64x64) 0.173 s,
185 images/s (compile 10 s). Quiet (load < 1), 2026-12-02 14:26, after the engine's programs
left YNNPACK (``jaxvision.xla_options``), the first command: jaxvision 1.48 s per batch
(compile 3 s), PyTorch eager 2.48 s, **ratio 1.68**.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--conv", default="auto", help="jaxvision conv: auto (fast CPU) or xla")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="also time this many train steps of the shapes RetinaNet")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax
    import numpy as np

    from jaxvision import convert, models
    from jaxvision.xla_options import compiler_options

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    x = np.random.default_rng(0).normal(size=(args.batch, args.image_size, args.image_size,
                                              3)).astype(np.float32)
    model = models.create("retinanet_resnet50_fpn", conv=args.conv,
                          backbone_kwargs=dict(conv=args.conv))
    torch_model = None
    if not args.no_torch:
        import torch
        from torch_reference import TorchRetinaNet

        torch.set_num_threads(args.threads)
        torch_model = TorchRetinaNet().eval()
        variables = convert.load_torchvision(model, torch_model.state_dict(),
                                             input_shape=(1, 64, 64, 3))
        x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    else:
        variables = jax.jit(lambda k: model.init(k, x[:1], train=False))(jax.random.key(0))
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False),
                      compiler_options=compiler_options())
    start = time.perf_counter()
    jax.block_until_ready(forward(variables, x))
    print(json.dumps({"framework": "jaxvision", "compile_s": time.perf_counter() - start}))
    times = {"jaxvision": [], "torch": []}
    for _ in range(args.steps):
        start = time.perf_counter()
        jax.block_until_ready(forward(variables, x))
        times["jaxvision"].append(time.perf_counter() - start)
        if torch_model is not None:
            with torch.no_grad():
                start = time.perf_counter()
                torch_model(x_torch)
                times["torch"].append(time.perf_counter() - start)
    rates = {}
    for name, values in times.items():
        if values:
            median = statistics.median(values)
            rates[name] = args.batch / median
            print(json.dumps({"framework": name, "image_size": args.image_size,
                              "batch": args.batch, "median_s": median,
                              "images_per_s": rates[name]}))
    if "torch" in rates:
        print(json.dumps({"ratio_jaxvision_over_torch": rates["jaxvision"] / rates["torch"]}))
    if args.train_steps:
        train_throughput(args.train_steps)


def train_throughput(steps: int) -> None:
    """Images/s of the retinanet_shapes train step (engine step function, one device)."""
    import jax
    import numpy as np
    import optax

    from experiments import retinanet_shapes
    from jaxvision import models, tasks
    from jaxvision.xla_options import compiler_options
    from jaxvision.data.shapes import generate

    config = retinanet_shapes.get_config()
    model = models.create(config.model, num_classes=5, **config.model_kwargs.to_dict())
    task = tasks.DetectionTask(num_classes=5)
    d = generate(retinanet_shapes.DET64, "train", config.batch_size)
    batch = {"image": d["image"].astype(np.float32) / 255, "boxes": d["boxes"],
             "box_classes": d["classes"], "boxes_valid": d["valid"]}
    variables = jax.jit(lambda k: model.init(k, batch["image"][:1], train=False))(
        jax.random.key(0))
    optimizer = optax.adamw(1e-3)
    opt_state = optimizer.init(variables["params"])

    @functools.partial(jax.jit, compiler_options=compiler_options())
    def step(params, stats, opt_state, batch):
        def loss_fn(p):
            out, new = model.apply({"params": p, "batch_stats": stats}, batch["image"],
                                   train=True, mutable=["batch_stats"])
            return task.loss(out, batch, train=True)[0], new["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    params, stats = variables["params"], variables["batch_stats"]
    start = time.perf_counter()
    params, stats, opt_state, loss = jax.block_until_ready(step(params, stats, opt_state, batch))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        params, stats, opt_state, loss = jax.block_until_ready(
            step(params, stats, opt_state, batch))
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({"train_step": "retinanet_shapes", "batch": config.batch_size,
                      "compile_s": compile_s, "median_s": median,
                      "images_per_s": config.batch_size / median, "loss": float(loss)}))


if __name__ == "__main__":
    main()
