"""Integrated gradients and Grad-CAM on ResNet-18: jaxvision vs captum, same CPU, same run.

Command (the full sizes take long on a 2-core machine: see the measurements below)::

    PYTHONPATH=. python benchmarks/interpret.py             # 16 x 224x224x3, IG with 64 steps
    PYTHONPATH=. python benchmarks/interpret.py --quick     # tiny sizes: a smoke run

Both sides run one ResNet-18 in torchvision's layout with random weights and BatchNorm
statistics (the tests' hand-built reference, ``tests/torch_reference.py``; no torchvision needed),
converted for jaxvision by ``jaxvision.convert``, on the same float32 images and random target
classes, with ``--threads`` threads (XLA:CPU takes one per core).

* Integrated gradients: Gauss-Legendre, ``--n-steps`` points, zero baseline,
  ``--internal-batch-size`` examples per forward pass on both sides;
  ``jaxvision.interpret.attribution.integrated_gradients`` vs captum's ``IntegratedGradients``.
* Grad-CAM at ResNet-18's last stage (``layer4_1`` here, ``layer4`` in torch), ReLU'd and
  bilinearly upsampled to the image: ``jaxvision.interpret.cam.grad_cam`` vs captum's
  ``LayerGradCam(relu_attributions=True)`` + ``LayerAttribution.interpolate(..., "bilinear")``.

jaxvision's side is compiled ahead of time (``compile_s``, not timed); then every round runs
each method on both sides in turn, so that load from other processes hits them alike:
``--ig-repeats`` integrated-gradients calls (minutes each at full size), ``--warmup`` untimed
then ``--repeats`` timed Grad-CAM calls. Prints one JSON object per line: the set-up; per
method and framework the median seconds; per method the ratio captum / jaxvision (> 1:
jaxvision is faster) and the largest difference between the two attributions relative to the
largest magnitude. At 224x224 that difference is about 1e-3, not 1e-7 as at 32x32: among
millions of ReLUs some sit within float32 rounding of zero, and where the two frameworks'
convolutions round differently one flips and the piecewise-constant gradient jumps (more often
with the Winograd convolutions of ``--conv auto``: their error is about 5e-6, against 1e-7).

Why not faster: captum also evaluates all steps as one batch (``torch.cat`` of the scaled
inputs, chunked by ``internal_batch_size``), so batching the steps is no advantage by itself;
both sides run the same forward and input-gradient convolutions, and the ratio is that of
jaxvision's fast CPU convolutions to PyTorch's (``benchmarks/train_step.py``: 1.1-1.2 for a
train step). With ``--conv xla`` integrated gradients run at 0.43 of captum's speed.

Measured 2026-12-01 on a 2-core Xeon shared with other jobs (ratios swing with their load),
default arguments, about 12 minutes at load average 2-3: integrated gradients jaxvision 85.3 s,
captum 125.6 s, **ratio 1.47** (compile 14.9 s, not timed); Grad-CAM jaxvision 0.76 s, captum
1.50 s, **ratio 1.96** (compile 7.8 s); max_rel_diff 1.3e-3 and 4.8e-7. Shorter runs at load
4-6: ``--n-steps 4 --ig-repeats 1 --warmup 0 --repeats 1`` 1.31 and 1.30; ``--n-steps 8
--ig-repeats 2 --repeats 3`` 1.12 and 1.75.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--n-steps", type=int, default=64)
    parser.add_argument("--internal-batch-size", type=int, default=64,
                        help="examples per forward pass of integrated gradients, both sides")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--ig-repeats", type=int, default=1,
                        help="timed integrated-gradients calls per side (minutes each on CPU)")
    parser.add_argument("--repeats", type=int, default=5, help="timed Grad-CAM calls per side")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed Grad-CAM calls per side before those")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--conv", default="auto", help="jaxvision's conv (models.create)")
    parser.add_argument("--quick", action="store_true",
                        help="2 x 32x32 images, 4 steps, 1 repeat: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.image_size, args.n_steps, args.num_classes = 2, 32, 4, 10
        args.internal_batch_size, args.ig_repeats, args.repeats, args.warmup = 4, 1, 1, 0
    return args


def build(args):
    """The torch reference, the converted jaxvision model and variables, images, targets."""
    import numpy as np
    import torch

    from jaxvision import convert, models

    sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "tests"))
    from torch_reference import TorchResNet18, randomize_bn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference = randomize_bn(TorchResNet18(num_classes=args.num_classes)).eval()
    model = models.create("resnet18", num_classes=args.num_classes, conv=args.conv)
    size = args.image_size
    variables = convert.load_torchvision(model, reference.state_dict(),
                                         input_shape=(1, size, size, 3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, size, size, 3)).astype(np.float32)
    target = rng.integers(0, args.num_classes, args.batch)
    return reference, model, variables, x, target


def methods(args, records, reference, model, variables, x, target):
    """``{method: (jaxvision call, captum call)}``, each returning an NHWC (IG) or NHW
    (Grad-CAM) numpy array; jaxvision's compiled first. Without ``jaxvision.interpret.cam``
    Grad-CAM is skipped, with a record saying so."""
    import jax
    import numpy as np
    import torch
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam

    from jaxvision.interpret.attribution import integrated_gradients

    x_torch = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    target_torch = torch.from_numpy(target)
    size = args.image_size

    def captum_ig():
        out = IntegratedGradients(reference).attribute(
            x_torch, target=target_torch, n_steps=args.n_steps, method="gausslegendre",
            internal_batch_size=args.internal_batch_size)
        return out.detach().numpy().transpose(0, 2, 3, 1)

    def captum_cam():
        cam = LayerGradCam(reference, reference.layer4).attribute(
            x_torch, target=target_torch, relu_attributions=True)
        return LayerAttribution.interpolate(cam, (size, size), "bilinear")[:, 0].detach().numpy()

    ours = {"integrated_gradients": lambda v, x, t: integrated_gradients(
        model, v, x, t, n_steps=args.n_steps, internal_batch_size=args.internal_batch_size)[0]}
    theirs = {"integrated_gradients": captum_ig}
    try:
        from jaxvision.interpret.cam import grad_cam
    except ImportError as error:
        emit(records, {"what": "skipped", "method": "grad_cam",
                       "why": f"jaxvision.interpret.cam.grad_cam is not importable ({error})"})
    else:
        ours["grad_cam"] = lambda v, x, t: grad_cam(model, v, x, "layer4_1", t)
        theirs["grad_cam"] = captum_cam

    calls = {}
    for name, f in ours.items():
        start = time.perf_counter()
        compiled = jax.jit(f).lower(variables, x, target).compile()
        emit(records, {"what": "compile", "method": name,
                       "compile_s": time.perf_counter() - start})
        calls[name] = (lambda c=compiled: np.asarray(c(variables, x, target)), theirs[name])
    return calls


def emit(records: list[dict], record: dict) -> None:
    print(json.dumps(record), flush=True)
    records.append(record)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    import captum
    import jax
    import torch

    records = []
    emit(records, {"what": "setup", "batch": args.batch, "image_size": args.image_size,
                   "n_steps": args.n_steps, "internal_batch_size": args.internal_batch_size,
                   "threads": args.threads, "conv": args.conv, "jax": jax.__version__,
                   "torch": torch.__version__, "captum": captum.__version__,
                   "load_average": os.getloadavg()[0]})
    calls = methods(args, records, *build(args))
    # (untimed, timed) calls per side. IG's first call needs no warm-up: jaxvision's side is
    # compiled already and torch's one-time set-up is nothing next to minutes of compute.
    schedule = {"integrated_gradients": (0, args.ig_repeats),
                "grad_cam": (args.warmup, args.repeats)}
    times = {(name, side): [] for name in calls for side in ("jaxvision", "captum")}
    outputs = {}
    for i in range(max(sum(schedule[name]) for name in calls)):
        for name, pair in calls.items():
            if i >= sum(schedule[name]):
                continue
            for side, call in zip(("jaxvision", "captum"), pair):
                start = time.perf_counter()
                outputs[name, side] = call()
                if i >= schedule[name][0]:
                    times[name, side].append(time.perf_counter() - start)
    for name in calls:
        medians = {}
        for side in ("jaxvision", "captum"):
            medians[side] = statistics.median(times[name, side])
            emit(records, {"what": "time", "method": name, "framework": side,
                           "median_s": medians[side], "times_s": times[name, side]})
        ours, theirs = outputs[name, "jaxvision"], outputs[name, "captum"]
        emit(records, {"what": "ratio", "method": name,
                       "captum_over_jaxvision": medians["captum"] / medians["jaxvision"],
                       "max_rel_diff": float(abs(ours - theirs).max()
                                             / max(abs(theirs).max(), 1e-30))})
    return records


if __name__ == "__main__":
    main()
