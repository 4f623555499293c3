"""RetinaNet (ResNet-18-FPN, narrow) trained end to end on the embedded ``shapes/det64`` set.

Command:  python -m experiments.retinanet_shapes --workdir workdirs/retinanet_shapes
          (``--config.quick=True``: 400 images and 3 epochs, a smoke run;
          ``--config.ablation=True`` adds the loss ablation: focal loss and BCE, each with and
          without the prior initialisation, under its own recipe)
Expected: the issue's goal is COCO AP50 >= 0.90 on the 500 held-out images (focal + prior).
Measured: 2026-12-02, default config (4,000 training images, 12 epochs, 1,500 steps): AP 0.787,
          AP50 0.943, AP75 0.888, APs 0.788, APm 0.890, AR100 0.833 (eval AP50 per epoch
          0.15, 0.23, 0.54, 0.78, 0.87, 0.92, 0.93, 0.94, 0.94, 0.945 (best AP, epoch 10),
          0.944, 0.943): the goal AP50 >= 0.90 is met from epoch 6 on. With 2,000 images
          (2026-12-01) the same schedule reached AP50 0.79 (744 steps). Re-run 2026-12-02 14:54
          on a clean clone after the YNNPACK change (``jaxvision.xla_options``), quiet machine:
          AP 0.791, AP50 0.946, AP75 0.890, AR100 0.838 (AP50 per epoch 0.16, 0.24, 0.57, 0.83,
          0.89, 0.92, 0.92, 0.94, 0.94, 0.94, 0.95, 0.95), 4.2 minutes in all.
          Loss ablation (``--config.ablation=True --config.main=False``; 2026-12-02, the
          default ``ablation_recipe``: SGD with momentum 0.9, lr 0.01, no clipping, GroupNorm
          heads; 2,000 images, 6 epochs, 372 steps each), eval AP50 per epoch:
            focal g=2 + prior    0.096 0.210 0.307 0.404 0.445 0.451 (AP 0.299)
            focal g=2, no prior  0.055 0.137 0.164 0.170 0.175 0.176 (AP 0.100)
            BCE + prior          0.151 0.325 0.603 0.764 0.811 0.817 (AP 0.571)
            BCE, no prior        0.088 0.154 0.177 0.184 0.188 0.190 (AP 0.122)
            focal g=1 + prior    0.103 0.253 0.425 0.533 0.588 0.597 (AP 0.402)
            focal g=5 + prior    0.050 0.145 0.180 0.196 0.200 0.201 (AP 0.121)
          Without the prior both losses stall near AP50 0.18 from epoch 3 on, focal or BCE;
          with it they train, faster the smaller gamma: at this budget the prior is what
          matters, and the focal term (with alpha 0.25) shrinks the gradient SGD steps on.
          Curves: ``ablation.png``. About 90 s per variant, 11 minutes in all, quiet machine.
          Earlier recipes, for the record: with the main run's AdamW (norm-10 clipping, 93
          steps) BCE without the prior does NOT stall (AP50 0.159 vs focal + prior 0.102):
          Adam's scale-free steps absorb its initial loss (near 90 against 2). With SGD and
          the plain N(0, 0.01) heads (no GroupNorm), SGD from scratch barely moves the narrow
          heads: after 372 steps at lr 0.01 focal + prior still had AP50 0, BCE without the
          prior 0.009; at lr 0.03 BCE without the prior diverged at step 25.
Runtime:  about 15-20 minutes on a quiet 2-core machine (1.9 steps/s, plus 500-image
          evaluations); this run took 80 minutes on the shared machine at load 6-12, and was
          resumed once from its step-1375 checkpoint after its final evaluation stalled
          (resumed exactly: the same training losses step for step).

Everything goes through ``train.train_and_evaluate`` with ``task="detection"``: anchor
targets are computed on device in the step, detections are scored by the project's COCO
evaluator on the whole eval split after each epoch, and the best checkpoint is kept by AP.
The data are ``shapes/det64``'s images (1-4 objects of 13-32 pixels per 64x64 image, 5
classes), generated from the builder's own spec as arrays. Anchors: 16-256 pixels with
octave scales (``small_anchor_sizes(16)``), centred on the cells. The trained model is loaded
back with ``inference.load`` and its boxes are drawn on test images (``detections.png``);
``curves.png`` compares the focal/prior run's loss and AP50 with the ablation's.
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from jaxvision import cli, inference, plots, train
from jaxvision.data import from_arrays, make_datasets
from jaxvision.data.shapes import CLASS_NAMES, ShapesSpec, generate
from jaxvision.models.retinanet import small_anchor_sizes
from jaxvision.train.writers import read_metrics

# shapes/det64 (jaxvision.data.builders.shapes): 1-4 objects, radius 10-25% of 64 pixels.
DET64 = ShapesSpec(image_size=64, min_objects=1, max_objects=4, min_radius_frac=0.1,
                   max_radius_frac=0.25, num_train=2000, num_test=500)


def get_config() -> ml_collections.ConfigDict:
    config = train.default_config()
    config.task = "detection"
    config.model = "retinanet_resnet18_fpn"
    config.model_kwargs = ml_collections.ConfigDict(dict(
        fpn_channels=64, anchor_sizes=small_anchor_sizes(16.0), anchor_offset=0.5,
        round_anchors=False, conv="xla", backbone_kwargs=dict(base_features=16, conv="xla"),
        head_norm=None))  # "group_norm": torchvision's v2 heads
    config.num_classes = len(CLASS_NAMES)
    config.parallel = "none"
    config.batch_size = 32
    config.eval_batch_size = 100
    config.num_epochs = 12
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 2e-3
    config.optimizer.warmup_steps = 50
    config.optimizer.schedule = "cosine"
    config.grad_clip_norm = 10.0
    config.best_metric = "eval_AP"
    config.tensorboard = False
    config.log_every_steps = 25
    config.num_train = 4000  # generated on the fly: more costs only time
    config.quick = False
    config.ablation = False
    config.main = True  # False with ablation=True: the ablation alone
    config.ablation_variants = tuple(ABLATION)  # a subset of ABLATION's names
    # The ablation's changes to the recipe above: the paper's optimizer (SGD, momentum 0.9, lr
    # 0.01, no clipping), under which the loss's scale matters (AdamW's scale-free steps hide
    # it), with torchvision v2's GroupNorm heads (without them SGD from scratch barely moves the
    # narrow N(0, 0.01) heads at this budget: AP50 0 after 372 steps).
    config.ablation_recipe = ml_collections.ConfigDict(dict(
        optimizer=dict(name="sgd", learning_rate=0.01), grad_clip_norm=0.0,
        model_kwargs=dict(head_norm="group_norm")))
    config.ablation_epochs = 6
    config.ablation_train = 2000
    return config


def shapes_source(spec: ShapesSpec, split: str, num: int):
    """``num`` generated images of ``spec`` with their boxes and classes, as a data source."""
    d = generate(spec, split, num)
    keep = d["valid"]
    return from_arrays(d["image"], boxes=[b[k] for b, k in zip(d["boxes"], keep)],
                       box_classes=[c[k] for c, k in zip(d["classes"], keep)],
                       num_classes=len(CLASS_NAMES), class_names=CLASS_NAMES)


def _train(config, workdir: str, num_train: int, num_test: int) -> dict:
    datasets = make_datasets(shapes_source(DET64, "train", num_train),
                             shapes_source(DET64, "test", num_test),
                             batch_size=config.batch_size, eval_batch_size=config.eval_batch_size,
                             seed=config.seed, max_boxes=DET64.max_objects)
    return train.train_and_evaluate(config, workdir, datasets=datasets)


def draw_detections(path: str, predictor, images: np.ndarray, truth: dict, *,
                    min_score: float = 0.3) -> None:
    """Test images with ground truth (dashed white) and detections above ``min_score``."""
    predictions = predictor(images)
    fig, axes = plots.figure((2.2 * 6, 2.4 * 2), nrows=2, ncols=6)
    for i, ax in enumerate(axes.flat):
        ax.imshow(images[i])
        ax.set_axis_off()
        plots.draw_boxes(ax, truth["boxes"][i][truth["valid"][i]], color="white",
                         linestyle="--", linewidth=1)
        keep = predictions["boxes_valid"][i] & (predictions["scores"][i] >= min_score)
        plots.draw_boxes(ax, predictions["boxes"][i][keep], labels=[
            f"{CLASS_NAMES[c]} {s:.2f}" for c, s in zip(predictions["box_classes"][i][keep],
                                                       predictions["scores"][i][keep])])
    plots.save(fig, path)


# The loss ablation (--config.ablation=True): each variant changes the main recipe's task or
# its class-logit prior; all run at the ablation budget. BCE is the focal loss at gamma 0
# without alpha; "no prior" starts the class logits at probability 0.5 (bias 0).
NO_PRIOR = {"prior_probability": 0.5}
BCE = {"gamma": 0.0, "alpha": None}
ABLATION = {"focal g=2 + prior": ({}, {}), "focal g=2, no prior": ({}, NO_PRIOR),
            "BCE + prior": (BCE, {}), "BCE, no prior": (BCE, NO_PRIOR),
            "focal g=1 + prior": ({"gamma": 1.0}, {}), "focal g=5 + prior": ({"gamma": 5.0}, {})}


def plot_curves(path: str, runs: dict[str, str]) -> None:
    fig, axes = plots.figure((10, 3.5), ncols=2)
    loss_ax, ap_ax = axes.flat
    for name, workdir in runs.items():
        records = read_metrics(workdir)
        tr = [r for r in records if r["split"] == "train"]
        ev = [r for r in records if r["split"] == "eval"]
        loss_ax.plot([r["step"] for r in tr], [r["loss"] for r in tr], label=name)
        ap_ax.plot([r["step"] for r in ev], [r["AP50"] for r in ev], marker="o", label=name)
    loss_ax.set(xlabel="step", ylabel="train loss (classification + box)", yscale="log")
    ap_ax.set(xlabel="step", ylabel="eval AP50", ylim=(0, 1))
    loss_ax.legend(fontsize=7), ap_ax.legend(fontsize=7)
    plots.save(fig, path)


def _variant(config, task_changes: dict, model_changes: dict):
    c = ml_collections.ConfigDict(config.to_dict())
    c.task_kwargs = ml_collections.ConfigDict({**c.task_kwargs.to_dict(), **task_changes})
    c.model_kwargs.update(model_changes)
    return c


def _table(results: dict, times: dict) -> list[str]:
    lines = ["| run | AP | AP50 | AP75 | APs | APm | AR100 | time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['eval_AP']:.3f} | {r['eval_AP50']:.3f} | "
                     f"{r['eval_AP75']:.3f} | {r['eval_APs']:.3f} | {r['eval_APm']:.3f} | "
                     f"{r['eval_AR100']:.3f} | {times[name]:.0f} |")
    return lines


def main(config, workdir: str) -> dict:
    import time

    unknown = set(config.ablation_variants) - set(ABLATION)
    if unknown:  # before any training
        raise ValueError(f"unknown ablation variants {sorted(unknown)}; known: {list(ABLATION)}")
    quick = config.quick
    num_train, num_test = (400, 100) if quick else (config.num_train, DET64.num_test)
    if quick:  # 12 steps per epoch: a shorter warm-up than the full run's 50 steps
        config.num_epochs = min(config.num_epochs, 3)
        config.optimizer.warmup_steps = min(config.optimizer.warmup_steps, 10)
    extras = ("quick", "ablation", "main", "num_train", "ablation_epochs", "ablation_train",
              "ablation_variants", "ablation_recipe")
    run_config = ml_collections.ConfigDict({k: v for k, v in config.items() if k not in extras})
    runs, results, times, diverged = {}, {}, {}, {}

    def train_run(name, c, n_train):
        runs[name] = os.path.join(workdir, "".join(ch if ch.isalnum() else "_" for ch in name))
        start = time.time()
        results[name] = _train(c, runs[name], n_train, num_test)
        times[name] = time.time() - start

    lines = ["# RetinaNet on shapes/det64"]
    if config.main or not config.ablation:
        train_run("main", run_config, num_train)
        predictor = inference.load(runs["main"])
        truth = generate(DET64, "test", 12)
        draw_detections(os.path.join(workdir, "detections.png"), predictor, truth["image"],
                        truth)
        plot_curves(os.path.join(workdir, "curves.png"), {"main": runs["main"]})
        lines += ["", f"{num_train} training images, {num_test} held-out; "
                  f"{config.num_epochs} epochs, batch {config.batch_size}; focal loss (gamma 2, "
                  "alpha 0.25) with the class prior 0.01.", ""] + _table(results, times) + [
                  "", "![detections](detections.png)", "![curves](curves.png)"]
    if config.ablation:
        ablation_config = ml_collections.ConfigDict(run_config.to_dict())
        ablation_config.update(config.ablation_recipe)  # nested: only the keys it names
        ablation_config.num_epochs = 1 if quick else config.ablation_epochs
        n_train = num_train if quick else config.ablation_train
        for name in config.ablation_variants:
            task_changes, model_changes = ABLATION[name]
            try:
                train_run(name, _variant(ablation_config, task_changes, model_changes), n_train)
            except train.NonFiniteError as error:  # a finding here, not a failure
                diverged[name] = str(error).split(":")[0]  # "step N"
        plot_curves(os.path.join(workdir, "ablation.png"),
                    {n: runs[n] for n in config.ablation_variants})
        lines += ["", "## Loss ablation", "",
                  f"{n_train} training images, {ablation_config.num_epochs} epochs each, "
                  f"the main recipe changed by {config.ablation_recipe.to_dict()}; "
                  "BCE is the focal loss at gamma 0 without alpha; no prior starts every "
                  "class probability at 0.5.", ""]
        lines += _table({n: results[n] for n in config.ablation_variants if n in results}, times)
        lines += [f"| {name} | diverged: non-finite loss at {where} | | | | | | |"
                  for name, where in diverged.items()]
        lines += ["", "![loss ablation](ablation.png)"]
    summary = {name: {k: v for k, v in r.items() if isinstance(v, (int, float))}
               for name, r in results.items()}
    summary.update({name: {"diverged": where} for name, where in diverged.items()})
    cli.write_report(workdir, lines, {"runs": summary, "seconds": times})
    return {name: r.get("eval_AP50", r.get("diverged")) for name, r in summary.items()}


if __name__ == "__main__":
    cli.run(get_config, main, name="retinanet_shapes")
