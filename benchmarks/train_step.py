"""ResNet-18 (CIFAR stem) train step: jaxvision on XLA:CPU vs the same network in PyTorch eager.

Command (2 idle CPU cores, about 2 minutes)::

    PYTHONPATH=. python benchmarks/train_step.py --steps 5

Prints one JSON object per line: the machine's float32 matmul peak (2048^3, measured in this run
with both frameworks, the larger one counts), per jaxvision variant the compile time and XLA's
FLOP count for one step, then per framework the median step time, images/s and the fraction of
the peak (XLA FLOPs / step time / peak), and finally each jaxvision variant's images/s divided
by PyTorch's. Both sides run batch 128 of 32x32x3, SGD(lr 0.1, momentum 0.9, weight decay 5e-4),
BatchNorm in training mode, softmax cross-entropy, float32, on ``--threads`` threads (XLA:CPU
uses one intra-op thread per core). Steps of all variants are interleaved one by one, so load
from other processes on a shared machine hits them alike; compare ratios from one run only.

Variants (``--conv-impl``, comma-separated ``<conv impl>[/<dtype>]``):

* ``xla``: the plain Flax model; XLA:CPU runs every convolution through Eigen.
* ``matmul_dw``: ``jaxvision.nn.conv_general_dilated_matmul_dw``. XLA lowers a convolution's
  weight gradient to a convolution whose kernel is the whole 32x32 output-gradient map, which
  Eigen runs at about a third of the forward speed; here it is one im2col GEMM instead.
* ``.../bfloat16``: bfloat16 compute with float32 parameters (not the same arithmetic as the
  PyTorch side; for information only).

Measured on this 2-core Xeon (AVX-512, shared with other jobs), issue 4, 2026-11-24:

* Quiet machine (load < 2): PyTorch 1.90 s/step (67.6 img/s, 51% of the 387 GFLOP/s matmul
  peak); ``xla`` 4.01 s (31.9 img/s, ratio 0.47); ``matmul_dw`` 3.39 s (37.8 img/s, ratio 0.56).
  Compile: 1.8 s (``xla``), 3.1 s (``matmul_dw``); XLA counts 372 GFLOP per step.
* Per convolution (batch 128, 3x3, GFLOP/s, jax fwd / input-grad / weight-grad vs torch fwd):
  32x32x64: 117 / 108 / 34 vs 204; 16x16x128: 321 / 307 / 71 vs 402. The weight gradient is
  slow for every formulation tried (XLA conv, im2col GEMM in NN/TN/NT layouts, K-chunked
  batched GEMMs, per-kernel-row GEMMs: 20-80 GFLOP/s), because Eigen's GEMM reaches only
  50-100 GFLOP/s on its shape (576x64 output, K = 131,072) against 320 on square matrices.
* XLA flags made no measurable difference to the convolutions in this jaxlib build:
  ``--xla_cpu_use_onednn``, ``--xla_cpu_experimental_onednn_custom_call``,
  ``--xla_cpu_experimental_{onednn,xnn,ynn}_fusion_type=individual_convolution,individual_dot``.
  bfloat16 compute did not help either (no AMX path for Eigen convolutions).
  ``--xla_cpu_prefer_vector_width=512`` (fusions only): alternating A/B runs differed by less
  than the run-to-run noise (3.2-5.6 s per step either way on the loaded machine).
* Under load from other jobs the ratios rise and swing, because PyTorch's OpenMP threads
  suffer more from oversubscription: load 5-6: ``xla`` 0.63 and 0.86, ``matmul_dw`` 0.74 and
  0.92 (two runs, 5 steps each); load 7-10 with 3 steps: 0.36-0.91 and 0.45-0.97. Quote
  quiet-machine runs; the target ratio >= 1.0 is not reached on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per framework")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--depth", type=int, default=18, choices=(18, 34))
    parser.add_argument("--width", type=int, default=64, help="stem width (64 = ResNet-18)")
    parser.add_argument("--xla-flags", default="", help="extra XLA_FLAGS, set before JAX starts")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument("--conv-impl", default="xla,fast",
                        help="comma-separated jaxvision variants <conv impl>[/<dtype>], conv "
                        f"impl in {CONV_IMPLS}, dtype in {DTYPES} (default float32)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    return parser.parse_args(argv)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ----------------------------------------------------------------------------- jax side

CONV_IMPLS = ("xla", "fast")
DTYPES = ("float32", "bfloat16")


def make_jax_step(args, variant: str):
    """Compiles the jaxvision train step for ``variant`` = ``conv_impl[/compute_dtype]``;
    returns (run_one_step, compile_s, xla_flops)."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxvision.models.resnet import ResNet
    from jaxvision.nn.blocks import BasicBlock

    conv_impl, _, dtype = variant.partition("/")
    dtype = dtype or "float32"
    if conv_impl not in CONV_IMPLS or dtype not in DTYPES:
        raise ValueError(f"unknown variant {variant!r}: use <conv impl>[/<dtype>] with conv impl "
                         f"in {CONV_IMPLS} and dtype in {DTYPES}")
    stages = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[args.depth]
    model = ResNet(stage_sizes=stages, block=BasicBlock, num_classes=10, stem="cifar",
                   base_features=args.width, dtype=getattr(jnp, dtype),
                   conv_general_dilated=conv_impl)
    tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.1, momentum=0.9))
    shape = (args.batch, args.image_size, args.image_size, 3)
    variables = model.init(jax.random.key(0), jnp.zeros((1,) + shape[1:]), train=False)
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = tx.init(params)

    def train_step(params, batch_stats, opt_state, images, labels):
        def loss_fn(params):
            logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, images,
                                          train=True, mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(
                logits.astype(jnp.float32), labels).mean()
            return loss, updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    rng = jax.random.key(1)
    images = jax.random.normal(rng, shape, jnp.float32)
    labels = jax.random.randint(rng, (args.batch,), 0, 10)
    step = jax.jit(train_step, donate_argnums=(0, 1, 2))
    start = time.perf_counter()
    compiled = step.lower(params, batch_stats, opt_state, images, labels).compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan")))
    state = [params, batch_stats, opt_state]

    def run_one_step() -> float:
        *new_state, loss = compiled(*state, images, labels)
        state[:] = new_state
        return float(loss)

    return run_one_step, compile_s, flops


