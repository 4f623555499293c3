"""Efficient architectures: MobileNetV2 and EfficientNet-B0 against ResNet-18 on accuracy,
parameters, FLOPs and CPU latency.

Command:  python -m experiments.efficient_architectures --workdir workdirs/efficient_architectures
          (``--config.quick=True``: 128 images at 16 px, 1 epoch, no latency: a smoke run;
          ``--config.latency_batches=1`` times batch 1 only)
Expected: the course says MobileNetV2 and EfficientNet reach accuracy comparable to a ResNet
          with far fewer parameters and FLOPs: at 224 px MobileNetV2 has 3.5M parameters and
          about 0.3 GMACs, EfficientNet-B0 5.3M and 0.39 GMACs, ResNet-18 11.7M and 1.8 GMACs.
          Depthwise convolutions do little arithmetic per byte moved, so on a CPU the latency
          gap is expected to be much smaller than the FLOPs gap.
Measured: 2026-12-02, default config (4 epochs = 88 steps of 64, AdamW 2e-3, cosine), one seed,
          on the shared 2-core machine with other jobs beside it (load 11-16):
          model            test acc  params      GFLOPs  ms, batch 1  ms/image, batch 8  train s
          MobileNetV2      0.850      3,504,872  0.632   206          544                592
          EfficientNet-B0  0.747      5,288,548  0.814   355          471               1008
          ResNet-18        0.986     11,689,512  3.373   327          129                262
          Parameters and FLOPs follow the course: 0.30x and 0.45x ResNet-18's parameters,
          0.19x and 0.24x its FLOPs. Accuracy does not, at this budget: ResNet-18 scores 0.89
          after epoch 2, while both efficient models stay at chance in eval mode until the last
          epoch although MobileNetV2's training accuracy was 0.92 by epoch 3. Their BatchNorm
          running averages lag the fast-changing weights: MobileNetV2's final weights score
          0.93 on the test set normalised by its own statistics and 0.85 with the running ones.
          A longer schedule should narrow the gap (not measured). CPU latency does not follow
          FLOPs: at batch 1 MobileNetV2 takes 0.63x ResNet-18's time for 0.19x its FLOPs and
          EfficientNet-B0 1.09x for 0.24x; at batch 8 they are 4.2x and 3.65x slower than
          ResNet-18, and their training runs (compilation included) took 2.3x and 3.9x as
          long. Depthwise convolutions (XLA's grouped convolution), squeeze-excitation and SiLU
          do little arithmetic per byte moved, while ResNet's 3x3 convolutions run as Winograd
          GEMMs on the library's CPU path. One timing run on a loaded machine: take the batch-1
          ratios as rough; the batch-8 gap and the training times point the same way.
Runtime:  41 min wall, 13 min of CPU (771 s user) on the loaded machine: the training
          (mostly compilation and the efficient models' slow steps) and the eager
          initialisation in ``measure`` at each batch size. ``--config.quick=True``: 11 min
          under the same load, nearly all of it compiling the three models.

Data: the embedded ``digits`` (1,438 training and 359 test images, 10 classes), resized from
8x8 to 32x32 grey: training these networks at 224 px is out of reach of 2 CPU cores, and at
32 px their ImageNet stems still leave a 1x1 map, the same for all three. The models train from
scratch through ``train.train_and_evaluate`` with the same budget (data, epochs, batch,
optimiser, schedule).

Parameters are counted at 1000 classes (the figures papers quote) and at the training size's
ten. FLOPs are XLA's cost analysis of one forward pass per image (a multiply-add counts as two;
GMACs = GFLOPs / 2), counted with XLA's own convolution (``conv="xla"``): the library's CPU
path (``conv="auto"``) runs ResNet's 3x3 convolutions as Winograd transforms, which do fewer
multiplications than the textbook count. Latency is the library's default model on this CPU:
``experiments.architectures.measure`` (a jitted forward pass, median of repeats after a
warm-up) at 224 px for each batch size.
"""

from __future__ import annotations

import copy
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvision import cli, models, plots, train
from jaxvision.data import from_arrays, make_datasets
from jaxvision.data.builders import digits_arrays
from jaxvision.inspect import compiled_flops
from jaxvision.ops.geometry import param_count
from experiments._science import run_engine, series
from experiments.architectures import measure

MODELS = ("mobilenet_v2", "efficientnet_b0", "resnet18")
LABELS = {"mobilenet_v2": "MobileNetV2", "efficientnet_b0": "EfficientNet-B0",
          "resnet18": "ResNet-18"}
