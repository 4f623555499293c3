"""Normalisation vs batch size: BatchNorm fails at batch 2, GroupNorm does not.

Command:  python -m experiments.normalization_ablation --workdir workdirs/normalization_ablation
          (smoke run: ``--config.batch_sizes=32 --config.seeds=1 --config.min_steps=0
          --config.epochs=1``; LayerNorm and no normalisation: ``'--config.norms=("batch_norm",
          "group_norm", "layer_norm", "none")'``)
Expected: BatchNorm normalises with the batch's own statistics in training and with running
          averages of them at test time; at batch 2 those statistics are noisy and the running
          averages match no batch the network trained on, so its test accuracy drops. GroupNorm
          and LayerNorm use each image's own statistics, the same in training and test, and stay
          flat across batch sizes.
Measured: 2026-12-02, default config (BatchNorm and GroupNorm, at least 540 steps in whole
          epochs at every batch size: 3, 4, 13 and 50 epochs at batch 2, 8, 32 and 128; 50
          warmup steps; 4 seeds, mean ± std), test accuracy:
          batch          2              8              32             128
          BatchNorm      0.091 ± 0.016  0.988 ± 0.005  0.992 ± 0.004  0.994 ± 0.002
          GroupNorm      0.983 ± 0.002  0.980 ± 0.004  0.985 ± 0.003  0.983 ± 0.002
          Both halves of the claim show. BatchNorm fails at batch 2: every seed diverges (loss
          NaN; 934 to 1,082 of 2,157 steps skipped as non-finite), chance accuracy; a variance
          from two numbers can be near zero, and dividing by it blows the gradient up. It is
          fine from batch 8 up. GroupNorm is flat from batch 2 to 128 (spread of the means
          0.005, every seed between 0.976 and 0.988).
          The budget matters. At equal epochs (3; the runs before ``min_steps``), batch 32 and
          128 got only 132 and 33 steps, too few for GroupNorm (0.628 ± 0.235 and 0.102 ± 0.013,
          2 seeds) while BatchNorm trained in them (0.982, 0.954). Without the warmup, at batch
          128 (lr 0.2 from the first step) one GroupNorm seed of two did not converge in 550
          steps (0.593 against 0.98). The linear scaling rule's large rates need the warmup
          (Goyal et al., 2017), and BatchNorm tolerated their absence.
          LayerNorm and no normalisation (3 epochs, 2 seeds, no warmup): 0.967/0.962/0.277/0.103
          and 0.967/0.964/0.955/0.471 at batch 2/8/32/128: flat only where they got enough steps.
Runtime:  8.5 minutes on the quiet 2-core machine for two seeds (the 16 runs), 17 minutes for
          the default four.

Set-up: a ResNet-10 (``resnet18`` with one basic block per stage and the 3x3 CIFAR stem, widths
32-256) whose block option ``norm`` is ``batch_norm``, ``group_norm`` (32 groups), ``layer_norm``
(over each pixel's channels) or ``none`` (the identity in the norm's place), on the engine's
``digits`` split. On 8x8 images its four stages see 8x8, 4x4, 2x2 and 1x1 maps, so at batch 2
the last stage's BatchNorm estimates each channel's mean and variance from two numbers; a
small CNN whose deepest maps stay 2x2 showed no BatchNorm failure at batch 2 (98.9% test
accuracy, one seed). Every run sees the same number of epochs, so a batch of 2 takes 64x the
steps of a batch of 128: equal data, the budget that a memory limit on the batch leaves
unchanged. The learning rate follows the linear scaling rule (``base_learning_rate`` x batch /
32, SGD with momentum, cosine), which keeps the gradient noise per epoch comparable (an
unscaled 0.05 at batch 2 diverged with GroupNorm as well), so what changes with the batch is
what the normalisation sees. A non-finite step is skipped, not fatal, and counted. Through
``train.train_and_evaluate``; test accuracy is the engine's final evaluation (eval mode:
BatchNorm's running averages).
"""