def jax_matmul_peak(size: int, repeats: int = 5) -> float:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    matmul = jax.jit(lambda a, b: a @ b)
    matmul(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


# --------------------------------------------------------------------------- torch side

def make_torch_step(args):
    """The same ResNet-18 train step in PyTorch eager; returns run_one_step."""
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)

    class Block(nn.Module):
        def __init__(self, inplanes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + identity)

    class Net(nn.Module):
        def __init__(self, stages, width):
            super().__init__()
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            layers, inplanes = [], width
            for s, n in enumerate(stages):
                planes = width * 2**s
                for j in range(n):
                    layers.append(Block(inplanes, planes, 2 if s > 0 and j == 0 else 1))
                    inplanes = planes
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(inplanes, 10)

        def forward(self, x):
            x = self.layers(torch.relu(self.bn1(self.conv1(x))))
            return self.fc(x.mean((2, 3)))

    stages = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[args.depth]
    torch.manual_seed(0)
    net = Net(stages, args.width).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(args.batch, 3, args.image_size, args.image_size)
    labels = torch.randint(0, 10, (args.batch,))
    loss_fn = nn.CrossEntropyLoss()

    def run_one_step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(images), labels)
        loss.backward()
        opt.step()
        return loss.item()

    return run_one_step


def torch_matmul_peak(size: int, threads: int, repeats: int = 5) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


def main(argv=None) -> dict:
    args = parse_args(argv)
    flags = os.environ.get("XLA_FLAGS", "")
    if args.xla_flags:
        if "jax" in sys.modules:
            raise RuntimeError("--xla-flags must be set before JAX is imported; run the script "
                               "in a fresh process")
        flags = f"{flags} {args.xla_flags}".strip()
        os.environ["XLA_FLAGS"] = flags
    try:
        import torch  # noqa: F401
        have_torch = not args.no_torch
    except ImportError:
        have_torch = False

    peak = jax_matmul_peak(args.matmul_size)
    record = {"what": "matmul_peak", "size": args.matmul_size, "jax_gflops": peak / 1e9}
    if have_torch:
        torch_peak = torch_matmul_peak(args.matmul_size, args.threads)
        record["torch_gflops"] = torch_peak / 1e9
        peak = max(peak, torch_peak)
    record["peak_gflops"] = peak / 1e9
    emit(record)

    steps, info = {}, {}
    for impl in args.conv_impl.split(","):
        run, compile_s, flops = make_jax_step(args, impl)
        steps[f"jaxvision[{impl}]"] = run
        info[f"jaxvision[{impl}]"] = {"compile_s": compile_s, "xla_gflops_per_step": flops / 1e9}
        emit({"what": "compile", "framework": f"jaxvision[{impl}]", "compile_s": compile_s,
              "xla_gflops_per_step": flops / 1e9})
    # Fraction of peak counts the direct convolutions' FLOPs (what PyTorch computes), not the
    # fewer that Winograd needs, so that every variant is measured against the same work.
    flops = (info["jaxvision[xla]"]["xla_gflops_per_step"] * 1e9 if "jaxvision[xla]" in info
             else make_jax_step(args, "xla")[2])
    if have_torch:
        steps["torch_eager"] = make_torch_step(args)
    # Interleave the frameworks step by step so that load from other processes on a shared
    # machine hits all of them alike; only ratios from the same run are compared.
    times = {name: [] for name in steps}
    losses = {}
    for i in range(args.warmup + args.steps):
        for name, run in steps.items():
            start = time.perf_counter()
            losses[name] = run()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
    results = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        results[name] = {"what": "train_step", "framework": name, "median_step_s": median,
                         "images_per_s": args.batch / median,
                         "fraction_of_peak": flops / median / peak, "threads": args.threads,
                         "xla_flags": flags, "final_loss": losses[name], "steps": args.steps,
                         "batch": args.batch, **info.get(name, {})}
        emit(results[name])
    if have_torch:
        for name in info:
            results[f"ratio[{name}]"] = {
                "what": "ratio", "framework": name,
                "images_per_s_over_torch": results[name]["images_per_s"]
                / results["torch_eager"]["images_per_s"]}
            emit(results[f"ratio[{name}]"])
    return results


if __name__ == "__main__":
    main()