NUM_CLASSES = 10


def get_config() -> ml_collections.ConfigDict:
    config = train.default_config()
    config.model = MODELS[0]  # replaced by each of config.models in turn
    config.batch_size = 64
    config.eval_batch_size = 250
    config.num_epochs = 4
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_steps = 10
    config.optimizer.schedule = "cosine"
    config.optimizer.weight_decay = 5e-4
    config.best_metric = ""
    config.tensorboard = False
    config.parallel = "none"
    config.resume = "restart"
    config.log_every_steps = 11
    config.models = MODELS
    config.image_size_train = 32  # the digits are resized from 8x8 to this
    config.num_train = 0  # 0: all 1,438 training images
    config.cost_size = 224  # where parameters, FLOPs and latency are compared
    config.latency_batches = (1, 8)
    config.latency_repeats = 5
    config.quick = False
    return config


def digits_datasets(config):
    """The embedded digits resized bilinearly from 8x8 to ``config.image_size_train`` px (the
    ImageNet stems halve the image five times); ``config.num_train`` caps the training set."""
    size = config.image_size_train
    sources = []
    for split in ("train", "test"):
        images, labels = digits_arrays(split)
        if split == "train" and config.num_train:
            images, labels = images[:config.num_train], labels[:config.num_train]
        resized = jax.image.resize(images.astype(np.float32), (len(images), size, size, 1),
                                   "bilinear")
        images = np.clip(np.rint(np.asarray(resized)), 0, 255).astype(np.uint8)
        sources.append(from_arrays(images, labels, num_classes=NUM_CLASSES))
    return make_datasets(*sources, batch_size=config.batch_size,
                         eval_batch_size=config.eval_batch_size, seed=config.seed)


def costs(name: str, size: int, num_classes: int, channels: int = 3) -> tuple[int, float]:
    """``(parameters, forward GFLOPs per image)`` of ``name`` on a ``size`` px image, counted
    with XLA's own convolution (shapes and lowering only; nothing runs)."""
    model = models.create(name, num_classes=num_classes, conv="xla")
    x = jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x.shape),
                                                  train=False))
    flops = compiled_flops(lambda v, x: model.apply(v, x, train=False), variables, x,
                           compile=False)
    return param_count(variables["params"]), flops / 1e9


def plot_efficiency(path: str, rows: list[dict], batches: tuple[int, ...]) -> None:
    """Accuracy against GFLOPs and against CPU time per image (filled: the first batch size,
    hollow: the others); bubble area proportional to parameters."""
    fig, axes = plots.figure((11, 4.2), ncols=2)
    panels = [("gflops", "forward GFLOPs per image at 224 px (XLA)")]
    if batches:
        panels.append(("ms_per_image", "CPU time per image at 224 px (ms)"))
    for ax, (key, xlabel) in zip(axes.flat, panels):
        right = 0.0
        for i, r in enumerate(rows):
            xs = [r[key]] if key == "gflops" else [r[f"ms_per_image_b{b}"] for b in batches]
            right = max(right, *xs)
            for j, x in enumerate(xs):
                ax.scatter(x, r["accuracy"], s=60 * r["params"] / 1e6, alpha=0.5 if j == 0 else 1,
                           color=f"C{i}" if j == 0 else "none", edgecolor=f"C{i}" if j else "k",
                           label=f"batch {batches[j]}" if key != "gflops" and i == 0 else None)
            if len(xs) > 1:
                ax.plot(xs, [r["accuracy"]] * len(xs), color=f"C{i}", linewidth=0.8)
            ax.annotate(f"{LABELS.get(r['model'], r['model'])}\n{r['params'] / 1e6:.1f}M params",
                        (xs[0], r["accuracy"]), xytext=(0, 18), textcoords="offset points",
                        ha="center", fontsize=8)
        ax.set(xlabel=xlabel, ylabel="test accuracy (digits at 32 px)")
        ax.set_xlim(0, 1.35 * right)
        low = min(r["accuracy"] for r in rows)
        ax.set_ylim(max(0.0, low - 0.1), max(r["accuracy"] for r in rows) + 0.08)
        ax.grid(alpha=0.3)
        if key != "gflops" and len(batches) > 1:
            ax.legend(fontsize=8, loc="lower right", markerscale=0.5)
    if not batches:
        axes.flat[1].set_axis_off()
    fig.suptitle("Accuracy vs cost (bubble area: parameters)")
    plots.save(fig, path)


