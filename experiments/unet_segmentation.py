"""What skips and Dice buy: UNet variants and segmentation losses on the embedded ``shapes`` masks.

Command:  python -m experiments.unet_segmentation --workdir workdirs/unet_segmentation
          (``--config.quick=True``: one seed, fewer images and epochs, for a smoke run)
Expected: UNet beats its no-skip ablation on boundary F-score; on tiny objects (under 2% of the
          pixels) Dice and Dice + CE beat plain cross-entropy on foreground Dice while pixel
          accuracy stays near 99% for all three; the original (valid, cropped) UNet and the
          padded one are compared on the same 64x64 pixels.
Measured: 2026-12-01, on 2 CPU cores shared with other jobs (load average 10-16), a reduced
          run: ``--config.studies='("skips","losses")' --config.num_train=320
          --config.num_test=100 --config.num_epochs=3 --config.loss_epochs=3
          --config.model_kwargs.depth=2 --config.model_kwargs.base_width=8`` (30 steps of 32
          per run; undertrained):
          skips: UNet foreground Dice 0.696, boundary F (1 px) 0.096, mIoU 0.191, pixel
          accuracy 0.711; no-skip 0.464 / 0.085 / 0.171 / 0.705. The no-skip predictions show
          stronger checkerboard patterns inside the objects (overlays_skips.png); both are far
          from converged.
          losses on tiny64 (foreground 0.58% of the pixels), 3 seeds, mean ± sd: foreground
          Dice cross-entropy 0.243 ± 0.214 (one seed never predicts an object: 0.0), Dice
          0.488 ± 0.152, Dice + CE 0.319 ± 0.273; boundary F 0.381 / 0.614 / 0.472; pixel
          accuracy 0.989 / 0.990 / 0.991 for all three, hiding the difference (predicting
          background everywhere already scores 0.994). Dice + CE (alpha 0.5) did not beat CE
          clearly in 30 steps; the seeds' spread is large at this budget.
          valid (``--config.studies='("valid",)' --config.num_train=320 --config.num_test=100
          --config.num_epochs=3``, depth 2, width 16, 30 steps): the padded UNet (BatchNorm)
          reaches foreground Dice 0.914, boundary F 0.314, mIoU 0.312; the original (valid
          convolutions, no normalisation, mirror-padded 104 -> 64) still predicts background
          everywhere after 30 steps (foreground Dice 0.000, mIoU 0.130): without BatchNorm
          it needs a longer schedule, as in the paper. 6 minutes wall.
          Not measured here for lack of time: the default sizes (640 images, depth 3, width
          16). The default padded UNet reached foreground Dice 0.920 after one epoch of 1000
          seg64 images (31 steps).
Runtime:  the reduced run above: 23.5 minutes wall at that load (5-6 minutes per distinct
          program, mostly XLA compilation; the on-disk compilation cache in the workdir makes the
          runs that differ only in seed 1-2 minutes each).

Studies (each a set of ``train.train_and_evaluate`` runs on arrays from ``jaxvision.data.shapes``):

1. ``skips``: padded UNet vs ``unet_noskip`` (same widths) on ``seg64`` (2-6 objects, 6 classes
   with background): mIoU, foreground Dice and the boundary F-score (1-pixel tolerance).
2. ``losses``: cross-entropy vs Dice vs Dice + CE (alpha 0.5) on ``tiny64`` (1-2 objects of
   radius 2-3 pixels, read as a binary object mask; ``loss_datasets`` can add ``seg64``),
   ``seeds`` seeds each: foreground Dice, boundary F and pixel accuracy (which hides the
   difference).
3. ``valid``: the original UNet (unpadded convolutions, no BatchNorm, depth 2) on the images
   mirror-padded by 20 pixels (overlap-tile: its 64x64 output covers the image), vs the padded
   UNet of the same widths on the images themselves.
Overlays of predictions on test images are written as PNGs (``overlays_*.png``).
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np

from jaxvision import cli, inference, plots, train
from jaxvision.data import from_arrays, make_datasets
from jaxvision.data.builders.shapes import Shapes
from jaxvision.data.shapes import generate

# The embedded TFDS variants' specs (``shapes/seg64``, ``shapes/tiny64``), rendered to arrays.
SPECS = {c.name: c.spec for c in Shapes.BUILDER_CONFIGS}


def get_config() -> ml_collections.ConfigDict:
    config = train.default_config()
    config.task = "segmentation"
    config.task_kwargs = ml_collections.ConfigDict(dict(per_class_metrics=True,
                                                        boundary_tolerance=1))
    config.model = "unet"
    # XLA's convolution: these small networks are compile-bound on a CPU, and it compiles about
    # 3x faster than the default Winograd/im2col path.
    config.model_kwargs = ml_collections.ConfigDict(dict(depth=3, base_width=16, conv="xla"))
    config.batch_size = 32
    config.eval_batch_size = 100
    config.num_epochs = 3
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.schedule = "cosine"
    config.best_metric = ""
    config.tensorboard = False
    config.log_every_steps = 50
    config.parallel = "none"
    # Experiment options.
    config.num_train = 640
    config.num_test = 200
    config.seeds = 3
    config.loss_epochs = 3
    config.loss_datasets = ("tiny64",)  # add "seg64" for the same comparison on larger objects
    config.studies = ("skips", "losses", "valid")
    config.quick = False
    return config


def shapes_arrays(kind: str, split: str, num: int, *, binary: bool = False,
                  pad: int = 0) -> dict[str, np.ndarray]:
    """Images and masks of a ``shapes`` variant; ``binary`` maps every object to 1; ``pad``
    mirror-pads both (the paper's overlap-tile input for unpadded convolutions)."""
    spec = dataclasses.replace(SPECS[kind], num_train=max(num, 1), num_test=max(num, 1))
    data = generate(spec, split, num)
    images, masks = data["image"], data["semantic_mask"].astype(np.int32)
    if binary:
        masks = (masks > 0).astype(np.int32)
    if pad:
        images = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        masks = np.pad(masks, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    return {"image": images, "mask": masks, "num_classes": 2 if binary else 6}


def datasets_for(config, kind: str, *, binary: bool = False, pad: int = 0, seed: int = 0):
    splits = [shapes_arrays(kind, split, n, binary=binary, pad=pad)
              for split, n in (("train", config.num_train), ("test", config.num_test))]
    sources = [from_arrays(d["image"], mask=d["mask"], num_classes=d["num_classes"])
               for d in splits]
    return make_datasets(*sources, batch_size=config.batch_size,
                         eval_batch_size=config.eval_batch_size, seed=seed), splits[1]


def run(config, workdir: str, *, kind: str = "seg64", model: str = "unet", binary: bool = False,
        pad: int = 0, seed: int = 0, dice_weight: float = 0.0, **overrides) -> dict:
    """One ``train_and_evaluate`` run; returns its summary (``eval_*`` metrics)."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.seed = seed
    config.model = model
    config.task_kwargs.dice_weight = dice_weight
    for key, value in overrides.items():
        target = config
        *path, leaf = key.split(".")
        for part in path:
            target = target[part]
        target[leaf] = value
    datasets, test = datasets_for(config, kind, binary=binary, pad=pad, seed=seed)
    config.num_classes = datasets.num_classes
    summary = train.train_and_evaluate(config, workdir, datasets=datasets)
    # The trained network behind the inference contract: uint8 images in, class ids out.
    summary["predictions"] = inference.load(workdir)(test["image"][:8])
    height, width = test["mask"].shape[1:3]  # shown: the image region (without the padding)
    summary["test"] = {k: test[k][:8, pad:height - pad, pad:width - pad]
                       for k in ("image", "mask")}
    return summary


def save_overlays(path: str, rows: dict) -> None:
    """One row per run: its predictions on the first test images, over the images; the first
    row is the ground truth."""
    import matplotlib.pyplot as plt

    first = next(iter(rows.values()))
    truth = {"ground truth": {"predictions": first["test"]["mask"], "test": first["test"]}}
    rows = {**truth, **rows}
    n = len(first["test"]["image"])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.45 * len(rows)), squeeze=False)
    for r, (name, summary) in enumerate(rows.items()):
        for i in range(n):
            _overlay(axes[r, i], summary["test"]["image"][i], summary["predictions"][i],
                     name if i == 0 else "")
    plots.save(fig, path, dpi=110)


def _overlay(ax, image, mask, title):
    colours = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                        [245, 130, 48]], np.float32) / 255
    rgb = image.astype(np.float32) / 255
    crop = (rgb.shape[0] - mask.shape[0]) // 2
    rgb = rgb[crop:crop + mask.shape[0], crop:crop + mask.shape[1]]
    shown = np.where(mask[..., None] > 0, 0.45 * rgb + 0.55 * colours[mask % 6], rgb)
    ax.imshow(shown)
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def _mean_sd(values):
    values = np.asarray(values, np.float64)
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def main(config, workdir: str) -> dict:
    import time

    import jax

    # Runs that differ only in seed compile to the same programs: cache them on disk.
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "xla_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    if config.quick:
        config.num_train, config.num_test, config.seeds = 256, 100, 1
        config.num_epochs, config.loss_epochs = 2, 2
    results, lines = {}, ["# UNet segmentation: skips, Dice, valid vs padded", ""]
    start = time.time()
    if "skips" in config.studies:
        rows = {}
        for model in ("unet", "unet_noskip"):
            rows[model] = run(config, os.path.join(workdir, f"skips_{model}"), model=model)
        results["skips"] = {m: {k: r[k] for k in ("eval_miou", "eval_foreground_dice",
                                                  "eval_boundary_f", "eval_pixel_accuracy")}
                            for m, r in rows.items()}
        save_overlays(os.path.join(workdir, "overlays_skips.png"), rows)
        lines += ["## Skips (seg64, 6 classes)", "", "| model | mIoU | foreground Dice | "
                  "boundary F (1 px) | pixel accuracy |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {m} | {r['eval_miou']:.3f} | {r['eval_foreground_dice']:.3f} | "
                  f"{r['eval_boundary_f']:.3f} | {r['eval_pixel_accuracy']:.3f} |"
                  for m, r in results["skips"].items()]
        lines.append("")
    if "losses" in config.studies:
        losses = {"cross-entropy": 0.0, "Dice": 1.0, "Dice + CE": 0.5}
        results["losses"] = {}
        for kind in config.loss_datasets:
            table, shown = {}, {}
            for name, weight in losses.items():
                runs = [run(config, os.path.join(workdir, f"loss_{kind}_{weight}_{seed}"),
                            kind=kind, binary=True, seed=seed, dice_weight=weight,
                            num_epochs=config.loss_epochs)
                        for seed in range(config.seeds)]
                table[name] = {k: [r[f"eval_{k}"] for r in runs]
                               for k in ("foreground_dice", "boundary_f", "pixel_accuracy")}
                shown[name] = runs[0]
            results["losses"][kind] = table
            save_overlays(os.path.join(workdir, f"overlays_losses_{kind}.png"), shown)
            test = shapes_arrays(kind, "test", config.num_test, binary=True)
            fraction = float(test["mask"].mean())
            results["losses"][kind + "_foreground_fraction"] = fraction
            lines += [f"## Losses on {kind} as a binary mask (foreground {100 * fraction:.2f}% "
                      f"of the pixels; {config.seeds} seeds, mean ± sd)", "",
                      "| loss | foreground Dice | boundary F | pixel accuracy |",
                      "|---|---:|---:|---:|"]
            lines += [f"| {name} | {_mean_sd(t['foreground_dice'])} | "
                      f"{_mean_sd(t['boundary_f'])} | {_mean_sd(t['pixel_accuracy'])} |"
                      for name, t in table.items()]
            lines.append("")
    if "valid" in config.studies:
        kw = dict(depth=2, base_width=16, conv="xla")
        valid = run(config, os.path.join(workdir, "valid_original"), model="unet_original",
                    pad=20, **{"model_kwargs": ml_collections.ConfigDict(kw),
                               "task_kwargs.crop_labels": True})
        padded = run(config, os.path.join(workdir, "valid_padded"), model="unet",
                     **{"model_kwargs": ml_collections.ConfigDict(kw)})
        named = {"original (valid, 104 -> 64)": valid, "padded (64 -> 64)": padded}
        results["valid"] = {name: {k: r[k] for k in ("eval_miou", "eval_foreground_dice",
                                                     "eval_boundary_f")}
                            for name, r in named.items()}
        save_overlays(os.path.join(workdir, "overlays_valid.png"), named)
        lines += ["## Original (valid convolutions, mirror-padded input) vs padded, depth 2",
                  "", "| model | mIoU | foreground Dice | boundary F |", "|---|---:|---:|---:|"]
        lines += [f"| {m} | {r['eval_miou']:.3f} | {r['eval_foreground_dice']:.3f} | "
                  f"{r['eval_boundary_f']:.3f} |" for m, r in results["valid"].items()]
        lines.append("")
    results["runtime_s"] = time.time() - start
    lines += [f"Runtime: {results['runtime_s']:.0f} s.", ""]
    lines += [f"![{name}]({name})" for name in sorted(os.listdir(workdir))
              if name.startswith("overlays_")]
    lines += ["",
              "Command: `python -m experiments.unet_segmentation --workdir "
              "workdirs/unet_segmentation`"]
    cli.write_report(workdir, lines, results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="unet_segmentation")
