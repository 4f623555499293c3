"""A source model without the network: a ResNet-18 pretrained on ten textured ``shapes`` classes.

The other transfer experiments (``experiments.transfer_learning``,
``notebooks/transfer_learning.ipynb``) start from the workdir this writes, through the engine's ``config.init_from``; a torchvision/timm
``.pth`` or ``.safetensors`` file, or ``"resnet18.IMAGENET1K_V1"``, goes in the same place.

Command:  python -m experiments.pretrain --workdir workdirs/pretrain
          (``--config.quick=True``: 1,000 images and 2 epochs, for a smoke run)
Source:   ``shapes`` at 32x32 with the ten classes of ``SOURCE_CLASSES`` (circle, square,
          triangle, diamond, cross, star, ring, hexagon, ellipse, arrow), random colours,
          sizes, positions and textures (solid, stripes, checker, dots); 8,000 training and
          1,000 test images, rendered from a seed (``jaxvision.data.shapes``). The transfer
          targets use five *other* shapes (``TARGET_CLASSES``), drawn the same way.
Model:    ``resnet18`` with ``base_features=16`` (widths 16-32-64-128 instead of 64-512: a
          ResNet-18's depth, stages and blocks, 0.7 M parameters instead of 11 M) and the
          ImageNet stem (7x7/2 + max-pool), so that the many transfer runs fit two busy CPU
          cores. AdamW 3e-3, cosine with 100 warm-up steps, batch 64, 6 epochs (750 steps).
Measured: 2026-12-02, on 2 CPU cores shared with other jobs (load average 8-9): test accuracy
          0.963 (loss 0.091) on the 1,000 test images of the ten source classes after 750
          steps; 0.734 after the first epoch (report.md, curves.png, source_examples.png).
Runtime:  294 s (5 minutes) wall at that load, about 2 minutes of it rendering the images and
          compiling; this process got about 40% of one core. Needs no network.
"""

from __future__ import annotations

import os
import time

import ml_collections
import numpy as np

from jaxvision import cli, plots, train
from jaxvision.data import from_arrays, make_datasets
from jaxvision.data.shapes import ShapesSpec, generate

SOURCE_CLASSES = ("circle", "square", "triangle", "diamond", "cross", "star", "ring", "hexagon",
                  "ellipse", "arrow")
TARGET_CLASSES = ("frame", "t_shape", "l_shape", "hourglass", "semicircle")
IMAGE_SIZE = 32


def shapes_spec(classes, *, num_train: int, num_test: int, seed: int = 0,
                size: int = IMAGE_SIZE) -> ShapesSpec:
    """The transfer experiments' ``shapes`` variant: one textured object per image."""
    return ShapesSpec(image_size=size, classes=tuple(classes), textures=True,
                      min_radius_frac=0.2, max_radius_frac=0.45, num_train=num_train,
                      num_test=num_test, seed=seed)


def shapes_split(classes, split: str, num: int, *, seed: int = 0,
                 size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [num, size, size, 3], labels [num])`` of ``classes``."""
    spec = shapes_spec(classes, num_train=num, num_test=num, seed=seed, size=size)
    data = generate(spec, split, num)
    return data["image"], data["label"]


def model_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """What every transfer run shares with the source model: the engine's defaults for one
    device, no TensorBoard, no best-k checkpoints, a fresh run in each workdir."""
    config.model = "resnet18"
    config.model_kwargs = ml_collections.ConfigDict(dict(base_features=16))
    config.parallel = "none"
    config.tensorboard = False
    config.best_metric = ""
    config.keep_checkpoints = 1
    config.resume = "restart"
    return config


def get_config() -> ml_collections.ConfigDict:
    config = model_config(train.default_config())
    config.batch_size = 64
    config.eval_batch_size = 500
    config.num_epochs = 6
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_steps = 100
    config.optimizer.weight_decay = 5e-4
    config.log_every_steps = 25
    # Experiment options.
    config.num_train = 8000
    config.num_test = 1000
    config.quick = False
    return config


def source_datasets(config):
    train_split = shapes_split(SOURCE_CLASSES, "train", config.num_train)
    test_split = shapes_split(SOURCE_CLASSES, "test", config.num_test)
    sources = [from_arrays(*split, num_classes=len(SOURCE_CLASSES), class_names=SOURCE_CLASSES)
               for split in (train_split, test_split)]
    return make_datasets(*sources, batch_size=config.batch_size,
                         eval_batch_size=config.eval_batch_size, seed=config.seed), test_split


def save_examples(path: str, images: np.ndarray, labels: np.ndarray, names) -> None:
    fig, axes = plots.figure((12, 2.6), nrows=2, ncols=10)
    for ax, image, label in zip(axes.ravel(), images, labels):
        ax.imshow(image)
        ax.set_title(names[label], fontsize=7)
        ax.axis("off")
    plots.save(fig, path)


def main(config, workdir: str) -> dict:
    if config.quick:
        config.num_train, config.num_test, config.num_epochs = 1000, 200, 2
        config.optimizer.warmup_steps = 10
    start = time.time()
    datasets, (test_images, test_labels) = source_datasets(config)
    summary = train.train_and_evaluate(config, workdir, datasets=datasets)
    seconds = time.time() - start
    save_examples(os.path.join(workdir, "source_examples.png"), test_images[:20],
                  test_labels[:20], SOURCE_CLASSES)
    results = {"eval_accuracy": summary["eval_accuracy"], "eval_loss": summary["eval_loss"],
               "steps": summary["step"], "runtime_s": seconds}
    lines = ["# Pretraining the source model", "",
             f"ResNet-18 (base width 16) on {config.num_train} textured `shapes` images "
             f"({IMAGE_SIZE}x{IMAGE_SIZE}) of {len(SOURCE_CLASSES)} classes: "
             f"{', '.join(SOURCE_CLASSES)}.", "",
             f"Test accuracy on {config.num_test} images: **{summary['eval_accuracy']:.3f}** "
             f"(loss {summary['eval_loss']:.3f}) after {summary['step']} steps, "
             f"{seconds:.0f} s.", "",
             "Start a transfer run from it with `config.init_from = '<this workdir>'`.", "",
             "![curves](curves.png)", "", "![source examples](source_examples.png)", "",
             "Command: `python -m experiments.pretrain --workdir workdirs/pretrain`"]
    cli.write_report(workdir, lines, results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="pretrain")
