"""One 3x3 convolution, forward + input and kernel gradients: XLA vs jaxvision's fast CPU path vs
PyTorch, at each ResNet-18 (CIFAR) stage shape.

Command (2 idle CPU cores, about a minute)::

    PYTHONPATH=. python benchmarks/conv.py

Prints one JSON line per (shape, implementation): the median milliseconds of a
``value_and_grad`` of ``sum(conv(x, w) * dy)`` over ``--repeats`` calls, and GFLOP/s counting
the direct convolution's 3 x 2*N*H*W*Cin*Cout*9 FLOPs. Implementations: ``xla``
(``lax.conv_general_dilated``), ``fast`` (``jaxvision.nn.fast_conv_general_dilated``: Winograd
F(4x4, 3x3) from 8x8, 16 channels and 256 output tiles, im2col below), ``torch`` (``conv2d`` forward and
``autograd.grad``, when torch is installed), all on the same threads.

Measured on this 2-core Xeon (AVX-512), quiet machine, issue 4, 2026-11-25, batch 128,
median ms xla / fast / torch (GFLOP/s of fast): 32x32x64 394 / 154 / 153 (188); 16x16x128
213 / 78 / 97 (374); 8x8x256 143 / 72 / 73 (401); 4x4x512 108 / 110 / 80 (264, im2col).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

SHAPES = ((32, 64), (16, 128), (8, 256), (4, 512))  # (spatial size, channels) per ResNet stage


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def jax_timers(batch: int, size: int, channels: int):
    import jax
    from jax import lax

    from jaxvision.nn import fast_conv_general_dilated
    from jaxvision.xla_options import compiler_options

    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (batch, size, size, channels))
    w = jax.random.normal(keys[1], (3, 3, channels, channels)) * 0.05
    dy = jax.random.normal(keys[2], x.shape)
    timers = {}
    for name, conv in (("xla", lax.conv_general_dilated), ("fast", fast_conv_general_dilated)):
        def loss(x, w, conv=conv):
            return (conv(x, w, (1, 1), ((1, 1), (1, 1)),
                         dimension_numbers=("NHWC", "HWIO", "NHWC")) * dy).sum()
        step = jax.jit(jax.value_and_grad(loss, (0, 1)), compiler_options=compiler_options())
        timers[name] = lambda step=step: jax.block_until_ready(step(x, w))
    return timers


def torch_timer(batch: int, size: int, channels: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    w = (torch.randn(channels, channels, 3, 3) * 0.05).requires_grad_(True)
    dy = torch.randn(batch, channels, size, size)

    def run():
        y = torch.nn.functional.conv2d(x, w, padding=1)
        torch.autograd.grad(y, (x, w), dy)
    return run


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--shapes", default=",".join(f"{s}x{c}" for s, c in SHAPES),
                        help="comma-separated <size>x<channels>")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    records = []
    for shape in args.shapes.split(","):
        size, channels = (int(v) for v in shape.split("x"))
        timers = jax_timers(args.batch, size, channels)
        if have_torch:
            timers["torch"] = torch_timer(args.batch, size, channels, args.threads)
        flops = 3 * 2 * args.batch * size * size * channels * channels * 9
        for name, timer in timers.items():
            ms = _median_ms(timer, args.repeats)
            record = {"what": "conv3x3_fwd_bwd", "impl": name, "size": size,
                      "channels": channels, "batch": args.batch, "median_ms": ms,
                      "gflops": flops / ms / 1e6, "threads": args.threads}
            print(json.dumps(record), flush=True)
            records.append(record)
    return records


if __name__ == "__main__":
    main()