def main(config, workdir: str) -> list[dict]:
    names = tuple(config.models)
    unknown = [n for n in names if n not in models.list()]
    if unknown:
        raise ValueError(f"unknown models {unknown} in config.models; see jaxvision.models.list()")
    if config.quick:
        config.num_train, config.image_size_train = 128, 16
        config.num_epochs, config.optimizer.warmup_steps = 1, 0
        config.latency_batches = ()
    extra = ("models", "image_size_train", "num_train", "cost_size",
             "latency_batches", "latency_repeats", "quick")
    base = {k: v for k, v in config.to_dict().items() if k not in extra}
    datasets = digits_datasets(config)
    rows = []
    for name in names:
        c = ml_collections.ConfigDict(copy.deepcopy(base))
        c.model = name
        run = run_engine(c, os.path.join(workdir, name), datasets=datasets)
        params, gflops = costs(name, config.cost_size, 1000)
        train_params, train_gflops = costs(name, config.image_size_train, NUM_CLASSES,
                                           channels=1)
        row = {"model": name, "accuracy": float(run.summary["eval_accuracy"]),
               "train_seconds": run.seconds, "params": params, "gflops": gflops,
               "train_params": train_params, "train_gflops": train_gflops,
               "curve": [float(a) for a in series(run.records, "eval", "accuracy")[1]]}
        for batch in config.latency_batches:
            timing = measure(name, (batch, config.cost_size, config.cost_size, 3), latency=True,
                             repeats=config.latency_repeats, max_latency_gflops=float("inf"))
            row[f"latency_ms_b{batch}"] = timing["latency_ms"]
            row[f"ms_per_image_b{batch}"] = timing["latency_ms"] / batch
        rows.append(row)

    batches = tuple(config.latency_batches)
    plot_efficiency(os.path.join(workdir, "efficiency.png"), rows, batches)
    ref = next((r for r in rows if r["model"] == "resnet18"), rows[-1])  # the ratios' base
    ref_name = LABELS.get(ref["model"], ref["model"])
    size, tsize = config.cost_size, config.image_size_train
    lines = [
        f"# Efficient architectures vs {ref_name}", "",
        f"Trained from scratch on the embedded digits resized to {tsize}x{tsize} "
        f"({datasets.train.steps_per_epoch} steps of {config.batch_size} per epoch, "
        f"{datasets.eval.num_examples} test images), "
        f"{config.num_epochs} epochs, {config.optimizer.name} "
        f"lr {config.optimizer.learning_rate} {config.optimizer.schedule}: the same budget for "
        f"every model. Params and GFLOPs at {size} px with 1000 classes (XLA's count of one "
        "forward pass, a multiply-add = 2 FLOPs); latency: median of "
        f"{config.latency_repeats} jitted forward passes at {size} px on {os.cpu_count()} CPU "
        "threads (the library's default convolution); a shared machine inflates it.", "",
        "| model | test acc | params | GFLOPs | params (train) | GFLOPs (train) | "
        + "".join(f"ms, batch {b} | " for b in batches) + f"x {ref_name} params | "
        "x FLOPs | " + "".join(f"x latency b{b} | " for b in batches) + "train (s) |",
        "|---|" + "---:|" * (7 + 2 * len(batches)) + "---:|"]
    for r in rows:
        lines.append(
            f"| {LABELS.get(r['model'], r['model'])} | {r['accuracy']:.4f} | {r['params']:,} | "
            f"{r['gflops']:.3f} | {r['train_params']:,} | {r['train_gflops']:.4f} | "
            + "".join(f"{r[f'latency_ms_b{b}']:.1f} | " for b in batches)
            + f"{r['params'] / ref['params']:.2f} | {r['gflops'] / ref['gflops']:.2f} | "
            + "".join(f"{r[f'latency_ms_b{b}'] / ref[f'latency_ms_b{b}']:.2f} | "
                      for b in batches) + f"{r['train_seconds']:.0f} |")
    lines += ["", "Test accuracy per epoch: " + "; ".join(
        f"{LABELS.get(r['model'], r['model'])} " + ", ".join(f"{a:.3f}" for a in r["curve"])
        for r in rows), "", "![efficiency](efficiency.png)"]
    cli.write_report(workdir, lines, {"rows": rows, "config": config.to_dict()})
    return rows


if __name__ == "__main__":
    cli.run(get_config, main, name="efficient_architectures")
