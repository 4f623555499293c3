"""What skips and Dice buy: UNet variants and segmentation losses on the embedded ``shapes`` masks.

Command:  python -m experiments.unet_segmentation --workdir workdirs/unet_segmentation
          (``--config.quick=True``: one seed, fewer images and epochs, for a smoke run;
          ``--config.studies='("skips",)'`` runs one study)
Expected: UNet beats its no-skip ablation on boundary F-score; on tiny objects (under 2% of the
          pixels) Dice and Dice + CE beat plain cross-entropy on foreground Dice while pixel
          accuracy stays near 99% for all three; the original (valid, cropped) UNet and the
          padded one are compared on the same 64x64 pixels.
Measured: 2026-12-02, on 2 CPU cores shared with other jobs (load average 10-14), the two
          studies side by side, each with the defaults:
          ``python -m experiments.unet_segmentation --workdir workdirs/unet_seg_skips
          --config.studies='("skips",)'`` and the same with ``losses`` (workdir
          ``workdirs/unet_seg_losses``). Figures: ``seeds_*.png`` (every seed's value and
          mean ± sd), ``curves_*.png`` (held-out foreground Dice and boundary F after every
          epoch, one line per seed), ``overlays_*.png`` (seed 0's predictions, true objects
          outlined in white).
          skips (seg64, UNet depth 3, width 16, 5 epochs of 384 images = 60 steps of 32, 200
          held-out images; 3 seeds, mean ± sd): boundary F (1 px) UNet 0.344 ± 0.111 (per
          seed 0.472, 0.278, 0.282) vs no-skip 0.159 ± 0.033 (0.154, 0.194, 0.128): skips win
          in every seed, the worst UNet seed above the best no-skip one. Foreground Dice
          0.974 ± 0.012 (0.961, 0.979, 0.982) vs 0.882 ± 0.011 (0.871, 0.893, 0.882); mIoU
          0.351 ± 0.118 vs 0.234 ± 0.010; pixel accuracy 0.870 ± 0.027 vs 0.822 ± 0.018. The
          foreground Dice curves have flattened by the last epoch; the UNet's boundary F and
          mIoU are still rising (the shape classes are only partly learnt in 60 steps: a
          single-seed UNet run of 640 images reached boundary F 0.785 and mIoU 0.768 after 100
          of 120 steps before it was stopped for time), the no-skip curves are flat.
          In the overlays the no-skip predictions are striped inside the objects (rows of
          alternating classes: the 8x8 bottleneck upsampled) with ragged edges; the UNet's
          edges follow the outlines, its errors are patches of a wrong class inside objects.
          At width 8 (120 steps) the UNet did not learn the classes (mIoU 0.27, foreground Dice
          falling to 0.48 by the end), hence width 16.
          losses on tiny64 (binary, foreground 0.59% of the pixels; UNet depth 2, width 8, 6
          epochs of 640 images = 120 steps of 32; 3 seeds): foreground Dice cross-entropy
          0.553 ± 0.482 (per seed 0.000, 0.883, 0.775), Dice 0.828 ± 0.236 (0.986, 0.556,
          0.940), Dice + CE (alpha 0.5) 0.888 ± 0.041 (0.923, 0.843, 0.899); boundary F 0.661 ±
          0.572 / 0.917 ± 0.144 / 0.999 ± 0.000; pixel accuracy 0.997 ± 0.002 / 0.997 ± 0.005 /
          0.999 ± 0.001: pixel accuracy hides the difference (cross-entropy's seed 0 predicts
          background everywhere for all 120 steps and still scores 0.994). Both Dice losses
          beat cross-entropy on the mean, and Dice + CE is the steadiest (sd 0.04, every seed
          >= 0.84); but the seeds do not agree on one order: cross-entropy seeds 1 and 2 beat
          Dice seed 1 (0.556, stuck on part of the objects), and the means' differences lie
          within one sd of cross-entropy. The curves have flattened by the end of the cosine
          schedule in every run. With 3 seeds this shows "Dice (+CE) is the safer loss on
          tiny objects (cross-entropy can collapse to background)", not a clear win of every
          Dice run over every cross-entropy run. (A depth-3, width-16 cross-entropy run, stopped
          for time, had foreground Dice 0.777 after 40 steps: its collapse depends on the seed
          and the network.)
          valid, 2026-12-01 (not rerun): ``--config.studies='("valid",)' --config.num_train=320
          --config.num_test=100 --config.num_epochs=3``, depth 2, width 16, 30 steps: the padded
          UNet (BatchNorm) reaches foreground Dice 0.914, boundary F 0.314, mIoU 0.312; the
          original (valid convolutions, no normalisation, mirror-padded 104 -> 64) still
          predicts background everywhere after 30 steps (foreground Dice 0.000, mIoU 0.130):
          without BatchNorm it needs a longer schedule, as in the paper. 6 minutes wall.
          The default padded UNet (depth 3, width 16) reached foreground Dice 0.920 after one
          epoch of 1000 seg64 images (31 steps).
Runtime:  2026-12-02, both studies at once at load 10-14: skips 2375 s wall (6 runs; about 4
          minutes to compile each model's programs, then 4-7 minutes per 60-step run), losses
          2180 s (9 runs; about 3 minutes to compile per loss, then about 3 minutes per
          120-step run). Runs that differ only in seed reuse the programs through the on-disk
          compilation cache in the workdir; rerunning the command on finished workdirs only
          re-evaluates the checkpoints and redraws the figures (under a minute per run).

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
The skips and losses studies run ``seeds`` seeds per model or loss (seed-major, so a study cut
short still has pairs) and draw every seed's final value (``seeds_*.png``) and held-out curves
read back from each run's ``metrics.jsonl`` (``curves_*.png``). Overlays of predictions on test
images are written as PNGs (``overlays_*.png``).
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np

from experiments import _science as sci
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
    # The skips study's 6 runs (2 models x 3 seeds): 5 epochs of 384 images (60 steps of 32,
    # an evaluation after each epoch for the curves). Width 16: at width 8 the UNet did not
    # learn the shape classes in 120 steps (mIoU 0.27, foreground Dice falling to 0.48).
    config.skips_num_train = 384
    config.skips_epochs = 5
    config.skips_model_kwargs = ml_collections.ConfigDict(dict(depth=3, base_width=16, conv="xla"))
    config.loss_epochs = 6
    # The tiny objects (radius 2-3 pixels) need no deep, wide network: the losses study's 9 runs
    # use a smaller UNet to afford a budget where the seeds settle.
    config.loss_model_kwargs = ml_collections.ConfigDict(dict(depth=2, base_width=8, conv="xla"))
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
    """One row per run: its predictions (coloured by class) on the first test images (in
    grey), with the true objects outlined in white (a missed object is a grey shape in an
    outline); the first row is the ground truth."""
    import matplotlib.pyplot as plt

    first = next(iter(rows.values()))
    truth = {"ground truth": {"predictions": first["test"]["mask"], "test": first["test"]}}
    rows = {**truth, **rows}
    n = len(first["test"]["image"])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.45 * len(rows)), squeeze=False)
    for r, (name, summary) in enumerate(rows.items()):
        for i in range(n):
            _overlay(axes[r, i], summary["test"]["image"][i], summary["predictions"][i],
                     name if i == 0 else "", truth=None if r == 0 else first["test"]["mask"][i])
    plots.save(fig, path, dpi=110)


def _overlay(ax, image, mask, title, truth=None):
    colours = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                        [245, 130, 48]], np.float32) / 255
    rgb = image.astype(np.float32) / 255
    crop = (rgb.shape[0] - mask.shape[0]) // 2
    rgb = rgb[crop:crop + mask.shape[0], crop:crop + mask.shape[1]]
    grey = np.repeat(rgb.mean(-1, keepdims=True), 3, -1)  # the image in grey, predictions in colour
    shown = np.where(mask[..., None] > 0, 0.3 * grey + 0.7 * colours[mask % 6], grey)
    ax.imshow(shown)
    if truth is not None and (truth > 0).any():
        ax.contour(truth > 0, levels=[0.5], colors="white", linewidths=0.7)
    ax.set_title(title, fontsize=7, loc="left")
    ax.axis("off")


def save_seeds(path: str, table: dict, metrics: tuple[str, ...]) -> None:
    """One panel per metric: every seed's value as a dot, the mean ± sd as a bar, per run."""
    fig, axes = plots.figure((3.2 * len(metrics), 3.2), ncols=len(metrics))
    for ax, metric in zip(np.asarray(axes).reshape(-1), metrics):
        for i, (name, t) in enumerate(table.items()):
            values = np.asarray(t[metric], np.float64)
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            ax.errorbar(i, values.mean(), yerr=sd, fmt="_", color="k", markersize=18,
                        capsize=6, zorder=1)
            ax.scatter(i + np.linspace(-0.12, 0.12, len(values)), values, s=22,
                       color=f"C{i}", zorder=2)
        ax.set_xticks(range(len(table)), list(table), fontsize=8)
        ax.set_xlim(-0.6, len(table) - 0.4)
        if metric != "pixel_accuracy":  # bounded by 1; an sd bar may reach past it
            bottom, top = ax.get_ylim()
            ax.set_ylim(max(bottom, -0.02), min(top, 1.02))
        ax.set_title(f"{metric.replace('_', ' ')} ({len(values)} seeds)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    plots.save(fig, path, dpi=110)


def save_curves(path: str, runs: dict, metrics: tuple[str, ...]) -> None:
    """Held-out metrics after every epoch (from each run's ``metrics.jsonl``): one colour per
    model or loss, one line per seed."""
    fig, axes = plots.figure((4.2 * len(metrics), 3.2), ncols=len(metrics))
    for ax, metric in zip(np.asarray(axes).reshape(-1), metrics):
        for i, (name, workdirs) in enumerate(runs.items()):
            for j, run_dir in enumerate(workdirs):
                points = [(r["step"], r[metric]) for r in train.read_metrics(run_dir)
                          if r.get("split") == "eval" and metric in r]
                if points:
                    ax.plot(*zip(*points), "o-", color=f"C{i}", markersize=2.5, alpha=0.8,
                            label=name if j == 0 else None)
        ax.set_xlabel("step")
        ax.set_title(f"held-out {metric.replace('_', ' ')}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    plots.save(fig, path, dpi=110)


def _per_seed_lines(table: dict, metrics: tuple[str, ...]) -> list[str]:
    return [f"Per seed, {metric.replace('_', ' ')}: " + "; ".join(
        f"{name} " + ", ".join(f"{v:.3f}" for v in t[metric]) for name, t in table.items())
        for metric in metrics]


def _mean_sd(values):
    values = np.asarray(values, np.float64)
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def main(config, workdir: str) -> dict:
    import time

    sci.cache_compilations(workdir)
    if config.quick:
        config.num_train, config.num_test, config.seeds = 256, 100, 1
        config.skips_num_train = 256
        config.num_epochs = config.skips_epochs = config.loss_epochs = 2
    results, lines = {}, ["# UNet segmentation: skips, Dice, valid vs padded", ""]
    start = time.time()
    if "skips" in config.studies:
        models = ("unet", "unet_noskip")
        keys = ("miou", "foreground_dice", "boundary_f", "pixel_accuracy")
        runs = {m: [] for m in models}
        for seed in range(config.seeds):  # seed-major: a cut-short study still has pairs
            for model in models:
                runs[model].append(run(
                    config, os.path.join(workdir, f"skips_{model}_{seed}"), model=model,
                    seed=seed, num_epochs=config.skips_epochs, num_train=config.skips_num_train,
                    model_kwargs=ml_collections.ConfigDict(config.skips_model_kwargs.to_dict())))
        table = {m: {k: [r[f"eval_{k}"] for r in rs] for k in keys} for m, rs in runs.items()}
        results["skips"] = table
        save_overlays(os.path.join(workdir, "overlays_skips.png"),
                      {f"{m} (seed 0)": rs[0] for m, rs in runs.items()})
        save_seeds(os.path.join(workdir, "seeds_skips.png"), table,
                   ("foreground_dice", "boundary_f", "miou"))
        save_curves(os.path.join(workdir, "curves_skips.png"),
                    {m: [os.path.join(workdir, f"skips_{m}_{s}") for s in range(config.seeds)]
                     for m in models}, ("foreground_dice", "boundary_f"))
        lines += [f"## Skips (seg64, 6 classes; {config.seeds} seeds, mean ± sd)", "",
                  "| model | mIoU | foreground Dice | boundary F (1 px) | pixel accuracy |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {m} | " + " | ".join(_mean_sd(t[k]) for k in keys) + " |"
                  for m, t in table.items()]
        lines += ["", *_per_seed_lines(table, ("foreground_dice", "boundary_f")), ""]
    if "losses" in config.studies:
        losses = {"cross-entropy": 0.0, "Dice": 1.0, "Dice + CE": 0.5}
        results["losses"] = {}
        for kind in config.loss_datasets:
            keys = ("foreground_dice", "boundary_f", "pixel_accuracy")
            runs = {name: [] for name in losses}
            for seed in range(config.seeds):  # seed-major: a cut-short study still has pairs
                for name, weight in losses.items():
                    runs[name].append(run(
                        config, os.path.join(workdir, f"loss_{kind}_{weight}_{seed}"),
                        kind=kind, binary=True, seed=seed, dice_weight=weight,
                        num_epochs=config.loss_epochs, model_kwargs=ml_collections.ConfigDict(
                            config.loss_model_kwargs.to_dict())))
            table = {n: {k: [r[f"eval_{k}"] for r in rs] for k in keys} for n, rs in runs.items()}
            results["losses"][kind] = table
            save_overlays(os.path.join(workdir, f"overlays_losses_{kind}.png"),
                          {f"{n} (seed 0)": rs[0] for n, rs in runs.items()})
            save_seeds(os.path.join(workdir, f"seeds_losses_{kind}.png"), table, keys)
            save_curves(os.path.join(workdir, f"curves_losses_{kind}.png"),
                        {n: [os.path.join(workdir, f"loss_{kind}_{w}_{s}")
                             for s in range(config.seeds)] for n, w in losses.items()},
                        ("foreground_dice", "boundary_f"))
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
            lines += ["", *_per_seed_lines(table, ("foreground_dice", "pixel_accuracy")), ""]
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
              if name.endswith(".png")]
    lines += ["",
              "Command: `python -m experiments.unet_segmentation --workdir "
              "workdirs/unet_segmentation`"]
    cli.write_report(workdir, lines, results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="unet_segmentation")
