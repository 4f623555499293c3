"""The architecture zoo side by side: parameters, FLOPs (XLA cost analysis) and CPU latency.

Command:  python -m experiments.architectures --workdir workdirs/architectures
          (--config.models=resnet18,vit_s16 to pick; --config.latency=False for counts only)
Expected: parameter counts equal torchvision's (AlexNet 61.1M, VGG-16 138.4M, ResNet-18 11.7M,
          ResNet-50 25.6M, ViT-B/16 86.6M) and He et al.'s CIFAR ResNets (0.27M..1.7M). FLOPs
          follow the usual figures: ResNet-50 about 8 GFLOPs = 4 GMACs at 224 (the often quoted
          "4 billion FLOPs" are multiply-adds); VGG-16 about 30 GFLOPs with twelve times
          ResNet-18's parameters; ViT-B/16 about 36 GFLOPs. Measured 2026-11-24 (2 shared CPU
          cores, batch 1): XLA GFLOPs ResNet-50 7.95, VGG-16 29.97, ViT-B/16 35.68, AlexNet
          1.32; latency ResNet-18 82 ms, ResNet-50 200 ms, VGG-16 900 ms, ViT-B/16 406 ms.
          Latency tracks FLOPs, not parameters: ViT-B/32 has more parameters than ViT-B/16 and
          ran 2.6x faster. report.md, params_flops.png and latency.png in the workdir.
Runtime:  about 4 minutes on 2 CPU cores for the whole zoo (random init and the forward passes
          of the big models dominate); seconds with --config.latency=False.

FLOPs are XLA's count for one forward pass of one image (a multiply and an add count as two).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections

from jaxvision import cli
from jaxvision import models
from jaxvision.ops.geometry import param_count

# Input geometry of each family: (image size, channels).
_INPUT = [("lenet", 28, 1), ("mlp", 28, 1), ("simple_cnn", 32, 3), ("small_cnn", 32, 3),
          ("cifar_resnet", 32, 3), ("wide_resnet", 32, 3)]
_DEFAULT_MODELS = (
    "mlp", "lenet5", "simple_cnn", "alexnet", "vgg11", "vgg16", "vgg16_bn", "vgg19",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "se_resnet50",
    "cifar_resnet20", "cifar_resnet56", "cifar_resnet110", "wide_resnet28_10",
    "vit_t16", "vit_s16", "vit_b16", "vit_b32")


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.models = ",".join(_DEFAULT_MODELS)  # comma-separated names from models.list()
    config.image_size = 224  # for the ImageNet-style models
    config.batch_size = 1
    config.latency = True
    config.latency_repeats = 5
    config.max_latency_gflops = 100.0  # skip timing models above this forward cost
    return config


def input_shape(name: str, image_size: int, batch: int = 1) -> tuple[int, int, int, int]:
    for prefix, size, channels in _INPUT:
        if name.startswith(prefix):
            return (batch, size, size, channels)
    return (batch, image_size, image_size, 3)


def measure(name: str, shape, *, latency: bool, repeats: int,
            max_latency_gflops: float) -> dict:
    """Params (eval_shape), XLA forward FLOPs (lowered cost analysis), optional latency."""
    small_input = any(name.startswith(prefix) for prefix, _, _ in _INPUT)
    num_classes = 10 if small_input else 1000
    model = models.create(name, num_classes=num_classes)
    init = lambda key: model.init({"params": key, "dropout": key}, jnp.zeros(shape), train=False)
    shapes = jax.eval_shape(init, jax.random.key(0))
    params = param_count(shapes["params"])
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False))
    abstract_vars = {k: v for k, v in shapes.items() if k in ("params", "batch_stats")}
    lowered = forward.lower(abstract_vars, jax.ShapeDtypeStruct(shape, jnp.float32))
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan")))
    result = {"model": name, "input": list(shape), "params": int(params),
              "gflops": flops / 1e9 / shape[0]}
    if latency and flops / 1e9 <= max_latency_gflops:
        variables = {k: v for k, v in init(jax.random.key(0)).items()
                     if k in ("params", "batch_stats")}
        x = jax.random.normal(jax.random.key(1), shape)
        start = time.perf_counter()
        compiled = lowered.compile()
        result["compile_s"] = time.perf_counter() - start
        compiled(variables, x).block_until_ready()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            compiled(variables, x).block_until_ready()
            times.append(time.perf_counter() - start)
        result["latency_ms"] = 1e3 * statistics.median(times)
    return result


def main(config, workdir: str) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(workdir, exist_ok=True)
    names = [n.strip() for n in str(config.models).split(",") if n.strip()]
    unknown = [n for n in names if n not in models.list()]
    if unknown:
        raise ValueError(f"unknown models {unknown} in config.models; see jaxvision.models.list()")
    rows = []
    for name in names:
        row = measure(name, input_shape(name, config.image_size, config.batch_size),
                      latency=config.latency, repeats=config.latency_repeats,
                      max_latency_gflops=config.max_latency_gflops)
        rows.append(row)
        print(json.dumps(row), flush=True)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for row in rows:
        ax.scatter(row["params"] / 1e6, row["gflops"])
        ax.annotate(row["model"], (row["params"] / 1e6, row["gflops"]), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("forward GFLOPs per image (XLA)")
    ax.set_title("Parameters vs compute")
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "params_flops.png"), dpi=120)
    plt.close(fig)

    timed = [r for r in rows if "latency_ms" in r]
    if timed:
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(timed) + 1.2))
        ax.barh([r["model"] for r in timed], [r["latency_ms"] for r in timed])
        ax.set_xscale("log")
        ax.set_xlabel(f"latency, batch {config.batch_size} (ms, XLA:CPU, median)")
        fig.tight_layout()
        fig.savefig(os.path.join(workdir, "latency.png"), dpi=120)
        plt.close(fig)

    lines = ["# Architecture zoo", "",
             f"Batch {config.batch_size}; ImageNet-style models at {config.image_size}x"
             f"{config.image_size}, CIFAR-style at 32x32, LeNet/MLP at 28x28x1. GFLOPs: XLA's "
             "cost analysis of one forward pass per image (GMACs = GFLOPs / 2). Latency: median "
             f"of {config.latency_repeats} runs on {os.cpu_count()} CPU threads after one "
             "warm-up; a shared machine inflates it.", "",
             "| model | input | params | GFLOPs | compile (s) | latency (ms) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {'x'.join(map(str, r['input'][1:]))} | {r['params']:,} | "
                     f"{r['gflops']:.3f} | {r.get('compile_s', float('nan')):.1f} | "
                     f"{r.get('latency_ms', float('nan')):.1f} |")
    lines += ["", "![params vs flops](params_flops.png)"]
    if timed:
        lines.append("![latency](latency.png)")
    cli.write_report(workdir, lines, rows)
    return rows


if __name__ == "__main__":
    cli.run(get_config, main, name="architectures")