from __future__ import annotations

import os

import flax.linen as nn
import ml_collections
import numpy as np

from experiments import _science as sci
from experiments.resnet_vs_plain_depth import run_or_reuse
from jaxvision import cli, models, plots
from jaxvision.data.builders import digits_arrays

NAMES = {"batch_norm": "BatchNorm", "group_norm": "GroupNorm (32 groups)",
         "layer_norm": "LayerNorm", "none": "no normalisation"}


class NoNorm(nn.Module):
    """The identity in a norm's place, so that ``none`` differs from the norms in nothing
    else: every conv stays bias-free, as the measured runs had it (the models' own
    ``norm="none"`` gives the convolutions biases instead)."""

    dtype: object = None

    def __call__(self, x):
        return x


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.norms = ("batch_norm", "group_norm")  # also "layer_norm", "none"
    config.batch_sizes = (2, 8, 32, 128)
    config.seeds = 4  # seeds 0 .. seeds-1
    # ResNet-10: one basic block per stage, 3x3 stem; on 8x8 digits its stages see 8x8, 4x4, 2x2
    # and 1x1 maps, so at batch 2 the last stage's BatchNorm has two values per channel.
    config.model = "resnet18"
    config.model_kwargs = ml_collections.ConfigDict(dict(
        stage_sizes=(1, 1, 1, 1), stem="cifar", base_features=32))
    config.epochs = 3
    # 0: every batch size trains `epochs` epochs (equal data); > 0: at least this many steps
    # (whole epochs), so that large batches are not judged on a few dozen updates
    config.min_steps = 540
    config.base_learning_rate = 0.05  # at batch 32
    config.scale_learning_rate = True  # linear scaling with the batch; False: the same at every batch
    # linear warmup (Goyal et al., 2017: the linear scaling rule's large rates need one)
    config.warmup_steps = 50
    config.weight_decay = 1e-4
    return config


