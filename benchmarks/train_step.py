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

* ``auto``: the model as ``models.create`` builds it, with no convolution option: the default
  ``conv="auto"`` (``jaxvision.nn.fast_conv_general_dilated``): Winograd F(4x4, 3x3) batched
  GEMMs for the 3x3 stride-1 convolutions, im2col GEMMs for the strided, 1x1 and stem ones.
* ``xla``: the same model with ``conv="xla"``; XLA:CPU runs every convolution itself (on its
  Eigen kernels: every variant compiles with ``jaxvision.xla_options``, as the engine does).
* ``.../bfloat16``: bfloat16 compute with float32 parameters (not the same arithmetic as the
  PyTorch side; for information only).

The fraction of peak always counts the direct convolutions' FLOPs (the ``xla`` variant's XLA
count, 372 GFLOP per step), so Winograd's saved multiplications show up as a higher fraction.

Measured on this 2-core Xeon (AVX-512), quiet machine (load < 2), ``--steps 7``:

* 2026-12-02, without YNNPACK (``jaxvision.xla_options``; JAX 0.10.2 hands XLA:CPU's
  convolutions to it by default): ``auto`` **1.10**, ``xla`` 0.74 (peak 441 GFLOP/s, PyTorch
  1.62 s/step). The same run with YNNPACK, earlier that day (``--steps 5``, the options not yet
  in the library, so through ``--xla-flags``): ``auto`` 0.74 -> 0.86 and ``xla`` 0.58 -> 0.82
  when ``--xla_cpu_experimental_ynn_fusion_type=`` turned it off; ``xla`` 1.6x faster per step.

* 2026-12-01, issue 11 (the fast convolution is the default): three runs of the default
  ``auto``: ratio 1.26, 1.14, 1.14, **median 1.14**; the matmul peak was lower than on
  2026-11-25 (209-265 GFLOP/s), PyTorch 3.2 s/step.

Issue 4, 2026-11-25 (the variant was then called ``fast``):

* ``--conv-impl fast``, five runs on the final code: ``fast`` 1.69-1.71 s/step (75.0-75.9 img/s,
  50-57% of the 383-444 GFLOP/s matmul peak); PyTorch 1.82-1.94 s/step (65.9-70.3 img/s,
  45-52%); ratio 1.08-1.14, **median 1.10**. Compile 5.5-5.8 s (``xla``: 1.8 s). (Five
  earlier runs, before the im2col GEMM went through ``ops.extract_patches``: 1.09-1.17.)
* Default ``xla,fast``, three runs: ratio 0.98, 1.04 and 1.10 for ``fast`` (PyTorch's step
  time moved between 1.69 and 1.87 s across these runs, ours between 1.70 and 1.79 s);
  ``xla`` 0.41-0.47 (4.0-4.2 s/step, 21-24% of peak).
* What helped, in order (the ratio in one run after each change): im2col weight gradient only 0.56; Winograd
  with autodiff through the transforms 0.73; sparse, one-fusion transforms and a custom VJP
  whose input gradient is Winograd again 0.94; im2col for strided and 1x1 convolutions
  (string padding resolved) 1.01; the input gradient through the adjoint transforms (one
  transform fewer per backward) 1.11; the RGB stem on im2col instead of Winograd 1.18.
* Per 3x3 convolution, forward + both gradients, batch 128 (``benchmarks/conv.py``, median
  ms xla / fast / torch): 32x32x64 394 / 154 / 153; 16x16x128 213 / 78 / 97; 8x8x256
  143 / 72 / 73; 4x4x512 108 / 110 / 80 (im2col: Winograd's transforms cost more than they
  save below 8x8).
* Where the ``fast`` step's CPU time goes (profile): GEMMs 46%, Winograd transforms 21%, the
  Winograd kernel-gradient GEMM (a TN product XLA leaves to single-threaded Eigen) 7%, im2col
  patches 5%, BatchNorm/ReLU/residual fusions 15%; and about 0.5 s of system time per step
  in page faults: XLA:CPU allocates its 1.47 GB of temporaries afresh for every step.
* What did not help: XLA flags (``--xla_cpu_use_onednn``, ``--xla_cpu_use_xnnpack``,
  ``--xla_cpu_experimental_{onednn,xnn,ynn}_fusion_type=individual_dot,...``: the same or
  up to 50% slower); bfloat16; Winograd F(2x2, 3x3) (2.25x fewer multiplications than direct
  instead of 4x, same transform cost); dense (broadcast) transforms (2-3x slower than the
  sparse ones); splitting the kernel-gradient GEMM; XLA's own convolution at 4x4 or for the
  strided convolutions (no gain or 15% slower); glibc malloc settings that stop the page
  faults (``MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=...``) speed PyTorch up more than JAX.
* Under load from other jobs the ratios swing widely (PyTorch's OpenMP threads suffer more
  from oversubscription); quote quiet-machine runs.
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
    parser.add_argument("--conv-impl", default="auto",
                        help="comma-separated jaxvision variants <conv impl>[/<dtype>], conv "
                        f"impl in {CONV_IMPLS}, dtype in {DTYPES} (default float32)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    return parser.parse_args(argv)


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ----------------------------------------------------------------------------- jax side

CONV_IMPLS = ("auto", "xla")
DTYPES = ("float32", "bfloat16")


def make_jax_step(args, variant: str):
    """Compiles the jaxvision train step for ``variant`` = ``conv_impl[/compute_dtype]``;
    returns (run_one_step, compile_s, xla_flops)."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxvision.models.resnet import ResNet
    from jaxvision.nn.blocks import BasicBlock
    from jaxvision.xla_options import compiler_options

    conv_impl, _, dtype = variant.partition("/")
    dtype = dtype or "float32"
    if conv_impl not in CONV_IMPLS or dtype not in DTYPES:
        raise ValueError(f"unknown variant {variant!r}: use <conv impl>[/<dtype>] with conv impl "
                         f"in {CONV_IMPLS} and dtype in {DTYPES}")
    stages = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[args.depth]
    model = ResNet(stage_sizes=stages, block=BasicBlock, num_classes=10, stem="cifar",
                   base_features=args.width, dtype=getattr(jnp, dtype),
                   **({} if conv_impl == "auto" else {"conv": conv_impl}))
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
    step = jax.jit(train_step, donate_argnums=(0, 1, 2), compiler_options=compiler_options())
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