def train_one(config, norm: str, batch_size: int, seed: int, workdir: str) -> dict:
    learning_rate = config.base_learning_rate * (batch_size / 32 if config.scale_learning_rate else 1)
    steps_per_epoch = len(digits_arrays("train")[1]) // batch_size
    epochs = max(config.epochs, -(-config.min_steps // steps_per_epoch))
    cfg = sci.engine_config(epochs=epochs, seed=seed, optimizer=dict(
        name="momentum", momentum=0.9, learning_rate=learning_rate, schedule="cosine",
        warmup_steps=config.warmup_steps, weight_decay=config.weight_decay),
        norm=norm, conv="xla", **config.model_kwargs.to_dict())
    cfg.model = config.model
    # A non-finite step is skipped, never the end of the run: the divergence is the result.
    cfg.nonfinite, cfg.max_consecutive_skips = "skip", 10 ** 9
    cfg.batch_size = batch_size
    cfg.log_every_steps = steps_per_epoch  # once an epoch
    model = None
    if norm == "none" and config.model == "resnet18":
        model = models.create(config.model, num_classes=10, **{**cfg.model_kwargs.to_dict(),
                                                               "norm": NoNorm})
    summary, records, train_accuracy = run_or_reuse(
        cfg, os.path.join(workdir, f"{norm}_b{batch_size}_seed{seed}"), model=model)
    return {"norm": norm, "batch_size": batch_size, "seed": seed, "learning_rate": learning_rate,
            "steps": int(summary["step"]), "skipped_steps": int(summary["skipped_steps"]),
            "final_train_loss": float(sci.series(records, "train", "loss")[1][-1]),
            "train_accuracy_train_mode": float(sci.series(records, "train", "accuracy")[1][-1]),
            "train_accuracy": train_accuracy, "test_accuracy": float(summary["eval_accuracy"])}


METRICS = ("final_train_loss", "train_accuracy_train_mode", "train_accuracy", "test_accuracy")


def summarise(runs: list[dict]) -> dict:
    """``{norm: {batch_size: {metric: [mean, std]}}}`` over seeds (std with ddof 0)."""
    groups: dict = {}
    for r in runs:
        groups.setdefault(r["norm"], {}).setdefault(str(r["batch_size"]), []).append(r)
    return {norm: {b: {m: [float(np.mean([r[m] for r in rs])), float(np.std([r[m] for r in rs]))]
                       for m in METRICS} for b, rs in by_batch.items()}
            for norm, by_batch in groups.items()}


def plot_accuracy(path: str, summary: dict, batch_sizes, budget: str) -> None:
    fig, ax = plots.figure((6.5, 4))
    for norm, by_batch in summary.items():
        stats = np.array([by_batch[str(b)]["test_accuracy"] for b in batch_sizes])
        ax.errorbar(batch_sizes, stats[:, 0], yerr=stats[:, 1], marker="o", capsize=4,
                    label=NAMES.get(norm, norm))
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(batch_sizes), [str(b) for b in batch_sizes])
    ax.set(xlabel=f"batch size ({budget}; lr scaled with the batch)",
           ylabel="test accuracy (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    plots.save(fig, path)


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    sci.cache_compilations(workdir)
    batch_sizes = tuple(config.batch_sizes)
    runs = [train_one(config, norm, b, seed, workdir)
            for seed in range(config.seeds) for b in batch_sizes for norm in config.norms]
    summary = summarise(runs)
    budget = (f"at least {config.min_steps} steps, whole epochs" if config.min_steps
              else f"{config.epochs} epochs")
    plot_accuracy(os.path.join(workdir, "normalization.png"), summary, batch_sizes, budget)
    rows = [{"norm": NAMES.get(norm, norm), "batch": b,
             **{m: f"{s[0]:.4f} ± {s[1]:.4f}" for m, s in summary[norm][str(b)].items()}}
            for norm in config.norms for b in batch_sizes]
    smallest = str(min(batch_sizes))
    spread = {norm: max(s["test_accuracy"][0] for s in by_batch.values())
              - min(s["test_accuracy"][0] for s in by_batch.values())
              for norm, by_batch in summary.items()}
    sections = [
        f"digits (8x8), {config.model} {config.model_kwargs.to_dict()} with each norm, "
        f"{budget} at every batch size, SGD momentum 0.9, lr {config.base_learning_rate} x "
        "batch / 32 with a cosine schedule"
        + (f" after {config.warmup_steps} warmup steps" if config.warmup_steps else "") + "; "
        f"mean ± std over {config.seeds} seeds. `train_accuracy_train_mode`: the last epoch's "
        "running accuracy in train mode (BatchNorm on batch statistics); `train_accuracy` and "
        "`test_accuracy`: the final model in eval mode (BatchNorm on its running averages).",
        sci.markdown_table(rows, ["norm", "batch", *METRICS]),
        "Runs with non-finite (skipped) steps: " + (", ".join(
            f"{NAMES.get(r['norm'], r['norm'])} batch {r['batch_size']} seed {r['seed']}: "
            f"{r['skipped_steps']} of {r['steps']}" for r in runs if r["skipped_steps"]) or "none") + ".",
        "Spread of mean test accuracy over batch sizes (max - min): "
        + ", ".join(f"{NAMES.get(n, n)} {v:.4f}" for n, v in spread.items()) + ".",
        "![test accuracy vs batch size](normalization.png)"]
    claim = {"smallest_batch": int(smallest), "test_accuracy_at_smallest_batch": {
        norm: summary[norm][smallest]["test_accuracy"][0] for norm in summary},
        "test_accuracy_spread": spread}
    cli.write_report(workdir, ["# Normalisation vs batch size", "", "\n\n".join(sections)],
                     {"config": config.to_dict(), "runs": runs, "summary": summary,
                      "claim": claim})
    return claim


if __name__ == "__main__":
    cli.run(get_config, main, name="normalization_ablation")
